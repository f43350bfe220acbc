//! Applying a conversation event from any route (Retell webhook or generic endpoint): engine
//! errors as HTTP errors, outcome counted, dispatcher woken when something was queued. A Retell
//! chat's number is found first; a chat without one is answered `no_number` and counted.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use crate::daemon::AppState;
use crate::engine::retell::RetellEvent;
use crate::engine::{ConversationOutcome, ConversationReport, EngineError, ResolvedEvent};
use crate::event::ConversationEvent;

/// Maps an engine error to the HTTP answer an integrator can act on.
pub fn engine_error(err: EngineError) -> ApiError {
    match err {
        EngineError::InvalidPhone { .. } => ApiError::bad_request("invalid_phone", err.to_string()),
        EngineError::UnknownField { .. }
        | EngineError::ReadOnlyField { .. }
        | EngineError::WrongType { .. } => ApiError::bad_request("invalid_field", err.to_string()),
        EngineError::UnknownConnection { .. } | EngineError::UnknownActiveConnection(_) => {
            ApiError::bad_request("unknown_connection", err.to_string())
        }
        EngineError::NoContact(_) => ApiError::not_found(err.to_string()),
        EngineError::Store(err) if err.is_unavailable() => crate::daemon::store_error(err),
        // Store failures, and configuration problems that should have stopped the start.
        other => ApiError::internal(other.to_string()),
    }
}

/// Applies one event in one store transaction and reports what it did.
pub async fn apply(
    state: &Arc<AppState>,
    source: &'static str,
    event: ConversationEvent,
) -> ApiResult<ConversationReport> {
    let result = match &state.writer {
        // Group commit: shares a durable transaction with whatever else is queued.
        Some(writer) => writer.apply(event).await,
        None => {
            let engine = state.engine.clone();
            let merger = state.merger.clone();
            state
                .blocking(move || {
                    engine
                        .apply_conversation_blocking(&event, merger.as_ref())
                        .map_err(engine_error)
                })
                .await
        }
    };
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            state.counters.event(source, "rejected");
            return Err(err);
        }
    };
    match &report.outcome {
        ConversationOutcome::Applied {
            outbound, activity, ..
        } => {
            state.counters.event(source, "applied");
            if !outbound.is_empty() || *activity {
                state.wake_dispatcher();
            }
        }
        ConversationOutcome::AlreadyApplied => state.counters.event(source, "duplicate"),
        ConversationOutcome::NoNumber { reason } => {
            // Counted apart from `ignored` events: the call was real, but no contact heard of it.
            tracing::info!(conversation = %report.conversation_id, %reason, "no contact number");
            state.counters.event(source, "no_number");
        }
    }
    Ok(report)
}

/// Applies a `call_analyzed`/`chat_analyzed` event and answers `{"status": "ok", "report":
/// ...}`. A chat's number is looked up first (`Engine::resolve_retell`); a chat that has none
/// is reported with outcome `no_number` and its reason, counted as such, and not applied.
pub async fn apply_retell(
    state: &Arc<AppState>,
    source: &'static str,
    event: RetellEvent,
) -> ApiResult<Value> {
    let chat_id = match &event {
        RetellEvent::Chat(chat) => Some(chat.event.id.clone()),
        RetellEvent::Call(_) => None,
    };
    let resolved = match event {
        RetellEvent::Call(call) => ResolvedEvent::Ready(call),
        chat @ RetellEvent::Chat(_) => {
            let engine = state.engine.clone();
            let keys = state.chat_number_keys.clone();
            let resolved = state
                .blocking(move || engine.resolve_retell(chat, &keys).map_err(engine_error))
                .await;
            match resolved {
                Ok(resolved) => resolved,
                Err(err) => {
                    state.counters.event(source, "rejected");
                    return Err(err);
                }
            }
        }
    };
    let event = match resolved {
        ResolvedEvent::Ready(event) => event,
        ResolvedEvent::NoNumber(report) => {
            if let ConversationOutcome::NoNumber { reason } = &report.outcome {
                tracing::warn!(
                    chat = %report.conversation_id,
                    %reason,
                    "a Retell chat has no phone number; not applied"
                );
            }
            state.counters.event(source, "no_number");
            return Ok(json!({"status": "ok", "report": report}));
        }
    };
    let report = apply(state, source, event).await?;
    if let (Some(chat_id), ConversationOutcome::Applied { .. }) = (chat_id, &report.outcome) {
        let engine = state.engine.clone();
        let forgotten = state
            .blocking(move || engine.forget_chat_numbers(&chat_id).map_err(engine_error))
            .await;
        // The chat is applied either way; a row left behind is only never read again.
        if let Err(err) = forgotten {
            tracing::warn!(error = %err.message, "could not drop a chat's chat_inbound record");
        }
    }
    Ok(json!({"status": "ok", "report": report}))
}

/// 400 for a body that is not the expected shape.
pub fn invalid_body(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", message)
}
