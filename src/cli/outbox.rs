//! `crmsync outbox`: pending outbound writes, activities, dead letters; `outbox retry` and
//! `outbox discard` act on dead letters (with the daemon running, use its HTTP API instead:
//! the daemon holds the store).

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use serde_json::json;

use super::open::{engine, print_json};
use super::{CliError, CliResult, GlobalOpts};
use crate::store::{DeadLetterError, Store};

#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// Include activities already logged in the CRM.
    #[arg(long)]
    pub all: bool,
    #[command(subcommand)]
    pub action: Option<OutboxAction>,
}

#[derive(Debug, Subcommand)]
pub enum OutboxAction {
    /// Queue a dead letter again: a field write with its field's current value, an outbound
    /// mapping evaluated again, an activity (looked up first when its outcome was unknown).
    Retry {
        /// The dead letter's number (`#N` in `crmsync outbox`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<u64>,
        /// Every open dead letter.
        #[arg(long)]
        all: bool,
    },
    /// Give up on a dead letter for good; the reason is kept with it.
    Discard {
        /// The dead letter's number (`#N` in `crmsync outbox`).
        id: u64,
        /// Why (kept on record).
        #[arg(long)]
        reason: String,
    },
}

pub fn run(global: &GlobalOpts, args: OutboxArgs) -> CliResult {
    let (engine, _config) = engine(global)?;
    match args.action {
        Some(action) => act(global, &engine, action),
        None => list(global, &engine, args.all),
    }
}

fn act(global: &GlobalOpts, engine: &crate::engine::Engine, action: OutboxAction) -> CliResult {
    let failed = |err: DeadLetterError| match err {
        DeadLetterError::Store(err) => CliError::runtime(err.to_string()),
        other => CliError::input(other.to_string()),
    };
    match action {
        OutboxAction::Retry { all: true, .. } => {
            let report = engine.retry_all_dead_letters().map_err(failed)?;
            if global.json {
                return print_json(&report);
            }
            for r in &report.retried {
                println!("{}", retried_line(r));
            }
            for r in &report.refused {
                println!("not retried: {}", r.message);
            }
            println!(
                "retried {}, not retried {}",
                report.retried.len(),
                report.refused.len()
            );
            if report.refused.is_empty() {
                Ok(())
            } else {
                Err(CliError::input(format!(
                    "{} dead letter(s) could not be retried",
                    report.refused.len()
                )))
            }
        }
        OutboxAction::Retry { id, .. } => {
            let id = id.ok_or_else(|| CliError::input("name a dead letter, or --all"))?;
            let retried = engine.retry_dead_letter(id).map_err(failed)?;
            if global.json {
                return print_json(&retried);
            }
            println!("{}", retried_line(&retried));
            Ok(())
        }
        OutboxAction::Discard { id, reason } => {
            let letter = engine
                .store()
                .discard_dead_letter(id, &reason, chrono::Utc::now())
                .map_err(failed)?;
            if global.json {
                return print_json(&letter);
            }
            println!(
                "discarded #{id} {} {} {}: {}",
                json!(letter.kind).as_str().unwrap_or_default(),
                letter.connection,
                letter.key,
                reason.trim()
            );
            Ok(())
        }
    }
}

fn retried_line(r: &crate::engine::Retried) -> String {
    format!(
        "retried #{} {} {} {}: queued {}",
        r.id,
        json!(r.kind).as_str().unwrap_or_default(),
        r.connection,
        r.record_id,
        r.queued.join(", ")
    )
}

fn list(global: &GlobalOpts, engine: &crate::engine::Engine, all: bool) -> CliResult {
    let store = engine.store();
    let view = collect(store, all).map_err(|err| CliError::runtime(err.to_string()))?;
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
    let deferred = view["counts"]["deferred_writes"].as_u64().unwrap_or(0)
        + view["counts"]["deferred_activities"].as_u64().unwrap_or(0);
    if deferred > 0 {
        let _ = writeln!(
            out,
            "deferred (the CRM was unavailable; retried with backoff): {deferred}"
        );
    }
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
            let _ = write!(out, " [attempts {}, last error: {err}", w["attempts"]);
            if w["deferred_since"].is_string() {
                let _ = write!(
                    out,
                    "; deferred, next attempt {}",
                    str_of(&w["next_attempt_at"])
                );
            }
            out.push(']');
        }
        out.push('\n');
    }
    let _ = writeln!(out, "activities: {}", activities.len());
    for a in activities {
        let _ = write!(
            out,
            "  {} {} {} on {} ({}): {}",
            str_of(&a["connection"]),
            str_of(&a["payload"]["kind"]),
            str_of(&a["conversation_id"]),
            str_of(&a["record_id"]),
            str_of(&a["phone"]),
            str_of(&a["state"])
        );
        if let Some(err) = a["last_error"].as_str() {
            if a["deferred_since"].is_string() {
                let _ = write!(
                    out,
                    " [deferred, last error: {err}; next attempt {}]",
                    str_of(&a["next_attempt_at"])
                );
            }
        }
        out.push('\n');
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
