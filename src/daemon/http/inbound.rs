//! `POST /webhooks/retell/inbound`: Retell's inbound webhook, called when a call (or SMS chat)
//! arrives on a number, before the agent answers. We answer with the caller's contact fields as
//! dynamic variables:
//!
//! ```text
//! request:  {"event": "call_inbound", "call_inbound": {"agent_id", "from_number", "to_number"}}
//! response: {"call_inbound": {"dynamic_variables": {"first_name": "Ada", ...}}}
//! ```
//!
//! `chat_inbound` events (payload under `chat_inbound`) are answered under the same key. An
//! unknown caller, a withheld number or one that does not parse gets an empty object: the call
//! goes ahead with the agent's defaults (only `reject: true` would refuse it, and we never send
//! that). The body is signed like the other Retell webhooks and checked the same way, because the
//! answer carries contact data.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::ApiResult;
use super::events::{engine_error, invalid_body};
use super::retell::verify_signature;
use crate::daemon::AppState;
use crate::engine::EngineError;

pub async fn inbound(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    verify_signature(&state, &headers, &body)?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|err| invalid_body(format!("the inbound webhook body is not JSON: {err}")))?;
    let event = value
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or("call_inbound");
    let key = if event == "chat_inbound" {
        "chat_inbound"
    } else {
        "call_inbound"
    };
    let payload = value
        .get(key)
        .or_else(|| value.get("call_inbound"))
        .and_then(Value::as_object)
        .ok_or_else(|| invalid_body(format!("`{key}`: missing or not an object")))?;
    let from = payload
        .get("from_number")
        .and_then(Value::as_str)
        .unwrap_or("");

    let mut answer = Map::new();
    if !from.trim().is_empty() {
        let engine = state.engine.clone();
        let number = from.to_string();
        let vars = state
            .blocking(move || match engine.dynamic_variables(&number) {
                Ok(vars) => Ok(vars),
                // A caller id that is not a phone number (anonymous, SIP URI) has no contact.
                Err(EngineError::InvalidPhone { .. }) => Ok(None),
                Err(err) => Err(engine_error(err)),
            })
            .await?;
        if let Some(vars) = vars {
            answer.insert("dynamic_variables".to_string(), json!(vars));
        }
    }
    Ok(Json(json!({ key: answer })))
}
