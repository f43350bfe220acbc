//! The Salesforce REST connector (crm_apis.md §2).
//!
//! - Auth: OAuth 2.0 client credentials at the login host; API calls go to `instance_url`.
//! - Reads: SOQL `SELECT .. FROM Contact [WHERE SystemModstamp >= T] ORDER BY SystemModstamp, Id`
//!   with `Sforce-Query-Options: batchSize`, then `nextRecordsUrl` until `done`.
//! - Deletes and merges: `sobjects/<object>/deleted` (the merge loser is deleted).
//! - Writes: sObject Collections, ≤ 200 records per request, `allOrNone: false`, one SaveResult
//!   per record.
//! - Activities: `Task` records through Collections; found again by `WhoId` + `Subject`.

mod wire;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::client::{ApiClient, ApiRequest};
use super::config::ConnectionSettings;
use super::endpoint::segment;
use super::retry::classify_salesforce;
use super::{
    parse_crm_datetime, ActivityInput, ActivityKind, Connector, ConnectorError, CrmField,
    CrmRecord, DeletedRecord, MetricsSnapshot, Page, ReadPosition, RecordUpdate, RejectedField,
    Schema, WriteResult,
};
use wire::*;

#[derive(Debug)]
pub struct SalesforceConnector {
    settings: ConnectionSettings,
    client: ApiClient,
}

impl SalesforceConnector {
    pub fn new(settings: ConnectionSettings) -> Result<Self, ConnectorError> {
        let client = ApiClient::new(&settings, classify_salesforce)?;
        Ok(SalesforceConnector { settings, client })
    }

    fn data_path(&self, rest: &str) -> String {
        format!("/services/data/{}{}", self.settings.api_version, rest)
    }

    fn decode_err(&self, endpoint: &'static str, message: impl Into<String>) -> ConnectorError {
        ConnectorError::Decode {
            connection: self.settings.name.clone(),
            endpoint,
            message: message.into(),
        }
    }

    /// SOQL for a page of `object` since `since`, ordered for a stable cursor.
    pub fn soql(object: &str, fields: &[String], since: Option<DateTime<Utc>>) -> String {
        let mut cols: Vec<&str> = vec!["Id", "SystemModstamp"];
        for f in fields {
            if !cols.iter().any(|c| c.eq_ignore_ascii_case(f)) {
                cols.push(f);
            }
        }
        let mut q = format!("SELECT {} FROM {object}", cols.join(","));
        if let Some(t) = since {
            // SOQL datetime literals are unquoted and take whole seconds; flooring only reads
            // a little more.
            q.push_str(&format!(
                " WHERE SystemModstamp >= {}",
                t.to_rfc3339_opts(SecondsFormat::Secs, true)
            ));
        }
        q.push_str(" ORDER BY SystemModstamp, Id");
        q
    }

    fn record_of(&self, raw: Value) -> Result<CrmRecord, ConnectorError> {
        // Whatever the `Id` is, the record goes on to the import, which skips and reports one
        // whose id is not a Salesforce id (`crate::engine` record ids): one bad record is not
        // a failed sync.
        let id = match raw.get("Id") {
            Some(Value::String(id)) => id.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let stamp = raw
            .get("SystemModstamp")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                self.decode_err("query", format!("record {id} without `SystemModstamp`"))
            })?;
        let modified = parse_crm_datetime(stamp).ok_or_else(|| {
            self.decode_err(
                "query",
                format!("record {id}: bad SystemModstamp `{stamp}`"),
            )
        })?;
        Ok(CrmRecord { id, modified, raw })
    }

    fn task_of(a: &ActivityInput) -> Value {
        let mut t = Map::new();
        t.insert("attributes".into(), json!({"type": "Task"}));
        t.insert("WhoId".into(), json!(a.contact_record_id));
        t.insert("Subject".into(), json!(task_subject(a)));
        t.insert("Status".into(), json!("Completed"));
        t.insert("Priority".into(), json!("Normal"));
        t.insert(
            "Description".into(),
            json!(truncate(&a.description(), 32_000)),
        );
        if let Some(ts) = a.timestamp() {
            t.insert(
                "ActivityDate".into(),
                json!(ts.format("%Y-%m-%d").to_string()),
            );
        }
        if a.kind == ActivityKind::Call {
            t.insert("TaskSubtype".into(), json!("Call"));
            t.insert(
                "CallObject".into(),
                json!(truncate(&a.conversation_id, 255)),
            );
            if let Some(dir) = a.direction.as_deref() {
                let call_type = if dir.eq_ignore_ascii_case("outbound") {
                    "Outbound"
                } else {
                    "Inbound"
                };
                t.insert("CallType".into(), json!(call_type));
            }
            if let Some(ms) = a.duration_ms {
                t.insert("CallDurationInSeconds".into(), json!(ms.div_ceil(1000)));
            }
            // Free text in Salesforce ("Call Result"): what became of the call.
            t.insert("CallDisposition".into(), json!(a.call_outcome().label()));
        }
        Value::Object(t)
    }

    fn results_of(
        &self,
        endpoint: &'static str,
        body: &[u8],
        expected: usize,
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        let results: Vec<SaveResult> =
            serde_json::from_slice(body).map_err(|e| self.decode_err(endpoint, e.to_string()))?;
        if results.len() != expected {
            return Err(self.decode_err(
                endpoint,
                format!("{} results for {expected} records", results.len()),
            ));
        }
        Ok(results.into_iter().map(save_result).collect())
    }
}

