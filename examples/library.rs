//! Using crmsync as a library: compile the rules, open a store, import CRM records, apply a
//! conversation, and read the contact back as an agent would see it.
//!
//! ```text
//! cargo run --example library
//! ```

use std::path::Path;

use crmsync::config::RetellSettings;
use crmsync::engine::{retell, Engine, ResolvedEvent};
use crmsync::merge::FallbackMerger;
use crmsync::store::Store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Compile every `*.rules` file of a directory. Errors come back as diagnostics that
    //    render like rustc's.
    let compiled = match crmsync::lang::compile_dir(Path::new("rules")) {
        Ok(compiled) => compiled,
        Err(diagnostics) => {
            eprint!(
                "{}",
                crmsync::lang::diagnostics::render::render_all(&diagnostics, false)
            );
            std::process::exit(1);
        }
    };
    println!("rules: {}", compiled.summary());

    // 2. A store (a redb file) and an engine with Salesforce as the active connection.
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("contacts.redb"))?;
    let engine = Engine::new(store, compiled, Some("salesforce"))?;

    // 3. Import one page of Salesforce records (the shape of a SOQL query result's `records`).
    let page: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        "examples/records/salesforce_contacts.json",
    )?)?;
    let records = page["records"].as_array().cloned().unwrap_or_default();
    let imported = engine.import_page("salesforce", &records, None)?;
    println!(
        "import: {} read, {} created, {} skipped",
        imported.read,
        imported.created,
        imported.skipped.len()
    );
    for skipped in &imported.skipped {
        println!("  skipped {}: {}", skipped.record_id, skipped.reason);
    }

    // 4. Apply a Retell `call_analyzed` webhook body. Without an LLM, `merge` keeps both texts.
    let body = std::fs::read("examples/events/call_analyzed.json")?;
    if let Some(event) = retell::parse_webhook(&body)? {
        // A chat carries no phone number: `resolve_retell` finds it (chat_inbound record, or
        // the metadata keys); a call has its own.
        match engine.resolve_retell(event, &RetellSettings::default().chat_number_keys)? {
            ResolvedEvent::Ready(event) => {
                let report = engine.apply_conversation_blocking(&event, &FallbackMerger)?;
                println!("conversation: {}", serde_json::to_string(&report)?);
            }
            ResolvedEvent::NoNumber(report) => {
                println!("not applied: {}", serde_json::to_string(&report)?)
            }
        }
    }

    // 5. What an agent gets as dynamic variables for this caller, and what waits for the CRM.
    if let Some(vars) = engine.dynamic_variables("+14155550101")? {
        println!("dynamic variables: {}", serde_json::to_string(&vars)?);
    }
    for write in engine.store().pending_writes(Some("salesforce"))? {
        println!("pending write: {}", serde_json::to_string(&write)?);
    }
    Ok(())
}
