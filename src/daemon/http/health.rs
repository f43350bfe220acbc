//! `GET /healthz`: liveness and a store read, without authentication (for load balancers).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::daemon::AppState;

/// 200 `{"status":"ok"}` while the store answers reads; 503 otherwise, or while shutting down.
pub async fn healthz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    if state.is_shutting_down() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        );
    }
    match state.store_probe().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ok"}))),
        Err(message) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "error": message})),
        ),
    }
}
