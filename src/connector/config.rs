//! How to reach one CRM connection: URLs, credentials (by environment variable name only),
//! paging, rate limits, retries and timeouts.
//!
//! [`ConnectionConfig`] is the serde shape embedded in the YAML config under
//! `connections.<name>`; [`ConnectionConfig::resolve`] turns it into [`ConnectionSettings`], the
//! fully defaulted, secret-resolved form the connectors take. Tests and benches build
//! `ConnectionSettings` directly so they never touch the process environment.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConnectorKind;

/// Default Salesforce REST API version.
pub const DEFAULT_SALESFORCE_API_VERSION: &str = "v62.0";
/// How long transient failures are ridden out before an outbox entry is dead-lettered.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The client-side rate limit's admitted range: below one request in 1000 s a connection is
/// useless (and the wait between tokens stops fitting a timer), above 100 000/s it limits
/// nothing any CRM serves.
pub const MIN_REQUESTS_PER_SECOND: f64 = 0.001;
pub const MAX_REQUESTS_PER_SECOND: f64 = 100_000.0;
/// The largest token bucket (requests sent at once after a quiet spell).
pub const MAX_BURST: u32 = 100_000;
/// Default HubSpot API host.
pub const DEFAULT_HUBSPOT_BASE_URL: &str = "https://api.hubapi.com";
/// Default Salesforce login host (client-credentials needs the org's My Domain in practice).
pub const DEFAULT_SALESFORCE_LOGIN_URL: &str = "https://login.salesforce.com";

/// One connection as written in the YAML config. Every field is optional; secrets are named by
/// environment variable, never written inline (the Salesforce client id is not a secret and may
/// be given literally).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// `salesforce` or `hubspot`; defaults to the kind the rule set gives the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ConnectorKind>,
    /// HubSpot: API base URL (default `https://api.hubapi.com`). Salesforce: ignored, the token
    /// response's `instance_url` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Salesforce: the host serving `/services/oauth2/token` (your My Domain URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_url: Option<String>,
    /// HubSpot: environment variable holding the private-app token (default `HUBSPOT_TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// HubSpot OAuth (public apps): environment variable holding the refresh token. When set,
    /// access tokens come from `POST /oauth/v1/token` with `client_id` / `client_id_env` and
    /// `client_secret_env`, and are renewed before they expire and after a 401.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_env: Option<String>,
    /// Salesforce: the connected app's client id (consumer key), literally. HubSpot OAuth: the
    /// app's client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Salesforce: environment variable holding the client id, when not given literally
    /// (default `SALESFORCE_CLIENT_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_env: Option<String>,
    /// Salesforce: environment variable holding the client secret
    /// (default `SALESFORCE_CLIENT_SECRET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// Salesforce REST API version, e.g. `v62.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Records per read request (Salesforce 200..=2000, default 2000; HubSpot list ≤ 100,
    /// search ≤ 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    /// Client-side rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
    /// Attempts per request before giving up (default 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// First backoff step in milliseconds (default 250).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    /// Longest single wait in milliseconds, server hints included (default 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_max_ms: Option<u64>,
    /// Per-request timeout in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Incremental reads re-read this many seconds before the cursor (default 120): CRM
    /// timestamps are stamped at transaction start, so a record can commit after a later one
    /// was already read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_secs: Option<u64>,
    /// Dispatch gives up on a field write whose write results cannot be read after this many
    /// passes (default 5). Transient errors are not counted: see `give_up_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delivery_attempts: Option<u32>,
    /// How long an outbox entry is kept (deferred, retried with backoff) through transient
    /// errors — throttling, 5xx, timeouts, connection errors — before it becomes a dead letter
    /// (default `24h`; `90m`, `2d`, ...).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub give_up_after: Option<Duration>,
    /// How a CRM edit of a field crmsync has a pending write for is decided: `latest_wins`
    /// (default: the later change wins, per field), `crm_wins` or `crmsync_wins`. Every
    /// conflict is recorded (`crmsync conflicts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicts: Option<crate::store::ConflictPolicy>,
}

/// Client-side rate limit: a token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub requests_per_second: f64,
    pub burst: u32,
}

/// Credentials, resolved.
#[derive(Clone, PartialEq)]
pub enum Credentials {
    /// HubSpot private-app token.
    Bearer(String),
    /// Salesforce OAuth 2.0 client credentials.
    ClientCredentials {
        client_id: String,
        client_secret: String,
    },
    /// HubSpot OAuth: a refresh token exchanged for short-lived access tokens.
    RefreshToken {
        client_id: String,
        client_secret: String,
        refresh_token: String,
    },
}

