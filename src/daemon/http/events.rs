//! Applying a conversation event from any route (Retell webhook or generic endpoint): engine
//! errors as HTTP errors, outcome counted, dispatcher woken when something was queued.

use std::sync::Arc;

use axum::http::StatusCode;

use super::error::{ApiError, ApiResult};
use crate::daemon::AppState;
use crate::engine::{ConversationOutcome, ConversationReport, EngineError};
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

/// 400 for a body that is not the expected shape.
pub fn invalid_body(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", message)
}
