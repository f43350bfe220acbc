//! The HubSpot CRM connector (crm_apis.md §1).
//!
//! - Auth: private-app bearer token.
//! - Full reads: `GET /crm/v3/objects/<object>` with `after` paging (≤ 100 per page).
//! - Incremental reads: search, `lastmodifieddate GTE since`, sorted ascending, 200 per page. The
//!   search API refuses to page past 10,000 results, so at the cap the read restarts from the
//!   newest timestamp seen (GTE keeps the ties; sync dedupes by re-applying, which is a no-op).
//! - Archived records: `GET ..?archived=true`, filtered by `archivedAt`.
//! - Writes: `batch/update`, ≤ 100 inputs, 207 partial errors mapped back to inputs.
//! - Activities: calls (`hs_call_*`, association 194) and communications (SMS channel,
//!   association 81) through `batch/create`; found again through the contact's v4 associations
//!   (consistent, unlike search, which lags).

mod wire;

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::client::{ApiClient, ApiRequest};
use super::config::ConnectionSettings;
use super::endpoint::segment;
use super::retry::classify_hubspot;
use super::{
    parse_crm_datetime, ActivityInput, ActivityKind, Connector, ConnectorError, CrmField,
    CrmRecord, DeletedRecord, MetricsSnapshot, Page, ReadPosition, RecordUpdate, Schema,
    WriteResult,
};
use crate::event::CallOutcome;
use wire::*;

/// The search API's hard limit on one query's results.
pub const SEARCH_RESULT_CAP: u64 = 10_000;
/// The search API's largest page.
const SEARCH_PAGE: u32 = 200;
/// The list API's largest page.
const LIST_PAGE: u32 = 100;
const CALL_TO_CONTACT: u32 = 194;
const COMMUNICATION_TO_CONTACT: u32 = 81;

#[derive(Debug)]
pub struct HubspotConnector {
    settings: ConnectionSettings,
    client: ApiClient,
}

/// The property holding an object's modification time.
fn modified_property(object: &str) -> &'static str {
    if object == "contacts" {
        "lastmodifieddate"
    } else {
        "hs_lastmodifieddate"
    }
}

/// HubSpot property values are strings; `""` clears a property.
fn as_property_value(v: &Value) -> Value {
    match v {
        Value::Null => Value::String(String::new()),
        Value::String(_) => v.clone(),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        other => Value::String(other.to_string()),
    }
}

fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl HubspotConnector {
    pub fn new(settings: ConnectionSettings) -> Result<Self, ConnectorError> {
        let client = ApiClient::new(&settings, classify_hubspot)?;
        Ok(HubspotConnector { settings, client })
    }

    fn decode_err(&self, endpoint: &'static str, message: impl Into<String>) -> ConnectorError {
        ConnectorError::Decode {
            connection: self.settings.name.clone(),
            endpoint,
            message: message.into(),
        }
    }

    fn record_of(&self, object: &str, raw: Value) -> Result<CrmRecord, ConnectorError> {
        // Whatever the `id` is, the record goes on to the import, which skips and reports one
        // whose id is not a HubSpot id: one bad record is not a failed sync.
        let id = raw.get("id").and_then(id_string).unwrap_or_default();
        let stamp = raw
            .get("properties")
            .and_then(|p| p.get(modified_property(object)))
            .and_then(Value::as_str)
            .or_else(|| raw.get("updatedAt").and_then(Value::as_str));
        let modified = stamp.and_then(parse_crm_datetime).ok_or_else(|| {
            self.decode_err(
                "contacts",
                format!("record {id}: no readable `{}`", modified_property(object)),
            )
        })?;
        Ok(CrmRecord { id, modified, raw })
    }

    fn properties_param(object: &str, fields: &[String]) -> Vec<String> {
        let mut props: Vec<String> = Vec::with_capacity(fields.len() + 2);
        for p in [modified_property(object), "hs_merged_object_ids"]
            .into_iter()
            .map(str::to_owned)
            .chain(
                fields
                    .iter()
                    .map(|f| f.split('.').next().unwrap_or(f).to_string()),
            )
        {
            if !props.contains(&p) {
                props.push(p);
            }
        }
        props
    }

    async fn read_list(
        &self,
        object: &str,
        fields: &[String],
        after: Option<&str>,
    ) -> Result<Page, ConnectorError> {
        let path = format!("/crm/v3/objects/{}", segment(object));
        let mut req = ApiRequest::get(endpoint_label(object, "list"), &path)
            .query("limit", self.settings.page_size.min(LIST_PAGE).to_string())
            .query(
                "properties",
                Self::properties_param(object, fields).join(","),
            );
        if let Some(a) = after {
            req = req.query("after", a);
        }
        let resp = self.client.send(&req).await?;
        let l: ListResponse = resp.json(&self.settings.name, req.endpoint)?;
        let records = l
            .results
            .into_iter()
            .map(|r| self.record_of(object, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            records,
            next: l.paging.and_then(|p| p.next).map(|n| ReadPosition {
                since: None,
                token: Some(n.after),
            }),
            total: l.total,
            ordered: false,
        })
    }

    async fn read_search(
        &self,
        object: &str,
        fields: &[String],
        since: DateTime<Utc>,
        after: Option<&str>,
    ) -> Result<Page, ConnectorError> {
        let modified = modified_property(object);
        let body = SearchRequest {
            filter_groups: vec![FilterGroup {
                filters: vec![Filter {
                    property_name: modified.into(),
                    operator: "GTE",
                    value: since.timestamp_millis().to_string(),
                }],
            }],
            sorts: vec![Sort {
                property_name: modified.into(),
                direction: "ASCENDING",
            }],
            properties: Self::properties_param(object, fields),
            limit: SEARCH_PAGE,
            after: after.map(str::to_owned),
        };
        let path = format!("/crm/v3/objects/{}/search", segment(object));
        let endpoint = endpoint_label(object, "search");
        // A search changes nothing: safe to retry.
        let req = ApiRequest::with_json(endpoint, Method::POST, &path, &body, true);
        let resp = self.client.send(&req).await?;
        let l: ListResponse = resp.json(&self.settings.name, endpoint)?;
        let records = l
            .results
            .into_iter()
            .map(|r| self.record_of(object, r))
            .collect::<Result<Vec<_>, _>>()?;
        let offset: u64 = after.and_then(|a| a.parse().ok()).unwrap_or(0);
        let read_to = offset + records.len() as u64;
        let next_offset = match l.paging.and_then(|p| p.next) {
            Some(n) => Some(n.after.parse::<u64>().map_err(|_| {
                self.decode_err(
                    endpoint,
                    format!("search `after` `{}` is not an offset", n.after),
                )
            })?),
            // Some servers stop offering a next page at the cap while `total` says more match.
            None if read_to >= SEARCH_RESULT_CAP && l.total.is_some_and(|t| t > read_to) => {
                Some(read_to)
            }
            None => None,
        };
        let next = match next_offset {
            None => None,
            Some(o) if o < SEARCH_RESULT_CAP => Some(ReadPosition {
                since: Some(since),
                token: Some(o.to_string()),
            }),
            Some(_) => {
                // The 10,000 cap: start a new query at the newest timestamp read (GTE keeps
                // the records that share it; re-applying them is a no-op).
                let newest = records.iter().map(|r| r.modified).max().unwrap_or(since);
                if newest <= since {
                    return Err(ConnectorError::Api {
                        connection: self.settings.name.clone(),
                        endpoint,
                        message: format!(
                            "more than {SEARCH_RESULT_CAP} records share {modified} {}; the search API cannot page past them",
                            since.to_rfc3339_opts(SecondsFormat::Millis, true)
                        ),
                    });
                }
                Some(ReadPosition {
                    since: Some(newest),
                    token: None,
                })
            }
        };
        Ok(Page {
            records,
            next,
            total: l.total,
            ordered: true,
        })
    }

    fn call_properties(a: &ActivityInput) -> Map<String, Value> {
        let mut p = Map::new();
        let ts = a.timestamp().unwrap_or_else(Utc::now);
        p.insert(
            "hs_timestamp".into(),
            json!(ts.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        match a.kind {
            ActivityKind::Call => {
                p.insert("hs_call_title".into(), json!(a.subject()));
                p.insert("hs_call_body".into(), json!(a.description()));
                p.insert(
                    "hs_call_status".into(),
                    json!(call_status(a.call_outcome())),
                );
                if let Some(ms) = a.duration_ms {
                    p.insert("hs_call_duration".into(), json!(ms.to_string()));
                }
                if let Some(d) = &a.direction {
                    let dir = if d.eq_ignore_ascii_case("outbound") {
                        "OUTBOUND"
                    } else {
                        "INBOUND"
                    };
                    p.insert("hs_call_direction".into(), json!(dir));
                }
                if let Some(f) = &a.from_number {
                    p.insert("hs_call_from_number".into(), json!(f));
                }
                if let Some(t) = &a.to_number {
                    p.insert("hs_call_to_number".into(), json!(t));
                }
            }
            ActivityKind::Chat => {
                p.insert("hs_communication_channel_type".into(), json!("SMS"));
                p.insert("hs_communication_logged_from".into(), json!("CRM"));
                p.insert("hs_communication_body".into(), json!(a.description()));
            }
        }
        p
    }

    /// Create one kind of activity (all calls or all chats) in one request.
    async fn create_of_kind(
        &self,
        kind: ActivityKind,
        batch: &[&ActivityInput],
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        let (object, type_id, endpoint) = match kind {
            ActivityKind::Call => ("calls", CALL_TO_CONTACT, "calls_batch_create"),
            ActivityKind::Chat => (
                "communications",
                COMMUNICATION_TO_CONTACT,
                "communications_batch_create",
            ),
        };
        let inputs = batch
            .iter()
            .map(|a| CreateInput {
                properties: Self::call_properties(a),
                associations: vec![AssociationInput {
                    to: AssociationTarget {
                        id: a.contact_record_id.clone(),
                    },
                    types: vec![AssociationType {
                        association_category: "HUBSPOT_DEFINED",
                        association_type_id: type_id,
                    }],
                }],
                // Makes HubSpot report per-input errors (207) and lets us match results.
                object_write_trace_id: a.conversation_id.clone(),
            })
            .collect();
        let path = format!("/crm/v3/objects/{}/batch/create", segment(object));
        let req = ApiRequest::with_json(
            endpoint,
            Method::POST,
            &path,
            &BatchInputs { inputs },
            false,
        );
        let resp = self.client.send(&req).await?;
        let b: BatchResponse = resp.json(&self.settings.name, endpoint)?;
        let keys: Vec<&str> = batch.iter().map(|a| a.conversation_id.as_str()).collect();
        Ok(match_results(
            &keys,
            &b,
            |r| r.get("objectWriteTraceId").and_then(id_string),
            |r| {
                // Without trace ids in the response, match calls by title.
                r.get("properties")
                    .and_then(|p| p.get("hs_call_title"))
                    .and_then(Value::as_str)
                    .and_then(|t| t.strip_prefix("Call "))
                    .map(str::to_owned)
            },
            batch.len(),
        ))
    }

    async fn associated_ids(&self, contact: &str, to: &str) -> Result<Vec<String>, ConnectorError> {
        // A link stored by an older crmsync may hold any id a CRM answered; only a HubSpot id
        // is looked up, and escaped as one segment anyway.
        if !crate::engine::is_record_id(crate::lang::eval::ConnectionKind::Hubspot, contact) {
            return Err(ConnectorError::Api {
                connection: self.settings.name.clone(),
                endpoint: "associations_read",
                message: format!("`{contact}` is not a HubSpot record id (digits)"),
            });
        }
        let path = format!(
            "/crm/v4/objects/contacts/{}/associations/{}",
            segment(contact),
            segment(to)
        );
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut req = ApiRequest::get("associations_read", &path).query("limit", "500");
            if let Some(a) = &after {
                req = req.query("after", a.clone());
            }
            let resp = self.client.send(&req).await?;
            let r: AssociationsResponse = resp.json(&self.settings.name, "associations_read")?;
            ids.extend(r.results.iter().filter_map(|a| id_string(&a.to_object_id)));
            match r.paging.and_then(|p| p.next) {
                Some(n) => after = Some(n.after),
                None => return Ok(ids),
            }
        }
    }
}

/// Map batch results and errors back onto inputs by key; anything unaccounted for is a
/// transient rejection (retried, then dead-lettered), never silently "written".
fn match_results(
    keys: &[&str],
    b: &BatchResponse,
    key_of: impl Fn(&Value) -> Option<String>,
    fallback_key_of: impl Fn(&Value) -> Option<String>,
    expected: usize,
) -> Vec<WriteResult> {
    // A result without an id is a success that names no record: undecodable, never "written".
    let written_as = |id: &Option<String>| match id {
        Some(id) => WriteResult::Written { id: id.clone() },
        None => WriteResult::Undecodable {
            message: super::SUCCESS_WITHOUT_ID.to_string(),
        },
    };
    let mut written: HashMap<String, Option<String>> = HashMap::new();
    let mut unkeyed: Vec<Option<String>> = Vec::new();
    for r in &b.results {
        let id = r
            .get("id")
            .and_then(id_string)
            .filter(|id| !id.trim().is_empty());
        match key_of(r).or_else(|| fallback_key_of(r)) {
            Some(k) => {
                written.insert(k, id);
            }
            None => unkeyed.push(id),
        }
    }
    // Results that carry no key at all: positional, only when nothing failed and counts agree.
    let positional = written.is_empty() && b.errors.is_empty() && unkeyed.len() == expected;
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            if positional {
                return written_as(&unkeyed[i]);
            }
            if let Some(id) = written.get(*k) {
                return written_as(id);
            }
            match b
                .errors
                .iter()
                .find(|e| e.context_values().iter().any(|v| v == k))
            {
                Some(e) => match e.rejected_properties() {
                    Some(fields) => WriteResult::FieldsRejected { fields },
                    None => WriteResult::Rejected {
                        message: format!("{}: {}", e.category, e.message),
                        permanent: !matches!(e.category.as_str(), "RATE_LIMITS" | "LOCKED"),
                    },
                },
                // A success the response could not tie to an input may be this one.
                None if !unkeyed.is_empty() => WriteResult::Undecodable {
                    message: super::SUCCESS_WITHOUT_ID.to_string(),
                },
                None => WriteResult::Rejected {
                    message: "the CRM's batch response does not mention this record".into(),
                    permanent: false,
                },
            }
        })
        .collect()
}

