//! `/v1/conversations` under concurrency, `PATCH /v1/contacts`, and `/v1/sync` with the real
//! connector against the Salesforce sandbox (activities and write-backs arrive in the CRM once).

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

/// 200 conversation events for 50 contacts (four each), posted all at once. Each must be applied
/// exactly once: `customer_notes` is a `merge` field, and without an LLM a merge keeps old and
/// new text, so every contact's summary must hold each of its four notes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conversation_posts_are_each_applied_exactly_once() {
    // Both ways of applying: batched by the group-commit writer, and one transaction each.
    for group_commit in [true, false] {
        concurrent_posts(Setup {
            group_commit,
            ..Setup::default()
        })
        .await;
    }
}

async fn concurrent_posts(setup: Setup) {
    let t = Arc::new(TestDaemon::start_with(setup).await);
    let phone = |contact: usize| format!("+1415555{:04}", 1000 + contact);
    let note = |contact: usize, n: usize| format!("note {n} for contact {contact}");
    let mut posts = Vec::new();
    for contact in 0..50 {
        for n in 0..4 {
            let event = json!({
                "id": format!("conv-{contact}-{n}"),
                "kind": "call",
                "direction": "inbound",
                "from_number": phone(contact),
                "to_number": "+18885550100",
                "end_time": format!("2026-11-21T10:{:02}:00Z", n),
                "successful": true,
                "analysis": {"customer_notes": note(contact, n), "demo_requested": n % 2 == 0}
            });
            let t = t.clone();
            posts.push(tokio::spawn(async move {
                t.v1(Method::POST, "/v1/conversations")
                    .json(&event)
                    .send()
                    .await
                    .map(|r| r.status())
            }));
        }
    }
    for post in futures::future::join_all(posts).await {
        assert_eq!(post.unwrap().unwrap(), StatusCode::OK);
    }

    assert_eq!(t.engine.store().contact_count().unwrap(), 50);
    for contact in 0..50 {
        let record = t.engine.store().contact(&phone(contact)).unwrap().unwrap();
        let summary = match record.fields.get("interaction_summary") {
            Some(crmsync::value::Value::String(s)) => s.clone(),
            other => panic!("contact {contact}: summary {other:?}"),
        };
        for n in 0..4 {
            assert_eq!(
                summary.matches(&note(contact, n)).count(),
                1,
                "contact {contact}: {summary:?}"
            );
        }
    }

    // Redelivering all 200: every one is a duplicate, nothing changes.
    let before: Vec<_> = (0..50)
        .map(|c| t.engine.store().contact(&phone(c)).unwrap())
        .collect();
    for contact in 0..50 {
        for n in 0..4 {
            let answer: Value = t
                .v1(Method::POST, "/v1/conversations")
                .json(&json!({"id": format!("conv-{contact}-{n}"), "kind": "call",
                              "direction": "inbound", "from_number": phone(contact),
                              "analysis": {"customer_notes": "again"}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(answer["report"]["outcome"], "already_applied");
        }
    }
    let after: Vec<_> = (0..50)
        .map(|c| t.engine.store().contact(&phone(c)).unwrap())
        .collect();
    assert_eq!(before, after);

    let metrics = t.metrics().await;
    for line in [
        "crmsync_events_total{source=\"api\",outcome=\"applied\"} 200",
        "crmsync_events_total{source=\"api\",outcome=\"duplicate\"} 200",
        "crmsync_contacts 50",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_conversation_bodies_name_the_problem() {
    let t = TestDaemon::start().await;
    let cases = [
        ("not json", "not JSON"),
        (
            r#"{"id": "c1", "kind": "fax", "direction": "inbound"}"#,
            "kind",
        ),
    ];
    for (body, mentions) in cases {
        let response = t
            .v1(Method::POST, "/v1/conversations")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = response.json().await.unwrap();
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{body}: {message}");
    }
    // A number that is no phone number is not a bad body: the conversation happened, and no
    // contact can take it (answered `no_number`, naming the number).
    let answer: Value = t
        .v1(Method::POST, "/v1/conversations")
        .json(
            &json!({"id": "c1", "kind": "call", "direction": "inbound", "from_number": "call me"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["report"]["outcome"], "no_number", "{answer}");
    assert!(
        answer["report"]["reason"]
            .as_str()
            .unwrap()
            .contains("call me"),
        "{answer}"
    );
    assert_eq!(t.engine.store().contact_count().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_validates_fields_and_writes_nothing_on_error() {
    let t = TestDaemon::start().await;
    let ok: Value = t
        .v1(Method::PATCH, "/v1/contacts/(212)%20555-0102")
        .json(&json!({"fields": {"first_name": "Grace", "deal_size": "1200.50", "demo_requested": "yes"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["contact"]["phone_number"], "+12125550102", "{ok}");
    assert_eq!(ok["contact"]["fields"]["deal_size"], 1200.5);
    assert_eq!(ok["contact"]["fields"]["demo_requested"], true);
    assert_eq!(
        ok["contact"]["provenance"]["first_name"]["source"],
        "manual"
    );

    for (fields, mentions) in [
        (
            json!({"first_name": "Ada", "lead_stat": "new"}),
            "did you mean `lead_status`",
        ),
        (
            json!({"first_name": "Ada", "renewal_date": "soon"}),
            "renewal_date",
        ),
        (json!({"phone_number": "+12125550103"}), "phone_number"),
        (json!({"lead_status": "maybe"}), "lead_status"),
    ] {
        let response = t
            .v1(Method::PATCH, "/v1/contacts/+12125550102")
            .json(&json!({ "fields": fields }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{fields}");
        let answer: Value = response.json().await.unwrap();
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{fields}: {message}");
    }
    let contact = t.engine.store().contact("+12125550102").unwrap().unwrap();
    assert_eq!(
        contact.fields.get("first_name"),
        Some(&crmsync::value::Value::String("Grace".to_string()))
    );
}

/// A Salesforce sandbox and a daemon whose backend is the real connector to it.
async fn daemon_with_salesforce(contacts: u32) -> (TestDaemon, Arc<SalesforceSandbox>) {
    let sandbox = Arc::new(
        SalesforceSandbox::start(SalesforceSandboxConfig {
            contacts,
            ..SalesforceSandboxConfig::default()
        })
        .await
        .expect("sandbox"),
    );
    let login = sandbox.login_url();
    let setup = Setup {
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
        // Short, so the test also covers the timer path of the dispatcher.
        dispatch_interval: Duration::from_millis(200),
        ..Setup::default()
    };
    (TestDaemon::start_with(setup).await, sandbox)
}

async fn sync_status(t: &TestDaemon) -> Value {
    t.v1(Method::GET, "/v1/sync")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until `runs` syncs have finished.
async fn wait_for_runs(t: &TestDaemon, runs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = sync_status(t).await;
        if status["runs"].as_u64() >= Some(runs) && status["state"] == "idle" {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sync did not finish: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_patch_and_webhook_reach_the_crm_once() {
    let (t, sandbox) = daemon_with_salesforce(60).await;

    // The first scheduled run starts at once and is a full import.
    let first = wait_for_runs(&t, 1).await;
    assert_eq!(first["full"], true, "{first}");
    assert_eq!(first["last_error"], Value::Null, "{first}");
    let read = first["last_report"]["read"].as_u64().unwrap();
    assert_eq!(read, 60);
    assert_eq!(
        first["succeeded"].as_u64().unwrap() + first["failed"].as_u64().unwrap(),
        read,
        "{first}"
    );

    // A manual run is full; a second trigger while it is queued or running is refused.
    let started = t.v1(Method::POST, "/v1/sync").send().await.unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let again = t.v1(Method::POST, "/v1/sync").send().await.unwrap();
    if again.status() != StatusCode::ACCEPTED {
        assert_eq!(again.status(), StatusCode::CONFLICT);
    }
    let second = wait_for_runs(&t, 2).await;
    assert_eq!(second["trigger"], "manual");
    assert_eq!(second["full"], true);

    // Pick a contact imported from the sandbox.
    let list: Value = t
        .v1(Method::GET, "/v1/contacts?limit=1000")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let contact = list["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["links"]["salesforce"].is_string())
        .expect("a linked contact")
        .clone();
    let phone = contact["phone_number"].as_str().unwrap().to_string();
    let record_id = contact["links"]["salesforce"].as_str().unwrap().to_string();

    // A manual edit is pushed back like any non-inbound change.
    let patched = t
        .v1(Method::PATCH, &format!("/v1/contacts/{phone}"))
        .json(&json!({"fields": {"lead_status": "qualified"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let pushed = eventually(Duration::from_secs(20), || {
        sandbox
            .contact(&record_id)
            .is_some_and(|c| c["Lead_Status__c"] == "Closed - Converted")
    })
    .await;
    assert!(pushed, "{:?}", sandbox.contact(&record_id));

    // A call with that contact, delivered twice: one Task in Salesforce.
    let body = json!({
        "event": "call_analyzed",
        "call": {
            "call_id": "call_daemon_test_1", "call_type": "phone_call", "direction": "inbound",
            "from_number": phone, "to_number": "+18885550100",
            "start_timestamp": 1763715600000_i64, "end_timestamp": 1763715660000_i64,
            "disconnection_reason": "user_hangup",
            "call_analysis": {"call_summary": "Asked about pricing.", "call_successful": true,
                              "custom_analysis_data": {"customer_notes": "Pricing question."}}
        }
    })
    .to_string();
    for _ in 0..2 {
        let response = t.signed("/webhooks/retell", &body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let logged = eventually(Duration::from_secs(20), || {
        sandbox.tasks_for(&record_id).len() == 1
            && t.engine.store().outbox_counts().unwrap().pending_activities == 0
    })
    .await;
    assert!(logged, "{:?}", sandbox.tasks_for(&record_id));
    let task = &sandbox.tasks_for(&record_id)[0];
    assert_eq!(task["Subject"], "Call call_daemon_test_1");
    assert_eq!(task["Status"], "Completed");

    let metrics = t.metrics().await;
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "crmsync_crm_requests_total{connection=\"salesforce\",endpoint=\"query\"}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l == "crmsync_sync_runs_total{connection=\"salesforce\",trigger=\"manual\",result=\"ok\"} 1"),
        "{metrics}"
    );
    t.daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_without_an_active_connection_is_a_clear_400() {
    let t = TestDaemon::start_with(Setup {
        active: None,
        ..Setup::default()
    })
    .await;
    let response = t.v1(Method::POST, "/v1/sync").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "no_active_connection");
    let status = sync_status(&t).await;
    assert_eq!(status["state"], "idle");
    assert_eq!(status["connection"], Value::Null);
}

/// A manual edit of a field only inbound sync writes (and no outbound mapping reads) is kept
/// but answered with a warning naming the owner; an edit that is sent to the CRM is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_warns_when_a_crm_owns_the_field() {
    let t = TestDaemon::start().await;
    let owned: Value = t
        .v1(Method::PATCH, "/v1/contacts/+12125550102")
        .json(&json!({"fields": {"first_name": "Grace", "lead_status": "working"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let warnings = owned["report"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{owned}");
    assert_eq!(warnings[0]["field"], "first_name");
    // Both example connections read `first_name` inbound (in rule-file order).
    let mut owners: Vec<&str> = warnings[0]["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    owners.sort_unstable();
    assert_eq!(owners, ["hubspot", "salesforce"]);
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("no outbound mapping sends it to the CRM"),
        "{owned}"
    );
    assert_eq!(owned["contact"]["fields"]["first_name"], "Grace");
    let sent: Value = t
        .v1(Method::PATCH, "/v1/contacts/+12125550102")
        .json(&json!({"fields": {"lead_status": "qualified"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(sent["report"].get("warnings").is_none(), "{sent}");
}

/// A contact the CRM refused a value for says so, until the next sync reads it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_out_of_step_with_the_crm_says_so() {
    let t = TestDaemon::start().await;
    let phone = "+12125550102";
    t.engine
        .store()
        .write(|tx| {
            let mut c = crmsync::store::ContactRecord::new(phone, chrono::Utc::now());
            c.out_of_step
                .entry("salesforce".into())
                .or_default()
                .insert(
                    "Email".into(),
                    crmsync::store::OutOfStep {
                        value: json!("not-an-email"),
                        message:
                            "INVALID_EMAIL_ADDRESS: Email: invalid email address: not-an-email"
                                .into(),
                        since: chrono::Utc::now(),
                    },
                );
            tx.put_contact(&c)
        })
        .unwrap();
    let shown: Value = t
        .v1(Method::GET, &format!("/v1/contacts/{phone}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let step = &shown["out_of_step"]["salesforce"]["Email"];
    assert_eq!(step["value"], "not-an-email", "{shown}");
    assert!(step["message"]
        .as_str()
        .unwrap()
        .contains("INVALID_EMAIL_ADDRESS"));
}

/// An outbound mapping that cannot compute its value is counted by `/metrics` (a dead letter),
/// while the conversation itself applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_value_that_cannot_be_computed_shows_in_metrics() {
    let mut files = Vec::new();
    for name in ["fields", "analysis", "salesforce", "hubspot"] {
        let text = std::fs::read_to_string(format!("rules/{name}.rules")).unwrap();
        let text = text.replace(
            "interaction_summary -> Notes__c",
            "interaction_summary -> Notes__c\n    to_number(interaction_summary) -> Score__c",
        );
        files.push((format!("{name}.rules"), text));
    }
    assert!(files[2].1.contains("Score__c"), "the example rules changed");
    let rules = crmsync::lang::compile_sources(files).expect("the rules compile");
    let t = TestDaemon::start_with(Setup {
        rules: Some(rules),
        ..Setup::default()
    })
    .await;
    let caller = "+14155550101";
    t.engine
        .import_page(
            "salesforce",
            &[json!({
                "attributes": {"type": "Contact"},
                "Id": "003A00000000000AAA", "Phone": caller, "LastName": "Lovelace",
                "SystemModstamp": "2026-11-20T10:00:00.000+0000"
            })],
            None,
        )
        .unwrap();
    let body = json!({
        "event": "call_analyzed",
        "call": {
            "call_type": "phone_call", "call_id": "call_metrics_1", "agent_id": "agent_1",
            "call_status": "ended", "direction": "inbound",
            "from_number": caller, "to_number": "+18885550100",
            "start_timestamp": 1795251600000_u64, "end_timestamp": 1795251795000_u64,
            "duration_ms": 195000, "disconnection_reason": "user_hangup",
            "call_analysis": {
                "call_summary": "Asked for a demo.", "call_successful": true,
                "custom_analysis_data": {"customer_notes": "Wants a demo."}
            }
        }
    })
    .to_string();
    let response = t.signed("/webhooks/retell", &body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["report"]["outcome"], "applied", "{answer}");
    let metrics = t.metrics().await;
    assert!(
        metrics.lines().any(|l| l == "crmsync_dead_letters 1"),
        "{metrics}"
    );
    let dead = t.engine.store().dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload["field"], "Score__c");
    t.daemon.shutdown().await.unwrap();
}
