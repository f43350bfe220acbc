//! The LLM merger: any OpenAI-compatible `POST {base_url}/chat/completions` endpoint.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    fallback_merge, trivial_merge, MergeError, MergeFuture, MergeOutcome, MergeRequest, MergeVia,
    Merger,
};

/// Token budget asked of the LLM for one merged field.
const MAX_TOKENS: u32 = 512;

/// Cap on the merged text: about 512 tokens at ~4 characters per token. The endpoint may
/// ignore `max_tokens`, so a longer answer is refused here too (the merge falls back): cutting
/// it would silently drop the end of the field.
pub const MAX_MERGED_CHARS: usize = 2048;

/// How much of an error body is kept in the fallback reason (for logs).
const ERROR_BODY_EXCERPT_CHARS: usize = 200;

/// Used when a field has no description.
const DEFAULT_INSTRUCTION: &str =
    "Combine the existing text and the new information into one concise text that keeps every distinct fact.";

fn default_timeout_ms() -> u64 {
    10_000
}

/// The `llm:` section of the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Base URL of the OpenAI-compatible API, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name sent in the request.
    pub model: String,
    /// Name of the environment variable holding the API key (sent as a bearer token). None for
    /// endpoints that need no key (a local server).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Whole-request timeout; on expiry the merge falls back to keeping both texts.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// The API key as configured: never printed, never logged.
#[derive(Clone)]
enum ApiKey {
    None,
    Value(String),
    /// `api_key_env` names a variable that is not set (or is empty).
    Missing {
        var: String,
    },
}

/// Merges through an OpenAI-compatible chat-completions endpoint; falls back to keeping both
/// texts on any failure.
#[derive(Clone)]
pub struct LlmMerger {
    config: LlmConfig,
    key: ApiKey,
    client: reqwest::Client,
}

impl std::fmt::Debug for LlmMerger {
    // Hand-written so the API key can never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmMerger")
            .field("config", &self.config)
            .field("has_api_key", &matches!(self.key, ApiKey::Value(_)))
            .finish()
    }
}

impl LlmMerger {
    /// Reads the API key from the environment variable `config.api_key_env` now. A missing
    /// variable is not an error here: it is logged, and each merge falls back with the reason.
    pub fn from_config(config: LlmConfig) -> Self {
        let key = match &config.api_key_env {
            None => ApiKey::None,
            Some(var) => match std::env::var(var) {
                Ok(value) if !value.trim().is_empty() => ApiKey::Value(value),
                _ => {
                    tracing::warn!(
                        variable = %var,
                        "LLM API key variable is not set; merges will keep both texts"
                    );
                    ApiKey::Missing { var: var.clone() }
                }
            },
        };
        Self::build(config, key)
    }

    /// Uses `api_key` as given instead of reading the environment (library callers, tests).
    pub fn with_api_key(config: LlmConfig, api_key: Option<String>) -> Self {
        let key = match api_key {
            Some(value) => ApiKey::Value(value),
            None => ApiKey::None,
        };
        Self::build(config, key)
    }

    fn build(config: LlmConfig, key: ApiKey) -> Self {
        // The timeout covers connect, send and reading the whole body. Building a client only
        // fails when the TLS backend cannot initialise; the default client is the fallback.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .unwrap_or_default();
        LlmMerger {
            config,
            key,
            client,
        }
    }

