//! `GET /v1/contacts`, `GET /v1/contacts/{phone}`, `PATCH /v1/contacts/{phone}`.
//!
//! A contact is shown as `{"phone_number", "fields", "provenance", "links", "created_at",
//! "updated_at"}`: fields as JSON values (dates `YYYY-MM-DD`, datetimes RFC 3339 UTC, enums as
//! their variant), provenance per field as `{"source": "inbound:salesforce" | "analysis:<id>" |
//! "manual", "at"}`, links as connection → CRM record id, and, when the CRM refused a value,
//! `"out_of_step": {connection: {crm_field: {"value", "message", "since"}}}` until the next
//! inbound sync reads the record back.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value as JsonValue};

use super::error::{ApiError, ApiResult};
use super::events::engine_error;
use crate::daemon::{store_error, AppState};
use crate::store::ContactRecord;
use crate::value::dynamic::DynValue;

/// The JSON view of a contact.
pub fn contact_json(contact: &ContactRecord) -> JsonValue {
    let fields: Map<String, JsonValue> = contact
        .fields
        .iter()
        .map(|(name, value)| (name.clone(), DynValue::from_value(value).to_json()))
        .collect();
    let provenance: Map<String, JsonValue> = contact
        .provenance
        .iter()
        .map(|(name, p)| {
            (
                name.clone(),
                json!({"source": p.source.label(), "at": p.at.to_rfc3339()}),
            )
        })
        .collect();
    let mut out = json!({
        "phone_number": contact.phone,
        "fields": fields,
        "provenance": provenance,
        "links": contact.links,
        "created_at": contact.created_at.to_rfc3339(),
        "updated_at": contact.updated_at.to_rfc3339(),
    });
    // Only when there is something to say: CRM fields whose last value the CRM refused.
    if !contact.out_of_step.is_empty() {
        out["out_of_step"] = json!(contact.out_of_step);
    }
    out
}

/// Normalizes a phone number from a URL or body to E.164, or answers 400 naming it.
pub fn parse_phone(state: &AppState, raw: &str) -> ApiResult<String> {
    state.phone.normalize(raw).map_err(|err| {
        ApiError::bad_request("invalid_phone", format!("phone number {raw:?}: {err}"))
    })
}

/// `GET /v1/contacts/{phone}`.
pub async fn get_contact(
    State(state): State<Arc<AppState>>,
    Path(raw): Path<String>,
) -> ApiResult<Json<JsonValue>> {
    let phone = parse_phone(&state, &raw)?;
    let engine = state.engine.clone();
    let lookup = phone.clone();
    let contact = state
        .blocking(move || engine.store().contact(&lookup).map_err(store_error))
        .await?;
    match contact {
        Some(contact) => Ok(Json(contact_json(&contact))),
        None => Err(ApiError::not_found(format!(
            "no contact with phone {phone}"
        ))),
    }
}

/// Paging of `GET /v1/contacts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Return contacts whose phone sorts after this one (the previous page's `next`).
    pub after: Option<String>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<usize>,
}

/// `GET /v1/contacts?after=&limit=` → `{"contacts": [...], "next": "+1..." | null}`, in phone
/// order.
pub async fn list_contacts(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<JsonValue>> {
    let limit = super::paging::page_limit(query.limit)?;
    let engine = state.engine.clone();
    let after = query.after.clone();
    // Fetch one extra row to know whether another page exists.
    let mut contacts = state
        .blocking(move || {
            engine
                .store()
                .contacts(after.as_deref(), limit + 1)
                .map_err(store_error)
        })
        .await?;
    let next = if contacts.len() > limit {
        contacts.truncate(limit);
        contacts.last().map(|c| c.phone.clone())
    } else {
        None
    };
    let items: Vec<JsonValue> = contacts.iter().map(contact_json).collect();
    Ok(Json(json!({"contacts": items, "next": next})))
}

/// Body of `PATCH /v1/contacts/{phone}`: `{"fields": {"lead_status": "working", "email": null}}`.
/// Values are coerced strictly to the field's type (`"42"` for a number is fine, `"soon"` for a
/// date is not); `null` clears a field. On any error nothing is written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    pub fields: Map<String, JsonValue>,
}

/// `PATCH /v1/contacts/{phone}`: a manual edit (created when the contact is missing). Changed
/// fields with an outbound mapping are queued for the active connection like any non-inbound
/// change. Answers `{"report": {...}, "contact": {...}}`.
pub async fn patch_contact(
    State(state): State<Arc<AppState>>,
    Path(raw): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<JsonValue>> {
    let deserializer = &mut serde_json::Deserializer::from_slice(&body);
    let patch: PatchBody = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        ApiError::bad_request(
            "invalid_body",
            format!(
                "`{path}`: {} (expected {{\"fields\": {{\"name\": value, ...}}}})",
                err.into_inner()
            ),
        )
    })?;
    let engine = state.engine.clone();
    let (report, contact) = state
        .blocking(move || {
            let mut fields = crate::value::Fields::new();
            for (name, value) in &patch.fields {
                let value = engine
                    .parse_field_value(name, value)
                    .map_err(engine_error)?;
                fields.insert(name.clone(), value);
            }
            let report = engine.manual_set(&raw, fields).map_err(engine_error)?;
            let contact = engine.store().contact(&report.phone).map_err(store_error)?;
            Ok((report, contact))
        })
        .await?;
    if !report.outbound.is_empty() {
        state.wake_dispatcher();
    }
    Ok(Json(json!({
        "report": report,
        "contact": contact.as_ref().map(contact_json),
    })))
}
