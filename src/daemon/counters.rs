//! The daemon's counters and gauges, exposed by `GET /metrics` in the Prometheus/OpenMetrics
//! text format (encoded by the `prometheus-client` crate).
//!
//! Counters are bumped where things happen (webhook handlers, the scheduler); gauges that
//! mirror durable state (outbox depth, dead letters, contacts) are read from the store at scrape
//! time, so they are right even after a restart.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Every metric the daemon exports. Cheap to clone (the metric handles share their values).
#[derive(Clone)]
pub struct Counters {
    registry: std::sync::Arc<Registry>,
    events: Family<Labels, Counter>,
    sync_runs: Family<Labels, Counter>,
    sync_records: Family<Labels, Counter>,
    conflicts: Family<Labels, Counter>,
    crm_requests: Family<Labels, Counter>,
    crm_problems: Family<Labels, Counter>,
    outbox_depth: Family<Labels, Gauge>,
    dead_letters: Gauge,
    outbox_deferred: Family<Labels, Gauge>,
    contacts: Gauge,
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

impl Counters {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("crmsync");
        let events = Family::<Labels, Counter>::default();
        registry.register(
            "events",
            "Conversation events received, by source (retell, api) and outcome (applied, duplicate, ignored, no_number, rejected)",
            events.clone(),
        );
        let sync_runs = Family::<Labels, Counter>::default();
        registry.register(
            "sync_runs",
            "Inbound sync runs, by connection, trigger (schedule, manual) and result (ok, failed, cancelled)",
            sync_runs.clone(),
        );
        let sync_records = Family::<Labels, Counter>::default();
        registry.register(
            "sync_records",
            "CRM records read by inbound syncs, by connection and outcome",
            sync_records.clone(),
        );
        let conflicts = Family::<Labels, Counter>::default();
        registry.register(
            "conflicts",
            "CRM edits of fields crmsync had a pending write for, by connection and winner (crm, crmsync)",
            conflicts.clone(),
        );
        let crm_requests = Family::<Labels, Counter>::default();
        registry.register(
            "crm_requests",
            "HTTP requests made to a CRM, retries included, by connection and endpoint",
            crm_requests.clone(),
        );
        let crm_problems = Family::<Labels, Counter>::default();
        registry.register(
            "crm_request_problems",
            "CRM responses by problem: throttled (429 / REQUEST_LIMIT_EXCEEDED), retried (429/5xx/timeout, sent again), failed (permanent error or attempts exhausted), token_refresh (401 then a new token)",
            crm_problems.clone(),
        );
        let outbox_depth = Family::<Labels, Gauge>::default();
        registry.register(
            "outbox_depth",
            "Outbox entries waiting to be sent, by kind (write, activity)",
            outbox_depth.clone(),
        );
        let dead_letters = Gauge::default();
        registry.register(
            "dead_letters",
            "Outbox entries the CRM rejected for good",
            dead_letters.clone(),
        );
        let outbox_deferred = Family::<Labels, Gauge>::default();
        registry.register(
            "outbox_deferred",
            "Outbox entries waiting out transient CRM errors (throttling, 5xx, timeouts, connection errors), retried with backoff, by kind (write, activity)",
            outbox_deferred.clone(),
        );
        let contacts = Gauge::default();
        registry.register("contacts", "Contacts in the store", contacts.clone());
        Counters {
            registry: std::sync::Arc::new(registry),
            events,
            sync_runs,
            sync_records,
            conflicts,
            crm_requests,
            crm_problems,
            outbox_depth,
            dead_letters,
            outbox_deferred,
            contacts,
        }
    }