impl std::fmt::Debug for Credentials {
    // Never print secrets, not even in debug logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(***)"),
            Credentials::ClientCredentials { client_id, .. } => {
                write!(f, "ClientCredentials({client_id}, ***)")
            }
            Credentials::RefreshToken { client_id, .. } => {
                write!(f, "RefreshToken({client_id}, ***)")
            }
        }
    }
}

/// Retry/backoff settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySettings {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(60),
        }
    }
}

/// A connection with every default applied and its secrets read: what connectors take.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// The connection's name in the rules (`connection NAME { .. }`).
    pub name: String,
    pub kind: ConnectorKind,
    /// HubSpot API base, or the Salesforce login host.
    pub base_url: String,
    pub credentials: Credentials,
    pub api_version: String,
    pub page_size: u32,
    pub rate_limit: RateLimitConfig,
    pub retry: RetrySettings,
    pub timeout: Duration,
    pub overlap: Duration,
    pub max_delivery_attempts: u32,
    /// How long an outbox entry is kept deferred through transient failures (throttling, 5xx,
    /// timeouts, connection errors) before it becomes a dead letter.
    pub give_up_after: Duration,
}

/// A connection config that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("connection `{connection}`: environment variable `{var}` is not set ({what})")]
    MissingEnv {
        connection: String,
        var: String,
        what: &'static str,
    },
    #[error("connection `{connection}`: {message}")]
    Invalid { connection: String, message: String },
}

impl ConnectionSettings {
    /// Settings for a sandbox (or any server) reached at `base_url` with literal credentials;
    /// the defaults are those of [`ConnectionConfig::resolve`].
    pub fn new(
        name: impl Into<String>,
        kind: ConnectorKind,
        base_url: impl Into<String>,
        credentials: Credentials,
    ) -> Self {
        ConnectionSettings {
            name: name.into(),
            kind,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            credentials,
            api_version: DEFAULT_SALESFORCE_API_VERSION.to_string(),
            page_size: kind.default_page_size(),
            rate_limit: kind.default_rate_limit(),
            retry: RetrySettings::default(),
            timeout: Duration::from_secs(30),
            overlap: Duration::from_secs(120),
            max_delivery_attempts: 5,
            give_up_after: DEFAULT_GIVE_UP_AFTER,
        }
    }
}

impl ConnectorKind {
    fn default_page_size(self) -> u32 {
        match self {
            ConnectorKind::Salesforce => 2000,
            ConnectorKind::Hubspot => 100,
        }
    }

    /// HubSpot: 100 requests per 10 s per private app (the lowest tier). Salesforce has no
    /// per-second limit, only a daily allocation and 25 long-running concurrent requests; 25/s
    /// keeps a runaway loop from burning the daily allocation.
    fn default_rate_limit(self) -> RateLimitConfig {
        match self {
            ConnectorKind::Salesforce => RateLimitConfig {
                requests_per_second: 25.0,
                burst: 25,
            },
            ConnectorKind::Hubspot => RateLimitConfig {
                requests_per_second: 10.0,
                burst: 10,
            },
        }
    }
}

