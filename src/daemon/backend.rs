//! The daemon's [`SyncBackend`]: the real connector of the active connection, its inbound sync
//! (`connector::sync::sync_inbound`) and its outbox dispatcher (`connector::dispatch`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::json;

use super::scheduler::{BoxFuture, DispatchOutcome, SyncBackend, SyncOutcome, SyncProgress};
use crate::config::Config;
use crate::connector::dispatch::{dispatch_pass, DispatchTarget};
use crate::connector::metrics::MetricsSnapshot;
use crate::connector::sync::{self, SyncOptions, SyncPlan};
use crate::connector::{AnyConnector, Connector, ConnectorKind};
use crate::engine::Engine;

/// Sync and dispatch of one connection through its connector.
pub struct ConnectorBackend {
    engine: Arc<Engine>,
    connector: Arc<AnyConnector>,
    plan: SyncPlan,
    target: DispatchTarget,
}

impl ConnectorBackend {
    /// A backend for the engine's active connection, reached through `connector`.
    pub fn new(engine: Arc<Engine>, connector: AnyConnector) -> Result<ConnectorBackend, String> {
        let name = engine
            .active_connection()
            .ok_or_else(|| "no active connection".to_string())?
            .to_string();
        let rules = engine
            .ruleset()
            .connection(&name)
            .ok_or_else(|| format!("the rule set defines no connection `{name}`"))?;
        let plan = SyncPlan::from_rules(rules);
        let target = DispatchTarget {
            connection: plan.connection.clone(),
            object: plan.object.clone(),
        };
        Ok(ConnectorBackend {
            engine,
            connector: Arc::new(connector),
            plan,
            target,
        })
    }
}

/// The backend the config describes: `None` when the rule set has no active connection.
/// Errors (a missing secret, a kind mismatch) name the connection and the variable.
pub fn from_config(
    engine: &Arc<Engine>,
    config: &Config,
) -> Result<Option<Arc<dyn SyncBackend>>, String> {
    let Some(name) = engine.active_connection() else {
        return Ok(None);
    };
    let rules = engine
        .ruleset()
        .connection(name)
        .ok_or_else(|| format!("the rule set defines no connection `{name}`"))?;
    let settings = config
        .connections
        .get(name)
        .cloned()
        .unwrap_or_default()
        .resolve(name, ConnectorKind::from(rules.kind), |var| {
            std::env::var(var).ok()
        })
        .map_err(|err| format!("config: connections.{name}: {err}"))?;
    let connector =
        AnyConnector::new(settings).map_err(|err| format!("connection `{name}`: {err}"))?;
    let backend = ConnectorBackend::new(engine.clone(), connector)?;
    Ok(Some(Arc::new(backend)))
}

/// Feeds the connector's page-by-page progress into the scheduler's live counts.
struct Progress<'a>(&'a SyncProgress);

impl sync::SyncProgress for Progress<'_> {
    fn advance(&self, records: u64) {
        self.0.succeeded.fetch_add(records, Ordering::Relaxed);
    }
}

impl SyncBackend for ConnectorBackend {
    fn connection(&self) -> &str {
        &self.plan.connection
    }

    fn sync<'a>(
        &'a self,
        full: bool,
        progress: &'a SyncProgress,
    ) -> BoxFuture<'a, Result<SyncOutcome, String>> {
        Box::pin(async move {
            let report = sync::sync_inbound(
                self.connector.clone(),
                &self.engine,
                &self.plan,
                SyncOptions { full },
                &Progress(progress),
            )
            .await
            .map_err(|err| err.to_string())?;
            // Records read that did not apply (no usable phone, lost to a newer duplicate) are
            // the failures; the live count counted every record read as it committed.
            let failed = (report.skipped.len() + report.duplicates.len()) as u64;
            let succeeded = (report.read as u64).saturating_sub(failed);
            progress.succeeded.store(succeeded, Ordering::Relaxed);
            progress.failed.store(failed, Ordering::Relaxed);
            let records = vec![
                ("created".to_string(), report.created as u64),
                ("updated".to_string(), report.updated as u64),
                ("unchanged".to_string(), report.unchanged as u64),
                ("skipped".to_string(), report.skipped.len() as u64),
                ("duplicate".to_string(), report.duplicates.len() as u64),
                ("field_error".to_string(), report.field_errors.len() as u64),
            ];
            let full = report.mode == "full";
            let report = serde_json::to_value(&report)
                .unwrap_or_else(|err| json!({"error": format!("cannot encode the report: {err}")}));
            Ok(SyncOutcome {
                full,
                records,
                report,
            })
        })
    }

    fn has_cursor(&self) -> bool {
        // An unreadable store will fail the sync itself, with the error in the status.
        matches!(
            self.engine.store().cursor(&self.plan.connection),
            Ok(Some(_))
        )
    }

    fn dispatch(&self) -> BoxFuture<'_, Result<DispatchOutcome, String>> {
        Box::pin(async move {
            let report = dispatch_pass(self.connector.as_ref(), self.engine.store(), &self.target)
                .await
                .map_err(|err| err.to_string())?;
            let report = serde_json::to_value(&report)
                .unwrap_or_else(|err| json!({"error": format!("cannot encode the report: {err}")}));
            Ok(DispatchOutcome { report })
        })
    }

    fn crm_metrics(&self) -> Option<MetricsSnapshot> {
        Some(self.connector.metrics())
    }
}
