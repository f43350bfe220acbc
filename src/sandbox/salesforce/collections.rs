//! sObject Collections (crm_apis.md §2.7): `PATCH /composite/sobjects` (update) and
//! `POST /composite/sobjects` (create), at most 200 records, `allOrNone`, one SaveResult per
//! record in request order with per-record `statusCode` errors. One request is one org
//! transaction: every record it saves gets the same SystemModstamp.
//!
//! The preparation helpers here are shared with the single-record endpoints in `sobjects.rs`.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use serde_json::{Map, Value as JsonValue};

use super::describe::{FieldKind, SObject, Schema};
use super::errors::{ApiError, RecordError, SaveResult};
use super::record::{looks_like_id, validate_fields, Val};
use super::state::OrgState;
use super::AppState;
use crate::sandbox::faults::lock;

/// Records allowed in one collections request.
pub const MAX_RECORDS: usize = 200;

/// A write that passed validation.
pub struct Prepared {
    pub object: SObject,
    /// `Some` for updates.
    pub id: Option<String>,
    pub values: Vec<(usize, Val)>,
}

/// Validate an update of `id` with the fields of `body`.
pub fn prepare_update(
    org: &OrgState,
    object: SObject,
    id: &str,
    body: &Map<String, JsonValue>,
) -> Result<Prepared, Vec<RecordError>> {
    let schema = object.schema();
    if !looks_like_id(id) || !id.starts_with(schema.key_prefix) {
        return Err(vec![RecordError::new(
            "MALFORMED_ID",
            format!("{} ID: id value of incorrect type: {id}", schema.label),
            Some("Id"),
        )]);
    }
    if org.get(object, id).is_none() {
        return Err(vec![if org.is_deleted(id) {
            RecordError::new("ENTITY_IS_DELETED", "entity is deleted", None)
        } else {
            RecordError::new(
                "INVALID_CROSS_REFERENCE_KEY",
                format!("invalid cross reference id: {id}"),
                None,
            )
        }]);
    }
    let values = validate_fields(schema, body, false)?;
    check_references(org, schema, &values)?;
    Ok(Prepared {
        object,
        id: Some(id.to_string()),
        values,
    })
}

/// Validate a create with the fields of `body`.
pub fn prepare_create(
    org: &OrgState,
    object: SObject,
    body: &Map<String, JsonValue>,
) -> Result<Prepared, Vec<RecordError>> {
    let schema = object.schema();
    if body.keys().any(|k| k.eq_ignore_ascii_case("id")) {
        return Err(vec![RecordError::new(
            "INVALID_FIELD",
            "cannot specify Id in an insert call",
            Some("Id"),
        )]);
    }
    let values = validate_fields(schema, body, true)?;
    check_references(org, schema, &values)?;
    Ok(Prepared {
        object,
        id: None,
        values,
    })
}

