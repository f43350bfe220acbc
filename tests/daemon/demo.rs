//! `crmsync demo`: the report says what the sandboxes really received.

use std::path::PathBuf;

use crmsync::demo::{run, DemoOptions};
use crmsync::engine::ConversationOutcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_imports_applies_and_writes_back_to_both_crms() {
    let report = run(&DemoOptions {
        rules: PathBuf::from("rules"),
        examples: PathBuf::from("examples"),
        contacts: 25,
        seed: 1,
    })
    .await
    .expect("demo runs");
    assert_eq!(report.sections.len(), 2);

    let salesforce = &report.sections[0];
    assert_eq!(salesforce.connection, "salesforce");
    // 25 seeded + 6 samples read; the samples without a usable phone are skipped with a reason.
    assert_eq!(salesforce.sync.read, 31);
    assert!(salesforce
        .sync
        .skipped
        .iter()
        .any(|s| s.reason == "no phone number"));
    // Two calls with imported contacts: two writes in one batch, two Tasks, nothing dead.
    assert_eq!(salesforce.dispatch.written, 2);
    assert_eq!(salesforce.dispatch.write_requests, 1);
    assert_eq!(salesforce.dispatch.activities_logged, 2);
    assert!(salesforce.dispatch.dead_lettered.is_empty());
    let subjects: Vec<_> = salesforce
        .activities
        .iter()
        .map(|t| t["Subject"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        subjects,
        [
            "Call call_7a9c2f1e04b34d55a0e1",
            "Call conv-2026-11-21-0001"
        ]
    );
    let ada = salesforce
        .written_back
        .iter()
        .find(|r| r.phone == "+14155550101")
        .expect("written back");
    assert!(ada
        .fields
        .iter()
        .any(|(f, v)| f == "Lead_Status__c" && v == "Closed - Converted"));
    // The web call has no number and does nothing.
    assert!(salesforce
        .conversations
        .iter()
        .any(|c| matches!(c.report.outcome, ConversationOutcome::NoNumber { .. })));

    let hubspot = &report.sections[1];
    assert_eq!(hubspot.connection, "hubspot");
    // HubSpot logs calls only (the rules say `log calls`): one Call, for the call with Ada.
    assert_eq!(hubspot.dispatch.activities_logged, 1);
    assert_eq!(hubspot.activities.len(), 1);
    assert_eq!(hubspot.dispatch.written, 2);
    assert!(hubspot
        .written_back
        .iter()
        .all(|r| r.fields.iter().any(|(f, v)| f == "notes" && v.is_string())));

    let text = crmsync::demo::render(&report);
    assert!(
        text.contains("== Salesforce (active connection `salesforce`) =="),
        "{text}"
    );
    assert!(text.contains("Task "), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_command_runs_from_the_repository_root() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_crmsync"))
        .arg("demo")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .await
        .expect("run crmsync demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("3. Dispatch: 2 record(s) written in 1 request(s), 2 activities logged"),
        "{stdout}"
    );
}
