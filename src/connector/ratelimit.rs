//! Client-side rate limiting, one limiter per connection.
//!
//! A token bucket (`requests_per_second`, `burst`) plus a *pause*: when a CRM says "slow down"
//! (HubSpot 429 `TEN_SECONDLY_ROLLING`, Salesforce `REQUEST_LIMIT_EXCEEDED`), every request on the
//! connection must wait, not just the one that was refused. `governor` was considered; it has
//! no way to push a server-dictated pause into a limiter shared by all tasks, and the bucket
//! itself is a dozen lines, so a small hand-written one is clearer than wrapping governor with a
//! second mechanism.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::config::RateLimitConfig;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last_refill: Instant,
    paused_until: Option<Instant>,
}

/// A token bucket shared by every request of one connection.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> Self {
        let burst = f64::from(config.burst.max(1));
        RateLimiter {
            rate: config.requests_per_second.max(f64::MIN_POSITIVE),
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                last_refill: Instant::now(),
                paused_until: None,
            }),
        }
    }

    /// Wait until a request may be sent, then take its token.
    pub async fn acquire(&self) {
        loop {
            let wait = self.try_take(Instant::now());
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// Stop every request on this connection for `for_how_long` (a server-side signal).
    pub fn pause(&self, for_how_long: Duration) {
        let until = Instant::now() + for_how_long;
        let mut s = self.lock();
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
    }

    /// Take a token now, or say how long to wait before trying again.
    fn try_take(&self, now: Instant) -> Option<Duration> {
        let mut s = self.lock();
        if let Some(until) = s.paused_until {
            if until > now {
                return Some(until - now);
            }
            s.paused_until = None;
        }
        let elapsed = now.saturating_duration_since(s.last_refill).as_secs_f64();
        s.tokens = (s.tokens + elapsed * self.rate).min(self.burst);
        s.last_refill = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - s.tokens) / self.rate))
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // A poisoned lock only means another task panicked mid-update of two numbers; the
        // numbers are still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time, small numbers: only lower bounds are asserted (a loaded machine can only make
    // things slower).
    #[tokio::test]
    async fn burst_is_free_then_the_rate_holds() {
        let rl = RateLimiter::new(RateLimitConfig {
            requests_per_second: 100.0,
            burst: 5,
        });
        for _ in 0..5 {
            assert!(rl.try_take(Instant::now()).is_none(), "the burst is free");
        }
        assert!(rl.try_take(Instant::now()).is_some(), "the bucket is empty");
        let start = Instant::now();
        for _ in 0..10 {
            rl.acquire().await;
        }
        assert!(
            start.elapsed() >= Duration::from_millis(90),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn pause_holds_every_caller_and_is_never_shortened() {
        let rl = RateLimiter::new(RateLimitConfig {
            requests_per_second: 1000.0,
            burst: 10,
        });
        rl.pause(Duration::from_millis(200));
        rl.pause(Duration::from_millis(10));
        let start = Instant::now();
        rl.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "{:?}",
            start.elapsed()
        );
    }
}
