//! `POST /webhooks/retell/inbound`: Retell's inbound webhook, called when a call (or SMS chat)
//! arrives on a number, before the agent answers. We answer with the caller's contact fields as
//! dynamic variables:
//!
//! ```text
//! request:  {"event": "call_inbound", "call_inbound": {"agent_id", "from_number", "to_number"}}
//! response: {"call_inbound": {"dynamic_variables": {"first_name": "Ada", ...}}}
//! ```
//!
//! `chat_inbound` events (payload under `chat_inbound`, with the new chat's `chat_id`) are
//! answered under the same key. Their sender is also recorded durably against the chat id
//! before the answer goes out: Retell's chat object, which `chat_analyzed` delivers later, has
//! no phone number, and this record is how that chat finds its contact (a store failure is a
//! 500, so Retell retries the webhook). An
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
use crate::daemon::{store_error, AppState};
use crate::engine::EngineError;
use crate::store::ChatNumbers;

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
    if key == "chat_inbound" {
        remember_chat(&state, payload).await?;
    }

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

/// Records a `chat_inbound` payload's sender against its `chat_id` (a payload without a chat id
/// cannot be matched to its chat later; it is answered all the same).
async fn remember_chat(state: &Arc<AppState>, payload: &Map<String, Value>) -> ApiResult<()> {
    let text = |key: &str| {
        payload
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
    };
    let Some(chat_id) = text("chat_id") else {
        tracing::warn!("a chat_inbound webhook without chat_id: its chat cannot be matched later");
        return Ok(());
    };
    let numbers = ChatNumbers {
        // Kept as sent, even withheld or malformed, so the chat's report can say what it was.
        from_number: text("from_number").unwrap_or_default(),
        to_number: text("to_number"),
        agent_id: text("agent_id"),
        received_at: chrono::Utc::now(),
    };
    let engine = state.engine.clone();
    state
        .blocking(move || {
            engine
                .store()
                .remember_chat_numbers(&chat_id, &numbers)
                .map_err(store_error)
        })
        .await
}
