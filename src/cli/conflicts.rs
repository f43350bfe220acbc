//! `crmsync conflicts`: the conflicts between pending writes and CRM edits, each with both
//! values and times, the winner and the policy that picked it; oldest first.

use std::fmt::Write as _;

use clap::Args;
use serde_json::json;

use super::open::{engine, print_json};
use super::{CliError, CliResult, GlobalOpts};
use crate::connector::report::describe_conflict;
use crate::store::Conflict;

#[derive(Debug, Args)]
pub struct ConflictsArgs {
    /// Only this connection's conflicts.
    #[arg(long)]
    pub connection: Option<String>,
    /// Only conflicts recorded after this id (from a previous listing).
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

pub fn run(global: &GlobalOpts, args: ConflictsArgs) -> CliResult {
    let (engine, _config) = engine(global)?;
    let store = engine.store();
    let conflicts = store
        .conflicts(args.connection.as_deref(), args.after, args.limit)
        .map_err(|err| CliError::runtime(err.to_string()))?;
    let total = store
        .conflict_count()
        .map_err(|err| CliError::runtime(err.to_string()))?;
    if global.json {
        return print_json(&json!({"total": total, "conflicts": conflicts}));
    }
    print!("{}", human(total, &conflicts));
    Ok(())
}

fn human(total: u64, conflicts: &[Conflict]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "conflicts: {total}");
    for c in conflicts {
        let _ = writeln!(out, "  #{} {}", c.id, describe_conflict(c));
    }
    out
}
