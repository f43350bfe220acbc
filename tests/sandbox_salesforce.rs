//! The Salesforce sandbox over real HTTP on 127.0.0.1: the wire contract the connector relies
//! on (crm_apis.md §2, §4), the test hooks, the fault knobs and the counters.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use crmsync::sandbox::credentials::{
    SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, SALESFORCE_REFRESH_TOKEN,
};
use crmsync::sandbox::salesforce::{SalesforceSandbox, SalesforceSandboxConfig};
use crmsync::sandbox::{FaultConfig, HoldWhen};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

async fn sandbox(contacts: u32, page_size: usize) -> SalesforceSandbox {
    SalesforceSandbox::start(SalesforceSandboxConfig {
        contacts,
        seed: 7,
        page_size,
        ..SalesforceSandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// A logged-in client: the token response's `instance_url` and access token.
struct Session {
    http: Client,
    instance_url: String,
    token: String,
}

impl Session {
    fn url(&self, path: &str) -> String {
        format!("{}/services/data/v62.0/{path}", self.instance_url)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request")
    }

    async fn query(&self, soql: &str) -> reqwest::Response {
        self.http
            .get(self.url("query"))
            .query(&[("q", soql)])
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request")
    }

    async fn query_ok(&self, soql: &str) -> Value {
        let response = self.query(soql).await;
        assert_eq!(response.status(), StatusCode::OK, "{soql}");
        response.json().await.expect("json")
    }

    /// Follow `nextRecordsUrl` to the end; returns every record and the number of pages.
    async fn query_all(&self, soql: &str) -> (Vec<Value>, usize) {
        let mut page = self.query_ok(soql).await;
        let mut records = Vec::new();
        let mut pages = 1;
        loop {
            records.extend(page["records"].as_array().cloned().unwrap_or_default());
            if page["done"] == json!(true) {
                assert!(page.get("nextRecordsUrl").is_none());
                return (records, pages);
            }
            let next = page["nextRecordsUrl"].as_str().expect("nextRecordsUrl");
            let response = self
                .http
                .get(format!("{}{next}", self.instance_url))
                .bearer_auth(&self.token)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), StatusCode::OK);
            page = response.json().await.expect("json");
            pages += 1;
        }
    }

    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }
}

async fn token_request(http: &Client, login_url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    http.post(format!("{login_url}/services/oauth2/token"))
        .form(form)
        .send()
        .await
        .expect("token request")
}

