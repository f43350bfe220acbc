//! Associations after the fact and association reads (crm_apis.md §1.8, §1.10):
//! `PUT /crm/v3/objects/{type}/{id}/associations/{toType}/{toId}/{typeId|type_name}`,
//! `PUT /crm/v4/objects/{type}/{id}/associations/default/{toType}/{toId}` and
//! `GET /crm/v4/objects/{type}/{id}/associations/{toType}`.
//!
//! Reading a contact's calls here is immediately consistent (unlike search), which makes it the
//! lag-free way for a client to check whether an activity already exists before resending it.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::objects::{object_kind, parse_id};
use super::params::QueryParams;
use super::schema::ObjectKind;
use super::state::{association_types, PortalState};
use super::table::Lookup;
use super::Shared;
use crate::sandbox::faults::lock;

/// Default and maximum page size of the v4 association read.
const MAX_ASSOCIATION_PAGE: usize = 500;

fn live(state: &PortalState, kind: ObjectKind, id: u64) -> Result<u64, ApiError> {
    match state.table(kind).resolve(id) {
        Lookup::Live(id) => Ok(id),
        _ => Err(ApiError::not_found(format!(
            "No {} with id {id} exists.",
            kind.singular()
        ))),
    }
}

fn associate(
    shared: &Shared,
    from: (ObjectKind, u64),
    to: (ObjectKind, u64),
) -> Result<(u64, u64, u32), ApiError> {
    let Some((forward, _)) = association_types(from.0, to.0) else {
        return Err(ApiError::validation(format!(
            "No association type exists between {} and {}",
            from.0.singular(),
            to.0.singular()
        )));
    };
    let mut state = lock(&shared.state);
    let from_id = live(&state, from.0, from.1)?;
    let to_id = live(&state, to.0, to.1)?;
    state
        .associations
        .associate((from.0, from_id), (to.0, to_id));
    Ok((from_id, to_id, forward))
}

/// v3: `PUT /crm/v3/objects/{type}/{id}/associations/{toType}/{toId}/{associationType}`.
pub async fn put_v3(
    State(shared): State<Arc<Shared>>,
    Path((object, id, to_object, to_id, type_spec)): Path<(String, String, String, String, String)>,
) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    let to_kind = object_kind(&to_object)?;
    let expected = association_types(kind, to_kind).map(|(forward, _)| forward);
    let type_name = format!("{}_to_{}", kind.singular(), to_kind.singular());
    let known = type_spec.parse::<u32>().ok() == expected || type_spec == type_name;
    if !known {
        return Err(ApiError::validation(format!(
            "association type {type_spec} doesn't exist between {} and {}",
            kind.singular(),
            to_kind.singular()
        )));
    }
    let (from_id, to_id, _) = associate(
        &shared,
        (kind, parse_id(kind, &id)?),
        (to_kind, parse_id(to_kind, &to_id)?),
    )?;
    let state = lock(&shared.state);
    let record = state
        .table(kind)
        .get(from_id)
        .map(|r| r.into_owned())
        .ok_or_else(|| ApiError::not_found("Object not found."))?;
    let mut body = record.to_json(kind.schema(), kind.default_properties());
    body["associations"] = json!({
        to_kind.path_name(): {"results": [{"id": to_id.to_string(), "type": type_name}]}
    });
    Ok(Json(body).into_response())
}

/// v4: `PUT /crm/v4/objects/{type}/{id}/associations/default/{toType}/{toId}`.
pub async fn put_default_v4(
    State(shared): State<Arc<Shared>>,
    Path((object, id, to_object, to_id)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    let to_kind = object_kind(&to_object)?;
    let (from_id, to_id, type_id) = associate(
        &shared,
        (kind, parse_id(kind, &id)?),
        (to_kind, parse_id(to_kind, &to_id)?),
    )?;
    let now = lock(&shared.state).now_ms();
    let at = super::record::format_ms(now);
    Ok(Json(json!({
        "status": "COMPLETE",
        "results": [{
            "from": {"id": from_id.to_string()},
            "to": {"id": to_id.to_string()},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
        }],
        "startedAt": at,
        "completedAt": at,
    }))
    .into_response())
}

/// v4: `GET /crm/v4/objects/{type}/{id}/associations/{toType}?limit=&after=`.
pub async fn read_v4(
    State(shared): State<Arc<Shared>>,
    Path((object, id, to_object)): Path<(String, String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    let to_kind = object_kind(&to_object)?;
    let params = QueryParams::parse(&pairs)?;
    let limit = params
        .limit
        .unwrap_or(MAX_ASSOCIATION_PAGE)
        .clamp(1, MAX_ASSOCIATION_PAGE);
    let offset = params
        .after
        .as_deref()
        .and_then(|a| a.parse::<usize>().ok())
        .unwrap_or(0);
    let state = lock(&shared.state);
    let from_id = live(&state, kind, parse_id(kind, &id)?)?;
    let mut edges = state.associations.of((kind, from_id), to_kind);
    edges.sort_by_key(|e| e.to_id);
    let page: Vec<Value> = edges
        .iter()
        .skip(offset)
        .take(limit)
        .map(|e| {
            json!({
                "toObjectId": e.to_id,
                "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": e.type_id, "label": null}]
            })
        })
        .collect();
    let mut body = json!({"results": page});
    if offset.saturating_add(limit) < edges.len() {
        body["paging"] = json!({"next": {"after": offset.saturating_add(limit).to_string()}});
    }
    Ok(Json(body).into_response())
}
