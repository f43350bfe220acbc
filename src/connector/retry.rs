//! When to retry a CRM request and how long to wait.
//!
//! [`classify_hubspot`] and [`classify_salesforce`] read a response the way each CRM signals
//! trouble (crm_apis.md §1.12, §2.2): HubSpot 429 with `policyName` and the
//! `X-HubSpot-RateLimit-Interval-Milliseconds` header, the search "secondly limit", 423 and 477
//! with `Retry-After`; Salesforce 403 `REQUEST_LIMIT_EXCEEDED` (it never sends 429), 401
//! `INVALID_SESSION_ID`, `UNABLE_TO_LOCK_ROW`. [`Backoff`] is exponential with full jitter,
//! never shorter than a server's hint and never longer than the configured cap.

use std::time::Duration;

use rand::Rng;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::config::RetrySettings;

/// What to do with a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Success,
    /// Try again after at least `hint`; `pause_connection` stops every request on the connection
    /// for that long (a rate-limit signal, not a one-request hiccup). `sent` says whether the
    /// server may have acted on the request (5xx, timeout) — a non-idempotent create must then
    /// not be blindly retried.
    Retry {
        hint: Option<Duration>,
        pause_connection: bool,
        sent: bool,
        reason: String,
    },
    /// The token is stale: refresh once and retry.
    Unauthorized {
        message: String,
    },
    /// The CRM refused for good: a bad request, a missing field, a validation error.
    Permanent {
        message: String,
    },
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    settings: RetrySettings,
}

impl Backoff {
    pub fn new(settings: RetrySettings) -> Self {
        Backoff { settings }
    }

    pub fn max_attempts(&self) -> u32 {
        self.settings.max_attempts
    }

    /// The wait before retry number `retry` (0 for the first retry): uniformly random in
    /// `[0, base·2^retry]` ("full jitter", so that clients that failed together do not retry
    /// together), raised to the server's hint, capped at `max_delay`.
    pub fn delay(&self, retry: u32, hint: Option<Duration>) -> Duration {
        let ceiling = self
            .settings
            .base_delay
            .saturating_mul(1u32 << retry.min(20))
            .min(self.settings.max_delay);
        let jittered = if ceiling.is_zero() {
            Duration::ZERO
        } else {
            ceiling.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
        };
        jittered
            .max(hint.unwrap_or(Duration::ZERO))
            .min(self.settings.max_delay)
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn header_ms(headers: &HeaderMap, name: &str) -> Option<Duration> {
    let v = headers.get(name)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_millis)
}

/// Short human text from an error body (the CRM's own message when it has one).
pub fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match parsed {
        // Salesforce: an array of {message, errorCode, fields}.
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|e| {
                let code = e
                    .get("errorCode")
                    .or_else(|| e.get("statusCode"))
                    .and_then(|v| v.as_str())
                    .unwrap_or("ERROR");
                let msg = e.get("message").and_then(|v| v.as_str()).unwrap_or("");
                format!("{code}: {msg}")
            })
            .collect::<Vec<_>>()
            .join("; "),
        // HubSpot: {status, message, category, correlationId, ..}; OAuth: {error, error_description}.
        Some(serde_json::Value::Object(o)) => {
            let msg = o
                .get("message")
                .or_else(|| o.get("error_description"))
                .and_then(|v| v.as_str())
                .unwrap_or("");
            match o
                .get("category")
                .or_else(|| o.get("error"))
                .and_then(|v| v.as_str())
            {
                Some(cat) => format!("{cat}: {msg}"),
                None => msg.to_string(),
            }
        }
        _ => String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
    }
}

/// HubSpot's signals (crm_apis.md §1.12).
pub fn classify_hubspot(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        return Verdict::Success;
    }
    let message = error_message(body);
    match status.as_u16() {
        401 => Verdict::Unauthorized { message },
        429 => {
            let policy = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("policyName")
                        .and_then(|p| p.as_str())
                        .map(str::to_owned)
                });
            // The official SDK waits 10 s on TEN_SECONDLY_ROLLING and 1 s on the search
            // "secondly limit"; the interval header, when present, says the window exactly.
            let hint = retry_after(headers).or_else(|| match policy.as_deref() {
                Some("TEN_SECONDLY_ROLLING") => Some(
                    header_ms(headers, "x-hubspot-ratelimit-interval-milliseconds")
                        .unwrap_or(Duration::from_secs(10)),
                ),
                Some("DAILY") => Some(Duration::from_secs(3600)),
                _ if message.contains("secondly limit") => Some(Duration::from_secs(1)),
                _ => header_ms(headers, "x-hubspot-ratelimit-interval-milliseconds"),
            });
            Verdict::Retry {
                hint,
                pause_connection: true,
                sent: false,
                reason: format!("429 {message}"),
            }
        }
        // A proxy or the API gave up waiting for the request: nothing was done.
        408 => Verdict::Retry {
            hint: retry_after(headers),
            pause_connection: false,
            sent: false,
            reason: format!("408 {message}"),
        },
        423 => Verdict::Retry {
            hint: Some(Duration::from_secs(2)),
            pause_connection: false,
            sent: false,
            reason: format!("423 {message}"),
        },
        477 => Verdict::Retry {
            hint: retry_after(headers),
            pause_connection: true,
            sent: false,
            reason: format!("477 {message}"),
        },
        s if s >= 500 => Verdict::Retry {
            hint: retry_after(headers),
            pause_connection: false,
            sent: true,
            reason: format!("{s} {message}"),
        },
        _ => Verdict::Permanent { message },
    }
}

