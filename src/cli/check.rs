//! `crmsync check [PATH...]`: compile rule files and print diagnostics.
//!
//! Without paths, the rules are found like every other subcommand finds them: `--rules`, else
//! the config's `rules:` (`--config FILE`, else `./crmsync.yaml`), else `./rules`.
//!
//! Diagnostics go to stderr, rendered like rustc (colours only on a terminal, never with
//! `NO_COLOR`); the one-line summary goes to stdout. With `--json`, one JSON document goes to
//! stdout instead. Exit 0 when the rules compile (warnings allowed), 1 on errors.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{CliError, CliResult, GlobalOpts};
use crate::lang::{self, check::CheckedProgram};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Rule files or directories (default: --rules, else the config's `rules:`, else ./rules).
    pub paths: Vec<PathBuf>,
}

pub fn run(global: &GlobalOpts, args: CheckArgs) -> CliResult {
    let paths = if args.paths.is_empty() {
        // WHY through the config: `check` must judge the rules the daemon will load, and a
        // config whose `rules:` points elsewhere than ./rules would otherwise pass unchecked.
        let config = global
            .load_config()
            .map_err(|err| CliError::input(err.to_string()))?;
        vec![global.rules_path(&config)]
    } else {
        args.paths
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    match lang::compile_paths(&paths) {
        Ok(compiled) => {
            if global.json {
                let mut doc = compiled.warnings.to_json();
                doc["ok"] = json!(true);
                doc["summary"] = summary_json(&compiled.program);
                println!("{doc:#}");
            } else {
                eprint!("{}", compiled.warnings.render(color));
                let warnings = compiled.warnings.warning_count();
                let suffix = match warnings {
                    0 => String::new(),
                    1 => " (1 warning)".to_string(),
                    n => format!(" ({n} warnings)"),
                };
                println!("ok: {}{suffix}", compiled.summary());
            }
            Ok(())
        }
        Err(diagnostics) => {
            if global.json {
                let mut doc = diagnostics.to_json();
                doc["ok"] = json!(false);
                doc["summary"] = serde_json::Value::Null;
                println!("{doc:#}");
            } else {
                eprint!("{}", diagnostics.render(color));
                let errors = diagnostics.error_count();
                let warnings = diagnostics.warning_count();
                eprintln!(
                    "error: the rules do not compile: {}{}",
                    count(errors, "error"),
                    if warnings > 0 {
                        format!(", {}", count(warnings, "warning"))
                    } else {
                        String::new()
                    }
                );
            }
            Err(CliError::silent(1))
        }
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn summary_json(program: &CheckedProgram) -> serde_json::Value {
    json!({
        "fields": program.fields.len(),
        "analysis": program.analysis.len(),
        "connections": program.connections.iter().map(|c| json!({
            "name": c.kind.name(),
            "object": c.object,
            "inbound": c.inbound.len(),
            "outbound": c.outbound.len(),
            "log_calls": c.activity.calls,
            "log_chats": c.activity.chats,
        })).collect::<Vec<_>>(),
    })
}