/// Lookup fields must name a live record of a type they may point to.
fn check_references(
    org: &OrgState,
    schema: &Schema,
    values: &[(usize, Val)],
) -> Result<(), Vec<RecordError>> {
    let mut errors = Vec::new();
    for (index, value) in values {
        let field = schema.field(*index);
        let (FieldKind::Reference, Val::Str(target)) = (field.kind, value) else {
            continue;
        };
        if !target.starts_with(SObject::Contact.schema().key_prefix) {
            errors.push(RecordError::new(
                "FIELD_INTEGRITY_EXCEPTION",
                format!("{}: id value of incorrect type: {target}", field.label),
                Some(field.name),
            ));
        } else if org.contact(target).is_none() {
            let (code, message) = if org.is_deleted(target) {
                ("ENTITY_IS_DELETED", "entity is deleted".to_string())
            } else {
                (
                    "INVALID_CROSS_REFERENCE_KEY",
                    format!("invalid cross reference id: {target}"),
                )
            };
            errors.push(RecordError::new(code, message, Some(field.name)));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Apply a prepared write at org time `at`; returns the record id.
pub fn apply(org: &mut OrgState, prepared: Prepared, at: i64) -> Result<String, RecordError> {
    match prepared.id {
        Some(id) => {
            org.update(prepared.object, &id, prepared.values, at)?;
            Ok(id)
        }
        None => Ok(org.create(prepared.object, prepared.values, at)),
    }
}

/// One record of a request: the id to report, and the validated write or its errors.
type Outcome = (Option<String>, Result<Prepared, Vec<RecordError>>);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Create,
    Update,
}

/// `PATCH /services/data/{v}/composite/sobjects`
pub async fn update(
    State(app): State<AppState>,
    body: Result<Json<JsonValue>, JsonRejection>,
) -> Result<Json<Vec<SaveResult>>, ApiError> {
    save(&app, body, Mode::Update)
}

/// `POST /services/data/{v}/composite/sobjects`
pub async fn create(
    State(app): State<AppState>,
    body: Result<Json<JsonValue>, JsonRejection>,
) -> Result<Json<Vec<SaveResult>>, ApiError> {
    save(&app, body, Mode::Create)
}

fn save(
    app: &AppState,
    body: Result<Json<JsonValue>, JsonRejection>,
    mode: Mode,
) -> Result<Json<Vec<SaveResult>>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request("JSON_PARSER_ERROR", e.body_text()))?;
    let records = body
        .get("records")
        .and_then(JsonValue::as_array)
        .ok_or_else(|| {
            ApiError::bad_request("JSON_PARSER_ERROR", "the body needs a \"records\" array")
        })?;
    if records.len() > MAX_RECORDS {
        return Err(ApiError::bad_request(
            "EXCEEDED_ID_LIMIT",
            format!("record limit reached. cannot submit more than {MAX_RECORDS} records into this call"),
        ));
    }
    let all_or_none = body
        .get("allOrNone")
        .and_then(JsonValue::as_bool)
        .unwrap_or(false);
    let mut org = lock(&app.org);
    let prepared: Vec<Outcome> = records
        .iter()
        .map(|record| prepare_one(&org, record, mode))
        .collect();
    let any_failed = prepared.iter().any(|(_, p)| p.is_err());
    if all_or_none && any_failed {
        let results = prepared
            .into_iter()
            .map(|(id, p)| match p {
                Ok(_) => SaveResult::failed(id, vec![RecordError::rolled_back()]),
                Err(errors) => SaveResult::failed(id, errors),
            })
            .collect();
        return Ok(Json(results));
    }
    let at = if prepared.iter().any(|(_, p)| p.is_ok()) {
        org.tick()
    } else {
        org.now()
    };
    let results = prepared
        .into_iter()
        .map(|(id, p)| match p {
            Ok(prepared) => match apply(&mut org, prepared, at) {
                Ok(id) => SaveResult::ok(id),
                Err(error) => SaveResult::failed(id, vec![error]),
            },
            Err(errors) => SaveResult::failed(id, errors),
        })
        .collect();
    Ok(Json(results))
}

/// Validate one element of `records`; returns the id to report alongside the outcome.
fn prepare_one(org: &OrgState, record: &JsonValue, mode: Mode) -> Outcome {
    let Some(fields) = record.as_object() else {
        return (
            None,
            Err(vec![RecordError::new(
                "JSON_PARSER_ERROR",
                "each record must be a JSON object",
                None,
            )]),
        );
    };
    let id = fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("id"))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string);
    let type_name = fields
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(JsonValue::as_str);
    let Some(object) = type_name.and_then(SObject::parse) else {
        let message = match type_name {
            Some(name) => format!("sObject type '{name}' is not supported."),
            None => "Must send a concrete entity type.".to_string(),
        };
        return (
            id,
            Err(vec![RecordError::new("INVALID_TYPE", message, None)]),
        );
    };
    let outcome = match (mode, &id) {
        (Mode::Update, Some(id)) => prepare_update(org, object, id, fields),
        (Mode::Update, None) => Err(vec![RecordError::new(
            "MISSING_ARGUMENT",
            "Id not specified in an update call",
            Some("Id"),
        )]),
        (Mode::Create, _) => prepare_create(org, object, fields),
    };
    (if mode == Mode::Update { id } else { None }, outcome)
}
