//! `POST /webhooks/retell`: Retell's call/chat webhooks.
//!
//! The signature is checked first, over the raw bytes; a missing, malformed, stale or wrong
//! signature gets 401 and nothing is parsed or applied. `call_analyzed` and `chat_analyzed` are
//! applied (one transaction each; a redelivery of the same call id changes nothing); a chat
//! whose phone number cannot be found is answered 200 with outcome `no_number` and the reason
//! (a retry could not find it either). Every other event type (`call_started`, `call_ended`,
//! transcript updates, ...) is acknowledged with 200 and ignored, so Retell does not retry it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::events::{apply_retell, invalid_body};
use crate::daemon::signature::{self, SIGNATURE_HEADER};
use crate::daemon::AppState;
use crate::engine::retell::parse_webhook;

/// Checks `x-retell-signature` for `body`, or answers 401 (and logs why).
pub fn verify_signature(state: &AppState, headers: &HeaderMap, body: &[u8]) -> ApiResult<()> {
    let header = headers
        .get(SIGNATURE_HEADER)
        .map(|value| value.to_str().unwrap_or(""));
    signature::verify(&state.retell_api_key, body, header, signature::now_ms()).map_err(|err| {
        tracing::warn!(reason = %err, "refused a Retell webhook");
        ApiError::unauthorized(format!("Retell signature refused: {err}"))
    })
}

pub async fn webhook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    if let Err(err) = verify_signature(&state, &headers, &body) {
        state.counters.event("retell", "rejected");
        return Err(err);
    }
    let event = match parse_webhook(&body) {
        Ok(event) => event,
        Err(err) => {
            state.counters.event("retell", "rejected");
            return Err(invalid_body(err.to_string()));
        }
    };
    let Some(event) = event else {
        let name = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("event")
                    .or_else(|| v.get("event_type"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        state.counters.event("retell", "ignored");
        return Ok(Json(json!({"status": "ignored", "event": name})));
    };
    apply_retell(&state, "retell", event).await.map(Json)
}