    pub fn event(&self, source: &'static str, outcome: &'static str) {
        self.events
            .get_or_create(&vec![
                ("source", source.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
    }

    pub fn sync_run(&self, connection: &str, trigger: &'static str, result: &'static str) {
        self.sync_runs
            .get_or_create(&vec![
                ("connection", connection.to_string()),
                ("trigger", trigger.to_string()),
                ("result", result.to_string()),
            ])
            .inc();
    }

    pub fn sync_records(&self, connection: &str, outcome: &str, count: u64) {
        if count > 0 {
            self.sync_records
                .get_or_create(&vec![
                    ("connection", connection.to_string()),
                    ("outcome", outcome.to_string()),
                ])
                .inc_by(count);
        }
    }

    /// Counts the conflicts a sync report (`InboundReport` as JSON) lists, by winner.
    pub fn conflicts_in_report(&self, connection: &str, report: &serde_json::Value) {
        let Some(conflicts) = report.get("conflicts").and_then(|c| c.as_array()) else {
            return;
        };
        for conflict in conflicts {
            let winner = conflict
                .get("winner")
                .and_then(|w| w.as_str())
                .unwrap_or("unknown");
            self.conflicts
                .get_or_create(&vec![
                    ("connection", connection.to_string()),
                    ("winner", winner.to_string()),
                ])
                .inc();
        }
    }

    /// Brings the CRM request counters up to a connector's cumulative snapshot.
    pub fn observe_crm(
        &self,
        connection: &str,
        snapshot: &crate::connector::metrics::MetricsSnapshot,
    ) {
        for (endpoint, count) in &snapshot.calls_by_endpoint {
            raise(
                &self.crm_requests,
                vec![
                    ("connection", connection.to_string()),
                    ("endpoint", endpoint.clone()),
                ],
                *count,
            );
        }
        for (problem, count) in [
            ("throttled", snapshot.throttled),
            ("retried", snapshot.retries),
            ("failed", snapshot.failed_requests),
            ("token_refresh", snapshot.token_refreshes),
        ] {
            raise(
                &self.crm_problems,
                vec![
                    ("connection", connection.to_string()),
                    ("problem", problem.to_string()),
                ],
                count,
            );
        }
    }

    /// Sets the gauges that mirror the store.
    pub fn set_store_gauges(
        &self,
        pending_writes: u64,
        pending_activities: u64,
        dead: u64,
        contacts: u64,
    ) {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.outbox_depth
            .get_or_create(&vec![("kind", "write".to_string())])
            .set(clamp(pending_writes));
        self.outbox_depth
            .get_or_create(&vec![("kind", "activity".to_string())])
            .set(clamp(pending_activities));
        self.dead_letters.set(clamp(dead));
        self.contacts.set(clamp(contacts));
    }

    /// Sets the deferred gauges (entries riding out transient CRM errors).
    pub fn set_deferred(&self, writes: u64, activities: u64) {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (kind, n) in [("write", writes), ("activity", activities)] {
            self.outbox_deferred
                .get_or_create(&vec![("kind", kind.to_string())])
                .set(clamp(n));
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Raises a counter to `total` (connector counters are cumulative snapshots; a Prometheus
/// counter only goes up).
fn raise(family: &Family<Labels, Counter>, labels: Labels, total: u64) {
    let counter = family.get_or_create(&labels);
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters_and_gauges() {
        let counters = Counters::new();
        counters.event("retell", "applied");
        counters.event("retell", "applied");
        counters.sync_records("salesforce", "created", 7);
        let mut snapshot = crate::connector::metrics::MetricsSnapshot::default();
        snapshot
            .calls_by_endpoint
            .insert("contacts_search".to_string(), 5);
        snapshot.throttled = 2;
        counters.observe_crm("hubspot", &snapshot);
        counters.observe_crm("hubspot", &snapshot);
        counters.set_store_gauges(3, 1, 4, 50);
        counters.conflicts_in_report(
            "salesforce",
            &serde_json::json!({"conflicts": [{"winner": "crm"}, {"winner": "crmsync"}, {"winner": "crm"}]}),
        );
        let text = counters.render();
        for line in [
            "crmsync_events_total{source=\"retell\",outcome=\"applied\"} 2",
            "crmsync_sync_records_total{connection=\"salesforce\",outcome=\"created\"} 7",
            "crmsync_crm_requests_total{connection=\"hubspot\",endpoint=\"contacts_search\"} 5",
            "crmsync_crm_request_problems_total{connection=\"hubspot\",problem=\"throttled\"} 2",
            "crmsync_outbox_depth{kind=\"write\"} 3",
            "crmsync_outbox_depth{kind=\"activity\"} 1",
            "crmsync_dead_letters 4",
            "crmsync_contacts 50",
            "crmsync_conflicts_total{connection=\"salesforce\",winner=\"crm\"} 2",
            "crmsync_conflicts_total{connection=\"salesforce\",winner=\"crmsync\"} 1",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
