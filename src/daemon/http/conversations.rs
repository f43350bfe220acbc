//! `POST /v1/conversations`: one conversation event in the generic form of `src/event.rs`
//! (`{"id", "kind", "direction", "from_number", "to_number", ..., "analysis": {...}}`). A Retell
//! `call_analyzed`/`chat_analyzed` body is accepted here too (without a signature, since the
//! bearer token already authenticates the caller), for replaying captured events.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiResult;
use super::events::{apply, apply_retell, invalid_body};
use crate::daemon::AppState;
use crate::engine::retell;
use crate::event::ConversationEvent;

pub async fn post(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let value: Value = serde_json::from_slice(&body).map_err(|err| {
        state.counters.event("api", "rejected");
        invalid_body(format!("the body is not JSON: {err}"))
    })?;
    if retell::is_webhook(&value) {
        return match retell::parse_value(&value) {
            Ok(Some(event)) => apply_retell(&state, "api", event).await.map(Json),
            Ok(None) => {
                state.counters.event("api", "ignored");
                Ok(Json(json!({"status": "ignored"})))
            }
            Err(err) => {
                state.counters.event("api", "rejected");
                Err(invalid_body(err.to_string()))
            }
        };
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(&body);
    let event =
        serde_path_to_error::deserialize::<_, ConversationEvent>(deserializer).map_err(|err| {
            state.counters.event("api", "rejected");
            let path = err.path().to_string();
            invalid_body(format!("`{path}`: {}", err.into_inner()))
        })?;
    let report = apply(&state, "api", event).await?;
    Ok(Json(json!({"status": "ok", "report": report})))
}