/// Counter labels: `contacts_list`, `contacts_search`, ...
fn endpoint_label(object: &str, op: &str) -> &'static str {
    match (object, op) {
        ("contacts", "list") => "contacts_list",
        ("contacts", "search") => "contacts_search",
        ("contacts", "archived") => "contacts_archived",
        ("contacts", "properties") => "contacts_properties",
        ("contacts", "batch_update") => "contacts_batch_update",
        ("contacts", "history") => "contacts_batch_read_history",
        (_, "history") => "objects_batch_read_history",
        (_, "list") => "objects_list",
        (_, "search") => "objects_search",
        (_, "archived") => "objects_archived",
        (_, "properties") => "objects_properties",
        _ => "objects_batch_update",
    }
}

impl Connector for HubspotConnector {
    fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    fn metrics(&self) -> MetricsSnapshot {
        self.client.metrics.snapshot()
    }

    async fn describe(&self, object: &str) -> Result<Schema, ConnectorError> {
        let path = format!("/crm/v3/properties/{}", segment(object));
        let endpoint = endpoint_label(object, "properties");
        let resp = self.client.send(&ApiRequest::get(endpoint, &path)).await?;
        let p: PropertiesResponse = resp.json(&self.settings.name, endpoint)?;
        let mut schema = Schema {
            object: object.to_string(),
            ..Schema::default()
        };
        for prop in p.results {
            let read_only = prop
                .modification_metadata
                .as_ref()
                .is_some_and(|m| m.read_only_value)
                || prop.calculated == Some(true);
            schema.fields.insert(
                prop.name.clone(),
                CrmField {
                    name: prop.name,
                    crm_type: prop.property_type,
                    updateable: !read_only,
                    options: prop.options.into_iter().map(|o| o.value).collect(),
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
        match pos.since {
            None => self.read_list(object, fields, pos.token.as_deref()).await,
            Some(since) => {
                self.read_search(object, fields, since, pos.token.as_deref())
                    .await
            }
        }
    }

    async fn read_deleted(
        &self,
        object: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DeletedRecord>, ConnectorError> {
        let path = format!("/crm/v3/objects/{}", segment(object));
        let endpoint = endpoint_label(object, "archived");
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut req = ApiRequest::get(endpoint, &path)
                .query("archived", "true")
                .query("limit", LIST_PAGE.to_string())
                .query("properties", modified_property(object));
            if let Some(a) = &after {
                req = req.query("after", a.clone());
            }
            let resp = self.client.send(&req).await?;
            let l: ListResponse = resp.json(&self.settings.name, endpoint)?;
            for r in &l.results {
                let Some(id) = r.get("id").and_then(id_string) else {
                    continue;
                };
                let at = r
                    .get("archivedAt")
                    .and_then(Value::as_str)
                    .and_then(parse_crm_datetime);
                // No archivedAt: we cannot tell when, so report it (unlinking twice is a no-op).
                if at.is_none_or(|t| t >= since) {
                    out.push(DeletedRecord { id, deleted_at: at });
                }
            }
            match l.paging.and_then(|p| p.next) {
                Some(n) => after = Some(n.after),
                None => return Ok(out),
            }
        }
    }

    async fn update_records(
        &self,
        object: &str,
        batch: &[RecordUpdate],
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let inputs = batch
            .iter()
            .map(|u| UpdateInput {
                id: u.record_id.clone(),
                properties: u
                    .fields
                    .iter()
                    .map(|(k, v)| (k.clone(), as_property_value(v)))
                    .collect(),
            })
            .collect();
        let path = format!("/crm/v3/objects/{}/batch/update", segment(object));
        let endpoint = endpoint_label(object, "batch_update");
        let req =
            ApiRequest::with_json(endpoint, Method::POST, &path, &BatchInputs { inputs }, true);
        let resp = self.client.send(&req).await?;
        let b: BatchResponse = resp.json(&self.settings.name, endpoint)?;
        let keys: Vec<&str> = batch.iter().map(|u| u.record_id.as_str()).collect();
        Ok(match_results(
            &keys,
            &b,
            |r| r.get("id").and_then(id_string),
            |_| None,
            batch.len(),
        ))
    }

    async fn create_activities(
        &self,
        batch: &[ActivityInput],
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        let calls: Vec<&ActivityInput> = batch
            .iter()
            .filter(|a| a.kind == ActivityKind::Call)
            .collect();
        let chats: Vec<&ActivityInput> = batch
            .iter()
            .filter(|a| a.kind == ActivityKind::Chat)
            .collect();
        let mut by_key: HashMap<(ActivityKind, String), WriteResult> = HashMap::new();
        for (kind, group) in [(ActivityKind::Call, calls), (ActivityKind::Chat, chats)] {
            if group.is_empty() {
                continue;
            }
            let results = self.create_of_kind(kind, &group).await?;
            for (a, r) in group.iter().zip(results) {
                by_key.insert((kind, a.conversation_id.clone()), r);
            }
        }
        Ok(batch
            .iter()
            .map(|a| {
                by_key
                    .remove(&(a.kind, a.conversation_id.clone()))
                    .unwrap_or(WriteResult::Rejected {
                        message: "duplicate conversation id in one batch".into(),
                        permanent: true,
                    })
            })
            .collect())
    }

    /// `POST /crm/v3/objects/{object}/batch/read` with `propertiesWithHistory`: each record's
    /// `propertiesWithHistory` object (per property, its versions newest first, each with
    /// `value` and `timestamp`). 50 ids per request: HubSpot halves its page limits when
    /// history is asked for.
    async fn read_property_history(
        &self,
        object: &str,
        ids: &[String],
        properties: &[String],
    ) -> Result<HashMap<String, Value>, ConnectorError> {
        let mut out = HashMap::new();
        if ids.is_empty() || properties.is_empty() {
            return Ok(out);
        }
        let endpoint = endpoint_label(object, "history");
        let path = format!("/crm/v3/objects/{}/batch/read", segment(object));
        for chunk in ids.chunks(50) {
            let body = BatchReadRequest {
                properties: Vec::new(),
                properties_with_history: properties.to_vec(),
                inputs: chunk.iter().map(|id| IdInput { id: id.clone() }).collect(),
            };
            // A read changes nothing: safe to retry.
            let req = ApiRequest::with_json(endpoint, Method::POST, &path, &body, true);
            let resp = self.client.send(&req).await?;
            let b: BatchResponse = resp.json(&self.settings.name, endpoint)?;
            for r in b.results {
                if let (Some(id), Some(history)) = (
                    r.get("id").and_then(id_string),
                    r.get("propertiesWithHistory"),
                ) {
                    out.insert(id, history.clone());
                }
            }
        }
        Ok(out)
    }

    async fn find_activity(&self, a: &ActivityInput) -> Result<Option<String>, ConnectorError> {
        let (object, property) = match a.kind {
            ActivityKind::Call => ("calls", "hs_call_title"),
            ActivityKind::Chat => ("communications", "hs_communication_body"),
        };
        let ids = self.associated_ids(&a.contact_record_id, object).await?;
        let wanted_title = a.subject();
        let wanted_body_head = a.description();
        let wanted_body_head = wanted_body_head.lines().next().unwrap_or_default();
        for chunk in ids.chunks(100) {
            let body = BatchReadRequest {
                properties: vec![property.to_string()],
                properties_with_history: Vec::new(),
                inputs: chunk.iter().map(|id| IdInput { id: id.clone() }).collect(),
            };
            let path = format!("/crm/v3/objects/{}/batch/read", segment(object));
            let req =
                ApiRequest::with_json("activities_batch_read", Method::POST, &path, &body, true);
            let resp = self.client.send(&req).await?;
            let b: BatchResponse = resp.json(&self.settings.name, "activities_batch_read")?;
            for r in &b.results {
                let value = r
                    .get("properties")
                    .and_then(|p| p.get(property))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let matches = match a.kind {
                    ActivityKind::Call => value == wanted_title,
                    ActivityKind::Chat => value.lines().next() == Some(wanted_body_head),
                };
                if matches {
                    return Ok(r.get("id").and_then(id_string));
                }
            }
        }
        Ok(None)
    }
}

/// A call's `hs_call_status`. A call that reached voicemail or a phone menu did take place, so it
/// is `COMPLETED` (its outcome is in the call notes); HubSpot's call outcomes
/// (`hs_call_disposition`) are ids each portal defines, so crmsync does not set them.
fn call_status(outcome: CallOutcome) -> &'static str {
    match outcome {
        CallOutcome::Connected | CallOutcome::Voicemail | CallOutcome::Ivr => "COMPLETED",
        CallOutcome::NoAnswer => "NO_ANSWER",
        CallOutcome::Busy => "BUSY",
        CallOutcome::Failed => "FAILED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_values_are_strings() {
        assert_eq!(as_property_value(&json!(12.5)), json!("12.5"));
        assert_eq!(as_property_value(&json!(true)), json!("true"));
        assert_eq!(as_property_value(&Value::Null), json!(""));
    }

    #[test]
    fn partial_batch_errors_map_back_to_inputs() {
        let b: BatchResponse = serde_json::from_value(json!({
            "status": "COMPLETE",
            "results": [{"id": "2", "properties": {}}],
            "numErrors": 1,
            "errors": [{"status": "error", "category": "VALIDATION_ERROR",
                        "message": "Property values were not valid", "context": {"ids": ["1"]}}]
        }))
        .unwrap();
        let r = match_results(
            &["1", "2", "3"],
            &b,
            |r| r.get("id").and_then(id_string),
            |_| None,
            3,
        );
        assert_eq!(
            r[0],
            WriteResult::Rejected {
                message: "VALIDATION_ERROR: Property values were not valid".into(),
                permanent: true
            }
        );
        assert_eq!(r[1], WriteResult::Written { id: "2".into() });
        assert!(matches!(
            r[2],
            WriteResult::Rejected {
                permanent: false,
                ..
            }
        ));
    }

    #[test]
    fn a_result_without_an_id_is_undecodable_not_written() {
        let undecodable = WriteResult::Undecodable {
            message: crate::connector::SUCCESS_WITHOUT_ID.into(),
        };
        // Positional (no key in any result): the id-less one is not "written".
        let b: BatchResponse = serde_json::from_value(json!({
            "status": "COMPLETE",
            "results": [{"id": "1", "properties": {}}, {"properties": {}}],
        }))
        .unwrap();
        let by_title = |r: &Value| {
            r.get("properties")
                .and_then(|p| p.get("hs_call_title"))
                .and_then(id_string)
        };
        let r = match_results(&["a", "b"], &b, by_title, |_| None, 2);
        assert_eq!(r[0], WriteResult::Written { id: "1".into() });
        assert_eq!(r[1], undecodable);
        // Keyed by id (updates): the record the id-less result may stand for is undecodable.
        let r = match_results(
            &["1", "2"],
            &b,
            |r| r.get("id").and_then(id_string),
            |_| None,
            2,
        );
        assert_eq!(r[0], WriteResult::Written { id: "1".into() });
        assert_eq!(r[1], undecodable);
        // Keyed by trace id, without an id.
        let b: BatchResponse = serde_json::from_value(json!({
            "status": "COMPLETE",
            "results": [{"objectWriteTraceId": "c1", "properties": {}}],
        }))
        .unwrap();
        let r = match_results(
            &["c1"],
            &b,
            |r| r.get("objectWriteTraceId").and_then(id_string),
            |_| None,
            1,
        );
        assert_eq!(r[0], undecodable);
    }

    #[test]
    fn call_properties_follow_the_contract() {
        let a = ActivityInput {
            conversation_id: "c9".into(),
            kind: ActivityKind::Call,
            contact_record_id: "501".into(),
            direction: Some("inbound".into()),
            from_number: Some("+14155550100".into()),
            to_number: None,
            start_time: None,
            end_time: parse_crm_datetime("2024-05-01T10:00:00Z"),
            duration_ms: Some(61_000),
            summary: None,
            disconnection_reason: None,
            outcome: None,
        };
        let p = HubspotConnector::call_properties(&a);
        assert_eq!(p["hs_call_status"], "COMPLETED");
        assert_eq!(p["hs_call_duration"], "61000");
        assert_eq!(p["hs_call_direction"], "INBOUND");
        assert_eq!(p["hs_call_title"], "Call c9");
        assert_eq!(p["hs_timestamp"], "2024-05-01T10:00:00.000Z");
        let chat = HubspotConnector::call_properties(&ActivityInput {
            kind: ActivityKind::Chat,
            ..a
        });
        assert_eq!(chat["hs_communication_channel_type"], "SMS");
        assert_eq!(chat["hs_communication_logged_from"], "CRM");
    }

    #[test]
    fn a_call_is_logged_with_the_status_of_what_happened() {
        let call = |reason: &str, outcome: Option<CallOutcome>| ActivityInput {
            conversation_id: "c9".into(),
            kind: ActivityKind::Call,
            contact_record_id: "501".into(),
            direction: Some("outbound".into()),
            from_number: None,
            to_number: None,
            start_time: None,
            end_time: None,
            duration_ms: None,
            summary: None,
            disconnection_reason: Some(reason.into()),
            outcome,
        };
        for (reason, outcome, status) in [
            ("dial_no_answer", None, "NO_ANSWER"),
            ("dial_busy", None, "BUSY"),
            ("user_declined", None, "BUSY"),
            ("dial_failed", None, "FAILED"),
            ("invalid_destination", None, "FAILED"),
            ("voicemail_reached", None, "COMPLETED"),
            ("user_hangup", None, "COMPLETED"),
            // The recorded outcome wins over the reason alone.
            (
                "a_reason_from_next_year",
                Some(CallOutcome::Failed),
                "FAILED",
            ),
        ] {
            let p = HubspotConnector::call_properties(&call(reason, outcome));
            assert_eq!(p["hs_call_status"], status, "{reason}");
        }
    }
}
