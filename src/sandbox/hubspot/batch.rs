//! `POST /crm/v3/objects/{type}/batch/{read|create|update|upsert|archive}` (crm_apis.md §1.6):
//! at most 100 inputs (else 400), 200 when everything worked, 207 with `numErrors` and
//! `errors[]` when some inputs failed (missing ids, invalid properties or options), 201 for
//! create and 204 for archive.
//!
//! Batch create follows the documented rule: per-input errors (207) only when every input carries
//! an `objectWriteTraceId`; otherwise one bad input fails the whole batch with 400 and nothing is
//! created.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::errors::{ApiError, BatchError};
use super::objects::object_kind;
use super::ops::{self, parse_associations, WriteError};
use super::params::{json_body, QueryParams};
use super::record::format_ms;
use super::schema::ObjectKind;
use super::state::PortalState;
use super::table::Lookup;
use super::Shared;
use crate::sandbox::faults::lock;

/// The most inputs one batch request may carry.
pub const MAX_BATCH_INPUTS: usize = 100;

fn inputs(body: &Value) -> Result<&Vec<Value>, ApiError> {
    let inputs = body
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::validation("The request body must have an \"inputs\" array."))?;
    if inputs.len() > MAX_BATCH_INPUTS {
        return Err(ApiError::validation(format!(
            "Batch input limit exceeded: {} inputs were sent; at most {MAX_BATCH_INPUTS} are allowed per request.",
            inputs.len()
        )));
    }
    Ok(inputs)
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn properties_of(input: &Value) -> Map<String, Value> {
    input
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The batch response envelope: 200 (or `ok_status`) without errors, 207 with them.
fn batch_response(
    ok_status: StatusCode,
    results: Vec<Value>,
    errors: Vec<BatchError>,
    now: i64,
) -> Response {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": format_ms(now),
        "completedAt": format_ms(now),
    });
    if errors.is_empty() {
        return (ok_status, Json(body)).into_response();
    }
    body["numErrors"] = json!(errors.len());
    body["errors"] = Value::Array(errors.iter().map(BatchError::to_json).collect());
    (StatusCode::MULTI_STATUS, Json(body)).into_response()
}

/// One error item for all ids that were not found, as HubSpot reports them.
fn not_found_error(kind: ObjectKind, ids: Vec<String>) -> BatchError {
    BatchError {
        category: "OBJECT_NOT_FOUND",
        message: format!(
            "Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.",
            kind.error_name()
        ),
        id: None,
        context: vec![("ids", ids)],
        errors: Vec::new(),
    }
}

pub async fn batch(
    State(shared): State<Arc<Shared>>,
    Path((object, operation)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    let params = QueryParams::parse(&pairs)?;
    let request: Value = json_body(&body)?;
    let inputs = inputs(&request)?;
    let mut state = lock(&shared.state);
    match operation.as_str() {
        "read" => Ok(read(&mut state, kind, &request, inputs, params.archived)),
        "update" => update(&mut state, kind, inputs),
        "upsert" => Ok(upsert(&mut state, kind, inputs)),
        "create" => create(&mut state, kind, inputs),
        "archive" => archive(&mut state, kind, inputs),
        other => Err(ApiError::not_found(format!(
            "Unknown batch operation {other:?}; use read, create, update, upsert or archive."
        ))),
    }
}

fn read(
    state: &mut PortalState,
    kind: ObjectKind,
    request: &Value,
    inputs: &[Value],
    archived: bool,
) -> Response {
    let requested: Vec<String> = request
        .get("properties")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(|v| text(Some(v))).collect())
        .unwrap_or_default();
    let names: Vec<&str> = if requested.is_empty() {
        kind.default_properties().to_vec()
    } else {
        requested.iter().map(String::as_str).collect()
    };
    let history: Vec<String> = request
        .get("propertiesWithHistory")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(|v| text(Some(v))).collect())
        .unwrap_or_default();
    let history: Vec<&str> = history.iter().map(String::as_str).collect();
    let id_property = request.get("idProperty").and_then(Value::as_str);
    let mut results = Vec::new();
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    let mut errors = Vec::new();
    for input in inputs {
        let Some(id_value) = text(input.get("id")) else {
            missing.push(input.to_string());
            continue;
        };
        let found = match id_property {
            None | Some("hs_object_id") => id_value.trim().parse::<u64>().ok().and_then(|id| {
                match state.table(kind).resolve(id) {
                    Lookup::Live(id) => Some(id),
                    Lookup::Archived(id) if archived => Some(id),
                    _ => None,
                }
            }),
            Some(property) => match ops::find(state, kind, &id_value, Some(property)) {
                Ok(found) => found,
                Err(err) => {
                    errors.push(err.to_batch(kind, Some(id_value), None));
                    continue;
                }
            },
        };
        match found.and_then(|id| state.table(kind).get(id).map(|r| r.into_owned())) {
            Some(record) if seen.insert(record.id) => {
                results.push(record.to_json_with_history(kind.schema(), &names, &history))
            }
            Some(_) => {}
            None => missing.push(id_value),
        }
    }
    if !missing.is_empty() {
        errors.insert(0, not_found_error(kind, missing));
    }
    let now = state.now_ms();
    batch_response(StatusCode::OK, results, errors, now)
}

