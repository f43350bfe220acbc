//! `POST /v1/sync` (start a full sync of the active connection) and `GET /v1/sync` (its
//! status: `state`, `trigger`, `started_at`, `finished_at`, `succeeded`, `failed`,
//! `last_error`, `last_report`, `next_run_at`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::error::{ApiError, ApiResult};
use crate::daemon::scheduler::{SyncStatus, TriggerError};
use crate::daemon::AppState;

/// 202 with the status (`queued`); 409 when a sync is already queued or running; 400 when no
/// connection is active; 503 while shutting down.
pub async fn start(
    State(state): State<Arc<AppState>>,
) -> ApiResult<(StatusCode, Json<SyncStatus>)> {
    match state.scheduler.trigger_full(state.is_shutting_down()) {
        Ok(status) => Ok((StatusCode::ACCEPTED, Json(status))),
        Err(err @ TriggerError::Busy(_)) => {
            Err(ApiError::conflict("sync_running", err.to_string()))
        }
        Err(err @ TriggerError::NoConnection) => Err(ApiError::bad_request(
            "no_active_connection",
            err.to_string(),
        )),
        Err(err @ TriggerError::ShuttingDown) => Err(ApiError::unavailable(err.to_string())),
    }
}

pub async fn status(State(state): State<Arc<AppState>>) -> Json<SyncStatus> {
    Json(state.scheduler.status())
}