impl ConnectionConfig {
    /// Apply defaults and read secrets through `env` (normally `std::env::var(..).ok()`).
    /// `rules_kind` is the kind the rule set gives this connection.
    pub fn resolve(
        &self,
        name: &str,
        rules_kind: ConnectorKind,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ConnectionSettings, ConfigError> {
        let kind = self.kind.unwrap_or(rules_kind);
        if kind != rules_kind {
            return Err(ConfigError::Invalid {
                connection: name.to_string(),
                message: format!(
                    "config says kind `{}` but the rules define a `{}` connection",
                    kind.as_str(),
                    rules_kind.as_str()
                ),
            });
        }
        let read = |var: &str, what: &'static str| {
            env(var)
                .filter(|v| !v.is_empty())
                .ok_or(ConfigError::MissingEnv {
                    connection: name.to_string(),
                    var: var.to_string(),
                    what,
                })
        };
        let (base_url, credentials) = match kind {
            ConnectorKind::Hubspot => {
                let credentials = match &self.refresh_token_env {
                    Some(var) => Credentials::RefreshToken {
                        client_id: match &self.client_id {
                            Some(id) => id.clone(),
                            None => read(
                                self.client_id_env.as_deref().unwrap_or("HUBSPOT_CLIENT_ID"),
                                "HubSpot app client id",
                            )?,
                        },
                        client_secret: read(
                            self.client_secret_env
                                .as_deref()
                                .unwrap_or("HUBSPOT_CLIENT_SECRET"),
                            "HubSpot app client secret",
                        )?,
                        refresh_token: read(var, "HubSpot OAuth refresh token")?,
                    },
                    None => Credentials::Bearer(read(
                        self.token_env.as_deref().unwrap_or("HUBSPOT_TOKEN"),
                        "HubSpot private-app token",
                    )?),
                };
                (
                    self.base_url
                        .clone()
                        .unwrap_or_else(|| DEFAULT_HUBSPOT_BASE_URL.to_string()),
                    credentials,
                )
            }
            ConnectorKind::Salesforce => {
                let client_id = match &self.client_id {
                    Some(id) => id.clone(),
                    None => read(
                        self.client_id_env
                            .as_deref()
                            .unwrap_or("SALESFORCE_CLIENT_ID"),
                        "Salesforce client id",
                    )?,
                };
                let client_secret = read(
                    self.client_secret_env
                        .as_deref()
                        .unwrap_or("SALESFORCE_CLIENT_SECRET"),
                    "Salesforce client secret",
                )?;
                (
                    self.login_url
                        .clone()
                        .or_else(|| self.base_url.clone())
                        .unwrap_or_else(|| DEFAULT_SALESFORCE_LOGIN_URL.to_string()),
                    Credentials::ClientCredentials {
                        client_id,
                        client_secret,
                    },
                )
            }
        };
        let mut s = ConnectionSettings::new(name, kind, base_url, credentials);
        if let Some(v) = &self.api_version {
            s.api_version = if v.starts_with('v') {
                v.clone()
            } else {
                format!("v{v}")
            };
        }
        if let Some(p) = self.page_size {
            let max = match kind {
                ConnectorKind::Salesforce => 2000,
                ConnectorKind::Hubspot => 200,
            };
            if p == 0 || p > max {
                return Err(ConfigError::Invalid {
                    connection: name.to_string(),
                    message: format!("page_size {p} is out of range 1..={max}"),
                });
            }
            s.page_size = p;
        }
        if let Some(r) = self.rate_limit {
            let invalid = |message: String| ConfigError::Invalid {
                connection: name.to_string(),
                message,
            };
            // NaN fails the range test too.
            if !(MIN_REQUESTS_PER_SECOND..=MAX_REQUESTS_PER_SECOND).contains(&r.requests_per_second)
            {
                return Err(invalid(format!(
                    "rate_limit.requests_per_second {} is out of range \
                     {MIN_REQUESTS_PER_SECOND}..={MAX_REQUESTS_PER_SECOND}",
                    r.requests_per_second
                )));
            }
            if !(1..=MAX_BURST).contains(&r.burst) {
                return Err(invalid(format!(
                    "rate_limit.burst {} is out of range 1..={MAX_BURST}",
                    r.burst
                )));
            }
            s.rate_limit = r;
        }
        if let Some(n) = self.max_attempts {
            s.retry.max_attempts = n.max(1);
        }
        if let Some(ms) = self.backoff_base_ms {
            s.retry.base_delay = Duration::from_millis(ms);
        }
        if let Some(ms) = self.backoff_max_ms {
            s.retry.max_delay = Duration::from_millis(ms);
        }
        if let Some(t) = self.timeout_secs {
            s.timeout = Duration::from_secs(t.max(1));
        }
        if let Some(o) = self.overlap_secs {
            s.overlap = Duration::from_secs(o);
        }
        if let Some(n) = self.max_delivery_attempts {
            s.max_delivery_attempts = n.max(1);
        }
        if let Some(d) = self.give_up_after {
            s.give_up_after = d;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hubspot_token_comes_from_the_named_variable() {
        let cfg: ConnectionConfig =
            serde_yaml::from_str("token_env: MY_HS\nbase_url: http://127.0.0.1:9\npage_size: 50")
                .unwrap();
        let s = cfg
            .resolve("hubspot", ConnectorKind::Hubspot, |v| {
                (v == "MY_HS").then(|| "tok".to_string())
            })
            .unwrap();
        assert_eq!(s.credentials, Credentials::Bearer("tok".into()));
        assert_eq!(s.base_url, "http://127.0.0.1:9");
        assert_eq!(s.page_size, 50);
    }

    #[test]
    fn missing_secret_names_the_variable_and_connection() {
        let cfg = ConnectionConfig {
            client_id: Some("cid".into()),
            ..Default::default()
        };
        let err = cfg
            .resolve("sf", ConnectorKind::Salesforce, |_| None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection `sf`: environment variable `SALESFORCE_CLIENT_SECRET` is not set (Salesforce client secret)"
        );
    }

    #[test]
    fn hubspot_oauth_reads_three_secrets() {
        let cfg: ConnectionConfig = serde_yaml::from_str(
            "client_id: app-1\nclient_secret_env: HS_SECRET\nrefresh_token_env: HS_REFRESH",
        )
        .unwrap();
        let s = cfg
            .resolve("hubspot", ConnectorKind::Hubspot, |v| {
                Some(format!("<{v}>"))
            })
            .unwrap();
        assert_eq!(
            s.credentials,
            Credentials::RefreshToken {
                client_id: "app-1".into(),
                client_secret: "<HS_SECRET>".into(),
                refresh_token: "<HS_REFRESH>".into(),
            }
        );
    }

    #[test]
    fn the_conflict_policy_is_named_per_connection() {
        let cfg: ConnectionConfig = serde_yaml::from_str("conflicts: crm_wins").unwrap();
        assert_eq!(cfg.conflicts, Some(crate::store::ConflictPolicy::CrmWins));
        let err = serde_yaml::from_str::<ConnectionConfig>("conflicts: newest").unwrap_err();
        assert!(err.to_string().contains("latest_wins"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_yaml::from_str::<ConnectionConfig>("tokn_env: X").unwrap_err();
        assert!(err.to_string().contains("tokn_env"), "{err}");
    }

    #[test]
    fn page_size_is_bounded_per_kind() {
        let cfg = ConnectionConfig {
            page_size: Some(500),
            ..Default::default()
        };
        let err = cfg
            .resolve("hs", ConnectorKind::Hubspot, |_| Some("t".into()))
            .unwrap_err();
        assert!(err.to_string().contains("1..=200"), "{err}");
    }

    fn resolve_yaml(yaml: &str) -> Result<ConnectionSettings, ConfigError> {
        let cfg: ConnectionConfig = serde_yaml::from_str(yaml).unwrap();
        cfg.resolve("hs", ConnectorKind::Hubspot, |_| Some("t".into()))
    }

    #[test]
    fn a_rate_limit_out_of_range_is_refused_by_key() {
        for (yaml, key) in [
            (
                "rate_limit: {requests_per_second: 1e-300, burst: 1}",
                "rate_limit.requests_per_second",
            ),
            (
                "rate_limit: {requests_per_second: 1e300, burst: 1}",
                "rate_limit.requests_per_second",
            ),
            (
                "rate_limit: {requests_per_second: .inf, burst: 1}",
                "rate_limit.requests_per_second",
            ),
            (
                "rate_limit: {requests_per_second: 5, burst: 0}",
                "rate_limit.burst",
            ),
            (
                "rate_limit: {requests_per_second: 5, burst: 4000000000}",
                "rate_limit.burst",
            ),
        ] {
            let err = resolve_yaml(yaml).unwrap_err().to_string();
            assert!(err.starts_with("connection `hs`: "), "{yaml}: {err}");
            assert!(err.contains(key), "{yaml}: {err}");
            assert!(err.contains("out of range"), "{yaml}: {err}");
        }
        let s = resolve_yaml("rate_limit: {requests_per_second: 0.5, burst: 2}").unwrap();
        assert_eq!(s.rate_limit.requests_per_second, 0.5);
        // What the range admits, the limiter can hold without panicking.
        let _ = crate::connector::ratelimit::RateLimiter::new(RateLimitConfig {
            requests_per_second: MIN_REQUESTS_PER_SECOND,
            burst: MAX_BURST,
        });
    }

    #[test]
    fn give_up_after_is_a_duration_with_a_long_default() {
        assert_eq!(
            resolve_yaml("{}").unwrap().give_up_after,
            Duration::from_secs(86_400)
        );
        assert_eq!(
            resolve_yaml("give_up_after: 90m").unwrap().give_up_after,
            Duration::from_secs(5_400)
        );
        let err = serde_yaml::from_str::<ConnectionConfig>("give_up_after: soon").unwrap_err();
        assert!(err.to_string().contains("give_up_after"), "{err}");
    }
}
