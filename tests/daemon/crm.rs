//! A daemon whose backend is the real connector to a sandbox CRM holding one known contact, for
//! the tests that follow an event all the way to the CRM.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{example_rule_files, Setup, TestDaemon};
use crmsync::connector::config::{ConnectionSettings, Credentials};
use crmsync::connector::{AnyConnector, ConnectorKind};
use crmsync::daemon::backend::ConnectorBackend;
use crmsync::daemon::scheduler::SyncBackend;
use crmsync::sandbox::credentials::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
use crmsync::sandbox::hubspot::{HubSpotSandbox, HubSpotSandboxConfig};
use crmsync::sandbox::salesforce::{SalesforceSandbox, SalesforceSandboxConfig};

/// The example rules, with HubSpot logging chats too (the example logs its calls only).
pub fn rules_logging_hubspot_chats() -> crmsync::lang::Compiled {
    let files: Vec<(String, String)> = example_rule_files()
        .into_iter()
        .map(|(name, text)| {
            let text = if name.ends_with("hubspot.rules") {
                let logged = text.replace(
                    "activity { log calls }",
                    "activity {\n    log calls\n    log chats\n  }",
                );
                assert_ne!(logged, text, "hubspot.rules changed shape");
                logged
            } else {
                text
            };
            (name, text)
        })
        .collect();
    crmsync::lang::compile_sources(files).unwrap_or_else(|d| panic!("rules: {d:?}"))
}

fn backend(settings: ConnectionSettings) -> crate::harness::BackendFactory {
    Box::new(move |engine| {
        let connector = AnyConnector::new(settings).expect("connector");
        Arc::new(ConnectorBackend::new(engine, connector).expect("backend")) as Arc<dyn SyncBackend>
    })
}

/// A daemon synced with a HubSpot sandbox holding one contact with `phone`; returns the
/// contact's HubSpot id once the first sync linked it.
pub async fn hubspot_daemon(
    phone: &str,
    rules: Option<crmsync::lang::Compiled>,
) -> (TestDaemon, HubSpotSandbox, u64) {
    let sandbox = HubSpotSandbox::start(HubSpotSandboxConfig {
        contacts: 0,
        ..HubSpotSandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let id = sandbox
        .create_contact(&[
            ("phone", phone),
            ("firstname", "Lin"),
            ("lastname", "Okafor"),
        ])
        .expect("contact");
    let settings = ConnectionSettings::new(
        "hubspot",
        ConnectorKind::Hubspot,
        sandbox.base_url(),
        Credentials::Bearer(sandbox.token().to_string()),
    );
    let t = TestDaemon::start_with(Setup {
        active: Some("hubspot"),
        backend: Some(backend(settings)),
        dispatch_interval: Duration::from_millis(100),
        rules,
        ..Setup::default()
    })
    .await;
    wait_for_first_sync(&t).await;
    assert_eq!(
        contact(&t, phone).await["links"]["hubspot"],
        id.to_string(),
        "the sync linked the contact"
    );
    (t, sandbox, id)
}

/// The same with a Salesforce sandbox; returns the contact's Salesforce id.
pub async fn salesforce_daemon(phone: &str) -> (TestDaemon, SalesforceSandbox, String) {
    let sandbox = SalesforceSandbox::start(SalesforceSandboxConfig {
        contacts: 0,
        ..SalesforceSandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let id = sandbox
        .create_contact(json!({"FirstName": "Lin", "LastName": "Okafor", "Phone": phone}))
        .expect("contact");
    let settings = ConnectionSettings::new(
        "salesforce",
        ConnectorKind::Salesforce,
        sandbox.login_url(),
        Credentials::ClientCredentials {
            client_id: SALESFORCE_CLIENT_ID.to_string(),
            client_secret: SALESFORCE_CLIENT_SECRET.to_string(),
        },
    );
    let t = TestDaemon::start_with(Setup {
        active: Some("salesforce"),
        backend: Some(backend(settings)),
        dispatch_interval: Duration::from_millis(100),
        ..Setup::default()
    })
    .await;
    wait_for_first_sync(&t).await;
    assert_eq!(contact(&t, phone).await["links"]["salesforce"], id.as_str());
    (t, sandbox, id)
}

/// The first scheduled sync starts at once; waits until it has finished without error.
async fn wait_for_first_sync(t: &TestDaemon) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status: Value = t
            .v1(Method::GET, "/v1/sync")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["runs"].as_u64() >= Some(1) && status["state"] == "idle" {
            assert_eq!(status["last_error"], Value::Null, "{status}");
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no sync: {status}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `GET /v1/contacts/{phone}`.
pub async fn contact(t: &TestDaemon, phone: &str) -> Value {
    t.v1(Method::GET, &format!("/v1/contacts/{phone}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// POSTs a signed Retell body to `path`; asserts 200 and returns the answer.
pub async fn post_signed(t: &TestDaemon, path: &str, body: &Value) -> Value {
    let response = t.signed(path, &body.to_string()).send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    answer
}
