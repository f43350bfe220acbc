//! The YAML config file (`crmsync.yaml`): where the store and rules live, the active connection,
//! per-connection endpoints and credentials, rate limits, the LLM used by `merge`, and the
//! daemon's HTTP settings.
//!
//! Every key is optional and has a documented default, so an empty file is a valid config.
//! Unknown keys are errors (a typo must not silently fall back to a default), and every error
//! names the key path (`connections.salesforce.client_id_env`) and what was expected there.
//!
//! Secrets never appear in the file: the file names an environment variable (`*_env` keys) and
//! [`SecretEnv::resolve`] reads it when the value is needed. Neither `Debug` nor `Display` of any
//! type here prints a secret value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The file looked for when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "crmsync.yaml";
/// Default store file (also the CLI's `--store` default).
pub const DEFAULT_STORE_FILE: &str = "crmsync.redb";
/// Default rules directory.
pub const DEFAULT_RULES_DIR: &str = "rules";

/// Errors loading or validating a config. Every variant names the file and, where it applies,
/// the key path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or a key has the wrong shape; `key` is the dotted path serde was at.
    #[error("{path}: {key}: {message}")]
    Parse {
        path: PathBuf,
        key: String,
        message: String,
    },
    /// The YAML parsed but a value is not acceptable.
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    /// A secret's environment variable is not set (or empty). The value is never printed; the
    /// variable name is.
    #[error("{key}: environment variable `{var}` is not set (the config names it as the source of this secret)")]
    MissingSecret { key: String, var: String },
}

/// The whole config file. See `examples/crmsync.yaml` for a commented example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The redb contact store. Relative paths are relative to the config file's directory.
    pub store: Option<PathBuf>,
    /// Directory of `*.rules` files. Relative paths are relative to the config file's directory.
    pub rules: Option<PathBuf>,
    /// Region (ISO 3166 alpha-2) assumed for phone numbers without a country code.
    pub default_region: String,
    /// Time between incremental inbound syncs of the active connection (`5m`, `30s`, `1h`).
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// How often the daemon retries the outbox when nothing new woke it (backoff-delayed items,
    /// a CRM that was down).
    #[serde(with = "humantime_serde")]
    pub dispatch_interval: Duration,
    /// The connection that receives outbound writes and activities. Optional when the rule set
    /// defines exactly one connection.
    pub active_connection: Option<String>,
    /// Per-connection endpoints, credentials and rate limits, keyed by the connection's name in
    /// the rule files (`connection salesforce { .. }`).
    pub connections: BTreeMap<String, ConnectionSettings>,
    /// The OpenAI-compatible endpoint used by `merge`; without it `merge` keeps both texts.
    pub llm: Option<LlmSettings>,
    /// The daemon's HTTP server.
    pub server: ServerSettings,
    /// How Retell webhooks are read (where a chat's phone number is found).
    pub retell: RetellSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            store: None,
            rules: None,
            default_region: "US".to_string(),
            sync_interval: Duration::from_secs(300),
            dispatch_interval: Duration::from_secs(2),
            active_connection: None,
            connections: BTreeMap::new(),
            llm: None,
            server: ServerSettings::default(),
            retell: RetellSettings::default(),
        }
    }
}

/// One connection's endpoints, credentials (by environment variable name), paging, rate limit,
/// retries and timeouts: the connector module's own config shape (see
/// `src/connector/config.rs` for every key and its default).
pub use crate::connector::config::ConnectionConfig as ConnectionSettings;

/// The `llm:` section: the OpenAI-compatible endpoint `merge` calls (`base_url`, `model`,
/// `api_key_env`, `timeout_ms`). Defined by the merge module, which uses it.
pub use crate::merge::LlmConfig as LlmSettings;

/// The daemon's HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on. Loopback by default: put a TLS-terminating proxy in front of it to
    /// receive Retell's webhooks.
    pub listen: SocketAddr,
    /// Environment variable holding the bearer token the `/v1` routes require.
    pub api_token_env: SecretEnv,
    /// Environment variable holding the Retell API key (the one with the webhook badge) used to
    /// verify `x-retell-signature`.
    pub retell_api_key_env: SecretEnv,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub body_limit: usize,
    /// Time a client has to send a request's head (request line and headers), from when the
    /// connection is opened or its previous response was sent; then the connection is closed.
    /// Also how long an idle keep-alive connection stays open.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's whole body, once its head arrived; then 408.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Open connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// After SIGTERM/SIGINT, the longest the daemon waits for requests in flight and the
    /// background sync and dispatch before it closes what is left and exits.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_token_env: SecretEnv("CRMSYNC_API_TOKEN".to_string()),
            retell_api_key_env: SecretEnv("RETELL_API_KEY".to_string()),
            body_limit: 1024 * 1024,
            header_read_timeout: crate::daemon::serve::Limits::DEFAULT.header_read_timeout,
            body_read_timeout: crate::daemon::serve::Limits::DEFAULT.body_read_timeout,
            max_connections: crate::daemon::serve::Limits::DEFAULT.max_connections,
            shutdown_timeout: crate::daemon::serve::Limits::DEFAULT.shutdown_timeout,
        }
    }
}

