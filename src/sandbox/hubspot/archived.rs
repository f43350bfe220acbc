//! Records leaving the portal (crm_apis.md §1.4, §1.11): `DELETE /crm/v3/objects/{type}/{id}`
//! archives (204; the record then lists under `archived=true` with `archivedAt`, disappears from
//! search and reads 404 unless `archived=true`), and `POST /crm/v3/objects/contacts/merge`
//! folds one contact into another (the loser's id then reads as the primary, whose
//! `hs_merged_object_ids` names it and whose `lastmodifieddate` moves forward, which is how an
//! incremental reader notices the merge).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::Value;

use super::errors::ApiError;
use super::objects::{object_kind, parse_id, record_json};
use super::ops::{self, as_id};
use super::params::json_body;
use super::schema::ObjectKind;
use super::Shared;
use crate::sandbox::faults::lock;

/// `DELETE /crm/v3/objects/{type}/{id}`: 204 whether or not the record existed, as HubSpot.
pub async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((object, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    let id = parse_id(kind, &id)?;
    let mut state = lock(&shared.state);
    let now = state.tick();
    ops::archive(&mut state, kind, id, now);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /crm/v3/objects/contacts/merge` with `{"primaryObjectId", "objectIdToMerge"}`.
pub async fn merge(
    State(shared): State<Arc<Shared>>,
    Path(object): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    if kind != ObjectKind::Contacts {
        return Err(ApiError::validation(format!(
            "This sandbox merges contacts only, not {}",
            kind.path_name()
        )));
    }
    let input: Value = json_body(&body)?;
    let field = |name: &str| {
        input.get(name).and_then(as_id).ok_or_else(|| {
            ApiError::validation(format!("{name} is required and must be a record id"))
        })
    };
    let (primary, loser) = (field("primaryObjectId")?, field("objectIdToMerge")?);
    let mut state = lock(&shared.state);
    let now = state.tick();
    let kept = ops::merge(&mut state, primary, loser, now).map_err(|e| e.to_api(kind))?;
    let record = state
        .table(kind)
        .get(kept)
        .map(|r| r.into_owned())
        .ok_or_else(|| ApiError::not_found("Object not found."))?;
    let mut names = kind.default_properties().to_vec();
    names.push("hs_merged_object_ids");
    Ok(Json(record_json(&state, kind, &record, &names, &[], &[])).into_response())
}
