//! Retell chats as Retell sends them: the chat object (`ChatResponse`) carries no phone number,
//! so a chat finds its contact through the `chat_inbound` webhook crmsync answered, or through
//! configured keys of its `metadata` / `retell_llm_dynamic_variables`; a chat with no number is
//! reported, not dropped.

use std::time::Duration;

use serde_json::{json, Value};

use crate::crm::{contact, hubspot_daemon, post_signed, rules_logging_hubspot_chats};
use crate::harness::{eventually, Setup, TestDaemon};

/// A `chat_analyzed` body in the shape of Retell's `ChatResponse` (no numbers, no direction).
pub fn chat_analyzed(chat_id: &str, metadata: Value, dynamic_variables: Value) -> Value {
    json!({
        "event": "chat_analyzed",
        "chat": {
            "chat_id": chat_id,
            "agent_id": "agent_chat_4c1d",
            "version": 3,
            "chat_type": "sms_chat",
            "chat_status": "ended",
            "start_timestamp": 1795255200000_i64,
            "end_timestamp": 1795255500000_i64,
            "transcript": "User: Is the analytics plan available monthly?\nAgent: Yes, it is.\n",
            "message_with_tool_calls": [
                {"message_id": "m1", "role": "user", "content": "Is the analytics plan available monthly?", "created_timestamp": 1795255200000_i64},
                {"message_id": "m2", "role": "agent", "content": "Yes, it is.", "created_timestamp": 1795255260000_i64}
            ],
            "retell_llm_dynamic_variables": dynamic_variables,
            "collected_dynamic_variables": {},
            "metadata": metadata,
            "chat_cost": {"combined_cost": 0.3, "product_costs": [{"product": "gpt-4.1", "cost": 0.3}]},
            "chat_analysis": {
                "chat_summary": "Asked whether the analytics plan is sold monthly.",
                "user_sentiment": "Positive",
                "chat_successful": true,
                "custom_analysis_data": {
                    "lead_qualification_status": "qualified",
                    "customer_notes": "Wants the analytics plan, monthly."
                }
            }
        }
    })
}

fn chat_inbound(chat_id: &str, from: &str) -> Value {
    json!({
        "event": "chat_inbound",
        "chat_inbound": {
            "agent_id": "agent_chat_4c1d",
            "agent_version": 3,
            "chat_id": chat_id,
            "from_number": from,
            "to_number": "+18885550100"
        }
    })
}