/// The `retell:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetellSettings {
    /// Keys looked up, in this order, in a chat's `metadata` and then in its
    /// `retell_llm_dynamic_variables` for the contact's phone number, when no `chat_inbound`
    /// webhook named the chat's sender (an SMS chat you started, an API chat). Retell's chat
    /// object carries no phone number of its own (docs/retell-webhooks.md).
    pub chat_number_keys: Vec<String>,
}

/// The default `retell.chat_number_keys`. Not `from_number`: in an SMS you start, that is your
/// own number.
pub const DEFAULT_CHAT_NUMBER_KEYS: [&str; 4] =
    ["customer_phone", "phone_number", "user_number", "to_number"];

impl Default for RetellSettings {
    fn default() -> Self {
        RetellSettings {
            chat_number_keys: DEFAULT_CHAT_NUMBER_KEYS.map(str::to_string).to_vec(),
        }
    }
}

/// The *name* of an environment variable that holds a secret. Printing it prints `$NAME`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretEnv(pub String);

impl SecretEnv {
    pub fn var_name(&self) -> &str {
        &self.0
    }

    /// Reads the variable. `key` is the config key that named it, for the error message.
    pub fn resolve(&self, key: &str) -> Result<String, ConfigError> {
        match std::env::var(&self.0) {
            Ok(value) if !value.is_empty() => Ok(value),
            _ => Err(ConfigError::MissingSecret {
                key: key.to_string(),
                var: self.0.clone(),
            }),
        }
    }
}

impl fmt::Debug for SecretEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.0)
    }
}

impl fmt::Display for SecretEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.0)
    }
}

/// A config read from a file, with the directory its relative paths are relative to.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    pub config: Config,
    /// The file it came from (`None` when no file was found and defaults apply).
    pub source: Option<PathBuf>,
}

impl LoadedConfig {
    /// The defaults, as used when there is no config file.
    pub fn defaults() -> Self {
        LoadedConfig {
            config: Config::default(),
            source: None,
        }
    }

    /// `--config FILE` if given (it must exist), else `./crmsync.yaml` if present, else defaults.
    pub fn discover(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        match explicit {
            Some(path) => Self::load(path),
            None => {
                let default = Path::new(DEFAULT_CONFIG_FILE);
                if default.is_file() {
                    Self::load(default)
                } else {
                    Ok(Self::defaults())
                }
            }
        }
    }

