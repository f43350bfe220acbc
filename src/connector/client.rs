//! One HTTP request to a CRM, done properly: rate limit, auth, retry with backoff, counters.
//!
//! Both connectors send every request through [`ApiClient::send`]. Idempotent requests (reads,
//! field updates) are retried on 429/5xx/timeouts. Creates are not retried once the server may
//! have acted on them (5xx, timeout after sending): the caller gets
//! [`ConnectorError::OutcomeUnknown`] and must look the record up before sending it again.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

use super::auth::{Authenticator, Session};
use super::config::ConnectionSettings;
use super::metrics::Metrics;
use super::ratelimit::RateLimiter;
use super::retry::{Backoff, Verdict};
use super::ConnectorError;

/// How a CRM signals trouble.
pub type Classifier = fn(StatusCode, &HeaderMap, &[u8]) -> Verdict;

/// One request, described once and sent as often as needed.
#[derive(Debug, Clone)]
pub struct ApiRequest<'a> {
    /// Label for counters and errors (`query`, `contacts_batch_update`, ...).
    pub endpoint: &'static str,
    pub method: Method,
    /// A path below the session's base URL (`/services/data/...`), or a full URL.
    pub path: &'a str,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(&'static str, String)>,
    pub json: Option<Bytes>,
    /// Safe to repeat after the server may have acted on it.
    pub idempotent: bool,
}

impl<'a> ApiRequest<'a> {
    pub fn get(endpoint: &'static str, path: &'a str) -> Self {
        ApiRequest {
            endpoint,
            method: Method::GET,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            json: None,
            idempotent: true,
        }
    }

    pub fn with_json(
        endpoint: &'static str,
        method: Method,
        path: &'a str,
        body: &impl serde::Serialize,
        idempotent: bool,
    ) -> Self {
        // Serializing our own request types cannot fail (string keys, no non-finite floats
        // reach here: numbers come from typed contact values).
        let json = serde_json::to_vec(body).unwrap_or_default();
        ApiRequest {
            endpoint,
            method,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            json: Some(Bytes::from(json)),
            idempotent,
        }
    }

    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub fn header(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((key, value.into()));
        self
    }
}

/// A successful response.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        connection: &str,
        endpoint: &'static str,
    ) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| ConnectorError::Decode {
            connection: connection.to_string(),
            endpoint,
            message: e.to_string(),
        })
    }
}

/// The shared HTTP machinery of one connection.
#[derive(Debug)]
pub struct ApiClient {
    pub connection: String,
    http: reqwest::Client,
    auth: Authenticator,
    limiter: RateLimiter,
    backoff: Backoff,
    classify: Classifier,
    pub metrics: Arc<Metrics>,
}

impl ApiClient {
    pub fn new(
        settings: &ConnectionSettings,
        classify: Classifier,
    ) -> Result<Self, ConnectorError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .pool_max_idle_per_host(8)
            .build()
            .map_err(|e| ConnectorError::Transport {
                connection: settings.name.clone(),
                endpoint: "client",
                message: e.to_string(),
            })?;
        Ok(ApiClient {
            connection: settings.name.clone(),
            http,
            auth: Authenticator::new(settings),
            limiter: RateLimiter::new(settings.rate_limit),
            backoff: Backoff::new(settings.retry),
            classify,
            metrics: Arc::new(Metrics::default()),
        })
    }

    /// The current session (logs in on first use).
    pub async fn session(&self) -> Result<Arc<Session>, ConnectorError> {
        self.auth
            .session(&self.http, &self.backoff, &self.metrics)
            .await
    }

    /// Send `req` until it succeeds, fails for good, or its attempts run out.
    pub async fn send(&self, req: &ApiRequest<'_>) -> Result<ApiResponse, ConnectorError> {
        let mut session = self.session().await?;
        let mut refreshed = false;
        let mut failures: u32 = 0;
        loop {
            self.limiter.acquire().await;
            self.metrics.call(req.endpoint);
            // Only the session's own origin gets the token (a CRM-given next-page URL may
            // name another host).
            let url = super::endpoint::resolve(&session.base_url, req.path).map_err(|message| {
                self.metrics.failed();
                ConnectorError::Api {
                    connection: self.connection.clone(),
                    endpoint: req.endpoint,
                    message,
                }
            })?;
            let mut rb = self
                .http
                .request(req.method.clone(), url)
                .bearer_auth(&session.access_token);
            if !req.query.is_empty() {
                rb = rb.query(&req.query);
            }
            for (k, v) in &req.headers {
                rb = rb.header(*k, v);
            }
            if let Some(body) = &req.json {
                rb = rb
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let (verdict, ok) = match rb.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(body) => {
                            let v = (self.classify)(status, &headers, &body);
                            let ok = (v == Verdict::Success).then_some(ApiResponse {
                                status,
                                headers,
                                body,
                            });
                            (v, ok)
                        }
                        Err(e) => (transport_verdict(&e), None),
                    }
                }
                Err(e) => (transport_verdict(&e), None),
            };
            match verdict {
                Verdict::Success => {
                    if let Some(resp) = ok {
                        return Ok(resp);
                    }
                }
                Verdict::Unauthorized { message } => {
                    if refreshed {
                        self.metrics.failed();
                        return Err(ConnectorError::Auth {
                            connection: self.connection.clone(),
                            message: format!(
                                "{}: still 401 after a token refresh: {message}",
                                req.endpoint
                            ),
                        });
                    }
                    // A 401 was not processed, so even a create is safe to resend.
                    session = self
                        .auth
                        .refresh(&session, &self.http, &self.backoff, &self.metrics)
                        .await?;
                    refreshed = true;
                }
                Verdict::Permanent { message } => {
                    self.metrics.failed();
                    return Err(ConnectorError::Api {
                        connection: self.connection.clone(),
                        endpoint: req.endpoint,
                        message,
                    });
                }
                Verdict::Retry {
                    hint,
                    pause_connection,
                    sent,
                    reason,
                } => {
                    if pause_connection {
                        self.metrics.throttled();
                    }
                    if sent && !req.idempotent {
                        self.metrics.failed();
                        return Err(ConnectorError::OutcomeUnknown {
                            connection: self.connection.clone(),
                            endpoint: req.endpoint,
                            message: reason,
                        });
                    }
                    failures += 1;
                    if failures >= self.backoff.max_attempts() {
                        self.metrics.failed();
                        return Err(ConnectorError::Exhausted {
                            connection: self.connection.clone(),
                            endpoint: req.endpoint,
                            attempts: failures,
                            message: reason,
                        });
                    }
                    self.metrics.retry();
                    let wait = self.backoff.delay(failures - 1, hint);
                    tracing::debug!(connection = %self.connection, endpoint = req.endpoint, ?wait, %reason, "retrying");
                    if pause_connection {
                        self.limiter.pause(wait);
                    } else {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }
}

/// A request that got no HTTP answer. A refused connection never reached the server; anything
/// else (timeout, reset mid-response) may have been acted on.
fn transport_verdict(e: &reqwest::Error) -> Verdict {
    Verdict::Retry {
        hint: None,
        pause_connection: false,
        sent: !e.is_connect(),
        reason: if e.is_timeout() {
            format!("timed out: {e}")
        } else {
            format!("transport error: {e}")
        },
    }
}
