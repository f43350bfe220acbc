//! A conflict decided by a scheduled sync, seen through the daemon: `GET /v1/conflicts`, the
//! sync status's `last_report` and the `crmsync_conflicts_total` counter of `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Setup, TestDaemon};
use crmsync::connector::config::{ConnectionSettings, Credentials};
use crmsync::connector::{AnyConnector, ConnectorKind};
use crmsync::daemon::backend::ConnectorBackend;
use crmsync::daemon::scheduler::SyncBackend;
use crmsync::sandbox::credentials::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
use crmsync::sandbox::salesforce::{SalesforceSandbox, SalesforceSandboxConfig};
use crmsync::value::{Fields, Value as FieldValue};

async fn get_json(t: &TestDaemon, path: &str) -> Value {
    let response = t.v1(Method::GET, path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// Waits until `runs` syncs have finished.
async fn wait_for_runs(t: &TestDaemon, runs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = get_json(t, "/v1/sync").await;
        if status["runs"].as_u64() >= Some(runs) && status["state"] == "idle" {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sync did not finish: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conflict_shows_in_the_api_the_sync_status_and_metrics() {
    let sandbox = Arc::new(
        SalesforceSandbox::start(SalesforceSandboxConfig {
            contacts: 30,
            ..SalesforceSandboxConfig::default()
        })
        .await
        .expect("sandbox"),
    );
    let login = sandbox.login_url();
    let t = TestDaemon::start_with(Setup {
        backend: Some(Box::new(move |engine| {
            let settings = ConnectionSettings::new(
                "salesforce",
                ConnectorKind::Salesforce,
                login,
                Credentials::ClientCredentials {
                    client_id: SALESFORCE_CLIENT_ID.to_string(),
                    client_secret: SALESFORCE_CLIENT_SECRET.to_string(),
                },
            );
            let connector = AnyConnector::new(settings).expect("connector");
            Arc::new(ConnectorBackend::new(engine, connector).expect("backend"))
                as Arc<dyn SyncBackend>
        })),
        ..Setup::default()
    })
    .await;
    wait_for_runs(&t, 1).await;
    let empty = get_json(&t, "/v1/conflicts").await;
    assert_eq!(empty, json!({"conflicts": [], "next": null}));

    // A local change (the dispatcher is not due for an hour: the write stays pending), then a
    // Salesforce user's edit of the same field a minute later.
    let store = t.engine.store();
    let who = store
        .contacts(None, 100)
        .unwrap()
        .into_iter()
        .find(|c| c.links.contains_key("salesforce"))
        .unwrap();
    let record_id = who.links["salesforce"].clone();
    let mut fields = Fields::new();
    fields.insert("lead_status".into(), FieldValue::Enum("working".into()));
    t.engine.manual_set(&who.phone, fields).unwrap();
    sandbox.advance_clock(Duration::from_secs(60));
    sandbox
        .edit_contact(&record_id, json!({"Lead_Status__c": "Closed - Converted"}))
        .unwrap();

    let started = t.v1(Method::POST, "/v1/sync").send().await.unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let status = wait_for_runs(&t, 2).await;
    let reported = status["last_report"]["conflicts"].as_array().unwrap();
    assert_eq!(reported.len(), 1, "{status}");

    let listed = get_json(&t, "/v1/conflicts").await;
    let conflicts = listed["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{listed}");
    let c = &conflicts[0];
    assert_eq!(c["phone"], who.phone);
    assert_eq!(c["record_id"], record_id);
    assert_eq!(c["crm_field"], "Lead_Status__c");
    assert_eq!(c["fields"], json!(["lead_status"]));
    assert_eq!(c["local_value"], "Working - Contacted");
    assert_eq!(c["crm_value"], "Closed - Converted");
    assert_eq!(c["winner"], "crm");
    assert_eq!(c["policy"], "latest_wins");
    assert!(c["local_at"].is_string() && c["crm_at"].is_string(), "{c}");
    assert_eq!(&reported[0], c);
    // Paging: nothing after the last id; a bad limit is a 400 naming it.
    let after = get_json(&t, &format!("/v1/conflicts?after={}", c["id"])).await;
    assert_eq!(after["conflicts"], json!([]));
    let bad = t
        .v1(Method::GET, "/v1/conflicts?limit=0")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // The contact took the CRM's value and nothing is left to send.
    assert_eq!(
        store.contact(&who.phone).unwrap().unwrap().fields["lead_status"],
        FieldValue::Enum("qualified".into())
    );
    assert_eq!(store.pending_writes(None).unwrap(), vec![]);

    let metrics = t.metrics().await;
    let line = "crmsync_conflicts_total{connection=\"salesforce\",winner=\"crm\"} 1";
    assert!(metrics.lines().any(|l| l == line), "{metrics}");
}