    /// Reads and validates one file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config = Config::parse(&text, path)?;
        Ok(LoadedConfig {
            config,
            source: Some(path.to_path_buf()),
        })
    }

    /// Resolves a path from the file against the config file's directory.
    fn relative(&self, path: &Path) -> PathBuf {
        match self.source.as_deref().and_then(Path::parent) {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    /// The store path: the CLI flag when given, else the config's, else `./crmsync.redb`.
    pub fn store_path(&self, cli: Option<&Path>) -> PathBuf {
        if let Some(path) = cli {
            return path.to_path_buf();
        }
        match &self.config.store {
            Some(path) => self.relative(path),
            None => PathBuf::from(DEFAULT_STORE_FILE),
        }
    }

    /// The rules directory: the CLI flag when given, else the config's, else `./rules`.
    pub fn rules_path(&self, cli: Option<&Path>) -> PathBuf {
        if let Some(path) = cli {
            return path.to_path_buf();
        }
        match &self.config.rules {
            Some(path) => self.relative(path),
            None => PathBuf::from(DEFAULT_RULES_DIR),
        }
    }
}

impl Config {
    /// Parses and validates YAML text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        // An empty file (or one holding only comments) is the all-defaults config; serde_yaml
        // would otherwise reject it as "EOF while parsing a value".
        if text
            .lines()
            .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
        {
            return Ok(Config::default());
        }
        let deserializer = serde_yaml::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let key = err.path().to_string();
            let message = err.into_inner().to_string();
            // serde_yaml sometimes starts its message with the path (or its parent's); the
            // error names the key already, so say it once.
            let message = strip_path_prefix(&key, message);
            ConfigError::Parse {
                path: path.to_path_buf(),
                key: if key == "." {
                    "(top level)".to_string()
                } else {
                    key
                },
                message,
            }
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        if self
            .default_region
            .parse::<phonenumber::country::Id>()
            .is_err()
            || self.default_region.len() != 2
            || self.default_region != self.default_region.to_uppercase()
        {
            return Err(invalid(
                "default_region",
                format!(
                    "expected a two-letter ISO 3166 region code such as `US` or `GB`, got `{}`",
                    self.default_region
                ),
            ));
        }
        if self.sync_interval < Duration::from_secs(1) {
            return Err(invalid(
                "sync_interval",
                "expected a duration of at least 1s, such as `5m`".to_string(),
            ));
        }
        if self.dispatch_interval < Duration::from_millis(10) {
            return Err(invalid(
                "dispatch_interval",
                "expected a duration of at least 10ms, such as `2s`".to_string(),
            ));
        }
        for (n, key) in self.retell.chat_number_keys.iter().enumerate() {
            if key.trim().is_empty() || key.trim() != key {
                return Err(invalid(
                    &format!("retell.chat_number_keys[{n}]"),
                    format!("expected a key of a chat's metadata or dynamic variables, such as `customer_phone`, got `{key}`"),
                ));
            }
        }
        if let Some(active) = &self.active_connection {
            if !is_rule_name(active) {
                return Err(invalid(
                    "active_connection",
                    format!("expected the name of a connection of the rule files, such as `salesforce`, got `{active}`"),
                ));
            }
        }
        for (name, settings) in &self.connections {
            if !is_rule_name(name) {
                return Err(invalid(
                    &format!("connections.{name}"),
                    "expected the name of a connection of the rule files, such as `salesforce`"
                        .to_string(),
                ));
            }
            for (key, url) in [
                ("base_url", &settings.base_url),
                ("login_url", &settings.login_url),
            ] {
                if let Some(url) = url {
                    check_http_url(url).map_err(|message| {
                        invalid(&format!("connections.{name}.{key}"), message)
                    })?;
                }
            }
            for (key, env) in [
                ("token_env", &settings.token_env),
                ("client_id_env", &settings.client_id_env),
                ("client_secret_env", &settings.client_secret_env),
            ] {
                if let Some(var) = env {
                    check_env_name(&SecretEnv(var.clone())).map_err(|message| {
                        invalid(&format!("connections.{name}.{key}"), message)
                    })?;
                }
            }
            if let Some(limit) = &settings.rate_limit {
                if !(limit.requests_per_second > 0.0 && limit.requests_per_second.is_finite()) {
                    return Err(invalid(
                        &format!("connections.{name}.rate_limit.requests_per_second"),
                        "expected a positive number".to_string(),
                    ));
                }
                if limit.burst == 0 {
                    return Err(invalid(
                        &format!("connections.{name}.rate_limit.burst"),
                        "expected at least 1".to_string(),
                    ));
                }
            }
            if settings.page_size == Some(0) {
                return Err(invalid(
                    &format!("connections.{name}.page_size"),
                    "expected at least 1".to_string(),
                ));
            }
        }
        if let Some(llm) = &self.llm {
            check_http_url(&llm.base_url).map_err(|message| invalid("llm.base_url", message))?;
            if llm.model.trim().is_empty() {
                return Err(invalid("llm.model", "expected a model name".to_string()));
            }
            if llm.timeout_ms == 0 {
                return Err(invalid("llm.timeout_ms", "expected at least 1".to_string()));
            }
            if let Some(var) = &llm.api_key_env {
                check_env_name(&SecretEnv(var.clone()))
                    .map_err(|message| invalid("llm.api_key_env", message))?;
            }
        }
        if self.server.body_limit < 1024 {
            return Err(invalid(
                "server.body_limit",
                "expected a size in bytes of at least 1024".to_string(),
            ));
        }
        for (key, duration) in [
            (
                "server.header_read_timeout",
                self.server.header_read_timeout,
            ),
            ("server.body_read_timeout", self.server.body_read_timeout),
            ("server.shutdown_timeout", self.server.shutdown_timeout),
        ] {
            if duration.is_zero() {
                return Err(invalid(key, "expected a duration above zero".to_string()));
            }
        }
        if self.server.max_connections == 0 {
            return Err(invalid(
                "server.max_connections",
                "expected at least 1".to_string(),
            ));
        }
        for (key, env) in [
            ("server.api_token_env", &self.server.api_token_env),
            ("server.retell_api_key_env", &self.server.retell_api_key_env),
        ] {
            check_env_name(env).map_err(|message| invalid(key, message))?;
        }
        Ok(())
    }
}

