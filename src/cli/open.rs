//! Shared setup for the commands that work on the store: config, rules, store, engine.

use crate::config::LoadedConfig;
use crate::engine::{Engine, EngineError};
use crate::store::Store;

use super::{CliError, GlobalOpts};

/// The engine the global flags and config describe: rules compiled from `--rules` (diagnostics
/// printed, exit 1 on errors), the store at `--store`, the configured active connection and
/// default region.
pub fn engine(global: &GlobalOpts) -> Result<(Engine, LoadedConfig), CliError> {
    let config = global
        .load_config()
        .map_err(|err| CliError::input(err.to_string()))?;
    let rules_dir = global.rules_path(&config);
    let compiled = compile_rules(&rules_dir)?;
    let store_path = global.store_path(&config);
    let store = Store::open(&store_path).map_err(|err| CliError::runtime(err.to_string()))?;
    let engine = Engine::new(store, compiled, config.config.active_connection.as_deref())
        .and_then(|engine| engine.with_region(&config.config.default_region))
        .and_then(|engine| {
            // Each connection's conflict policy (`connections.<name>.conflicts`).
            config
                .config
                .connections
                .iter()
                .filter_map(|(name, c)| Some((name, c.conflicts?)))
                .try_fold(engine, |engine, (name, policy)| {
                    engine.with_conflict_policy(name, policy)
                })
        })
        .map_err(|err| CliError::input(format!("config: {err}")))?;
    Ok((engine, config))
}

/// Compiles the rule directory; warnings go to stderr, errors too (then exit 1).
pub fn compile_rules(dir: &std::path::Path) -> Result<crate::lang::Compiled, CliError> {
    match crate::lang::compile_dir(dir) {
        Ok(compiled) => {
            if !compiled.warnings.is_empty() {
                eprint!("{}", compiled.warnings.render(false));
            }
            Ok(compiled)
        }
        Err(diagnostics) => {
            eprint!("{}", diagnostics.render(false));
            Err(CliError::input(format!(
                "the rules in {} have {} error(s)",
                dir.display(),
                diagnostics.error_count()
            )))
        }
    }
}

/// Maps engine errors to exit codes: store failures are runtime failures (3), the rest is bad
/// input (1).
pub fn engine_error(err: EngineError) -> CliError {
    match err {
        EngineError::Store(err) => CliError::runtime(err.to_string()),
        other => CliError::input(other.to_string()),
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|err| CliError::runtime(format!("cannot encode JSON output: {err}")))?;
    println!("{text}");
    Ok(())
}
