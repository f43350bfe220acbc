//! The outbox and its dead letters:
//! - `GET /v1/outbox`: counts (pending, deferred, dead letters), the open dead letters and the
//!   deferred entries with their last error and next attempt time (at most 1000 of each);
//! - `POST /v1/outbox/dead-letters/{id}/retry`: queue one dead letter again (a field write
//!   with its field's current value, an outbound mapping evaluated again, an activity looked up
//!   first when its outcome was unknown) → `{"retried": {...}}`;
//! - `POST /v1/outbox/dead-letters/retry-all` → `{"retried": [...], "refused": [...]}`;
//! - `POST /v1/outbox/dead-letters/{id}/discard` with `{"reason": "..."}` →
//!   `{"discarded": {...}}` (the reason is kept with the letter).
//!
//! 404 `not_found` for no such dead letter; 409 `already_resolved` for one retried or
//! discarded before, `cannot_retry` for one whose contact, link or mapping no longer allows it
//! (the message says which); 400 for a bad id or body. A retry wakes the dispatcher.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};

use super::error::{ApiError, ApiResult};
use crate::daemon::{store_error, AppState};
use crate::store::DeadLetterError;

/// The routes, nested under `/v1` (behind the bearer check).
pub fn routes() -> axum::Router<Arc<AppState>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/outbox", get(show))
        .route("/outbox/dead-letters/retry-all", post(retry_all))
        .route("/outbox/dead-letters/{id}/retry", post(retry))
        .route("/outbox/dead-letters/{id}/discard", post(discard))
}

/// Most entries of each list `GET /v1/outbox` returns.
const MAX_LISTED: usize = 1000;

pub async fn show(State(state): State<Arc<AppState>>) -> ApiResult<Json<JsonValue>> {
    let engine = state.engine.clone();
    state
        .blocking(move || {
            let store = engine.store();
            let counts = store.outbox_counts().map_err(store_error)?;
            let mut dead = store.dead_letters().map_err(store_error)?;
            dead.truncate(MAX_LISTED);
            let mut writes = store.pending_writes(None).map_err(store_error)?;
            writes.retain(|w| w.deferred_since.is_some());
            writes.truncate(MAX_LISTED);
            let mut activities = store.open_activities().map_err(store_error)?;
            activities.retain(|a| a.deferred_since.is_some());
            activities.truncate(MAX_LISTED);
            Ok(Json(json!({
                "counts": counts,
                "dead_letters": dead,
                "deferred": {"writes": writes, "activities": activities},
            })))
        })
        .await
}

pub async fn retry(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<JsonValue>> {
    let id = parse_id(&id)?;
    let engine = state.engine.clone();
    let retried = state
        .blocking(move || engine.retry_dead_letter(id).map_err(api_error))
        .await?;
    state.wake_dispatcher();
    Ok(Json(json!({ "retried": retried })))
}

pub async fn retry_all(State(state): State<Arc<AppState>>) -> ApiResult<Json<JsonValue>> {
    let engine = state.engine.clone();
    let report = state
        .blocking(move || engine.retry_all_dead_letters().map_err(api_error))
        .await?;
    if !report.retried.is_empty() {
        state.wake_dispatcher();
    }
    Ok(Json(json!(report)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscardBody {
    reason: String,
}

pub async fn discard(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<JsonValue>> {
    let id = parse_id(&id)?;
    let body: DiscardBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("the body must be {{\"reason\": \"...\"}}: {e}"),
        )
    })?;
    let engine = state.engine.clone();
    let letter = state
        .blocking(move || {
            engine
                .store()
                .discard_dead_letter(id, &body.reason, chrono::Utc::now())
                .map_err(api_error)
        })
        .await?;
    Ok(Json(json!({ "discarded": letter })))
}

fn parse_id(id: &str) -> ApiResult<u64> {
    id.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("dead letter id must be a number, got {id:?}"),
        )
    })
}

fn api_error(err: DeadLetterError) -> ApiError {
    match err {
        DeadLetterError::NotFound(_) => ApiError::not_found(err.to_string()),
        DeadLetterError::Resolved { .. } => ApiError::conflict("already_resolved", err.to_string()),
        DeadLetterError::Invalid { .. } if err.to_string().contains("needs a reason") => {
            ApiError::bad_request("invalid_body", err.to_string())
        }
        DeadLetterError::Invalid { .. } => ApiError::conflict("cannot_retry", err.to_string()),
        DeadLetterError::Store(err) => store_error(err),
    }
}