/// How every subcommand turns the global flags into paths: flags win over the config file, the
/// config file over the defaults.
impl crate::cli::GlobalOpts {
    /// `--config FILE`, else `./crmsync.yaml` when present, else the defaults.
    pub fn load_config(&self) -> Result<LoadedConfig, ConfigError> {
        LoadedConfig::discover(self.config.as_deref())
    }

    /// `--store`, else the config's `store`, else `./crmsync.redb`.
    pub fn store_path(&self, config: &LoadedConfig) -> PathBuf {
        config.store_path(self.store.as_deref())
    }

    /// `--rules`, else the config's `rules`, else `./rules`.
    pub fn rules_path(&self, config: &LoadedConfig) -> PathBuf {
        config.rules_path(self.rules.as_deref())
    }
}

/// `message` without a leading `"{p}: "` where `p` is `key` or one of its parents.
fn strip_path_prefix(key: &str, message: String) -> String {
    let mut prefixes: Vec<&str> = key.match_indices('.').map(|(i, _)| &key[..i]).collect();
    prefixes.push(key);
    for prefix in prefixes.into_iter().rev() {
        if let Some(rest) = message.strip_prefix(&format!("{prefix}: ")) {
            return rest.to_string();
        }
    }
    message
}

/// A connection name as the rule language spells it (`[a-z][a-z0-9_]*`).
fn is_rule_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_http_url(url: &str) -> Result<(), String> {
    if (url.starts_with("http://") || url.starts_with("https://")) && !url.ends_with('/') {
        Ok(())
    } else {
        Err(format!(
            "expected an http(s) URL without a trailing slash, such as `https://api.hubapi.com`, got `{url}`"
        ))
    }
}

