//! `crmsync outbox`: pending outbound writes, activities, dead letters.

use std::fmt::Write as _;

use clap::Args;
use serde_json::json;

use super::open::{engine, print_json};
use super::{CliError, CliResult, GlobalOpts};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// Include activities already logged in the CRM.
    #[arg(long)]
    pub all: bool,
}

pub fn run(global: &GlobalOpts, args: OutboxArgs) -> CliResult {
    let (engine, _config) = engine(global)?;
    let store = engine.store();
    let view = collect(store, args.all).map_err(|err| CliError::runtime(err.to_string()))?;
    if global.json {
        return print_json(&view);
    }
    print!("{}", human(&view));
    Ok(())
}

fn collect(store: &Store, all: bool) -> Result<serde_json::Value, crate::store::StoreError> {
    let counts = store.outbox_counts()?;
    let writes = store.pending_writes(None)?;
    // Without `--all`, only the open intents are read: a store keeps every activity it ever
    // logged (they make redelivered conversations no-ops), and listing those costs their number.
    let activities = if all {
        store.activities(None)?
    } else {
        store.open_activities()?
    };
    let dead = store.dead_letters()?;
    let conflicts = store.conflict_count()?;
    Ok(json!({
        "counts": counts,
        "conflicts": conflicts,
        "pending_writes": writes,
        "activities": activities,
        "dead_letters": dead,
    }))
}

/// The human view (no clocks: stable across runs).
fn human(view: &serde_json::Value) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    let writes = view["pending_writes"].as_array().unwrap_or(&empty);
    let activities = view["activities"].as_array().unwrap_or(&empty);
    let dead = view["dead_letters"].as_array().unwrap_or(&empty);
    let _ = writeln!(out, "pending writes: {}", writes.len());
    for w in writes {
        let fields = w["fields"]
            .as_object()
            .map(|f| {
                f.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            "  {} {} ({}): {fields}",
            str_of(&w["connection"]),
            str_of(&w["record_id"]),
            str_of(&w["phone"])
        );
        if let Some(err) = w["last_error"].as_str() {
            let _ = write!(out, " [attempts {}, last error: {err}]", w["attempts"]);
        }
        out.push('\n');
    }
    let _ = writeln!(out, "activities: {}", activities.len());
    for a in activities {
        let _ = writeln!(
            out,
            "  {} {} {} on {} ({}): {}",
            str_of(&a["connection"]),
            str_of(&a["payload"]["kind"]),
            str_of(&a["conversation_id"]),
            str_of(&a["record_id"]),
            str_of(&a["phone"]),
            str_of(&a["state"])
        );
    }
    let _ = writeln!(out, "dead letters: {}", dead.len());
    for d in dead {
        // A dead letter about one refused field names it (the record's other fields were sent).
        let field = match &d["field"] {
            serde_json::Value::String(f) => format!(" field {f}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  #{} {} {} {}{field}: {} (payload {})",
            d["id"],
            str_of(&d["kind"]),
            str_of(&d["connection"]),
            str_of(&d["key"]),
            str_of(&d["message"]),
            d["payload"]
        );
    }
    let conflicts = view["conflicts"].as_u64().unwrap_or(0);
    if conflicts > 0 {
        let _ = writeln!(
            out,
            "conflicts decided: {conflicts} (see `crmsync conflicts`)"
        );
    }
    out
}

fn str_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