fn update(
    state: &mut PortalState,
    kind: ObjectKind,
    inputs: &[Value],
) -> Result<Response, ApiError> {
    let mut seen = HashSet::new();
    let duplicates: Vec<String> = inputs
        .iter()
        .filter_map(|input| text(input.get("id")))
        .filter(|id| !seen.insert(id.clone()))
        .collect();
    if !duplicates.is_empty() {
        return Err(ApiError::validation(format!(
            "Duplicate IDs found in batch input: {duplicates:?}. IDs must be unique"
        )));
    }
    let now = state.tick();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    let mut missing = Vec::new();
    for input in inputs {
        let id_value = text(input.get("id")).unwrap_or_default();
        let trace = text(input.get("objectWriteTraceId"));
        let id_property = input.get("idProperty").and_then(Value::as_str);
        let properties = properties_of(input);
        let target = match ops::find(state, kind, &id_value, id_property) {
            Ok(Some(id)) => id,
            Ok(None) => {
                missing.push(id_value);
                continue;
            }
            Err(err) => {
                errors.push(err.to_batch(kind, Some(id_value), trace));
                continue;
            }
        };
        match ops::update(state, kind, target, &properties, now) {
            Ok(id) => {
                let names: Vec<&str> = properties.keys().map(String::as_str).collect();
                if let Some(record) = state.table(kind).get(id) {
                    results.push(record.to_json(kind.schema(), &names));
                }
            }
            Err(WriteError::NotFound(_)) => missing.push(id_value),
            Err(err) => errors.push(err.to_batch(kind, Some(id_value), trace)),
        }
    }
    if !missing.is_empty() {
        errors.insert(0, not_found_error(kind, missing));
    }
    Ok(batch_response(StatusCode::OK, results, errors, now))
}

fn upsert(state: &mut PortalState, kind: ObjectKind, inputs: &[Value]) -> Response {
    let now = state.tick();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        let id_value = text(input.get("id")).unwrap_or_default();
        let trace = text(input.get("objectWriteTraceId"));
        let Some(id_property) = input.get("idProperty").and_then(Value::as_str) else {
            let err = WriteError::Unsupported(format!(
                "Input {id_value:?} has no idProperty; upsert needs a unique property such as email"
            ));
            errors.push(err.to_batch(kind, Some(id_value), trace));
            continue;
        };
        let properties = properties_of(input);
        match ops::upsert(state, kind, &id_value, id_property, &properties, now) {
            Ok((id, new)) => {
                let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
                names.push(id_property);
                if let Some(record) = state.table(kind).get(id) {
                    let mut json = record.to_json(kind.schema(), &names);
                    json["new"] = json!(new);
                    results.push(json);
                }
            }
            Err(err) => errors.push(err.to_batch(kind, Some(id_value), trace)),
        }
    }
    batch_response(StatusCode::OK, results, errors, now)
}

fn create(
    state: &mut PortalState,
    kind: ObjectKind,
    inputs: &[Value],
) -> Result<Response, ApiError> {
    let traced = !inputs.is_empty()
        && inputs
            .iter()
            .all(|input| text(input.get("objectWriteTraceId")).is_some());
    let parsed: Vec<_> = inputs
        .iter()
        .map(|input| {
            let associations = parse_associations(kind, input.get("associations"));
            (
                properties_of(input),
                associations,
                text(input.get("objectWriteTraceId")),
            )
        })
        .collect();
    if !traced {
        // Without trace ids HubSpot cannot say which input failed: all or nothing.
        for (properties, associations, _) in &parsed {
            let checked = associations
                .clone()
                .and_then(|associations| ops::check_create(state, kind, properties, &associations));
            if let Err(err) = checked {
                return Err(err.to_api(kind));
            }
        }
    }
    let now = state.tick();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (properties, associations, trace) in parsed {
        let created = associations
            .and_then(|associations| ops::create(state, kind, &properties, &associations, now));
        match created {
            Ok(id) => {
                let names: Vec<&str> = properties.keys().map(String::as_str).collect();
                if let Some(record) = state.table(kind).get(id) {
                    let mut json = record.to_json(kind.schema(), &names);
                    if let Some(trace) = &trace {
                        json["objectWriteTraceId"] = json!(trace);
                    }
                    results.push(json);
                }
            }
            Err(err) => errors.push(err.to_batch(kind, None, trace)),
        }
    }
    Ok(batch_response(StatusCode::CREATED, results, errors, now))
}

fn archive(
    state: &mut PortalState,
    kind: ObjectKind,
    inputs: &[Value],
) -> Result<Response, ApiError> {
    let now = state.tick();
    for input in inputs {
        if let Some(id) = text(input.get("id")).and_then(|id| id.trim().parse::<u64>().ok()) {
            ops::archive(state, kind, id, now);
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
