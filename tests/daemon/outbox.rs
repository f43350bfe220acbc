//! The outbox through the daemon: deferred entries in `GET /v1/outbox` and `/metrics` while the
//! CRM throttles; dead letters retried and discarded over HTTP against the Salesforce sandbox.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{eventually, Setup, TestDaemon};
use crmsync::connector::config::{ConnectionSettings, Credentials};
use crmsync::connector::{AnyConnector, ConnectorKind};
use crmsync::daemon::backend::ConnectorBackend;
use crmsync::daemon::scheduler::SyncBackend;
use crmsync::sandbox::credentials::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
use crmsync::sandbox::salesforce::{SalesforceSandbox, SalesforceSandboxConfig};

async fn daemon() -> (TestDaemon, Arc<SalesforceSandbox>) {
    let sandbox = Arc::new(
        SalesforceSandbox::start(SalesforceSandboxConfig {
            contacts: 5,
            ..SalesforceSandboxConfig::default()
        })
        .await
        .expect("sandbox"),
    );
    let login = sandbox.login_url();
    let t = TestDaemon::start_with(Setup {
        backend: Some(Box::new(move |engine| {
            let mut settings = ConnectionSettings::new(
                "salesforce",
                ConnectorKind::Salesforce,
                login,
                Credentials::ClientCredentials {
                    client_id: SALESFORCE_CLIENT_ID.to_string(),
                    client_secret: SALESFORCE_CLIENT_SECRET.to_string(),
                },
            );
            settings.retry.max_attempts = 1;
            let connector = AnyConnector::new(settings).expect("connector");
            Arc::new(ConnectorBackend::new(engine, connector).expect("backend"))
                as Arc<dyn SyncBackend>
        })),
        // Deferred entries are retried on this timer (nothing else wakes the dispatcher).
        dispatch_interval: Duration::from_millis(50),
        ..Setup::default()
    })
    .await;
    (t, sandbox)
}

async fn send(
    t: &TestDaemon,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = t.v1(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn outbox(t: &TestDaemon) -> Value {
    let (status, body) = send(t, Method::GET, "/v1/outbox", None).await;
    assert_eq!(status, StatusCode::OK);
    body
}

/// Sets the linked contact's notes through the API (which wakes the dispatcher).
async fn set_notes(t: &TestDaemon, phone: &str, notes: &str) {
    let (status, body) = send(
        t,
        Method::PATCH,
        &format!("/v1/contacts/{phone}"),
        Some(json!({"fields": {"interaction_summary": notes}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn until_outbox(t: &TestDaemon, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let view = outbox(t).await;
        if check(&view) {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {}",
            view["counts"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deferred_entries_show_and_dead_letters_are_retried_and_discarded_over_http() {
    let (t, sandbox) = daemon().await;
    let store = t.engine.store();
    assert!(
        eventually(Duration::from_secs(30), || store
            .contacts(None, 10)
            .unwrap()
            .iter()
            .any(|c| c.links.contains_key("salesforce")))
        .await
    );
    let who = store
        .contacts(None, 10)
        .unwrap()
        .into_iter()
        .find(|c| c.links.contains_key("salesforce"))
        .unwrap();
    let rid = who.links["salesforce"].clone();
    let notes_in_crm = || {
        sandbox
            .contact(&rid)
            .and_then(|c| c["Notes__c"].as_str().map(str::to_owned))
    };

    // Throttled: the write is deferred, with the CRM's message, in the API and the metrics.
    sandbox.faults().update(|f| f.throttle_fraction = 1.0);
    set_notes(&t, &who.phone, "while throttled").await;
    let view = until_outbox(&t, "deferred", |v| v["counts"]["deferred_writes"] == 1).await;
    let deferred = &view["deferred"]["writes"][0];
    assert!(
        deferred["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("REQUEST_LIMIT_EXCEEDED")),
        "{view}"
    );
    assert!(deferred["next_attempt_at"].is_string(), "{view}");
    assert_eq!(view["counts"]["dead_letters"], 0, "{view}");
    let text = t.metrics().await;
    assert!(
        text.lines()
            .any(|l| l == "crmsync_outbox_deferred{kind=\"write\"} 1"),
        "{text}"
    );
    sandbox.faults().clear();

    // Refused for good (over the 32 768 characters of Notes__c): a dead letter.
    set_notes(&t, &who.phone, &"x".repeat(40_000)).await;
    let view = until_outbox(&t, "dead letter", |v| v["counts"]["dead_letters"] == 1).await;
    let id = view["dead_letters"][0]["id"].as_u64().unwrap();
    assert_eq!(view["dead_letters"][0]["field"], "Notes__c", "{view}");

    // Fixed in crmsync, then retried: the current value goes.
    set_notes(&t, &who.phone, "fixed").await;
    until_outbox(&t, "drained", |v| v["counts"]["pending_writes"] == 0).await;
    let (status, body) = send(
        &t,
        Method::POST,
        &format!("/v1/outbox/dead-letters/{id}/retry"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["retried"]["queued"], json!(["Notes__c"]), "{body}");
    until_outbox(&t, "retried and sent", |v| {
        v["counts"]["pending_writes"] == 0 && v["counts"]["dead_letters"] == 0
    })
    .await;
    assert_eq!(notes_in_crm().as_deref(), Some("fixed"));
    let (status, body) = send(
        &t,
        Method::POST,
        &format!("/v1/outbox/dead-letters/{id}/retry"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "already_resolved");
    let (status, _) = send(&t, Method::POST, "/v1/outbox/dead-letters/999/retry", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = send(&t, Method::POST, "/v1/outbox/dead-letters/x/retry", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Another refusal, discarded with a reason.
    set_notes(&t, &who.phone, &"y".repeat(40_000)).await;
    let view = until_outbox(&t, "second dead letter", |v| {
        v["counts"]["dead_letters"] == 1
    })
    .await;
    let id = view["dead_letters"][0]["id"].as_u64().unwrap();
    let path = format!("/v1/outbox/dead-letters/{id}/discard");
    let (status, body) = send(&t, Method::POST, &path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = send(&t, Method::POST, &path, Some(json!({"reason": " "}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = send(
        &t,
        Method::POST,
        &path,
        Some(json!({"reason": "too long for Salesforce; shortened by hand"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["discarded"]["resolution"]["reason"],
        "too long for Salesforce; shortened by hand"
    );
    assert_eq!(outbox(&t).await["counts"]["dead_letters"], 0);
    let (status, body) = send(&t, Method::POST, "/v1/outbox/dead-letters/retry-all", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"retried": [], "refused": []}));
    let (status, _) = t
        .http
        .post(t.url("/v1/outbox/dead-letters/retry-all"))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "behind the bearer token");
}
