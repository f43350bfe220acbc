//! Looking up activities whose creation had an unknown outcome, against the Salesforce sandbox
//! over loopback with the real connector: a batch is found with one query, matched back by
//! contact and subject, in the order asked.

use crmsync::connector::{
    ActivityInput, ActivityKind, AnyConnector, ConnectionSettings, Connector, ConnectorKind,
    Credentials, WriteResult,
};
use crmsync::sandbox::credentials::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
use crmsync::sandbox::salesforce::{SalesforceSandbox, SalesforceSandboxConfig};
use serde_json::json;

fn call(conversation_id: &str, contact_record_id: &str) -> ActivityInput {
    ActivityInput {
        conversation_id: conversation_id.to_string(),
        kind: ActivityKind::Call,
        contact_record_id: contact_record_id.to_string(),
        direction: Some("inbound".into()),
        from_number: None,
        to_number: None,
        start_time: None,
        end_time: None,
        duration_ms: Some(60_000),
        summary: None,
        disconnection_reason: None,
        outcome: None,
    }
}

#[tokio::test]
async fn a_batch_of_unknown_outcomes_is_looked_up_with_one_query() {
    let sandbox = SalesforceSandbox::start(SalesforceSandboxConfig {
        contacts: 0,
        ..SalesforceSandboxConfig::default()
    })
    .await
    .unwrap();
    let ada = sandbox
        .create_contact(json!({"LastName": "Lovelace", "Phone": "+14155550101"}))
        .unwrap();
    let alan = sandbox
        .create_contact(json!({"LastName": "Turing", "Phone": "+14155550102"}))
        .unwrap();
    let connector = AnyConnector::new(ConnectionSettings::new(
        "salesforce",
        ConnectorKind::Salesforce,
        sandbox.login_url(),
        Credentials::ClientCredentials {
            client_id: SALESFORCE_CLIENT_ID.into(),
            client_secret: SALESFORCE_CLIENT_SECRET.into(),
        },
    ))
    .unwrap();
    // Logged: conv-1 on Ada, conv-2 on Alan. Never logged: conv-3, and conv-1 on Alan (a
    // subject on another contact is not the activity asked for).
    let logged = connector
        .create_activities(&[call("conv-1", &ada), call("conv-2", &alan)])
        .await
        .unwrap();
    let ids: Vec<String> = logged
        .into_iter()
        .map(|r| match r {
            WriteResult::Written { id } => id,
            other => panic!("not logged: {other:?}"),
        })
        .collect();

    let queries_before = sandbox.counters().get("sf.query");
    let found = connector
        .find_activities(&[
            call("conv-2", &alan),
            call("conv-3", &ada),
            call("conv-1", &ada),
            call("conv-1", &alan),
        ])
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![Some(ids[1].clone()), None, Some(ids[0].clone()), None]
    );
    assert_eq!(
        sandbox.counters().get("sf.query") - queries_before,
        1,
        "one query for the whole batch"
    );
}