fn save_result(r: SaveResult) -> WriteResult {
    if r.success {
        return match r.id.filter(|id| !id.trim().is_empty()) {
            Some(id) => WriteResult::Written { id },
            None => WriteResult::Undecodable {
                message: super::SUCCESS_WITHOUT_ID.to_string(),
            },
        };
    }
    // A locked row clears on its own; everything else (validation, bad id, deleted entity,
    // restricted picklist) will fail the same way again.
    let permanent = !r.errors.iter().any(|e| {
        e.status_code == "UNABLE_TO_LOCK_ROW"
            || e.status_code == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    });
    if permanent {
        if let Some(fields) = rejected_fields(&r.errors) {
            return WriteResult::FieldsRejected { fields };
        }
    }
    let message = r
        .errors
        .iter()
        .map(|e| {
            if e.fields.is_empty() {
                format!("{}: {}", e.status_code, e.message)
            } else {
                format!(
                    "{}: {} (fields: {})",
                    e.status_code,
                    e.message,
                    e.fields.join(", ")
                )
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    WriteResult::Rejected { message, permanent }
}

/// The refused fields, when every error of a SaveResult names fields and none is about the
/// record itself (`Id`): then the record's other fields were acceptable.
fn rejected_fields(errors: &[SaveError]) -> Option<Vec<RejectedField>> {
    let about_fields = !errors.is_empty()
        && errors.iter().all(|e| {
            !e.fields.is_empty() && !e.fields.iter().any(|f| f.eq_ignore_ascii_case("id"))
        });
    about_fields.then(|| {
        errors
            .iter()
            .flat_map(|e| {
                e.fields.iter().map(|field| RejectedField {
                    field: field.clone(),
                    code: e.status_code.clone(),
                    message: e.message.clone(),
                })
            })
            .collect()
    })
}

/// The Task `Subject`, cut to the field's 255 characters (a longer one is refused with
/// `STRING_TOO_LONG`, which would dead-letter the activity); a lookup uses the same cut text.
fn task_subject(a: &ActivityInput) -> String {
    truncate(&a.subject(), 255)
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// The most characters of subjects and contact ids one lookup query carries in its `IN` lists:
/// with the rest of the query and URL encoding it stays well under Salesforce's 16,384-character
/// limit for a GET URL (a subject may be up to 255 characters).
const FIND_ACTIVITIES_QUERY_CHARS: usize = 6_000;

/// `batch` cut into runs whose subjects and contact ids fit one lookup query.
fn lookup_chunks(batch: &[ActivityInput]) -> Vec<&[ActivityInput]> {
    let mut chunks = Vec::new();
    let (mut start, mut chars) = (0, 0);
    for (i, a) in batch.iter().enumerate() {
        let size = task_subject(a).len() + a.contact_record_id.len() + 8;
        if i > start && chars + size > FIND_ACTIVITIES_QUERY_CHARS {
            chunks.push(&batch[start..i]);
            (start, chars) = (i, 0);
        }
        chars += size;
    }
    if start < batch.len() {
        chunks.push(&batch[start..]);
    }
    chunks
}

/// Quote a SOQL string literal.
fn soql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Connector for SalesforceConnector {
    fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    fn metrics(&self) -> MetricsSnapshot {
        self.client.metrics.snapshot()
    }

    async fn describe(&self, object: &str) -> Result<Schema, ConnectorError> {
        let path = self.data_path(&format!("/sobjects/{}/describe", segment(object)));
        let resp = self
            .client
            .send(&ApiRequest::get("describe", &path))
            .await?;
        let d: DescribeResponse = resp.json(&self.settings.name, "describe")?;
        let mut schema = Schema {
            object: d.name,
            ..Schema::default()
        };
        for f in d.fields {
            if let Some(rel) = &f.relationship_name {
                schema.relationships.insert(rel.clone());
            }
            schema.fields.insert(
                f.name.clone(),
                CrmField {
                    name: f.name,
                    crm_type: f.field_type,
                    updateable: f.updateable,
                    options: f
                        .picklist_values
                        .into_iter()
                        .filter(|p| p.active)
                        .map(|p| p.value)
                        .collect(),
                },
            );
        }
        Ok(schema)
    }

    async fn read_page(
        &self,
        object: &str,
        fields: &[String],
        pos: &ReadPosition,
    ) -> Result<Page, ConnectorError> {
        let batch = format!("batchSize={}", self.settings.page_size);
        let resp = match &pos.token {
            Some(next_url) => {
                let req =
                    ApiRequest::get("query_more", next_url).header("Sforce-Query-Options", batch);
                self.client.send(&req).await?
            }
            None => {
                let path = self.data_path("/query");
                let req = ApiRequest::get("query", &path)
                    .query("q", Self::soql(object, fields, pos.since))
                    .header("Sforce-Query-Options", batch);
                self.client.send(&req).await?
            }
        };
        let q: QueryResponse = resp.json(&self.settings.name, "query")?;
        let records = q
            .records
            .into_iter()
            .map(|r| self.record_of(r))
            .collect::<Result<Vec<_>, _>>()?;
        let next = match (q.done, q.next_records_url) {
            (false, Some(url)) => Some(ReadPosition {
                since: pos.since,
                token: Some(url),
            }),
            (false, None) => {
                return Err(
                    self.decode_err("query", "`done` is false but there is no `nextRecordsUrl`")
                )
            }
            (true, _) => None,
        };
        Ok(Page {
            records,
            next,
            total: q.total_size,
            ordered: true,
        })
    }

    async fn read_deleted(
        &self,
        object: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DeletedRecord>, ConnectorError> {
        // The window is judged by the org's clock, not ours: `end` is capped there, and a
        // `start` older than the delete log (15 days) is refused — then the log cannot tell
        // what was deleted, and only a full sync can (reported, not fatal).
        // `end` goes out in whole seconds: rounded up, so that deletions made earlier in the
        // current second are inside the window (the org caps `end` at its own clock anyway).
        let end =
            (Utc::now() + chrono::Duration::seconds(1)).max(since + chrono::Duration::minutes(1));
        let path = self.data_path(&format!("/sobjects/{}/deleted/", segment(object)));
        let req = ApiRequest::get("deleted", &path)
            .query("start", since.to_rfc3339_opts(SecondsFormat::Secs, false))
            .query("end", end.to_rfc3339_opts(SecondsFormat::Secs, false));
        let resp = match self.client.send(&req).await {
            Ok(r) => r,
            Err(ConnectorError::Api { message, .. })
                if message.contains("INVALID_REPLICATION_DATE") =>
            {
                tracing::warn!(
                    connection = %self.settings.name,
                    %message,
                    "the delete log does not reach back to the last sync; run a full sync to catch every deletion"
                );
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let d: DeletedResponse = resp.json(&self.settings.name, "deleted")?;
        if let Some(earliest) = d
            .earliest_date_available
            .as_deref()
            .and_then(parse_crm_datetime)
        {
            if earliest > since {
                tracing::warn!(
                    connection = %self.settings.name,
                    %earliest,
                    "the delete log does not reach back to the last sync; run a full sync to catch every deletion"
                );
            }
        }
        Ok(d.deleted_records
            .into_iter()
            .map(|r| DeletedRecord {
                deleted_at: r.deleted_date.as_deref().and_then(parse_crm_datetime),
                id: r.id,
            })
            .collect())
    }

    async fn update_records(
        &self,
        object: &str,
        batch: &[RecordUpdate],
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let records = batch
            .iter()
            .map(|u| {
                let mut r = u.fields.clone();
                r.insert("attributes".into(), json!({ "type": object }));
                r.insert("id".into(), json!(u.record_id));
                Value::Object(r)
            })
            .collect();
        let body = CollectionRequest {
            all_or_none: false,
            records,
        };
        let path = self.data_path("/composite/sobjects");
        // Setting the same field values twice is harmless: updates may be retried.
        let req = ApiRequest::with_json("composite_update", Method::PATCH, &path, &body, true);
        let resp = self.client.send(&req).await?;
        self.results_of("composite_update", &resp.body, batch.len())
    }

    async fn create_activities(
        &self,
        batch: &[ActivityInput],
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let body = CollectionRequest {
            all_or_none: false,
            records: batch.iter().map(Self::task_of).collect(),
        };
        let path = self.data_path("/composite/sobjects");
        let req = ApiRequest::with_json("composite_create", Method::POST, &path, &body, false);
        let resp = self.client.send(&req).await?;
        self.results_of("composite_create", &resp.body, batch.len())
    }

    /// One query per run of activities that fits a GET URL ([`lookup_chunks`]; about 100 with
    /// ordinary conversation ids): `Subject IN (...) AND WhoId IN (...)`, matched back by
    /// contact and subject.
    async fn find_activities(
        &self,
        batch: &[ActivityInput],
    ) -> Result<Vec<Option<String>>, ConnectorError> {
        let mut found = Vec::with_capacity(batch.len());
        for chunk in lookup_chunks(batch) {
            let subjects: Vec<String> = chunk
                .iter()
                .map(|a| soql_string(&task_subject(a)))
                .collect();
            let who: Vec<String> = chunk
                .iter()
                .map(|a| soql_string(&a.contact_record_id))
                .collect();
            let q = format!(
                "SELECT Id, WhoId, Subject FROM Task WHERE Subject IN ({}) AND WhoId IN ({}) \
                 ORDER BY Id",
                subjects.join(","),
                who.join(",")
            );
            let path = self.data_path("/query");
            let resp = self
                .client
                .send(&ApiRequest::get("task_query", &path).query("q", q))
                .await?;
            let r: QueryResponse = resp.json(&self.settings.name, "task_query")?;
            for a in chunk {
                let subject = task_subject(a);
                found.push(
                    r.records
                        .iter()
                        .find(|t| {
                            t.get("Subject").and_then(Value::as_str) == Some(subject.as_str())
                                && t.get("WhoId").and_then(Value::as_str)
                                    == Some(a.contact_record_id.as_str())
                        })
                        .and_then(|t| t.get("Id"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                );
            }
        }
        Ok(found)
    }

    async fn find_activity(&self, a: &ActivityInput) -> Result<Option<String>, ConnectorError> {
        let q = format!(
            "SELECT Id FROM Task WHERE WhoId = {} AND Subject = {} ORDER BY Id LIMIT 1",
            soql_string(&a.contact_record_id),
            soql_string(&task_subject(a))
        );
        let path = self.data_path("/query");
        let resp = self
            .client
            .send(&ApiRequest::get("task_query", &path).query("q", q))
            .await?;
        let r: QueryResponse = resp.json(&self.settings.name, "task_query")?;
        Ok(r.records
            .first()
            .and_then(|t| t.get("Id"))
            .and_then(Value::as_str)
            .map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_orders_by_stamp_then_id_and_floors_to_seconds() {
        let t = parse_crm_datetime("2024-05-01T10:11:12.345Z").unwrap();
        assert_eq!(
            SalesforceConnector::soql("Contact", &["Phone".into(), "Id".into(), "Account.Name".into()], Some(t)),
            "SELECT Id,SystemModstamp,Phone,Account.Name FROM Contact WHERE SystemModstamp >= 2024-05-01T10:11:12Z ORDER BY SystemModstamp, Id"
        );
    }

    fn saved(value: serde_json::Value) -> WriteResult {
        save_result(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn errors_that_name_fields_refuse_only_those_fields() {
        let r = saved(json!({"success": false, "errors": [
            {"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address: x",
             "fields": ["Email"]}]}));
        assert_eq!(
            r,
            WriteResult::FieldsRejected {
                fields: vec![RejectedField {
                    field: "Email".into(),
                    code: "INVALID_EMAIL_ADDRESS".into(),
                    message: "Email: invalid email address: x".into(),
                }]
            }
        );
        // About the record (`Id`), about nothing named, or transient: the whole record.
        for errors in [
            json!([{"statusCode": "MALFORMED_ID", "message": "m", "fields": ["Id"]}]),
            json!([{"statusCode": "ENTITY_IS_DELETED", "message": "m", "fields": []}]),
            json!([{"statusCode": "INVALID_EMAIL_ADDRESS", "message": "m", "fields": ["Email"]},
                   {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "m", "fields": []}]),
            json!([{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "m", "fields": ["Email"]}]),
        ] {
            let r = saved(json!({"success": false, "errors": errors}));
            assert!(matches!(r, WriteResult::Rejected { .. }), "{errors}: {r:?}");
        }
    }

    #[test]
    fn a_success_without_an_id_is_undecodable_not_written() {
        let results: Vec<SaveResult> = serde_json::from_value(json!([
            {"id": "003A", "success": true, "errors": []},
            {"success": true, "errors": []},
            {"id": null, "success": true, "errors": []},
            {"id": "", "success": true, "errors": []},
        ]))
        .unwrap();
        let r: Vec<WriteResult> = results.into_iter().map(save_result).collect();
        assert_eq!(r[0], WriteResult::Written { id: "003A".into() });
        for undecodable in &r[1..] {
            assert_eq!(
                undecodable,
                &WriteResult::Undecodable {
                    message: crate::connector::SUCCESS_WITHOUT_ID.into()
                }
            );
        }
    }

    #[test]
    fn lookup_queries_stay_short_and_cover_every_activity_once() {
        let call = |id: String| ActivityInput {
            conversation_id: id,
            kind: crate::connector::ActivityKind::Call,
            contact_record_id: "003000000000001AAA".into(),
            direction: None,
            from_number: None,
            to_number: None,
            start_time: None,
            end_time: None,
            duration_ms: None,
            summary: None,
            disconnection_reason: None,
            outcome: None,
        };
        let short: Vec<_> = (0..200).map(|i| call(format!("call_{i:020}"))).collect();
        let long: Vec<_> = (0..200)
            .map(|i| call(format!("{i}{}", "9".repeat(300))))
            .collect();
        for batch in [short, long] {
            let chunks = lookup_chunks(&batch);
            assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), batch.len());
            for chunk in &chunks {
                let chars: usize = chunk
                    .iter()
                    .map(|a| task_subject(a).len() + a.contact_record_id.len() + 8)
                    .sum();
                assert!(chunk.len() == 1 || chars <= FIND_ACTIVITIES_QUERY_CHARS);
            }
        }
        assert_eq!(lookup_chunks(&[]).len(), 0);
    }

    #[test]
    fn soql_strings_are_escaped() {
        assert_eq!(soql_string(r"O'Brien \ x"), r"'O\'Brien \\ x'");
    }

    #[test]
    fn call_task_has_the_designed_fields() {
        let a = ActivityInput {
            conversation_id: "c1".into(),
            kind: ActivityKind::Call,
            contact_record_id: "003A".into(),
            direction: Some("outbound".into()),
            from_number: Some("+14155550100".into()),
            to_number: Some("+14155550199".into()),
            start_time: None,
            end_time: parse_crm_datetime("2024-05-01T10:00:00Z"),
            duration_ms: Some(125_400),
            summary: Some("Wants a demo".into()),
            disconnection_reason: Some("user_hangup".into()),
            outcome: None,
        };
        let t = SalesforceConnector::task_of(&a);
        assert_eq!(t["WhoId"], "003A");
        assert_eq!(t["Subject"], "Call c1");
        assert_eq!(t["Status"], "Completed");
        assert_eq!(t["TaskSubtype"], "Call");
        assert_eq!(t["CallType"], "Outbound");
        assert_eq!(t["CallDurationInSeconds"], 126);
        assert_eq!(t["CallDisposition"], "Connected");
        assert_eq!(t["ActivityDate"], "2024-05-01");
        let d = t["Description"].as_str().unwrap();
        for part in [
            "c1",
            "+14155550100",
            "+14155550199",
            "user_hangup",
            "Wants a demo",
        ] {
            assert!(d.contains(part), "{d}");
        }
        let chat = SalesforceConnector::task_of(&ActivityInput {
            kind: ActivityKind::Chat,
            ..a.clone()
        });
        assert_eq!(chat["Subject"], "Chat c1");
        assert!(chat.get("TaskSubtype").is_none() && chat.get("CallType").is_none());
        assert!(chat.get("CallDisposition").is_none());

        let unanswered = SalesforceConnector::task_of(&ActivityInput {
            disconnection_reason: Some("dial_no_answer".into()),
            duration_ms: None,
            ..a
        });
        assert_eq!(unanswered["CallDisposition"], "No answer");
        let d = unanswered["Description"].as_str().unwrap();
        assert!(d.contains("Outcome: No answer"), "{d}");
    }

    #[test]
    fn per_record_errors_keep_the_crm_message() {
        let r: SaveResult = serde_json::from_str(
            r#"{"success":false,"errors":[{"statusCode":"MALFORMED_ID","message":"bad id","fields":["Id"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            save_result(r),
            WriteResult::Rejected {
                message: "MALFORMED_ID: bad id (fields: Id)".into(),
                permanent: true
            }
        );
    }
}
