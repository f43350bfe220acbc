//! Single-record endpoints (crm_apis.md §2.6, §2.9): `POST sobjects/{type}` (e.g. a Task as a
//! call log), `GET`/`PATCH sobjects/{type}/{id}`, `DELETE sobjects/Contact/{id}`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value as JsonValue};

use super::collections::{apply, prepare_create, prepare_update};
use super::describe::SObject;
use super::errors::{ApiError, RecordError};
use super::record::write_record_json;
use super::AppState;
use crate::sandbox::faults::lock;

fn object_of(name: &str) -> Result<SObject, ApiError> {
    SObject::parse(name).ok_or_else(|| ApiError::not_found_type(name))
}

fn body_object(
    body: Result<Json<JsonValue>, JsonRejection>,
) -> Result<Map<String, JsonValue>, ApiError> {
    match body {
        Ok(Json(JsonValue::Object(map))) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "JSON_PARSER_ERROR",
            "the body must be a JSON object of field values",
        )),
        Err(rejection) => Err(ApiError::bad_request(
            "JSON_PARSER_ERROR",
            rejection.body_text(),
        )),
    }
}

/// A single-record failure: the first record error as a request-level error array.
fn record_errors(errors: Vec<RecordError>) -> ApiError {
    let first = errors.into_iter().next();
    match first {
        Some(error) => {
            let code: &'static str = error.status_code;
            let status = match code {
                "ENTITY_IS_DELETED" | "INVALID_CROSS_REFERENCE_KEY" | "MALFORMED_ID"
                    if error.fields.is_empty() || error.fields == ["Id"] =>
                {
                    StatusCode::NOT_FOUND
                }
                _ => StatusCode::BAD_REQUEST,
            };
            ApiError::new(status, code, error.message).with_fields(error.fields)
        }
        None => ApiError::bad_request("UNKNOWN_EXCEPTION", "the record was refused"),
    }
}

/// `POST …/sobjects/{type}`: 201 `{"id","success":true,"errors":[]}`.
pub async fn create(
    State(app): State<AppState>,
    Path((_version, object)): Path<(String, String)>,
    body: Result<Json<JsonValue>, JsonRejection>,
) -> Result<Response, ApiError> {
    let object = object_of(&object)?;
    let body = body_object(body)?;
    let mut org = lock(&app.org);
    let prepared = prepare_create(&org, object, &body).map_err(record_errors)?;
    let at = org.tick();
    let id = apply(&mut org, prepared, at).map_err(|e| record_errors(vec![e]))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "success": true, "errors": []})),
    )
        .into_response())
}

/// `PATCH …/sobjects/{type}/{id}`: 204.
pub async fn update(
    State(app): State<AppState>,
    Path((_version, object, id)): Path<(String, String, String)>,
    body: Result<Json<JsonValue>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let object = object_of(&object)?;
    let body = body_object(body)?;
    let mut org = lock(&app.org);
    let prepared = prepare_update(&org, object, &id, &body).map_err(record_errors)?;
    let at = org.tick();
    apply(&mut org, prepared, at).map_err(|e| record_errors(vec![e]))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct FieldsParam {
    fields: Option<String>,
}

/// `GET …/sobjects/{type}/{id}[?fields=A,B]`
pub async fn get(
    State(app): State<AppState>,
    Path((version, object, id)): Path<(String, String, String)>,
    Query(params): Query<FieldsParam>,
) -> Result<Response, ApiError> {
    let object = object_of(&object)?;
    let schema = object.schema();
    let fields: Vec<usize> = match &params.fields {
        Some(list) => list
            .split(',')
            .map(|name| {
                schema.index_of(name.trim()).ok_or_else(|| {
                    ApiError::invalid_field(format!(
                        "No such column '{}' on entity '{}'.",
                        name.trim(),
                        schema.label
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        None => (0..schema.fields.len()).collect(),
    };
    let org = lock(&app.org);
    let record = org.get(object, &id).ok_or_else(ApiError::not_found)?;
    let mut out = Vec::new();
    write_record_json(&mut out, &record, &fields, &version);
    Ok((
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/json;charset=UTF-8",
        )],
        out,
    )
        .into_response())
}

/// `DELETE …/sobjects/Contact/{id}`: 204; the id then appears in `deleted/`.
pub async fn delete(
    State(app): State<AppState>,
    Path((_version, object, id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    if object_of(&object)? != SObject::Contact {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "the sandbox deletes Contacts only",
        ));
    }
    let mut org = lock(&app.org);
    if org.contact(&id).is_none() {
        return Err(if org.is_deleted(&id) {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "ENTITY_IS_DELETED",
                "entity is deleted",
            )
        } else {
            ApiError::not_found()
        });
    }
    let at = org.tick();
    org.delete_contact(&id, at);
    Ok(StatusCode::NO_CONTENT)
}
