//! Fault knobs shared by both sandbox servers, settable at start and at runtime.
//!
//! [`FaultConfig`] is plain data; [`Faults`] is the live, shared handle the servers consult on
//! every API request (not on the token endpoint). Requests are numbered from 1 in arrival order
//! per server, so a test can say "hold the response of request 7".
//!
//! Random faults use a seeded RNG: with one client issuing requests sequentially the injected
//! sequence is reproducible; with concurrency only the fractions are.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// When a held ("timed out") request is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldWhen {
    /// Hold before doing anything: the request has no effect if the client gives up.
    BeforeProcessing,
    /// Apply the request, then hold the response: the client cannot know it succeeded
    /// (the case that makes idempotent activity logging necessary).
    AfterProcessing,
}

/// A knob setting. `Default` is a well-behaved server.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Fraction (0..=1) of API requests refused as throttled: HubSpot answers 429 with a
    /// `policyName`; Salesforce answers 403 `REQUEST_LIMIT_EXCEEDED`
    /// ("ConcurrentPerOrgLongTxn Limit exceeded.", i.e. transient, unlike the daily limit).
    pub throttle_fraction: f64,
    /// Fraction (0..=1) of API requests answered with a 5xx (503 or 500) before processing.
    pub server_error_fraction: f64,
    /// Added to every API request before it is handled.
    pub latency: Duration,
    /// Access tokens stop working this long after they were issued (`None`: never).
    pub token_lifetime: Option<Duration>,
    /// Revoke every issued token when the API request with this number arrives, so that
    /// request (and later ones with old tokens) get 401.
    pub revoke_tokens_at_request: Option<u64>,
    /// HubSpot search only sees writes older than this (eventual consistency).
    pub search_index_lag: Duration,
    /// Request numbers whose response is held for `hold_duration`.
    pub hold_requests: BTreeMap<u64, HoldWhen>,
    /// How long a held request is held (long enough for any client timeout).
    pub hold_duration: Duration,
    /// API calls allowed per (simulated) day; beyond it Salesforce answers 403
    /// `REQUEST_LIMIT_EXCEEDED` ("TotalRequests Limit exceeded.") and HubSpot 429 `DAILY`.
    pub daily_api_limit: u64,
    /// Seed of the RNG that draws random faults.
    pub seed: u64,
    /// Successful write results come back without their record id (HubSpot batch `results`,
    /// Salesforce collection save results), as a misbehaving proxy or an API change could
    /// answer: the client must not take such an answer for a confirmed write.
    pub omit_write_ids: bool,
    /// API requests numbered `from..=to` are all refused as throttled (as with
    /// `throttle_fraction`): a throttling spell a test can place by request count.
    pub throttle_window: Option<(u64, u64)>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            throttle_fraction: 0.0,
            server_error_fraction: 0.0,
            latency: Duration::ZERO,
            token_lifetime: None,
            revoke_tokens_at_request: None,
            search_index_lag: Duration::ZERO,
            hold_requests: BTreeMap::new(),
            hold_duration: Duration::from_secs(300),
            daily_api_limit: 1_000_000,
            seed: 0,
            omit_write_ids: false,
            throttle_window: None,
        }
    }
}

/// What the server should do with one API request, decided before it is handled.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestPlan {
    /// 1-based arrival number of this API request.
    pub number: u64,
    pub latency: Duration,
    /// Tokens must be revoked before authenticating this request.
    pub revoke_tokens: bool,
    pub hold: Option<(HoldWhen, Duration)>,
    pub injected: Option<InjectedFault>,
}

/// A random fault drawn for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFault {
    Throttle,
    /// The HTTP status to answer (500 or 503).
    ServerError(u16),
}

