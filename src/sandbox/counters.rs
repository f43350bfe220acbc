//! Request counters by endpoint and status, readable by tests and benches.
//!
//! Endpoint names are short dotted keys chosen by each server (`sf.query`, `sf.query_more`,
//! `hs.search`, …; each server's module lists its own). Every request is counted under its
//! endpoint and under `"<endpoint> <status>"`, e.g. `sf.query 200`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::faults::lock;

#[derive(Debug, Default)]
pub struct Counters {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    pub fn new() -> Self {
        Counters::default()
    }

    /// Count one request to `endpoint` answered with `status`.
    pub fn record(&self, endpoint: &str, status: u16) {
        let mut counts = lock(&self.counts);
        *counts.entry(endpoint.to_string()).or_insert(0) += 1;
        *counts.entry(format!("{endpoint} {status}")).or_insert(0) += 1;
    }

    /// Requests to `endpoint`, any status (0 when never called).
    pub fn get(&self, endpoint: &str) -> u64 {
        lock(&self.counts).get(endpoint).copied().unwrap_or(0)
    }

    /// Requests to `endpoint` answered with `status`.
    pub fn get_status(&self, endpoint: &str, status: u16) -> u64 {
        lock(&self.counts)
            .get(&format!("{endpoint} {status}"))
            .copied()
            .unwrap_or(0)
    }

    /// All requests, every endpoint and status.
    pub fn total(&self) -> u64 {
        lock(&self.counts)
            .iter()
            .filter(|(key, _)| !key.contains(' '))
            .map(|(_, n)| n)
            .sum()
    }

    /// Every counter: `endpoint` and `endpoint status` keys.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        lock(&self.counts).clone()
    }

    /// Per-endpoint totals only (no status keys).
    pub fn by_endpoint(&self) -> BTreeMap<String, u64> {
        lock(&self.counts)
            .iter()
            .filter(|(key, _)| !key.contains(' '))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    pub fn reset(&self) {
        lock(&self.counts).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_endpoint_and_status() {
        let counters = Counters::new();
        counters.record("sf.query", 200);
        counters.record("sf.query", 200);
        counters.record("sf.query", 503);
        counters.record("sf.describe", 200);
        assert_eq!(counters.get("sf.query"), 3);
        assert_eq!(counters.get_status("sf.query", 200), 2);
        assert_eq!(counters.get_status("sf.query", 503), 1);
        assert_eq!(counters.get("sf.updated"), 0);
        assert_eq!(counters.total(), 4);
        assert_eq!(counters.by_endpoint().len(), 2);
        assert_eq!(counters.snapshot().get("sf.describe 200"), Some(&1));
        counters.reset();
        assert_eq!(counters.total(), 0);
    }
}
