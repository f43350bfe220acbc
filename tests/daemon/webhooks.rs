//! `POST /webhooks/retell` and `POST /webhooks/retell/inbound`: signatures, event types,
//! idempotence, and dynamic variables for the caller.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{TestDaemon, RETELL_KEY};
use crmsync::daemon::signature::{now_ms, sign, TOLERANCE_MS};

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("examples/events/{name}")).expect("example event")
}

const CALLER: &str = "+14155550101";
const CALL_ID: &str = "call_7a9c2f1e04b34d55a0e1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_call_analyzed_is_applied_once() {
    let t = TestDaemon::start().await;
    let body = example("call_analyzed.json");

    let response = t.signed("/webhooks/retell", &body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["report"]["outcome"], "applied", "{answer}");
    assert_eq!(answer["report"]["phone"], CALLER);

    let contact = t
        .engine
        .store()
        .contact(CALLER)
        .unwrap()
        .expect("contact created");
    let fields = serde_json::to_value(&contact.fields).unwrap();
    assert_eq!(fields["email"]["v"], "ada@example.com", "{fields}");
    assert_eq!(fields["lead_status"]["v"], "qualified", "{fields}");
    assert!(t.engine.store().conversation_applied(CALL_ID).unwrap());

    // Retell redelivers: acknowledged, nothing changes.
    let again = t.signed("/webhooks/retell", &body).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let answer: Value = again.json().await.unwrap();
    assert_eq!(answer["report"]["outcome"], "already_applied", "{answer}");
    let after = t.engine.store().contact(CALLER).unwrap().unwrap();
    assert_eq!(after, contact);

    // The same contact through the HTTP API.
    let shown: Value = t
        .v1(reqwest::Method::GET, &format!("/v1/contacts/{CALLER}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["fields"]["email"], "ada@example.com");
    assert_eq!(
        shown["provenance"]["email"]["source"],
        format!("analysis:{CALL_ID}")
    );
    t.daemon.shutdown().await.unwrap();
}

/// Every refused request answers 401 and leaves the store exactly as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_stale_and_wrong_signatures_are_refused_and_apply_nothing() {
    let t = TestDaemon::start().await;
    let body = example("call_analyzed.json");
    let url = t.url("/webhooks/retell");
    let stale = sign(
        RETELL_KEY,
        body.as_bytes(),
        now_ms() - TOLERANCE_MS - 60_000,
    );
    let future = sign(
        RETELL_KEY,
        body.as_bytes(),
        now_ms() + TOLERANCE_MS + 60_000,
    );
    let wrong_key = sign("key_someone_else", body.as_bytes(), now_ms());
    let other_body = sign(RETELL_KEY, b"{\"event\":\"call_analyzed\"}", now_ms());
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("stale", Some(stale)),
        ("from the future", Some(future)),
        ("wrong key", Some(wrong_key)),
        ("signed for another body", Some(other_body)),
        ("malformed", Some("sha256=abcdef".to_string())),
    ];
    for (what, header) in cases {
        let mut request = t.http.post(&url).body(body.clone());
        if let Some(header) = header {
            request = request.header("x-retell-signature", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "unauthorized", "{what}");
    }
    assert_eq!(t.engine.store().contact_count().unwrap(), 0);
    assert!(!t.engine.store().conversation_applied(CALL_ID).unwrap());
    let metrics = t.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "crmsync_events_total{source=\"retell\",outcome=\"rejected\"} 6"),
        "{metrics}"
    );
    t.daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_event_types_are_acknowledged_and_ignored() {
    let t = TestDaemon::start().await;
    for event in [
        "call_started",
        "call_ended",
        "transcript_updated",
        "transfer_started",
    ] {
        let body = json!({
            "event": event,
            "call": {"call_id": "call_x", "call_type": "phone_call", "direction": "inbound",
                     "from_number": CALLER, "to_number": "+18885550100"}
        })
        .to_string();
        let response = t.signed("/webhooks/retell", &body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{event}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer, json!({"status": "ignored", "event": event}));
    }
    assert_eq!(t.engine.store().contact_count().unwrap(), 0);

    // A signed body that is not a usable event: 400, nothing applied.
    let response = t
        .signed(
            "/webhooks/retell",
            r#"{"event":"call_analyzed","call":{"direction":"inbound"}}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(t.engine.store().contact_count().unwrap(), 0);
    t.daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_analyzed_applies_to_the_dialed_number() {
    let t = TestDaemon::start().await;
    let response = t
        .signed("/webhooks/retell", &example("chat_analyzed.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["report"]["outcome"], "applied", "{answer}");
    // Outbound SMS chat: the contact is the number we wrote to.
    assert_eq!(answer["report"]["phone"], "+16465550144");
    t.daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbound_webhook_answers_the_callers_dynamic_variables() {
    let t = TestDaemon::start().await;
    let applied = t
        .signed("/webhooks/retell", &example("call_analyzed.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(applied.status(), StatusCode::OK);

    let inbound = json!({
        "event": "call_inbound",
        "call_inbound": {"agent_id": "agent_3f1d0c9b8a7e", "from_number": CALLER, "to_number": "+18885550100"}
    })
    .to_string();
    let response = t
        .signed("/webhooks/retell/inbound", &inbound)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    let vars = &answer["call_inbound"]["dynamic_variables"];
    assert_eq!(vars["phone_number"], CALLER, "{answer}");
    assert_eq!(vars["email"], "ada@example.com");
    assert_eq!(vars["lead_status"], "qualified");
    assert_eq!(vars["demo_requested"], "true");
    // Every value is a string, as Retell requires.
    assert!(
        vars.as_object().unwrap().values().all(Value::is_string),
        "{vars}"
    );

    // Unknown caller and withheld number: an empty answer, the call goes ahead.
    for from in ["+12125550199", "anonymous", ""] {
        let body = json!({"event": "call_inbound", "call_inbound": {"from_number": from, "to_number": "+18885550100"}}).to_string();
        let answer: Value = t
            .signed("/webhooks/retell/inbound", &body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer, json!({"call_inbound": {}}), "{from}");
    }

    // SMS: answered under the event's own key.
    let body = json!({"event": "chat_inbound", "chat_inbound": {"from_number": "(415) 555-0101", "to_number": "+18885550100"}}).to_string();
    let answer: Value = t
        .signed("/webhooks/retell/inbound", &body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["chat_inbound"]["dynamic_variables"]["email"],
        "ada@example.com"
    );

    // Contact data is only handed out to a signed request.
    let unsigned = t
        .http
        .post(t.url("/webhooks/retell/inbound"))
        .body(inbound)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    t.daemon.shutdown().await.unwrap();
}

/// A withheld or invalid caller number is a real call that no contact can take: answered 200
/// `no_number` with the reason, recorded (a redelivery is a duplicate) and counted, never 400
/// (which only makes Retell send it again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_or_invalid_caller_is_answered_no_number() {
    let t = TestDaemon::start().await;
    let mut answers = Vec::new();
    for (id, from) in [("call_anon", "anonymous"), ("call_bad", "12")] {
        let mut body: Value = serde_json::from_str(&example("call_analyzed.json")).unwrap();
        body["call"]["call_id"] = json!(id);
        body["call"]["from_number"] = json!(from);
        let body = body.to_string();
        let response = t.signed("/webhooks/retell", &body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{from}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["report"]["outcome"], "no_number", "{answer}");
        answers.push(answer["report"]["reason"].as_str().unwrap().to_string());
        assert!(t.engine.store().conversation_applied(id).unwrap(), "{id}");
        let again = t.signed("/webhooks/retell", &body).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::OK);
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["report"]["outcome"], "already_applied", "{again}");
    }
    assert_eq!(
        answers[0],
        "the caller's number is withheld (\"anonymous\")"
    );
    assert!(
        answers[1].starts_with("the caller's number is unusable: invalid phone number \"12\""),
        "{}",
        answers[1]
    );
    assert_eq!(t.engine.store().contact_count().unwrap(), 0);
    let metrics = t.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "crmsync_events_total{source=\"retell\",outcome=\"no_number\"} 2"),
        "{metrics}"
    );
    t.daemon.shutdown().await.unwrap();
}