const LIN: &str = "+14155550188";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_inbound_then_chat_analyzed_updates_the_contact_and_logs_an_sms() {
    let (t, hubspot, record) = hubspot_daemon(LIN, Some(rules_logging_hubspot_chats())).await;

    // The SMS arrives: Retell asks for the sender's variables, crmsync remembers the chat.
    let answer = post_signed(
        &t,
        "/webhooks/retell/inbound",
        &chat_inbound("chat_sms_71", LIN),
    )
    .await;
    assert_eq!(
        answer["chat_inbound"]["dynamic_variables"]["first_name"], "Lin",
        "{answer}"
    );

    // The chat ends and is analysed: the body names no number at all.
    let body = chat_analyzed("chat_sms_71", json!({}), json!({}));
    let answer = post_signed(&t, "/webhooks/retell", &body).await;
    let report = &answer["report"];
    assert_eq!(report["outcome"], "applied", "{answer}");
    assert_eq!(report["phone"], LIN);
    assert_eq!(report["activity"], true, "{answer}");

    let shown = contact(&t, LIN).await;
    assert_eq!(shown["fields"]["lead_status"], "qualified", "{shown}");
    assert_eq!(
        shown["provenance"]["lead_status"]["source"],
        "analysis:chat_sms_71"
    );

    // The chat is logged on the HubSpot contact as an SMS communication.
    let logged = eventually(Duration::from_secs(20), || {
        hubspot
            .communications()
            .iter()
            .any(|c| c.contact_ids.contains(&record))
    })
    .await;
    assert!(logged, "{:?}", hubspot.communications());
    let sms = hubspot.communications();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].properties["hs_communication_channel_type"], "SMS");
    let text = &sms[0].properties["hs_communication_body"];
    assert!(text.contains("chat_sms_71") && text.contains(LIN), "{text}");
    assert!(text.contains("Direction: inbound"), "{text}");

    // The chat_inbound record has served; a redelivery is still recognised.
    assert_eq!(t.engine.store().chat_numbers("chat_sms_71").unwrap(), None);
    let again = post_signed(&t, "/webhooks/retell", &body).await;
    assert_eq!(again["report"]["outcome"], "already_applied", "{again}");
    t.daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_is_matched_through_its_metadata_or_dynamic_variables() {
    let t = TestDaemon::start_with(Setup {
        chat_number_keys: vec!["lead_phone".to_string(), "customer_phone".to_string()],
        ..Setup::default()
    })
    .await;

    // An SMS chat started through the API, with the number in its metadata.
    let answer = post_signed(
        &t,
        "/webhooks/retell",
        &chat_analyzed(
            "chat_api_1",
            json!({"customer_phone": "+16465550166"}),
            json!({}),
        ),
    )
    .await;
    assert_eq!(answer["report"]["outcome"], "applied", "{answer}");
    assert_eq!(answer["report"]["phone"], "+16465550166");

    // The first configured key wins; a metadata value that is no phone number is passed over
    // for the dynamic variable (Retell's are strings, in any notation).
    let answer = post_signed(
        &t,
        "/webhooks/retell",
        &chat_analyzed(
            "chat_api_2",
            json!({"lead_phone": "n/a", "crm_id": 42}),
            json!({"lead_phone": "(646) 555-0177", "customer_phone": "+16465550166"}),
        ),
    )
    .await;
    assert_eq!(answer["report"]["outcome"], "applied", "{answer}");
    assert_eq!(answer["report"]["phone"], "+16465550177");
    let shown = contact(&t, "+16465550177").await;
    assert_eq!(shown["fields"]["lead_status"], "qualified", "{shown}");
    t.daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_without_a_number_is_reported_and_counted_not_dropped() {
    let t = TestDaemon::start().await;

    // Nothing names the chat's number: no chat_inbound, no configured key.
    let body = chat_analyzed(
        "chat_lost_1",
        json!({"campaign": "q4"}),
        json!({"first_name": "Lin"}),
    );
    let answer = post_signed(&t, "/webhooks/retell", &body).await;
    let report = &answer["report"];
    assert_eq!(report["outcome"], "no_number", "{answer}");
    assert_eq!(report["conversation_id"], "chat_lost_1");
    let reason = report["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("no chat_inbound webhook was received"),
        "{reason}"
    );
    assert!(
        reason.contains("customer_phone") && reason.contains("retell.chat_number_keys"),
        "{reason}"
    );

    // A withheld sender: the reason says what chat_inbound named.
    post_signed(
        &t,
        "/webhooks/retell/inbound",
        &chat_inbound("chat_lost_2", "anonymous"),
    )
    .await;
    let answer = post_signed(
        &t,
        "/webhooks/retell",
        &chat_analyzed("chat_lost_2", json!({}), json!({})),
    )
    .await;
    assert_eq!(answer["report"]["outcome"], "no_number", "{answer}");
    let reason = answer["report"]["reason"].as_str().unwrap();
    assert!(reason.contains("\"anonymous\""), "{reason}");

    // Nothing applied, and both are counted as such.
    assert_eq!(t.engine.store().contact_count().unwrap(), 0);
    assert!(!t
        .engine
        .store()
        .conversation_applied("chat_lost_1")
        .unwrap());
    let metrics = t.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "crmsync_events_total{source=\"retell\",outcome=\"no_number\"} 2"),
        "{metrics}"
    );
    t.daemon.shutdown().await.unwrap();
}
