//! `crmsync sync [--full] [--connection NAME]`: one inbound sync of a connection, then one
//! dispatch of the outbox (when it is the active connection), then a summary.

use std::io::IsTerminal;
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::open::{engine, engine_error, print_json};
use super::{CliError, CliResult, GlobalOpts};
use crate::connector::dispatch::{DispatchError, DispatchTarget};
use crate::connector::sync::{sync_once, SyncError, SyncOptions, SyncPlan, SyncProgress};
use crate::connector::{AnyConnector, ConnectorError, ConnectorKind};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Re-read every record, not only those changed since the last sync.
    #[arg(long)]
    pub full: bool,
    /// The connection to sync (default: the active connection).
    #[arg(long, value_name = "NAME")]
    pub connection: Option<String>,
}

/// A progress bar on a terminal; nothing when stderr is not one (pipes, CI, `--json`).
struct Bar(ProgressBar);

impl Bar {
    fn new(visible: bool) -> Self {
        if !visible {
            return Bar(ProgressBar::hidden());
        }
        Bar(ProgressBar::new_spinner())
    }
}

impl SyncProgress for Bar {
    fn start(&self, total: Option<u64>) {
        match total {
            Some(n) => {
                self.0.set_length(n);
                self.0.set_style(
                    ProgressStyle::with_template(
                        "{spinner} reading {pos}/{len} records [{bar:30}] {per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
            }
            None => self.0.set_style(
                ProgressStyle::with_template("{spinner} reading {pos} records {per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        }
    }
    fn advance(&self, records: u64) {
        self.0.inc(records);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

pub fn run(global: &GlobalOpts, args: SyncArgs) -> CliResult {
    let (engine, config) = engine(global)?;
    let engine = std::sync::Arc::new(engine);
    let name = match args.connection.as_deref().or(engine.active_connection()) {
        Some(n) => n.to_string(),
        None => {
            return Err(CliError::input(
                "no connection to sync: the rule set defines several and the config names no \
                 active one; pass --connection NAME",
            ))
        }
    };
    engine.require_connection(&name).map_err(engine_error)?;
    let rules = engine
        .ruleset()
        .connection(&name)
        .ok_or_else(|| CliError::input(format!("the rule set defines no connection `{name}`")))?;
    let plan = SyncPlan::from_rules(rules);
    let settings = config
        .config
        .connections
        .get(&name)
        .cloned()
        .unwrap_or_default()
        .resolve(&name, ConnectorKind::from(rules.kind), |var| {
            std::env::var(var).ok()
        })
        .map_err(|e| CliError::input(format!("config: connections.{name}: {e}")))?;
    let connector =
        Arc::new(AnyConnector::new(settings).map_err(|e| CliError::runtime(e.to_string()))?);
    // Outbound writes and activities only ever go to the active connection (`docs/sync-semantics.md`).
    let target = (engine.active_connection() == Some(name.as_str())).then(|| DispatchTarget {
        connection: name.clone(),
        object: plan.object.clone(),
    });
    let bar = Bar::new(!global.json && std::io::stderr().is_terminal());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the async runtime: {e}")))?;
    let report = runtime
        .block_on(sync_once(
            connector,
            &engine,
            &plan,
            SyncOptions { full: args.full },
            target.as_ref(),
            &bar,
        ))
        .map_err(sync_error)?;
    if global.json {
        print_json(&report)
    } else {
        print!("{}", report.render());
        Ok(())
    }
}

/// Rules that do not fit the CRM are bad input (1); the CRM or the network failing is a runtime
/// failure (3).
fn sync_error(err: SyncError) -> CliError {
    match err {
        SyncError::UnknownCrmField { .. } | SyncError::ReadOnlyCrmField { .. } => {
            CliError::input(err.to_string())
        }
        SyncError::Engine(e) => engine_error(e),
        SyncError::Connector(ConnectorError::Auth { .. })
        | SyncError::Dispatch(DispatchError::Connector(ConnectorError::Auth { .. })) => {
            CliError::runtime(format!(
                "{err} (check the connection's credentials in the config)"
            ))
        }
        other => CliError::runtime(other.to_string()),
    }
}
