//! Access tokens: HubSpot private-app bearer tokens and Salesforce OAuth 2.0 client credentials.
//!
//! A [`Session`] is a token plus the base URL requests go to. Salesforce answers the token request
//! with an `instance_url` that differs from the login host; every API call must go there
//! (crm_apis.md §2.1). Salesforce tokens carry no `expires_in`, so a token is refreshed only when
//! the API says 401 `INVALID_SESSION_ID`, once per request.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;

use super::config::{ConnectionSettings, Credentials};
use super::metrics::Metrics;
use super::retry::{error_message, Backoff};
use super::{ConnectorError, ConnectorKind};

/// A usable access token and where to send requests with it.
#[derive(Debug, PartialEq, Eq)]
pub struct Session {
    pub access_token: String,
    /// Base URL without a trailing slash (HubSpot API host, Salesforce `instance_url`).
    pub base_url: String,
    /// When to renew before use (HubSpot OAuth `expires_in`, less a margin). Salesforce says
    /// nothing; its tokens are renewed after a 401.
    pub renew_at: Option<std::time::Instant>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    instance_url: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Hands out the current session and replaces it when the CRM rejects it.
#[derive(Debug)]
pub struct Authenticator {
    connection: String,
    kind: ConnectorKind,
    credentials: Credentials,
    login_url: String,
    current: Mutex<Option<Arc<Session>>>,
}

impl Authenticator {
    pub fn new(settings: &ConnectionSettings) -> Self {
        Authenticator {
            connection: settings.name.clone(),
            kind: settings.kind,
            credentials: settings.credentials.clone(),
            login_url: settings.base_url.clone(),
            current: Mutex::new(None),
        }
    }

    /// The current session, logging in first if there is none.
    pub async fn session(
        &self,
        http: &reqwest::Client,
        backoff: &Backoff,
        metrics: &Metrics,
    ) -> Result<Arc<Session>, ConnectorError> {
        let mut cur = self.current.lock().await;
        if let Some(s) = cur.as_ref() {
            if s.renew_at.is_none_or(|t| std::time::Instant::now() < t) {
                return Ok(s.clone());
            }
            metrics.token_refresh();
        }
        let s = Arc::new(self.login(http, backoff, metrics).await?);
        *cur = Some(s.clone());
        Ok(s)
    }

    /// Replace `stale` after a 401. When another task already replaced it, its new session is
    /// returned without a second login (many requests fail together when a token expires).
    pub async fn refresh(
        &self,
        stale: &Arc<Session>,
        http: &reqwest::Client,
        backoff: &Backoff,
        metrics: &Metrics,
    ) -> Result<Arc<Session>, ConnectorError> {
        let mut cur = self.current.lock().await;
        if let Some(s) = cur.as_ref() {
            if !Arc::ptr_eq(s, stale) {
                return Ok(s.clone());
            }
        }
        if let Credentials::Bearer(_) = self.credentials {
            // A private-app token cannot be refreshed, and HubSpot says a 401 alone does not
            // mean the token is bad: the caller retries once with the same token, and a second
            // 401 is reported as an authentication failure. Counted as a refresh: it is the
            // same recovery.
            metrics.token_refresh();
            return Ok(stale.clone());
        }
        metrics.token_refresh();
        let s = Arc::new(self.login(http, backoff, metrics).await?);
        *cur = Some(s.clone());
        Ok(s)
    }

    async fn login(
        &self,
        http: &reqwest::Client,
        backoff: &Backoff,
        metrics: &Metrics,
    ) -> Result<Session, ConnectorError> {
        let (url, form) = match &self.credentials {
            Credentials::Bearer(token) => {
                return Ok(Session {
                    access_token: token.clone(),
                    base_url: self.login_url.clone(),
                    renew_at: None,
                })
            }
            Credentials::ClientCredentials {
                client_id,
                client_secret,
            } => (
                format!("{}/services/oauth2/token", self.login_url),
                vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.as_str()),
                ],
            ),
            Credentials::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => (
                format!("{}/oauth/v1/token", self.login_url),
                vec![
                    ("grant_type", "refresh_token"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.as_str()),
                    ("refresh_token", refresh_token.as_str()),
                ],
            ),
        };
        let mut attempt = 0;
        loop {
            metrics.call("oauth_token");
            let outcome = http.post(&url).form(&form).send().await;
            let retry_reason = match outcome {
                Ok(resp) if resp.status().is_success() => {
                    let body = resp.bytes().await.map_err(|e| self.auth_err(e))?;
                    let tok: TokenResponse =
                        serde_json::from_slice(&body).map_err(|e| ConnectorError::Decode {
                            connection: self.connection.clone(),
                            endpoint: "oauth_token",
                            message: e.to_string(),
                        })?;
                    let base_url = match (self.kind, tok.instance_url) {
                        (_, Some(u)) => u.trim_end_matches('/').to_string(),
                        (_, None) => self.login_url.clone(),
                    };
                    // Renew a minute early (or at half-life for very short tokens).
                    let renew_at = tok.expires_in.map(|secs| {
                        let margin = (secs / 2).min(60);
                        std::time::Instant::now() + Duration::from_secs(secs - margin)
                    });
                    return Ok(Session {
                        access_token: tok.access_token,
                        base_url,
                        renew_at,
                    });
                }
                Ok(resp) if resp.status().is_server_error() || resp.status().as_u16() == 429 => {
                    format!("HTTP {}", resp.status().as_u16())
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.unwrap_or_default();
                    metrics.failed();
                    return Err(ConnectorError::Auth {
                        connection: self.connection.clone(),
                        message: format!(
                            "token request refused ({status}): {}",
                            error_message(&body)
                        ),
                    });
                }
                Err(e) => e.to_string(),
            };
            attempt += 1;
            if attempt >= backoff.max_attempts() {
                metrics.failed();
                return Err(ConnectorError::Auth {
                    connection: self.connection.clone(),
                    message: format!("token request failed {attempt} times: {retry_reason}"),
                });
            }
            metrics.retry();
            tokio::time::sleep(
                backoff
                    .delay(attempt - 1, None)
                    .max(Duration::from_millis(1)),
            )
            .await;
        }
    }

    fn auth_err(&self, e: reqwest::Error) -> ConnectorError {
        ConnectorError::Auth {
            connection: self.connection.clone(),
            message: e.to_string(),
        }
    }
}