/// The live fault settings of one server plus its request numbering and daily usage.
#[derive(Debug)]
pub struct Faults {
    config: Mutex<FaultConfig>,
    rng: Mutex<StdRng>,
    requests: AtomicU64,
    api_usage: AtomicU64,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        Faults {
            config: Mutex::new(config),
            rng: Mutex::new(rng),
            requests: AtomicU64::new(0),
            api_usage: AtomicU64::new(0),
        }
    }

    /// The current settings.
    pub fn config(&self) -> FaultConfig {
        lock(&self.config).clone()
    }

    /// Replace the settings (re-seeds the fault RNG from `config.seed`).
    pub fn set(&self, config: FaultConfig) {
        *lock(&self.rng) = StdRng::seed_from_u64(config.seed);
        *lock(&self.config) = config;
    }

    /// Change some settings in place, e.g. `faults.update(|f| f.throttle_fraction = 0.2)`.
    pub fn update(&self, change: impl FnOnce(&mut FaultConfig)) {
        change(&mut lock(&self.config));
    }

    /// Back to a well-behaved server (keeps the request numbering and usage).
    pub fn clear(&self) {
        let seed = lock(&self.config).seed;
        self.set(FaultConfig {
            seed,
            ..FaultConfig::default()
        });
    }

    /// The current token lifetime knob (read on every request, so kept cheap).
    pub fn token_lifetime(&self) -> Option<Duration> {
        lock(&self.config).token_lifetime
    }

    /// The current search index lag knob (HubSpot search).
    pub fn search_index_lag(&self) -> Duration {
        lock(&self.config).search_index_lag
    }

    /// API requests seen so far.
    pub fn requests_seen(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// API calls counted against the daily limit so far.
    pub fn api_usage(&self) -> u64 {
        self.api_usage.load(Ordering::SeqCst)
    }

    /// Set the daily usage, e.g. to just below the limit.
    pub fn set_api_usage(&self, used: u64) {
        self.api_usage.store(used, Ordering::SeqCst);
    }

    /// Number the next API request and decide its faults.
    pub fn plan_request(&self) -> RequestPlan {
        let number = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let config = lock(&self.config);
        let injected = {
            let mut rng = lock(&self.rng);
            let roll: f64 = rng.gen();
            let in_window = config
                .throttle_window
                .is_some_and(|(from, to)| (from..=to).contains(&number));
            if in_window || roll < config.throttle_fraction {
                Some(InjectedFault::Throttle)
            } else if roll < config.throttle_fraction + config.server_error_fraction {
                Some(InjectedFault::ServerError(if rng.gen_bool(0.5) {
                    503
                } else {
                    500
                }))
            } else {
                None
            }
        };
        RequestPlan {
            number,
            latency: config.latency,
            revoke_tokens: config.revoke_tokens_at_request == Some(number),
            hold: config
                .hold_requests
                .get(&number)
                .map(|when| (*when, config.hold_duration)),
            injected,
        }
    }

    /// Count one call against the daily limit; `Err((used, limit))` once it is exhausted
    /// (the refused call is not counted, as Salesforce does not count refused calls).
    pub fn charge_api_call(&self) -> Result<(u64, u64), (u64, u64)> {
        let limit = lock(&self.config).daily_api_limit;
        let used = self.api_usage.load(Ordering::SeqCst);
        if used >= limit {
            return Err((used, limit));
        }
        let used = self.api_usage.fetch_add(1, Ordering::SeqCst) + 1;
        Ok((used, limit))
    }

    /// Whether successful write results lose their record ids (see [`FaultConfig`]).
    pub fn omit_write_ids(&self) -> bool {
        lock(&self.config).omit_write_ids
    }

    /// Current `(used, limit)` of the daily budget.
    pub fn usage(&self) -> (u64, u64) {
        (self.api_usage(), lock(&self.config).daily_api_limit)
    }
}

/// `response` with the record ids of its successful write results removed: each element of a
/// top-level array (Salesforce save results with `"success": true`) or of `results` (HubSpot
/// batch responses) loses its `id`. Other responses pass unchanged.
pub async fn without_write_ids(response: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let stripped = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|mut json| {
            let results = match &mut json {
                serde_json::Value::Array(items) => items,
                serde_json::Value::Object(o) => o.get_mut("results")?.as_array_mut()?,
                _ => return None,
            };
            for r in results
                .iter_mut()
                .filter_map(serde_json::Value::as_object_mut)
            {
                if r.get("success") != Some(&serde_json::Value::Bool(false)) {
                    r.remove("id");
                }
            }
            serde_json::to_vec(&json).ok()
        });
    match stripped {
        Some(body) => {
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            axum::response::Response::from_parts(parts, axum::body::Body::from(body))
        }
        None => axum::response::Response::from_parts(parts, axum::body::Body::from(bytes)),
    }
}

/// Poisoning only means another handler panicked mid-update; the knob data is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_roughly_honoured_and_reproducible() {
        let config = FaultConfig {
            throttle_fraction: 0.1,
            server_error_fraction: 0.2,
            seed: 42,
            ..FaultConfig::default()
        };
        let draw = |faults: &Faults| -> Vec<Option<InjectedFault>> {
            (0..10_000)
                .map(|_| faults.plan_request().injected)
                .collect()
        };
        let a = draw(&Faults::new(config.clone()));
        let b = draw(&Faults::new(config));
        assert_eq!(a, b);
        let throttles = a
            .iter()
            .filter(|f| **f == Some(InjectedFault::Throttle))
            .count();
        let errors = a
            .iter()
            .filter(|f| matches!(f, Some(InjectedFault::ServerError(_))))
            .count();
        assert!((800..1_200).contains(&throttles), "{throttles}");
        assert!((1_700..2_300).contains(&errors), "{errors}");
    }

    #[test]
    fn requests_are_numbered_and_holds_and_revocations_hit_their_number() {
        let mut hold = BTreeMap::new();
        hold.insert(3, HoldWhen::AfterProcessing);
        let faults = Faults::new(FaultConfig {
            hold_requests: hold,
            revoke_tokens_at_request: Some(2),
            ..FaultConfig::default()
        });
        let plans: Vec<RequestPlan> = (0..4).map(|_| faults.plan_request()).collect();
        assert_eq!(plans[0].number, 1);
        assert!(plans[1].revoke_tokens && !plans[0].revoke_tokens);
        assert_eq!(plans[2].hold.map(|h| h.0), Some(HoldWhen::AfterProcessing));
        assert_eq!(plans[3].hold, None);
        assert_eq!(faults.requests_seen(), 4);
    }

    #[test]
    fn daily_limit_refuses_once_exhausted() {
        let faults = Faults::new(FaultConfig {
            daily_api_limit: 2,
            ..FaultConfig::default()
        });
        assert_eq!(faults.charge_api_call(), Ok((1, 2)));
        assert_eq!(faults.charge_api_call(), Ok((2, 2)));
        assert_eq!(faults.charge_api_call(), Err((2, 2)));
        faults.set_api_usage(0);
        assert_eq!(faults.charge_api_call(), Ok((1, 2)));
    }
}
