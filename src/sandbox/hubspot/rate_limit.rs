//! HubSpot's rate limits (crm_apis.md §1.12): a rolling ten-second burst budget per app, the
//! search API's own per-second budget, the daily budget (kept by the shared [`Faults`]), the
//! `X-HubSpot-RateLimit-*` headers on non-search responses, and the 429 bodies with `policyName`.
//!
//! The burst and search windows use real time: they model what a client's own limiter must
//! respect, so a test sets a small budget and watches the client slow down rather than fail.
//!
//! [`Faults`]: crate::sandbox::Faults

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::errors::correlation_id;

const TEN_SECONDS: Duration = Duration::from_secs(10);
const ONE_SECOND: Duration = Duration::from_secs(1);

/// Which budget refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The per-app burst budget (`TEN_SECONDLY_ROLLING`).
    TenSecondly,
    /// The search API's per-second budget.
    SearchSecondly,
    /// The per-account daily budget.
    Daily,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::TenSecondly => "TEN_SECONDLY_ROLLING",
            Policy::SearchSecondly => "SECONDLY",
            Policy::Daily => "DAILY",
        }
    }

    /// The message HubSpot sends (the Node SDK matches the search one verbatim).
    pub fn message(self) -> &'static str {
        match self {
            Policy::TenSecondly => "You have reached your ten_secondly_rolling limit.",
            Policy::SearchSecondly => "You have reached your secondly limit.",
            Policy::Daily => "You have reached your daily limit.",
        }
    }
}

/// A sliding window of admitted requests.
#[derive(Debug)]
struct Window {
    span: Duration,
    admitted: VecDeque<Instant>,
}

impl Window {
    fn new(span: Duration) -> Self {
        Window {
            span,
            admitted: VecDeque::new(),
        }
    }

    fn used(&mut self, now: Instant) -> u32 {
        while let Some(first) = self.admitted.front() {
            if now.duration_since(*first) >= self.span {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        self.admitted.len() as u32
    }

    /// Admits one request if fewer than `max` were admitted in the window; returns how many
    /// remain after it, or `None` when refused.
    fn admit(&mut self, max: u32, now: Instant) -> Option<u32> {
        let used = self.used(now);
        if used >= max {
            return None;
        }
        self.admitted.push_back(now);
        Some(max - used - 1)
    }
}

/// Live budgets of one sandbox.
#[derive(Debug)]
pub struct RateLimiter {
    pub burst_max: u32,
    pub search_per_second: u32,
    burst: Window,
    search: Window,
}

impl RateLimiter {
    pub fn new(burst_max: u32, search_per_second: u32) -> Self {
        RateLimiter {
            burst_max,
            search_per_second,
            burst: Window::new(TEN_SECONDS),
            search: Window::new(ONE_SECOND),
        }
    }

    /// Admits a non-search request; `Ok(remaining)` or the refusing policy.
    pub fn admit_burst(&mut self) -> Result<u32, Policy> {
        let max = self.burst_max;
        self.burst
            .admit(max, Instant::now())
            .ok_or(Policy::TenSecondly)
    }

    /// Admits a search request against the search budget.
    pub fn admit_search(&mut self) -> Result<(), Policy> {
        let max = self.search_per_second;
        self.search
            .admit(max, Instant::now())
            .map(|_| ())
            .ok_or(Policy::SearchSecondly)
    }

    /// Remaining burst budget without admitting anything.
    pub fn burst_remaining(&mut self) -> u32 {
        let used = self.burst.used(Instant::now());
        self.burst_max.saturating_sub(used)
    }
}

/// The budgets as reported in headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max: u32,
    pub remaining: u32,
    pub daily: u64,
    pub daily_remaining: u64,
}

/// Adds HubSpot's rate-limit headers (non-search responses only).
pub fn add_headers(headers: &mut HeaderMap, budget: Budget) {
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("x-hubspot-ratelimit-max", budget.max.to_string());
    put(
        "x-hubspot-ratelimit-remaining",
        budget.remaining.to_string(),
    );
    put(
        "x-hubspot-ratelimit-interval-milliseconds",
        TEN_SECONDS.as_millis().to_string(),
    );
    put("x-hubspot-ratelimit-daily", budget.daily.to_string());
    put(
        "x-hubspot-ratelimit-daily-remaining",
        budget.daily_remaining.to_string(),
    );
}

/// A 429 answer as HubSpot gives it.
pub fn too_many_requests(policy: Policy) -> Response {
    let body = json!({
        "status": "error",
        "message": policy.message(),
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": policy.name(),
        "requestId": correlation_id(),
    });
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_refuses_beyond_max_and_frees_up_after_its_span() {
        let mut window = Window::new(TEN_SECONDS);
        let t0 = Instant::now();
        assert_eq!(window.admit(2, t0), Some(1));
        assert_eq!(window.admit(2, t0 + Duration::from_secs(1)), Some(0));
        assert_eq!(window.admit(2, t0 + Duration::from_secs(2)), None);
        // The first admission leaves the window at t0 + 10 s.
        assert_eq!(window.admit(2, t0 + Duration::from_secs(10)), Some(0));
        assert_eq!(window.used(t0 + Duration::from_secs(11)), 1);
    }

    #[test]
    fn headers_carry_every_budget() {
        let mut headers = HeaderMap::new();
        add_headers(
            &mut headers,
            Budget {
                max: 190,
                remaining: 189,
                daily: 1000,
                daily_remaining: 10,
            },
        );
        assert_eq!(headers["x-hubspot-ratelimit-max"], "190");
        assert_eq!(headers["x-hubspot-ratelimit-remaining"], "189");
        assert_eq!(
            headers["x-hubspot-ratelimit-interval-milliseconds"],
            "10000"
        );
        assert_eq!(headers["x-hubspot-ratelimit-daily"], "1000");
        assert_eq!(headers["x-hubspot-ratelimit-daily-remaining"], "10");
    }
}