    fn endpoint(&self) -> String {
        format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        )
    }

    async fn call(&self, req: &MergeRequest) -> Result<String, MergeError> {
        let mut request = self
            .client
            .post(self.endpoint())
            .json(&request_body(&self.config.model, req));
        match &self.key {
            ApiKey::None => {}
            ApiKey::Value(key) => request = request.bearer_auth(key),
            ApiKey::Missing { var } => return Err(MergeError::MissingApiKey { var: var.clone() }),
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            return Err(MergeError::Http {
                status: status.as_u16(),
                body: body.chars().take(ERROR_BODY_EXCERPT_CHARS).collect(),
            });
        }
        let completion: ChatCompletion =
            serde_json::from_str(&body).map_err(|e| MergeError::MalformedBody(e.to_string()))?;
        let Some(choice) = completion.choices.into_iter().next() else {
            return Err(MergeError::EmptyContent);
        };
        // WHY a missing `finish_reason` is accepted: some OpenAI-compatible servers leave it
        // out; the length check below still catches an answer that ran on.
        if let Some(reason) = choice.finish_reason.filter(|r| r != "stop") {
            return Err(MergeError::Truncated {
                finish_reason: reason,
            });
        }
        let text = choice
            .message
            .and_then(|message| message.content)
            .unwrap_or_default();
        let text = text.trim();
        if text.is_empty() {
            return Err(MergeError::EmptyContent);
        }
        let chars = text.chars().count();
        if chars > MAX_MERGED_CHARS {
            return Err(MergeError::TooLong {
                chars,
                max: MAX_MERGED_CHARS,
            });
        }
        Ok(text.to_string())
    }

    fn transport_error(&self, err: reqwest::Error) -> MergeError {
        if err.is_timeout() {
            MergeError::Timeout {
                timeout_ms: self.config.timeout_ms,
            }
        } else {
            // `without_url` keeps query strings (which could carry a key) out of the reason.
            MergeError::Transport(err.without_url().to_string())
        }
    }
}

impl Merger for LlmMerger {
    fn merge<'a>(&'a self, req: &'a MergeRequest) -> MergeFuture<'a> {
        Box::pin(async move {
            if let Some(trivial) = trivial_merge(req) {
                return trivial;
            }
            match self.call(req).await {
                Ok(text) => MergeOutcome {
                    text,
                    via: MergeVia::Llm,
                },
                Err(reason) => {
                    tracing::warn!(
                        field = %req.field,
                        %reason,
                        "LLM merge failed; keeping both texts"
                    );
                    fallback_merge(req, reason)
                }
            }
        })
    }
}

/// The chat-completions request: the field description as the system message, the two texts
/// in the user message.
fn request_body(model: &str, req: &MergeRequest) -> serde_json::Value {
    let instruction = if req.instruction.trim().is_empty() {
        DEFAULT_INSTRUCTION
    } else {
        req.instruction.trim()
    };
    let system = format!(
        "You maintain the contact field `{}`. Field instruction: {}\n\
         Merge the existing value with the new information from the latest conversation. \
         Reply with the merged field value only, no preamble.",
        req.field, instruction
    );
    let user = format!(
        "Existing value:\n{}\n\nNew information:\n{}",
        req.old, req.new
    );
    serde_json::json!({
        "model": model,
        "messages": [
            { "role": "system", "content": system },
            { "role": "user", "content": user },
        ],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    })
}

#[derive(Deserialize)]
struct ChatCompletion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<Message>,
    /// `stop` for a complete answer; `length`, `content_filter`, ... for a cut one.
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_key() {
        let config = LlmConfig {
            base_url: "http://127.0.0.1:1".into(),
            model: "m".into(),
            api_key_env: None,
            timeout_ms: 100,
        };
        let merger = LlmMerger::with_api_key(config, Some("sk-secret-value".into()));
        let printed = format!("{merger:?}");
        assert!(!printed.contains("sk-secret-value"), "{printed}");
        assert!(printed.contains("has_api_key: true"), "{printed}");
    }

    #[test]
    fn config_defaults_the_timeout_and_rejects_unknown_keys() {
        let config: LlmConfig =
            serde_yaml::from_str("base_url: http://x/v1\nmodel: gpt-4o-mini\n").unwrap();
        assert_eq!(config.timeout_ms, 10_000);
        assert_eq!(config.api_key_env, None);
        let err = serde_yaml::from_str::<LlmConfig>("base_url: a\nmodel: b\napi_key: k\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("api_key"), "{err}");
    }
}
