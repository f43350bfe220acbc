//! `GET /healthz`, without authentication (for load balancers and supervisors): 200
//! `{"status":"ok"}` while the store can be written and answers reads; 503 with the reason
//! otherwise, so a supervisor can act:
//!
//! - `unwritable`: a write failed (a full disk); reads still work. Each call tries a small
//!   durable write, so the answer turns to ok as soon as writes succeed again.
//! - `damaged`: redb found the file malformed; restore a backup and restart.
//! - `unavailable`: the store could not be reopened, or does not answer reads.
//! - `shutting_down`.
//!
//! The reason names the error, not the store's path (this route is unauthenticated).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::daemon::AppState;
use crate::store::Health;

pub async fn healthz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    if state.is_shutting_down() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        );
    }
    let unhealthy = |status: &str, error: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": status, "error": error})),
        )
    };
    match state.store_health().await {
        Ok(Health::Ok) => {}
        Ok(Health::Unwritable(reason)) => {
            return unhealthy(
                "unwritable",
                format!("the store cannot be written: {reason}"),
            )
        }
        Ok(Health::Damaged(detail)) => {
            return unhealthy("damaged", format!("the store is damaged: {detail}"))
        }
        Ok(Health::Unavailable(reason)) | Err(reason) => {
            return unhealthy(
                "unavailable",
                format!("the store is not available: {reason}"),
            )
        }
    }
    match state.store_probe().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ok"}))),
        Err(message) => unhealthy("unavailable", message),
    }
}
