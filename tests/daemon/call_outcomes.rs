//! Calls that never reached anyone (Retell still sends `call_analyzed` for them) are logged in
//! the CRM as what happened, and rules can tell them apart (`conversation.connected`).

use std::time::Duration;

use serde_json::{json, Value};

use crate::crm::{contact, hubspot_daemon, post_signed, salesforce_daemon};
use crate::harness::{eventually, TestDaemon};

/// A `call_analyzed` body in the shape of Retell's `PhoneCallResponse` for an outbound call that
/// ended with `reason` (`call_status` as Retell sets it for that reason).
fn outbound_call(call_id: &str, to: &str, reason: &str, call_status: &str) -> Value {
    let connected = call_status == "ended";
    json!({
        "event": "call_analyzed",
        "call": {
            "call_type": "phone_call",
            "call_id": call_id,
            "agent_id": "agent_3f1d0c9b8a7e",
            "agent_version": 4,
            "call_status": call_status,
            "direction": "outbound",
            "from_number": "+18885550100",
            "to_number": to,
            "start_timestamp": 1795251600000_i64,
            "end_timestamp": if connected { 1795251660000_i64 } else { 1795251630000_i64 },
            "duration_ms": if connected { 60000 } else { 0 },
            "disconnection_reason": reason,
            "transcript": "",
            "call_analysis": {
                "call_summary": if connected { "Talked about the renewal." } else { "The call did not connect." },
                "in_voicemail": false,
                "user_sentiment": if connected { "Positive" } else { "Unknown" },
                "call_successful": connected,
                "custom_analysis_data": {}
            },
            "metadata": {}
        }
    })
}

const LIN: &str = "+14155550188";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_call_is_logged_as_no_answer_in_hubspot() {
    let (t, hubspot, record) = hubspot_daemon(LIN, None).await;
    let body = outbound_call("call_na_hs", LIN, "dial_no_answer", "not_connected");
    let answer = post_signed(&t, "/webhooks/retell", &body).await;
    assert_eq!(answer["report"]["activity"], true, "{answer}");

    let logged = eventually(Duration::from_secs(20), || {
        hubspot
            .calls()
            .iter()
            .any(|c| c.contact_ids.contains(&record))
    })
    .await;
    assert!(logged, "{:?}", hubspot.calls());
    let calls = hubspot.calls();
    assert_eq!(calls.len(), 1);
    // The sandbox accepts only HubSpot's own hs_call_status options.
    assert_eq!(calls[0].properties["hs_call_status"], "NO_ANSWER");
    assert_eq!(calls[0].properties["hs_call_direction"], "OUTBOUND");
    let notes = &calls[0].properties["hs_call_body"];
    assert!(
        notes.contains("dial_no_answer") && notes.contains("Outcome: No answer"),
        "{notes}"
    );
    t.daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconnected_calls_are_tasks_with_their_call_result_in_salesforce() {
    let (t, salesforce, record) = salesforce_daemon(LIN).await;
    for (id, reason) in [
        ("call_na_sf", "dial_no_answer"),
        ("call_busy_sf", "dial_busy"),
    ] {
        let body = outbound_call(id, LIN, reason, "not_connected");
        let answer = post_signed(&t, "/webhooks/retell", &body).await;
        assert_eq!(answer["report"]["activity"], true, "{answer}");
    }
    let answer = post_signed(
        &t,
        "/webhooks/retell",
        &outbound_call("call_ok_sf", LIN, "user_hangup", "ended"),
    )
    .await;
    assert_eq!(answer["report"]["activity"], true, "{answer}");

    let logged = eventually(Duration::from_secs(20), || {
        salesforce.tasks_for(&record).len() == 3
    })
    .await;
    assert!(logged, "{:?}", salesforce.tasks_for(&record));
    let results: Vec<(String, String)> = salesforce
        .tasks_for(&record)
        .iter()
        .map(|task| {
            (
                task["Subject"].as_str().unwrap_or("").to_string(),
                task["CallDisposition"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected = [
        ("Call call_busy_sf", "Busy"),
        ("Call call_na_sf", "No answer"),
        ("Call call_ok_sf", "Connected"),
    ];
    let mut sorted = results.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        expected.map(|(s, d)| (s.to_string(), d.to_string())),
        "{results:?}"
    );
    t.daemon.shutdown().await.unwrap();
}

/// The example rules set `last_contacted_at` only `when conversation.connected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_guarded_on_connected_is_skipped_for_an_unconnected_call() {
    let t = TestDaemon::start().await;
    let grace = "+12125550102";
    for (id, reason) in [
        ("call_na_1", "dial_no_answer"),
        ("call_vm_1", "voicemail_reached"),
    ] {
        let status = if reason == "voicemail_reached" {
            "ended"
        } else {
            "not_connected"
        };
        let answer = post_signed(
            &t,
            "/webhooks/retell",
            &outbound_call(id, grace, reason, status),
        )
        .await;
        assert_eq!(answer["report"]["outcome"], "applied", "{answer}");
        assert!(
            !answer["report"]["changed"]
                .as_array()
                .unwrap()
                .contains(&json!("last_contacted_at")),
            "{reason}: {answer}"
        );
    }
    assert_eq!(
        contact(&t, grace).await["fields"].get("last_contacted_at"),
        None
    );

    let answer = post_signed(
        &t,
        "/webhooks/retell",
        &outbound_call("call_ok_1", grace, "user_hangup", "ended"),
    )
    .await;
    assert_eq!(
        answer["report"]["changed"],
        json!(["last_contacted_at"]),
        "{answer}"
    );
    let shown = contact(&t, grace).await;
    assert_eq!(
        shown["fields"]["last_contacted_at"], "2026-11-21T09:01:00Z",
        "{shown}"
    );
    t.daemon.shutdown().await.unwrap();
}
