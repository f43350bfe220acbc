//! `GET /v1/conflicts?after=&limit=&connection=`: the recorded conflicts, oldest first, as
//! `{"conflicts": [...], "next": <id> | null}` (each conflict: contact phone, contact fields,
//! CRM field, both values and times, winner and policy; see `store::Conflict`).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};

use super::error::ApiResult;
use crate::daemon::{store_error, AppState};

/// Paging of `GET /v1/conflicts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictQuery {
    /// Return conflicts recorded after this id (the previous page's `next`).
    pub after: Option<u64>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<usize>,
    /// Only this connection's conflicts.
    pub connection: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ConflictQuery>,
) -> ApiResult<Json<JsonValue>> {
    let limit = super::paging::page_limit(query.limit)?;
    let engine = state.engine.clone();
    let after = query.after.unwrap_or(0);
    let connection = query.connection.clone();
    // One extra row tells whether another page exists.
    let mut conflicts = state
        .blocking(move || {
            engine
                .store()
                .conflicts(connection.as_deref(), after, limit + 1)
                .map_err(store_error)
        })
        .await?;
    let next = if conflicts.len() > limit {
        conflicts.truncate(limit);
        conflicts.last().map(|c| c.id)
    } else {
        None
    };
    Ok(Json(json!({"conflicts": conflicts, "next": next})))
}
