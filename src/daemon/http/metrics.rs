//! `GET /metrics`: Prometheus scrape endpoint (OpenMetrics text), without authentication like
//! `/healthz`, so a scraper needs no API token. It exposes counts only, no contact data.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::error::ApiResult;
use crate::daemon::AppState;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn metrics(State(state): State<Arc<AppState>>) -> ApiResult<impl IntoResponse> {
    state.refresh_store_gauges().await?;
    Ok(([(CONTENT_TYPE, OPENMETRICS)], state.counters.render()))
}
