//! Per-connection request counters: calls by endpoint, retries, throttling, token refreshes.
//! Cheap enough to keep always on; the daemon exposes a [`MetricsSnapshot`] on `/metrics` and
//! `crmsync sync` prints one in its summary.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Default)]
pub struct Metrics {
    calls: Mutex<BTreeMap<&'static str, u64>>,
    retries: AtomicU64,
    throttled: AtomicU64,
    token_refreshes: AtomicU64,
    failed_requests: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// HTTP requests sent, by endpoint label (`query`, `contacts_search`, ...), retries included.
    pub calls_by_endpoint: BTreeMap<String, u64>,
    /// Requests sent again after a retryable failure.
    pub retries: u64,
    /// Responses that were a rate-limit signal (HubSpot 429, Salesforce REQUEST_LIMIT_EXCEEDED).
    pub throttled: u64,
    /// 401s recovered from: a new access token, or for a private-app token that cannot be
    /// refreshed, one retry with the same token.
    pub token_refreshes: u64,
    /// Requests that failed for good (permanent error or attempts exhausted).
    pub failed_requests: u64,
}

impl MetricsSnapshot {
    pub fn total_calls(&self) -> u64 {
        self.calls_by_endpoint.values().sum()
    }

    /// Calls to one endpoint label (0 when never called).
    pub fn calls(&self, endpoint: &str) -> u64 {
        self.calls_by_endpoint.get(endpoint).copied().unwrap_or(0)
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &MetricsSnapshot) -> MetricsSnapshot {
        let calls_by_endpoint = self
            .calls_by_endpoint
            .iter()
            .map(|(k, v)| (k.clone(), v - earlier.calls(k)))
            .filter(|(_, v)| *v > 0)
            .collect();
        MetricsSnapshot {
            calls_by_endpoint,
            retries: self.retries - earlier.retries,
            throttled: self.throttled - earlier.throttled,
            token_refreshes: self.token_refreshes - earlier.token_refreshes,
            failed_requests: self.failed_requests - earlier.failed_requests,
        }
    }
}

impl Metrics {
    pub fn call(&self, endpoint: &'static str) {
        let mut m = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(endpoint).or_insert(0) += 1;
    }
    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }
    pub fn token_refresh(&self) {
        self.token_refreshes.fetch_add(1, Ordering::Relaxed);
    }
    pub fn failed(&self) {
        self.failed_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        MetricsSnapshot {
            calls_by_endpoint: calls.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            retries: self.retries.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            token_refreshes: self.token_refreshes.load(Ordering::Relaxed),
            failed_requests: self.failed_requests.load(Ordering::Relaxed),
        }
    }
}