/// Salesforce's signals (crm_apis.md §2.2): no 429, no Retry-After.
pub fn classify_salesforce(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        return Verdict::Success;
    }
    let message = error_message(body);
    match status.as_u16() {
        401 => Verdict::Unauthorized { message },
        403 if message.contains("REQUEST_LIMIT_EXCEEDED") => Verdict::Retry {
            // The concurrent-request variant clears in seconds; the daily one does not, and
            // then the attempts run out and the error is reported with the CRM's message.
            hint: Some(Duration::from_secs(5)),
            pause_connection: true,
            sent: false,
            reason: format!("403 {message}"),
        },
        // A proxy in front of Salesforce gave up waiting for the request: nothing was done,
        // so it is tried again rather than dead-lettered.
        408 => Verdict::Retry {
            hint: retry_after(headers),
            pause_connection: false,
            sent: false,
            reason: format!("408 {message}"),
        },
        400 if message.contains("UNABLE_TO_LOCK_ROW") => Verdict::Retry {
            hint: None,
            pause_connection: false,
            sent: false,
            reason: format!("400 {message}"),
        },
        429 => Verdict::Retry {
            hint: retry_after(headers),
            pause_connection: true,
            sent: false,
            reason: format!("429 {message}"),
        },
        s if s >= 500 => Verdict::Retry {
            hint: retry_after(headers),
            pause_connection: false,
            sent: true,
            reason: format!("{s} {message}"),
        },
        _ => Verdict::Permanent { message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff::new(RetrySettings {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        });
        for retry in 0..10 {
            let d = b.delay(retry, None);
            let ceiling =
                Duration::from_millis(100 * (1 << retry.min(4))).min(Duration::from_millis(1000));
            assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
        }
        assert_eq!(
            b.delay(0, Some(Duration::from_millis(700))),
            Duration::from_millis(700),
            "a server hint is a floor"
        );
        assert_eq!(
            b.delay(0, Some(Duration::from_secs(30))),
            Duration::from_millis(1000),
            "and the cap still applies"
        );
    }

    #[test]
    fn hubspot_ten_secondly_429_uses_the_interval_header() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-hubspot-ratelimit-interval-milliseconds",
            HeaderValue::from_static("10000"),
        );
        let body = br#"{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","correlationId":"c","policyName":"TEN_SECONDLY_ROLLING"}"#;
        match classify_hubspot(StatusCode::TOO_MANY_REQUESTS, &h, body) {
            Verdict::Retry {
                hint,
                pause_connection,
                sent,
                ..
            } => {
                assert_eq!(hint, Some(Duration::from_secs(10)));
                assert!(pause_connection);
                assert!(!sent);
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn hubspot_search_secondly_limit_waits_a_second() {
        let body = br#"{"status":"error","message":"You have reached your secondly limit.","category":"RATE_LIMITS"}"#;
        match classify_hubspot(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body) {
            Verdict::Retry { hint, .. } => assert_eq!(hint, Some(Duration::from_secs(1))),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn hubspot_validation_error_is_permanent_with_the_crm_message() {
        let body = br#"{"status":"error","message":"Property values were not valid","correlationId":"x","category":"VALIDATION_ERROR"}"#;
        assert_eq!(
            classify_hubspot(StatusCode::BAD_REQUEST, &HeaderMap::new(), body),
            Verdict::Permanent {
                message: "VALIDATION_ERROR: Property values were not valid".into()
            }
        );
    }

    #[test]
    fn salesforce_request_limit_is_a_retry_and_session_expiry_a_refresh() {
        let body = br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert!(matches!(
            classify_salesforce(StatusCode::FORBIDDEN, &HeaderMap::new(), body),
            Verdict::Retry {
                pause_connection: true,
                ..
            }
        ));
        let body =
            br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;
        assert_eq!(
            classify_salesforce(StatusCode::UNAUTHORIZED, &HeaderMap::new(), body),
            Verdict::Unauthorized {
                message: "INVALID_SESSION_ID: Session expired or invalid".into()
            }
        );
        let body = br#"[{"message":"No such column 'Foo'","errorCode":"INVALID_FIELD"}]"#;
        assert!(matches!(
            classify_salesforce(StatusCode::BAD_REQUEST, &HeaderMap::new(), body),
            Verdict::Permanent { .. }
        ));
        assert!(matches!(
            classify_salesforce(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), b""),
            Verdict::Retry { sent: true, .. }
        ));
    }

    #[test]
    fn a_request_timeout_is_retried_not_refused() {
        for status in [StatusCode::REQUEST_TIMEOUT, StatusCode::TOO_MANY_REQUESTS] {
            assert!(
                matches!(
                    classify_salesforce(status, &HeaderMap::new(), b""),
                    Verdict::Retry { sent: false, .. }
                ),
                "{status}"
            );
        }
        assert!(matches!(
            classify_hubspot(StatusCode::REQUEST_TIMEOUT, &HeaderMap::new(), b""),
            Verdict::Retry { sent: false, .. }
        ));
    }
}