async fn login(sb: &SalesforceSandbox) -> Session {
    let http = Client::new();
    let response = token_request(
        &http,
        &sb.login_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SALESFORCE_CLIENT_ID),
            ("client_secret", SALESFORCE_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    Session {
        http,
        instance_url: body["instance_url"]
            .as_str()
            .expect("instance_url")
            .to_string(),
        token: body["access_token"].as_str().expect("token").to_string(),
    }
}

/// The single error of a Salesforce error array.
async fn error_of(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("error json");
    let items = body.as_array().expect("error bodies are arrays");
    assert_eq!(items.len(), 1, "{body}");
    (
        status,
        items[0]["errorCode"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        items[0]["message"].as_str().unwrap_or_default().to_string(),
    )
}

fn key(record: &Value) -> (String, String) {
    (
        record["SystemModstamp"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        record["Id"].as_str().unwrap_or_default().to_string(),
    )
}

/// Poll `condition` until it holds or `limit` passes.
async fn eventually(limit: Duration, mut condition: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

mod auth {
    use super::*;

    #[tokio::test]
    async fn client_credentials_give_an_instance_url_on_another_port() {
        let sb = sandbox(10, 2_000).await;
        let http = Client::new();
        let bad = token_request(
            &http,
            &sb.login_url(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", SALESFORCE_CLIENT_ID),
                ("client_secret", "wrong"),
            ],
        )
        .await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let body: Value = bad.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");

        let ok = token_request(
            &http,
            &sb.login_url(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", SALESFORCE_CLIENT_ID),
                ("client_secret", SALESFORCE_CLIENT_SECRET),
            ],
        )
        .await;
        let body: Value = ok.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("refresh_token").is_none());
        assert!(body.get("expires_in").is_none());
        assert!(body["issued_at"].as_str().unwrap().parse::<u64>().is_ok());
        assert!(!body["signature"].as_str().unwrap().is_empty());
        let instance = body["instance_url"].as_str().unwrap();
        assert_eq!(instance, sb.instance_url());
        assert_ne!(instance, sb.login_url());
        assert!(instance.starts_with("http://127.0.0.1:"));

        // The API is not served on the login host.
        let on_login = http
            .get(format!("{}/services/data/v62.0/limits", sb.login_url()))
            .bearer_auth(body["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(on_login.status(), StatusCode::NOT_FOUND);
        assert_eq!(sb.counters().get_status("sf.token", 400), 1);
        assert_eq!(sb.counters().get_status("sf.token", 200), 1);
    }

    #[tokio::test]
    async fn every_api_call_needs_a_bearer_token_and_carries_the_limit_header() {
        let sb = sandbox(10, 2_000).await;
        let session = login(&sb).await;
        let anonymous = session
            .http
            .get(session.url("limits"))
            .send()
            .await
            .unwrap();
        let (status, code, message) = error_of(anonymous).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(code, "INVALID_SESSION_ID");
        assert_eq!(message, "Session expired or invalid");

        let response = session.get("limits").await;
        assert_eq!(response.status(), StatusCode::OK);
        let header = response.headers()["sforce-limit-info"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(header, "api-usage=1/1000000");
        let second = session.get("limits").await;
        assert_eq!(
            second.headers()["sforce-limit-info"].to_str().unwrap(),
            "api-usage=2/1000000"
        );
    }

    #[tokio::test]
    async fn revoked_tokens_get_401_and_the_refresh_grant_gets_a_working_one() {
        let sb = sandbox(10, 2_000).await;
        let mut session = login(&sb).await;
        assert_eq!(session.get("limits").await.status(), StatusCode::OK);
        sb.revoke_tokens();
        let (status, code, _) = error_of(session.get("limits").await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID")
        );

        let bad = token_request(
            &session.http,
            &sb.login_url(),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", SALESFORCE_CLIENT_ID),
                ("refresh_token", "stale"),
            ],
        )
        .await;
        let body: Value = bad.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");

        let refreshed = token_request(
            &session.http,
            &sb.login_url(),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", SALESFORCE_CLIENT_ID),
                ("client_secret", SALESFORCE_CLIENT_SECRET),
                ("refresh_token", SALESFORCE_REFRESH_TOKEN),
            ],
        )
        .await;
        let body: Value = refreshed.json().await.unwrap();
        session.token = body["access_token"].as_str().unwrap().to_string();
        assert_eq!(session.get("limits").await.status(), StatusCode::OK);
        assert_eq!(sb.counters().get_status("sf.limits", 401), 1);
    }

    #[tokio::test]
    async fn tokens_expire_after_the_configured_lifetime() {
        let sb = sandbox(10, 2_000).await;
        sb.faults()
            .update(|f| f.token_lifetime = Some(Duration::from_millis(300)));
        let session = login(&sb).await;
        assert_eq!(session.get("limits").await.status(), StatusCode::OK);
        let expired = eventually(Duration::from_secs(5), async || {
            session.get("limits").await.status() == StatusCode::UNAUTHORIZED
        })
        .await;
        assert!(expired);
    }

    #[tokio::test]
    async fn the_daily_budget_ends_in_403_request_limit_exceeded() {
        let sb = sandbox(10, 2_000).await;
        sb.faults().update(|f| f.daily_api_limit = 50);
        sb.faults().set_api_usage(49);
        let session = login(&sb).await;
        let last = session.get("limits").await;
        assert_eq!(last.status(), StatusCode::OK);
        assert_eq!(last.headers()["sforce-limit-info"], "api-usage=50/50");
        let refused = session.get("limits").await;
        assert_eq!(refused.headers()["sforce-limit-info"], "api-usage=50/50");
        let (status, code, message) = error_of(refused).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(code, "REQUEST_LIMIT_EXCEEDED");
        assert_eq!(message, "TotalRequests Limit exceeded.");
    }
}

mod query {
    use super::*;

    #[tokio::test]
    async fn a_full_read_takes_ceil_n_over_page_size_pages_in_modstamp_id_order() {
        let sb = sandbox(4_500, 2_000).await;
        let session = login(&sb).await;
        let soql = "SELECT Id, FirstName, LastName, Phone, Email, Lead_Status__c, DoNotCall, \
                    AnnualRevenue, Renewal_Date__c, SystemModstamp FROM Contact \
                    ORDER BY SystemModstamp, Id";
        let first = session.query_ok(soql).await;
        assert_eq!(first["totalSize"], 4_500);
        assert_eq!(first["done"], false);
        let next = first["nextRecordsUrl"].as_str().unwrap();
        assert!(next.starts_with("/services/data/v62.0/query/01g"), "{next}");
        assert!(next.ends_with("-2000"), "{next}");
        let record = &first["records"][0];
        assert_eq!(record["attributes"]["type"], "Contact");
        assert_eq!(
            record["attributes"]["url"],
            format!(
                "/services/data/v62.0/sobjects/Contact/{}",
                record["Id"].as_str().unwrap()
            )
        );
        assert!(record["SystemModstamp"]
            .as_str()
            .unwrap()
            .ends_with(".000+0000"));
        assert_eq!(
            record.as_object().unwrap().len(),
            11,
            "attributes + the 10 selected"
        );

        let (records, pages) = session.query_all(soql).await;
        assert_eq!(pages, 3);
        assert_eq!(records.len(), 4_500);
        let ids: HashSet<&str> = records.iter().map(|r| r["Id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 4_500);
        let keys: Vec<(String, String)> = records.iter().map(key).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "strictly ordered");
        let ties = keys.windows(2).filter(|w| w[0].0 == w[1].0).count();
        assert!(ties > 1_000, "modstamp ties exist: {ties}");
        assert_eq!(sb.counters().get("sf.query"), 2);
        assert_eq!(sb.counters().get("sf.query_more"), 2);
    }

    #[tokio::test]
    async fn the_cursor_tiebreak_resumes_exactly_after_a_key() {
        let sb = sandbox(600, 2_000).await;
        let session = login(&sb).await;
        let (all, _) = session
            .query_all("SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id")
            .await;
        // A key in the middle of a tie group.
        let at = (1..all.len() - 1)
            .find(|&i| key(&all[i - 1]).0 == key(&all[i]).0 && key(&all[i]).0 == key(&all[i + 1]).0)
            .expect("a tie group of three");
        let (stamp, id) = key(&all[at]);
        let stamp_literal = stamp.replace(".000+0000", "Z");
        let resumed = session
            .query_all(&format!(
                "SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp > {stamp_literal} \
                 OR (SystemModstamp = {stamp} AND Id > '{id}') ORDER BY SystemModstamp, Id"
            ))
            .await
            .0;
        assert_eq!(resumed, all[at + 1..].to_vec());
        let overlap = session
            .query_all(&format!(
                "SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp >= {stamp_literal} \
                 ORDER BY SystemModstamp, Id"
            ))
            .await
            .0;
        let first_of_group = all.iter().position(|r| key(r).0 == stamp).unwrap();
        assert_eq!(overlap, all[first_of_group..].to_vec());
        let limited = session
            .query_ok(&format!(
                "SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp >= {stamp_literal} \
                 ORDER BY SystemModstamp, Id LIMIT 5"
            ))
            .await;
        assert_eq!(limited["totalSize"], 5);
        assert_eq!(limited["done"], true);
        assert_eq!(
            limited["records"].as_array().unwrap(),
            &all[first_of_group..first_of_group + 5]
        );
    }

    #[tokio::test]
    async fn pages_may_be_retried_and_batch_size_is_honoured() {
        let sb = sandbox(1_000, 2_000).await;
        let session = login(&sb).await;
        let response = session
            .http
            .get(session.url("query"))
            .query(&[("q", "SELECT Id FROM Contact")])
            .header("Sforce-Query-Options", "batchSize=300")
            .bearer_auth(&session.token)
            .send()
            .await
            .unwrap();
        let first: Value = response.json().await.unwrap();
        assert_eq!(first["records"].as_array().unwrap().len(), 300);
        let next = format!(
            "{}{}",
            session.instance_url,
            first["nextRecordsUrl"].as_str().unwrap()
        );
        let fetch = || async {
            session
                .http
                .get(&next)
                .header("Sforce-Query-Options", "batchSize=300")
                .bearer_auth(&session.token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        };
        let once = fetch().await;
        let again = fetch().await;
        assert_eq!(
            once, again,
            "a page can be fetched again after a lost response"
        );
        let bogus = session.get("query/01gSB9999999999999-300").await;
        let (status, code, _) = error_of(bogus).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR")
        );
    }

    #[tokio::test]
    async fn sorted_queries_page_too_and_count_matches_the_records() {
        let sb = sandbox(500, 200).await;
        let session = login(&sb).await;
        let (records, pages) = session
            .query_all("SELECT Id, LastName FROM Contact ORDER BY LastName, Id")
            .await;
        assert_eq!(pages, 3);
        assert_eq!(records.len(), 500);
        let keys: Vec<(String, String)> = records
            .iter()
            .map(|r| {
                (
                    r["LastName"].as_str().unwrap().to_lowercase(),
                    r["Id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let ids: HashSet<&str> = records.iter().map(|r| r["Id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 500);
    }

    #[tokio::test]
    async fn bad_queries_get_salesforce_error_arrays() {
        let sb = sandbox(10, 2_000).await;
        let session = login(&sb).await;
        let cases = [
            (
                "SELECT Id, Nickname__c FROM Contact",
                "INVALID_FIELD",
                "Nickname__c",
            ),
            (
                "SELECT Id FROM Contact WHERE SystemModstamp > '2025-01-01T00:00:00Z'",
                "INVALID_FIELD",
                "dateTime",
            ),
            (
                "SELECT Id FROM Contact ORDER BY",
                "MALFORMED_QUERY",
                "unexpected end",
            ),
            ("SELECT Id FROM Opportunity", "INVALID_TYPE", "Opportunity"),
        ];
        for (soql, expected_code, fragment) in cases {
            let (status, code, message) = error_of(session.query(soql).await).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{soql}");
            assert_eq!(code, expected_code, "{soql}");
            assert!(message.contains(fragment), "{soql}: {message}");
        }
        assert_eq!(sb.counters().get_status("sf.query", 400), 4);
    }

    #[tokio::test]
    async fn filters_on_other_fields_counts_and_sorting() {
        let sb = sandbox(300, 2_000).await;
        let session = login(&sb).await;
        let (all, _) = session
            .query_all("SELECT Id, LastName, DoNotCall, Lead_Status__c FROM Contact")
            .await;
        let dnc = all.iter().filter(|r| r["DoNotCall"] == json!(true)).count();
        let count = session
            .query_ok("SELECT COUNT() FROM Contact WHERE DoNotCall = true")
            .await;
        assert_eq!(count["totalSize"], dnc);
        assert_eq!(count["records"], json!([]));
        let working = all
            .iter()
            .filter(|r| r["Lead_Status__c"] == "Working - Contacted")
            .count();
        let (found, _) = session
            .query_all("SELECT Id FROM Contact WHERE Lead_Status__c = 'working - contacted'")
            .await;
        assert_eq!(found.len(), working, "text comparisons ignore case");
        let (sorted, _) = session
            .query_all("SELECT Id, LastName FROM Contact ORDER BY LastName DESC, Id")
            .await;
        let names: Vec<&str> = sorted
            .iter()
            .map(|r| r["LastName"].as_str().unwrap())
            .collect();
        let mut expected = names.clone();
        expected.sort_by_key(|name| std::cmp::Reverse(name.to_lowercase()));
        assert_eq!(names, expected);
    }
}

mod changes {
    use super::*;

    #[tokio::test]
    async fn crm_side_edits_move_a_contact_past_the_cursor_and_show_in_updated() {
        let sb = sandbox(50, 2_000).await;
        let session = login(&sb).await;
        let (before, _) = session
            .query_all("SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id")
            .await;
        let cursor = key(before.last().unwrap()).0.replace(".000+0000", "Z");
        let id = SalesforceSandbox::contact_id(3);
        let stamp = sb
            .edit_contact(
                &id,
                json!({"FirstName": "Renamed", "Lead_Status__c": "Closed - Converted"}),
            )
            .unwrap();
        assert!(stamp > chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap());
        let contact = sb.contact(&id).unwrap();
        assert_eq!(contact["FirstName"], "Renamed");

        let (changed, _) = session
            .query_all(&format!(
                "SELECT Id, FirstName FROM Contact WHERE SystemModstamp > {cursor} ORDER BY SystemModstamp, Id"
            ))
            .await;
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0]["Id"], id);
        assert_eq!(changed[0]["FirstName"], "Renamed");

        let bad = sb
            .edit_contact(&id, json!({"Lead_Status__c": "Perhaps"}))
            .unwrap_err();
        assert!(
            bad.to_string()
                .contains("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
            "{bad}"
        );

        // The org clock is the real time: a window around the edit, ending in the future.
        let rfc = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
        let window = |start: &str| {
            format!(
                "sobjects/Contact/updated/?start={}&end={}",
                urlencode(start),
                urlencode(&rfc(stamp + chrono::Duration::days(1)))
            )
        };
        let updated: Value = session
            .get(&window(&rfc(stamp - chrono::Duration::hours(1))))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(updated["ids"], json!([id]));
        // end is capped at the org clock: after the edit, not after the clock now.
        let covered = chrono::DateTime::parse_from_str(
            updated["latestDateCovered"].as_str().unwrap(),
            "%Y-%m-%dT%H:%M:%S%.3f%z",
        )
        .unwrap();
        assert!(covered >= stamp && covered <= sb.now(), "{covered}");
        let too_old = session
            .get(&window(&rfc(stamp - chrono::Duration::days(31))))
            .await;
        let (status, code, _) = error_of(too_old).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "INVALID_REPLICATION_DATE")
        );
    }

    #[tokio::test]
    async fn deleted_contacts_leave_queries_and_appear_in_deleted() {
        let sb = sandbox(20, 2_000).await;
        let session = login(&sb).await;
        let id = SalesforceSandbox::contact_id(5);
        let before = sb.now();
        sb.delete_contact(&id).unwrap();
        assert!(sb.contact(&id).is_none());
        assert_eq!(sb.contact_count(), 19);
        let (all, _) = session.query_all("SELECT Id FROM Contact").await;
        assert_eq!(all.len(), 19);
        assert!(all.iter().all(|r| r["Id"] != id));
        let deleted: Value = session
            .get(&format!(
                "sobjects/Contact/deleted/?start={}&end={}",
                urlencode(&(before - chrono::Duration::hours(1)).to_rfc3339()),
                urlencode(&(before + chrono::Duration::days(1)).to_rfc3339())
            ))
            .await
            .json()
            .await
            .unwrap();
        let records = deleted["deletedRecords"].as_array().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["id"], id);
        // The log reaches back 15 days from the org clock (the real time).
        let earliest = chrono::DateTime::parse_from_str(
            deleted["earliestDateAvailable"].as_str().unwrap(),
            "%Y-%m-%dT%H:%M:%S%.3f%z",
        )
        .unwrap();
        let fifteen_days = chrono::Duration::days(15);
        assert!(
            earliest >= before - fifteen_days && earliest <= sb.now() - fifteen_days,
            "{earliest}"
        );
        let gone = session.get(&format!("sobjects/Contact/{id}")).await;
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
        let created = sb
            .create_contact(json!({"LastName": "Newman", "Phone": "(415) 555-0100"}))
            .unwrap();
        let fetched: Value = session
            .get(&format!(
                "sobjects/Contact/{created}?fields=Id,LastName,Phone"
            ))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(fetched["LastName"], "Newman");
        assert_eq!(fetched["Phone"], "(415) 555-0100");
    }

    fn urlencode(text: &str) -> String {
        text.replace(':', "%3A").replace('+', "%2B")
    }
}

mod describe {
    use super::*;

    #[tokio::test]
    async fn describe_lists_types_and_picklists_and_honours_if_modified_since() {
        let sb = sandbox(1, 2_000).await;
        let session = login(&sb).await;
        let body: Value = session
            .get("sobjects/Contact/describe")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["name"], "Contact");
        assert_eq!(body["keyPrefix"], "003");
        let fields: BTreeMap<&str, &Value> = body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["name"].as_str().unwrap(), f))
            .collect();
        let types: Vec<(&str, &str)> = [
            "Id",
            "FirstName",
            "LastName",
            "Email",
            "Phone",
            "DoNotCall",
            "Lead_Status__c",
            "Notes__c",
            "Renewal_Date__c",
            "AnnualRevenue",
            "SystemModstamp",
            "LastModifiedDate",
        ]
        .iter()
        .map(|name| (*name, fields[name]["type"].as_str().unwrap()))
        .collect();
        assert_eq!(
            types,
            vec![
                ("Id", "id"),
                ("FirstName", "string"),
                ("LastName", "string"),
                ("Email", "email"),
                ("Phone", "phone"),
                ("DoNotCall", "boolean"),
                ("Lead_Status__c", "picklist"),
                ("Notes__c", "textarea"),
                ("Renewal_Date__c", "date"),
                ("AnnualRevenue", "currency"),
                ("SystemModstamp", "datetime"),
                ("LastModifiedDate", "datetime"),
            ]
        );
        let values: Vec<&str> = fields["Lead_Status__c"]["picklistValues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["value"].as_str().unwrap())
            .collect();
        assert_eq!(
            values,
            [
                "Open - Not Contacted",
                "Working - Contacted",
                "Closed - Converted",
                "Closed - Not Converted"
            ]
        );
        assert_eq!(fields["Lead_Status__c"]["custom"], true);
        assert_eq!(fields["SystemModstamp"]["updateable"], false);

        let task: Value = session
            .get("sobjects/Task/describe/")
            .await
            .json()
            .await
            .unwrap();
        let call_type = task["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "CallType")
            .unwrap();
        assert_eq!(call_type["picklistValues"].as_array().unwrap().len(), 3);

        let cached = session
            .http
            .get(session.url("sobjects/Contact/describe"))
            .header("If-Modified-Since", "Sun, 30 Nov 2025 08:34:54 GMT")
            .bearer_auth(&session.token)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        let unknown = session.get("sobjects/Widget__c/describe").await;
        assert_eq!(error_of(unknown).await.0, StatusCode::NOT_FOUND);
    }
}

mod writes {
    use super::*;

    fn update(id: &str, fields: Value) -> Value {
        let mut record = json!({"attributes": {"type": "Contact"}, "id": id});
        for (k, v) in fields.as_object().unwrap() {
            record[k] = v.clone();
        }
        record
    }

    #[tokio::test]
    async fn collections_report_per_record_errors_and_apply_the_rest_in_one_transaction() {
        let sb = sandbox(10, 2_000).await;
        let session = login(&sb).await;
        let ids: Vec<String> = (0..3).map(SalesforceSandbox::contact_id).collect();
        let body = json!({"allOrNone": false, "records": [
            update(&ids[0], json!({"Notes__c": "called twice"})),
            update(&ids[1], json!({"Lead_Status__c": "Maybe Later"})),
            update(&ids[2], json!({"Lead_Status__c": "Working - Contacted", "AnnualRevenue": 125000})),
            update("001SB0000000001AAA", json!({"Notes__c": "x"})),
        ]});
        let response = session
            .send_json(reqwest::Method::PATCH, "composite/sobjects", body)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let results: Value = response.json().await.unwrap();
        assert_eq!(
            results[0],
            json!({"id": ids[0], "success": true, "errors": []})
        );
        assert_eq!(results[1]["success"], false);
        assert_eq!(
            results[1]["errors"][0]["statusCode"],
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        );
        assert_eq!(results[1]["errors"][0]["fields"], json!(["Lead_Status__c"]));
        assert_eq!(results[2]["success"], true);
        assert_eq!(results[3]["errors"][0]["statusCode"], "MALFORMED_ID");

        let first = sb.contact(&ids[0]).unwrap();
        let third = sb.contact(&ids[2]).unwrap();
        assert_eq!(first["Notes__c"], "called twice");
        assert_eq!(third["AnnualRevenue"], 125000.0);
        assert_eq!(
            first["SystemModstamp"], third["SystemModstamp"],
            "one transaction, one stamp"
        );
        assert_ne!(
            sb.contact(&ids[1]).unwrap()["Lead_Status__c"],
            "Maybe Later"
        );
    }

    #[tokio::test]
    async fn all_or_none_rolls_everything_back_and_201_records_are_refused() {
        let sb = sandbox(300, 2_000).await;
        let session = login(&sb).await;
        let good = SalesforceSandbox::contact_id(0);
        let before = sb.contact(&good).unwrap();
        let body = json!({"allOrNone": true, "records": [
            update(&good, json!({"Notes__c": "should not stick"})),
            update(&SalesforceSandbox::contact_id(1), json!({"Email": "not-an-email"})),
        ]});
        let results: Value = session
            .send_json(reqwest::Method::PATCH, "composite/sobjects", body)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            results[0]["errors"][0]["statusCode"],
            "ALL_OR_NONE_OPERATION_ROLLED_BACK"
        );
        assert_eq!(
            results[1]["errors"][0]["statusCode"],
            "INVALID_EMAIL_ADDRESS"
        );
        assert_eq!(sb.contact(&good).unwrap(), before);

        let too_many: Vec<Value> = (0..201)
            .map(|i| update(&SalesforceSandbox::contact_id(i), json!({"Notes__c": "n"})))
            .collect();
        let response = session
            .send_json(
                reqwest::Method::PATCH,
                "composite/sobjects",
                json!({"allOrNone": false, "records": too_many}),
            )
            .await;
        let (status, code, _) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "EXCEEDED_ID_LIMIT")
        );
        assert_eq!(sb.contact(&good).unwrap(), before);
        assert_eq!(sb.counters().get("sf.collections_update"), 2);
    }

    #[tokio::test]
    async fn a_full_batch_of_long_notes_is_accepted() {
        let sb = sandbox(200, 2_000).await;
        let session = login(&sb).await;
        let notes = "n".repeat(20_000);
        let records: Vec<Value> = (0..200)
            .map(|i| {
                update(
                    &SalesforceSandbox::contact_id(i),
                    json!({"Notes__c": notes}),
                )
            })
            .collect();
        let response = session
            .send_json(
                reqwest::Method::PATCH,
                "composite/sobjects",
                json!({"allOrNone": true, "records": records}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let results: Vec<Value> = response.json().await.unwrap();
        assert!(results.iter().all(|r| r["success"] == true));
        assert_eq!(
            sb.contact(&SalesforceSandbox::contact_id(199)).unwrap()["Notes__c"]
                .as_str()
                .map(str::len),
            Some(20_000)
        );
    }

    #[tokio::test]
    async fn tasks_are_created_and_found_again_by_subject() {
        let sb = sandbox(5, 2_000).await;
        let session = login(&sb).await;
        let who = SalesforceSandbox::contact_id(2);
        let task = json!({
            "WhoId": who, "Subject": "Call call_8f2a", "Status": "Completed", "TaskSubtype": "Call",
            "CallType": "Inbound", "CallDurationInSeconds": 125, "Description": "Caller asked for a demo.",
            "ActivityDate": "2026-01-01",
        });
        let response = session
            .send_json(reqwest::Method::POST, "sobjects/Task", task)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["success"], true);
        let task_id = created["id"].as_str().unwrap().to_string();
        assert!(task_id.starts_with("00T"));

        let found = session
            .query_ok("SELECT Id, WhoId, Status, CallDurationInSeconds FROM Task WHERE Subject = 'Call call_8f2a'")
            .await;
        assert_eq!(found["totalSize"], 1);
        assert_eq!(found["records"][0]["Id"], task_id.as_str());
        assert_eq!(found["records"][0]["CallDurationInSeconds"], 125);
        let none = session
            .query_ok("SELECT Id FROM Task WHERE Subject = 'Call other'")
            .await;
        assert_eq!(none["totalSize"], 0);
        assert_eq!(sb.tasks_for(&who).len(), 1);
        assert_eq!(sb.tasks_for(&who)[0]["TaskSubtype"], "Call");

        let orphan =
            json!({"WhoId": "003SB9999999999AAA", "Subject": "Call x", "Status": "Completed"});
        let (status, code, _) = error_of(
            session
                .send_json(reqwest::Method::POST, "sobjects/Task", orphan)
                .await,
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "INVALID_CROSS_REFERENCE_KEY")
        );
        let bad_type = json!({"WhoId": who, "Subject": "Call y", "CallType": "Sideways"});
        let (_, code, _) = error_of(
            session
                .send_json(reqwest::Method::POST, "sobjects/Task", bad_type)
                .await,
        )
        .await;
        assert_eq!(code, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
        assert_eq!(sb.tasks().len(), 1);
    }
}

mod faults {
    use super::*;

    #[tokio::test]
    async fn injected_throttles_and_5xx_roughly_match_their_fractions() {
        let sb = SalesforceSandbox::start(SalesforceSandboxConfig {
            contacts: 10,
            faults: FaultConfig {
                throttle_fraction: 0.1,
                server_error_fraction: 0.2,
                seed: 3,
                ..FaultConfig::default()
            },
            ..SalesforceSandboxConfig::default()
        })
        .await
        .unwrap();
        let session = login(&sb).await;
        let mut statuses = BTreeMap::new();
        for _ in 0..400 {
            let response = session.get("limits").await;
            let status = response.status().as_u16();
            if status == 403 {
                let (_, code, message) = error_of(response).await;
                assert_eq!(code, "REQUEST_LIMIT_EXCEEDED");
                assert!(message.starts_with("ConcurrentPerOrgLongTxn"));
            } else if status >= 500 {
                let (_, code, _) = error_of(response).await;
                assert!(code == "SERVER_UNAVAILABLE" || code == "UNKNOWN_EXCEPTION");
            }
            *statuses.entry(status).or_insert(0u32) += 1;
        }
        let throttled = statuses.get(&403).copied().unwrap_or(0);
        let failed =
            statuses.get(&500).copied().unwrap_or(0) + statuses.get(&503).copied().unwrap_or(0);
        assert!((20..=65).contains(&throttled), "{statuses:?}");
        assert!((50..=115).contains(&failed), "{statuses:?}");
        assert_eq!(sb.counters().get("sf.limits"), 400);
        assert_eq!(
            u64::from(throttled),
            sb.counters().get_status("sf.limits", 403)
        );
        sb.faults().clear();
        assert_eq!(session.get("limits").await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_held_request_is_applied_although_the_client_times_out() {
        let sb = sandbox(5, 2_000).await;
        let session = login(&sb).await;
        let next = sb.faults().requests_seen() + 1;
        sb.faults().update(|f| {
            f.hold_requests.insert(next, HoldWhen::AfterProcessing);
            f.hold_duration = Duration::from_secs(3);
        });
        let who = SalesforceSandbox::contact_id(1);
        let outcome = session
            .http
            .post(session.url("sobjects/Task"))
            .bearer_auth(&session.token)
            .timeout(Duration::from_millis(300))
            .json(&json!({"WhoId": who, "Subject": "Call lost-response", "Status": "Completed"}))
            .send()
            .await;
        assert!(outcome.unwrap_err().is_timeout());
        let applied = eventually(Duration::from_secs(5), async || {
            sb.tasks_for(&who).len() == 1
        })
        .await;
        assert!(applied, "the write happened");
        let found = session
            .query_ok("SELECT Id FROM Task WHERE Subject = 'Call lost-response'")
            .await;
        assert_eq!(
            found["totalSize"], 1,
            "a client can look it up before resending"
        );
    }

    #[tokio::test]
    async fn a_request_held_before_processing_has_no_effect() {
        let sb = sandbox(5, 2_000).await;
        let session = login(&sb).await;
        let next = sb.faults().requests_seen() + 1;
        sb.faults().update(|f| {
            f.hold_requests.insert(next, HoldWhen::BeforeProcessing);
            f.hold_duration = Duration::from_millis(500);
        });
        let who = SalesforceSandbox::contact_id(1);
        let outcome = session
            .http
            .post(session.url("sobjects/Task"))
            .bearer_auth(&session.token)
            .timeout(Duration::from_millis(200))
            .json(&json!({"WhoId": who, "Subject": "Call never", "Status": "Completed"}))
            .send()
            .await;
        assert!(outcome.unwrap_err().is_timeout());
        // Held requests end in a 503 without being applied, whenever the hold ends.
        assert!(sb.tasks().is_empty());
    }

    #[tokio::test]
    async fn revoking_at_a_request_number_forces_a_401_there() {
        let sb = sandbox(5, 2_000).await;
        let session = login(&sb).await;
        let at = sb.faults().requests_seen() + 2;
        sb.faults()
            .update(|f| f.revoke_tokens_at_request = Some(at));
        assert_eq!(session.get("limits").await.status(), StatusCode::OK);
        assert_eq!(
            session.get("limits").await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(sb.counters().get_status("sf.limits", 401), 1);
    }
}

mod cli {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    #[tokio::test]
    async fn crmsync_sandbox_prints_urls_and_credentials_and_stops_on_sigterm() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crmsync"))
            .args(["--json", "sandbox", "--contacts", "50", "--seed", "3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn crmsync sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let banner = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await
        .unwrap()
        .expect("banner line");
        let banner: Value = serde_json::from_str(&banner).expect("banner is JSON");
        assert_eq!(banner["salesforce"]["client_id"], SALESFORCE_CLIENT_ID);
        assert_eq!(
            banner["salesforce"]["client_secret"],
            SALESFORCE_CLIENT_SECRET
        );
        assert_eq!(banner["hubspot"]["token"], "sandbox-token");
        let login_url = banner["salesforce"]["login_url"].as_str().unwrap();
        assert!(login_url.starts_with("http://127.0.0.1:"));
        assert!(banner["hubspot"]["base_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"));

        let http = Client::new();
        let token: Value = token_request(
            &http,
            login_url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", SALESFORCE_CLIENT_ID),
                ("client_secret", SALESFORCE_CLIENT_SECRET),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(token["instance_url"], banner["salesforce"]["instance_url"]);
        let session = Session {
            http,
            instance_url: token["instance_url"].as_str().unwrap().to_string(),
            token: token["access_token"].as_str().unwrap().to_string(),
        };
        let count = session.query_ok("SELECT COUNT() FROM Contact").await;
        assert_eq!(count["totalSize"], 50);

        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "crmsync sandbox did not stop on SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "{status}");
    }
}
