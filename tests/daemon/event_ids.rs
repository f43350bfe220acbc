//! An event without a usable id is refused on every route: the id is what makes a redelivery a
//! no-op, so a blank one would mark every later blank-id event "already applied".

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::TestDaemon;

const CALLER: &str = "+14155550123";

/// A Retell `call_analyzed` body for `CALLER` with this `call_id`.
fn call_analyzed(call_id: Value) -> String {
    json!({"event": "call_analyzed", "call": {
        "call_type": "phone_call", "call_id": call_id, "direction": "inbound",
        "from_number": CALLER, "to_number": "+18885550100",
        "call_analysis": {"custom_analysis_data": {"customer_notes": "blank id"}}}})
    .to_string()
}

/// A Retell `chat_analyzed` body whose number is in its metadata, with this `chat_id`.
fn chat_analyzed(chat_id: Value) -> String {
    json!({"event": "chat_analyzed", "chat": {
        "chat_id": chat_id, "chat_type": "api_chat", "metadata": {"customer_phone": CALLER},
        "chat_analysis": {"custom_analysis_data": {"customer_notes": "blank id"}}}})
    .to_string()
}

/// Asserts a 400 whose message names `field`.
async fn assert_refused(response: reqwest::Response, field: &str, what: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
    let answer: Value = response.json().await.unwrap();
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(field), "{what}: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_blank_event_id_is_a_400_naming_the_field() {
    let t = TestDaemon::start().await;
    let generic = |id: Option<&str>| {
        let mut event = json!({"kind": "call", "direction": "inbound", "from_number": CALLER,
                               "analysis": {"customer_notes": "blank id"}});
        if let Some(id) = id {
            event["id"] = json!(id);
        }
        event
    };
    for id in [None, Some(""), Some("   "), Some("\t\n")] {
        let response = t
            .v1(Method::POST, "/v1/conversations")
            .json(&generic(id))
            .send()
            .await
            .unwrap();
        assert_refused(response, "id", &format!("generic event, id {id:?}")).await;
    }
    for blank in [json!(""), json!("  "), json!(null)] {
        let call = call_analyzed(blank.clone());
        let chat = chat_analyzed(blank.clone());
        let response = t.signed("/webhooks/retell", &call).send().await.unwrap();
        assert_refused(
            response,
            "call.call_id",
            &format!("webhook call_id {blank}"),
        )
        .await;
        let response = t.signed("/webhooks/retell", &chat).send().await.unwrap();
        assert_refused(
            response,
            "chat.chat_id",
            &format!("webhook chat_id {blank}"),
        )
        .await;
        // Replayed through the generic route.
        for (body, field) in [(call, "call.call_id"), (chat, "chat.chat_id")] {
            let response = t
                .v1(Method::POST, "/v1/conversations")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_refused(response, field, &format!("replayed {field} {blank}")).await;
        }
    }
    // Nothing was recorded: neither the contact nor an applied id.
    let store = t.engine.store();
    assert_eq!(store.contact_count().unwrap(), 0);
    for id in ["", "   "] {
        assert!(!store.conversation_applied(id).unwrap(), "{id:?}");
    }

    // The same caller with a real id is applied, and creates the contact.
    let answer: Value = t
        .v1(Method::POST, "/v1/conversations")
        .json(&generic(Some("conv-with-an-id")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["report"]["outcome"], "applied", "{answer}");
    assert!(store.contact(CALLER).unwrap().is_some());
    t.daemon.shutdown().await.unwrap();
}