fn check_env_name(env: &SecretEnv) -> Result<(), String> {
    let name = env.var_name();
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        // Do not echo the value: someone may have pasted the secret itself here.
        Err("expected the NAME of an environment variable (letters, digits, `_`), not a secret value".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("crmsync.yaml"))
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let config = parse("# nothing here\n\n").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.sync_interval, Duration::from_secs(300));
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn full_file_parses() {
        let config = parse(
            "store: data/contacts.redb\nrules: rules\ndefault_region: GB\nsync_interval: 90s\n\
             active_connection: hubspot\nconnections:\n  hubspot:\n    base_url: http://127.0.0.1:9\n\
             \x20   token_env: HUBSPOT_TOKEN\n    rate_limit: {requests_per_second: 9.5, burst: 4}\n\
             llm:\n  base_url: http://127.0.0.1:1/v1\n  model: m\n  timeout_ms: 3000\n\
             server:\n  listen: 127.0.0.1:0\n  body_limit: 4096\n",
        )
        .unwrap();
        assert_eq!(config.default_region, "GB");
        assert_eq!(config.sync_interval, Duration::from_secs(90));
        let hubspot = &config.connections["hubspot"];
        assert_eq!(hubspot.token_env.as_deref().unwrap(), "HUBSPOT_TOKEN");
        assert_eq!(hubspot.rate_limit.as_ref().unwrap().burst, 4);
        let llm = config.llm.unwrap();
        assert_eq!(llm.timeout_ms, 3000);
        assert_eq!(config.server.body_limit, 4096);
        assert_eq!(config.server.api_token_env.var_name(), "CRMSYNC_API_TOKEN");
    }

    #[test]
    fn the_commented_example_parses() {
        let config = parse(include_str!("../examples/crmsync.yaml")).unwrap();
        assert_eq!(config.active_connection.as_deref(), Some("salesforce"));
        assert_eq!(config.sync_interval, Duration::from_secs(300));
        assert_eq!(config.connections.len(), 2);
        assert_eq!(
            config.connections["salesforce"].conflicts,
            Some(crate::store::ConflictPolicy::LatestWins)
        );
        assert_eq!(config.server, ServerSettings::default());
        assert_eq!(config.llm.unwrap().timeout_ms, 10_000);
        assert_eq!(config.retell, RetellSettings::default());
    }

    #[test]
    fn a_missing_key_is_named_once() {
        let err = parse("connections:\n  hubspot:\n    rate_limit: {requests_per_second: 3}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("crmsync.yaml: connections.hubspot.rate_limit: missing field `burst`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_names_its_path() {
        let err = parse("connections:\n  salesforce:\n    client_secret: hunter2\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("crmsync.yaml: connections.salesforce"),
            "{err}"
        );
        assert!(
            err.starts_with(
                "crmsync.yaml: connections.salesforce.client_secret: unknown field `client_secret`"
            ),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn server_limits_parse_as_durations_and_are_checked() {
        let config = parse(
            "server:\n  header_read_timeout: 5s\n  body_read_timeout: 1m\n  max_connections: 64\n\
             \x20 shutdown_timeout: 500ms\n",
        )
        .unwrap();
        assert_eq!(config.server.header_read_timeout, Duration::from_secs(5));
        assert_eq!(config.server.body_read_timeout, Duration::from_secs(60));
        assert_eq!(config.server.max_connections, 64);
        assert_eq!(config.server.shutdown_timeout, Duration::from_millis(500));
        let defaults = ServerSettings::default();
        assert_eq!(defaults.header_read_timeout, Duration::from_secs(10));
        assert_eq!(defaults.body_read_timeout, Duration::from_secs(30));
        assert_eq!(defaults.max_connections, 1024);
        assert_eq!(defaults.shutdown_timeout, Duration::from_secs(20));
        for (text, key) in [
            (
                "server:\n  header_read_timeout: 0s\n",
                "server.header_read_timeout",
            ),
            (
                "server:\n  body_read_timeout: 0s\n",
                "server.body_read_timeout",
            ),
            (
                "server:\n  shutdown_timeout: 0s\n",
                "server.shutdown_timeout",
            ),
            ("server:\n  max_connections: 0\n", "server.max_connections"),
            (
                "server:\n  header_read_timeout: 10\n",
                "server.header_read_timeout",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("crmsync.yaml: {key}:")),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn wrong_type_names_its_path() {
        let err = parse("sync_interval: soon\n").unwrap_err().to_string();
        assert!(err.starts_with("crmsync.yaml: sync_interval:"), "{err}");
        let err = parse("server:\n  body_limit: lots\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("crmsync.yaml: server.body_limit:"), "{err}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases = [
            ("default_region: usa\n", "default_region"),
            ("active_connection: Sales-Force\n", "active_connection"),
            ("connections:\n  Pipe Drive: {}\n", "connections.Pipe Drive"),
            (
                "connections:\n  hubspot:\n    token_env: \"pat-na1-abc\"\n",
                "connections.hubspot.token_env",
            ),
            (
                "connections:\n  hubspot:\n    base_url: api.hubapi.com\n",
                "connections.hubspot.base_url",
            ),
            (
                "connections:\n  hubspot:\n    rate_limit: {requests_per_second: 0, burst: 1}\n",
                "connections.hubspot.rate_limit.requests_per_second",
            ),
            ("sync_interval: 0s\n", "sync_interval"),
            ("server:\n  body_limit: 10\n", "server.body_limit"),
            (
                "retell:\n  chat_number_keys: [customer_phone, \" \"]\n",
                "retell.chat_number_keys[1]",
            ),
        ];
        for (text, key) in cases {
            let err = parse(text).unwrap_err();
            match &err {
                ConfigError::Invalid { key: got, .. } => assert_eq!(got, key, "{text}"),
                other => panic!("{text}: expected Invalid, got {other}"),
            }
        }
    }

    #[test]
    fn a_pasted_secret_is_refused_without_being_echoed() {
        let err = parse("server:\n  api_token_env: \"sk-live abc/123\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.api_token_env"), "{err}");
        assert!(!err.contains("sk-live"), "{err}");
    }

    #[test]
    fn secret_env_prints_only_the_name() {
        let env = SecretEnv("CRMSYNC_TEST_NEVER_SET_7f3a".to_string());
        assert_eq!(
            format!("{env:?} {env}"),
            "$CRMSYNC_TEST_NEVER_SET_7f3a $CRMSYNC_TEST_NEVER_SET_7f3a"
        );
        let err = env.resolve("server.api_token_env").unwrap_err().to_string();
        assert!(err.contains("server.api_token_env"), "{err}");
        assert!(err.contains("CRMSYNC_TEST_NEVER_SET_7f3a"), "{err}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let loaded = LoadedConfig {
            config: parse("store: data/c.redb\nrules: /abs/rules\n").unwrap(),
            source: Some(PathBuf::from("/etc/crmsync/crmsync.yaml")),
        };
        assert_eq!(
            loaded.store_path(None),
            PathBuf::from("/etc/crmsync/data/c.redb")
        );
        assert_eq!(loaded.rules_path(None), PathBuf::from("/abs/rules"));
        assert_eq!(
            loaded.store_path(Some(Path::new("x.redb"))),
            PathBuf::from("x.redb")
        );
        let defaults = LoadedConfig::defaults();
        assert_eq!(defaults.store_path(None), PathBuf::from("crmsync.redb"));
        assert_eq!(defaults.rules_path(None), PathBuf::from("rules"));
    }
}
