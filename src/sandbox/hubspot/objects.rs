//! Single-record and list endpoints (crm_apis.md §1.3, §1.4, §1.8, §1.9):
//! `GET /crm/v3/objects/{type}` (limit ≤ 100, `after` cursor, `properties`, `archived`),
//! `GET|PATCH /crm/v3/objects/{type}/{id}`, `POST /crm/v3/objects/{type}` (201, with inline
//! associations) and `POST /crm/v3/objects/{type}/search`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::ops::{self, parse_associations};
use super::params::{json_body, QueryParams};
use super::record::Record;
use super::schema::ObjectKind;
use super::search;
use super::state::PortalState;
use super::table::Lookup;
use super::Shared;
use crate::sandbox::faults::lock;

/// The most records one list page returns.
pub const MAX_LIST_PAGE: usize = 100;
const DEFAULT_LIST_PAGE: usize = 10;

pub fn object_kind(segment: &str) -> Result<ObjectKind, ApiError> {
    ObjectKind::parse(segment).ok_or_else(|| {
        ApiError::validation(format!(
            "Unable to infer object type from: {segment}. This sandbox serves contacts, calls and communications."
        ))
    })
}

pub fn parse_id(kind: ObjectKind, text: &str) -> Result<u64, ApiError> {
    text.trim().parse::<u64>().map_err(|_| {
        ApiError::not_found(format!(
            "Object not found. {} ids are numeric; got {text:?}.",
            kind.error_name()
        ))
    })
}

/// A record as GET returns it, with the requested associations.
pub fn record_json(
    state: &PortalState,
    kind: ObjectKind,
    record: &Record,
    properties: &[&str],
    history: &[String],
    associations: &[String],
) -> Value {
    let history: Vec<&str> = history.iter().map(String::as_str).collect();
    let mut json = record.to_json_with_history(kind.schema(), properties, &history);
    let mut linked = Map::new();
    for name in associations {
        let Some(to_kind) = ObjectKind::parse(name) else {
            continue;
        };
        let edges = state.associations.of((kind, record.id), to_kind);
        if edges.is_empty() {
            continue;
        }
        let type_name = format!("{}_to_{}", kind.singular(), to_kind.singular());
        let results: Vec<Value> = edges
            .iter()
            .map(|e| json!({"id": e.to_id.to_string(), "type": type_name}))
            .collect();
        linked.insert(to_kind.path_name().to_string(), json!({"results": results}));
    }
    if !linked.is_empty() {
        json["associations"] = Value::Object(linked);
    }
    json
}

fn host_base(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// `GET /crm/v3/objects/{type}`: pages in id order; `after` is the next id (opaque to clients).
pub async fn list(
    State(shared): State<Arc<Shared>>,
    Path(object): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    let params = QueryParams::parse(&pairs)?;
    let limit = params.limit.unwrap_or(DEFAULT_LIST_PAGE);
    if limit == 0 || limit > MAX_LIST_PAGE {
        return Err(ApiError::validation(format!(
            "limit must be between 1 and {MAX_LIST_PAGE}, got {limit}"
        )));
    }
    let from = match &params.after {
        None => 0,
        Some(after) => after
            .trim()
            .parse::<u64>()
            .map_err(|_| ApiError::validation(format!("Invalid paging cursor after={after:?}")))?,
    };
    let names = params.property_names(kind.default_properties());
    let body = {
        let state = lock(&shared.state);
        let mut results = Vec::with_capacity(limit);
        let mut next = None;
        let wanted = state
            .table(kind)
            .iter_from(from)
            .filter(|c| c.is_archived() == params.archived);
        for candidate in wanted {
            if results.len() == limit {
                next = Some(candidate.id());
                break;
            }
            results.push(record_json(
                &state,
                kind,
                candidate.record(),
                &names,
                &params.history,
                &params.associations,
            ));
        }
        let mut body = json!({"results": results});
        if let Some(next) = next {
            let link = format!(
                "{}/crm/v3/objects/{}?after={next}&limit={limit}",
                host_base(&headers),
                kind.path_name()
            );
            body["paging"] = json!({"next": {"after": next.to_string(), "link": link}});
        }
        body
    };
    Ok(Json(body).into_response())
}

/// `GET /crm/v3/objects/{type}/{id}`; merged ids answer with the surviving record.
pub async fn read(
    State(shared): State<Arc<Shared>>,
    Path((object, id)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    let params = QueryParams::parse(&pairs)?;
    let names = params.property_names(kind.default_properties());
    let mut state = lock(&shared.state);
    let found = match params.id_property.as_deref() {
        None | Some("hs_object_id") => match state.table(kind).resolve(parse_id(kind, &id)?) {
            Lookup::Live(id) => Some(id),
            Lookup::Archived(id) if params.archived => Some(id),
            _ => None,
        },
        Some(property) => {
            ops::find(&mut state, kind, &id, Some(property)).map_err(|e| e.to_api(kind))?
        }
    };
    let record = found
        .and_then(|id| state.table(kind).get(id).map(|r| r.into_owned()))
        .ok_or_else(|| ApiError::not_found("Object not found.  objectId are usually numeric."))?;
    let body = record_json(
        &state,
        kind,
        &record,
        &names,
        &params.history,
        &params.associations,
    );
    Ok(Json(body).into_response())
}

/// `PATCH /crm/v3/objects/{type}/{id}` with `{"properties": {...}}`.
pub async fn update(
    State(shared): State<Arc<Shared>>,
    Path((object, id)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    let params = QueryParams::parse(&pairs)?;
    let input: Value = json_body(&body)?;
    let properties = input
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut state = lock(&shared.state);
    let target = match params.id_property.as_deref() {
        None | Some("hs_object_id") => parse_id(kind, &id)?,
        Some(property) => ops::find(&mut state, kind, &id, Some(property))
            .map_err(|e| e.to_api(kind))?
            .ok_or_else(|| ApiError::not_found("Object not found."))?,
    };
    let now = state.tick();
    let written =
        ops::update(&mut state, kind, target, &properties, now).map_err(|e| e.to_api(kind))?;
    let names: Vec<&str> = properties.keys().map(String::as_str).collect();
    let record = state
        .table(kind)
        .get(written)
        .map(|r| r.to_json(kind.schema(), &names))
        .unwrap_or(Value::Null);
    Ok(Json(record).into_response())
}

/// `POST /crm/v3/objects/{type}` with `{"properties": {...}, "associations": [...]}`: 201.
pub async fn create(
    State(shared): State<Arc<Shared>>,
    Path(object): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    let input: Value = json_body(&body)?;
    let properties = input
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let associations =
        parse_associations(kind, input.get("associations")).map_err(|e| e.to_api(kind))?;
    let mut state = lock(&shared.state);
    let now = state.tick();
    let id = ops::create(&mut state, kind, &properties, &associations, now)
        .map_err(|e| e.to_api(kind))?;
    let names: Vec<&str> = properties.keys().map(String::as_str).collect();
    let record = state
        .table(kind)
        .get(id)
        .map(|r| r.to_json(kind.schema(), &names))
        .unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

/// `POST /crm/v3/objects/{type}/search`.
pub async fn search(
    State(shared): State<Arc<Shared>>,
    Path(object): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    let compiled = search::compile(kind, &body)?;
    let (results, total) = {
        let state = lock(&shared.state);
        compiled.run(&state, kind)
    };
    Ok(Json(search::response(&compiled, results, total)).into_response())
}
