//! Answers a compromised or broken CRM (or something between it and crmsync) could give:
//! record ids of the wrong shape and a `nextRecordsUrl` that names another host. Both servers
//! rewrite their API answers through [`rewrite`] while a knob is set; with none set (the
//! default) answers pass untouched and unparsed.
//!
//! ```ignore
//! sf.tamper().update(|t| t.next_records_url_prefix = Some("http://127.0.0.1:9".into()));
//! hs.tamper().update(|t| { t.record_ids.insert("1001".into(), json!("../../x?y=")); });
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use super::faults::lock;

/// The knobs. `Default` answers honestly.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TamperConfig {
    /// Record ids answered in place of the real ones, in query (`records[].Id`) and list or
    /// search (`results[].id`) answers: real id → the JSON answered instead (any value: a
    /// number, a path, `null`).
    pub record_ids: BTreeMap<String, Value>,
    /// Salesforce: a `nextRecordsUrl` is answered as this text followed by the real path, e.g.
    /// `http://127.0.0.1:<port>` (another origin) or `@127.0.0.1:<port>` (glued onto the base,
    /// it names another host).
    pub next_records_url_prefix: Option<String>,
}

impl TamperConfig {
    fn is_honest(&self) -> bool {
        self.record_ids.is_empty() && self.next_records_url_prefix.is_none()
    }
}

/// The live knobs of one server.
#[derive(Debug, Default)]
pub struct Tamper {
    config: Mutex<TamperConfig>,
}

impl Tamper {
    pub fn config(&self) -> TamperConfig {
        lock(&self.config).clone()
    }

    pub fn set(&self, config: TamperConfig) {
        *lock(&self.config) = config;
    }

    pub fn update(&self, f: impl FnOnce(&mut TamperConfig)) {
        f(&mut lock(&self.config));
    }

    /// Back to honest answers.
    pub fn clear(&self) {
        self.set(TamperConfig::default());
    }
}

/// Middleware: rewrites a JSON answer as the knobs say.
pub async fn rewrite(State(tamper): State<Arc<Tamper>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let config = tamper.config();
    if config.is_honest() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(mut json) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    apply(&config, &mut json);
    let bytes = serde_json::to_vec(&json).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

fn apply(config: &TamperConfig, json: &mut Value) {
    if let (Some(prefix), Some(Value::String(url))) = (
        &config.next_records_url_prefix,
        json.get_mut("nextRecordsUrl"),
    ) {
        *url = format!("{prefix}{url}");
    }
    for (list, key) in [("records", "Id"), ("results", "id")] {
        let Some(Value::Array(items)) = json.get_mut(list) else {
            continue;
        };
        for item in items {
            let replacement = item
                .get(key)
                .and_then(Value::as_str)
                .and_then(|id| config.record_ids.get(id));
            if let (Some(replacement), Some(object)) = (replacement.cloned(), item.as_object_mut())
            {
                object.insert(key.to_string(), replacement);
            }
        }
    }
}
