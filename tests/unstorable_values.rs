//! Values the store cannot hold are refused, naming the field, on every path that brings one
//! in: a manual edit, a generic conversation event, a Retell webhook, a CRM record. The store
//! keeps datetimes as nanoseconds since the epoch in an `i64` (1677-09-21 to 2262-04-11); a
//! datetime outside that range used to be written as 2262-04-11T23:47:16.854775807Z and handed
//! to the agent.

#[allow(dead_code)]
#[path = "daemon/harness.rs"]
mod harness;

use chrono::{TimeZone, Utc};
use crmsync::engine::Engine;
use crmsync::store::Store;
use crmsync::value::{Fields, Value};
use harness::TestDaemon;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value as Json};

/// Datetimes outside the storable range, as each notation writes them.
const FAR_TEXT: [&str; 2] = ["9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z"];
const FAR_EPOCH_MS: i64 = -99_999_999_999_999;

async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Json = response.json().await.unwrap();
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_edit_with_an_unstorable_datetime_is_a_400_naming_the_field() {
    let t = TestDaemon::start().await;
    let phone = "+12125550102";
    let mut values: Vec<Json> = FAR_TEXT.iter().map(|s| json!(s)).collect();
    values.push(json!(FAR_EPOCH_MS));
    values.push(json!(FAR_EPOCH_MS.to_string()));
    for value in values {
        let response = t
            .v1(Method::PATCH, &format!("/v1/contacts/{phone}"))
            .json(&json!({"fields": {"first_name": "Grace", "last_contacted_at": value}}))
            .send()
            .await
            .unwrap();
        let (status, message) = error_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{value}: {message}");
        assert!(message.contains("last_contacted_at"), "{value}: {message}");
        assert!(message.contains("2262-04-11"), "{value}: {message}");
    }
    // Nothing was written, not even the valid field beside it.
    assert_eq!(t.engine.store().contact(phone).unwrap(), None);

    // A typed value from a library caller meets the same check.
    let mut fields = Fields::new();
    fields.insert(
        "last_contacted_at".into(),
        Value::Datetime(Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()),
    );
    let err = t.engine.manual_set(phone, fields).unwrap_err().to_string();
    assert!(err.contains("last_contacted_at"), "{err}");
    assert_eq!(t.engine.store().contact(phone).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generic_event_with_an_unstorable_time_is_a_400_naming_the_field() {
    let t = TestDaemon::start().await;
    let mut cases: Vec<(&str, Json)> = FAR_TEXT.iter().map(|s| ("end_time", json!(s))).collect();
    cases.push(("end_time", json!(FAR_EPOCH_MS)));
    cases.push(("start_time", json!(FAR_EPOCH_MS)));
    for (field, value) in cases {
        let mut event = json!({
            "id": "conv-far", "kind": "call", "direction": "inbound",
            "from_number": "+14155550123", "to_number": "+18885550100",
            "successful": true, "analysis": {"customer_notes": "hello"}
        });
        event[field] = value.clone();
        let response = t
            .v1(Method::POST, "/v1/conversations")
            .json(&event)
            .send()
            .await
            .unwrap();
        let (status, message) = error_of(response).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{field} {value}: {message}"
        );
        assert!(message.contains(field), "{field} {value}: {message}");
        assert!(message.contains("2262-04-11"), "{field} {value}: {message}");
    }
    assert_eq!(t.engine.store().contact_count().unwrap(), 0);
}

fn retell_call(extra: Json) -> String {
    let mut call = json!({
        "call_id": "call_far", "call_type": "phone_call", "call_status": "ended",
        "direction": "inbound", "from_number": "+14155550123", "to_number": "+18885550100",
        "start_timestamp": 1_790_000_000_000_i64, "end_timestamp": 1_790_000_061_000_i64,
        "disconnection_reason": "user_hangup",
        "call_analysis": {"call_successful": true, "custom_analysis_data": {"customer_notes": "hi"}}
    });
    for (k, v) in extra.as_object().unwrap() {
        call[k] = v.clone();
    }
    json!({"event": "call_analyzed", "call": call}).to_string()
}

/// Retell's `duration_ms` of -1 or 1e308 was silently dropped (the call applied without a
/// duration) while the generic event answered 400: both are now a 400 naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retell_call_with_an_impossible_duration_or_time_is_a_400_naming_the_field() {
    let t = TestDaemon::start().await;
    for (extra, field) in [
        (json!({"duration_ms": -1}), "call.duration_ms"),
        (json!({"duration_ms": 1e308}), "call.duration_ms"),
        (json!({"duration_ms": 1.5}), "call.duration_ms"),
        (
            json!({"end_timestamp": 253_402_300_799_000_i64}),
            "call.end_timestamp",
        ),
        (
            json!({"start_timestamp": FAR_EPOCH_MS}),
            "call.start_timestamp",
        ),
    ] {
        let body = retell_call(extra.clone());
        let response = t.signed("/webhooks/retell", &body).send().await.unwrap();
        let (status, message) = error_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {message}");
        assert!(message.contains(field), "{extra}: {message}");
    }
    assert_eq!(t.engine.store().contact_count().unwrap(), 0);

    // The generic path agrees on the duration.
    for duration in [json!(-1), json!(1e308)] {
        let response = t
            .v1(Method::POST, "/v1/conversations")
            .json(&json!({"id": "g", "kind": "call", "direction": "inbound",
                           "from_number": "+14155550123", "duration_ms": duration}))
            .send()
            .await
            .unwrap();
        let (status, message) = error_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{duration}: {message}");
        assert!(message.contains("duration_ms"), "{duration}: {message}");
    }

    // A sane call still applies.
    let body = retell_call(json!({"duration_ms": 61_000}));
    let response = t.signed("/webhooks/retell", &body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(t.engine.store().contact_count().unwrap(), 1);
}

/// A CRM record whose datetime field is out of range: a field error for that record, the rest
/// of the record imported, nothing bent.
#[test]
fn a_crm_datetime_out_of_range_is_a_field_error_of_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s.redb")).unwrap();
    let compiled = crmsync::lang::compile_sources(vec![(
        "crm.rules".into(),
        "field last_contacted_at: datetime\n\
         connection salesforce {\n  inbound {\n    Phone -> phone_number\n    FirstName -> first_name\n    LastActivity__c -> last_contacted_at\n  }\n}\n"
            .into(),
    )])
    .unwrap();
    let engine = Engine::new(store, compiled, Some("salesforce")).unwrap();
    let records: Vec<Json> = [
        json!("9999-12-31T23:59:59Z"),
        json!("0000-01-01T00:00:00Z"),
        json!(FAR_EPOCH_MS),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, stamp)| {
        json!({"Id": format!("003SB000000000{i}AAA"), "Phone": format!("+1415555010{i}"),
               "SystemModstamp": "2026-11-20T10:00:00.000+0000",
               "FirstName": "Ada", "LastActivity__c": stamp})
    })
    .collect();
    let report = engine.import_page("salesforce", &records, None).unwrap();
    assert_eq!(report.created, 3, "{report:?}");
    assert_eq!(report.field_errors.len(), 3, "{report:?}");
    for e in &report.field_errors {
        assert_eq!(e.field, "last_contacted_at");
        assert!(e.reason.contains("2262-04-11"), "{e:?}");
    }
    for i in 0..3 {
        let c = engine
            .store()
            .contact(&format!("+1415555010{i}"))
            .unwrap()
            .unwrap();
        assert_eq!(c.fields["first_name"], Value::String("Ada".into()));
        assert!(!c.fields.contains_key("last_contacted_at"), "{c:?}");
    }
}
