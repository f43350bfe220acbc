//! `sobjects/{type}/updated/?start=&end=` and `sobjects/{type}/deleted/?start=&end=`
//! (crm_apis.md §2.4): ids changed or deleted in a window, with `latestDateCovered`.
//!
//! As in Salesforce, `end` is capped at the org clock, `updated` reaches back at most 30 days
//! and `deleted` 15, and more than 600,000 ids is `EXCEEDED_ID_LIMIT`.
//!
//! Unlike Salesforce, seconds are not ignored: cutting windows to minutes would hide a change
//! until the minute it was made had passed, which tests would have to wait for.
//! Windows are `start <= t <= end` (both ends included), so passing `latestDateCovered` as the
//! next `start` never skips a change; one stamped exactly at the boundary is reported twice.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};

use super::describe::SObject;
use super::errors::ApiError;
use super::record::{format_datetime, parse_datetime};
use super::AppState;
use crate::sandbox::faults::lock;

const DAY_MS: i64 = 86_400_000;
const MAX_IDS: usize = 600_000;

#[derive(Debug, Deserialize)]
pub struct Window {
    start: Option<String>,
    end: Option<String>,
}

/// The window in epoch ms, `end` capped at `now`.
fn window(params: &Window, now: i64, max_days: i64) -> Result<(i64, i64), ApiError> {
    let parse = |name: &str, value: &Option<String>| -> Result<i64, ApiError> {
        let text = value.as_deref().ok_or_else(|| {
            ApiError::bad_request("MISSING_ARGUMENT", format!("{name} is required"))
        })?;
        parse_datetime(text).ok_or_else(|| {
            ApiError::bad_request(
                "INVALID_REPLICATION_DATE",
                format!("{name}: cannot parse '{text}' as an ISO-8601 dateTime"),
            )
        })
    };
    let start = parse("start", &params.start)?;
    let end = parse("end", &params.end)?.min(now);
    if start < now - max_days * DAY_MS {
        return Err(ApiError::bad_request(
            "INVALID_REPLICATION_DATE",
            format!("startDate cannot be more than {max_days} days ago"),
        ));
    }
    if end < start {
        return Err(ApiError::bad_request(
            "INVALID_REPLICATION_DATE",
            "EndDate can not be before StartDate",
        ));
    }
    Ok((start, end))
}

fn contact_only(object: &str) -> Result<(), ApiError> {
    match SObject::parse(object) {
        Some(SObject::Contact) => Ok(()),
        Some(SObject::Task) => Err(ApiError::bad_request(
            "INVALID_TYPE",
            "the sandbox replicates Contact only",
        )),
        None => Err(ApiError::not_found_type(object)),
    }
}

/// `GET …/sobjects/{type}/updated/`
pub async fn updated(
    State(app): State<AppState>,
    Path((_version, object)): Path<(String, String)>,
    Query(params): Query<Window>,
) -> Result<Json<JsonValue>, ApiError> {
    contact_only(&object)?;
    let org = lock(&app.org);
    let (start, end) = window(&params, org.now(), 30)?;
    let mut ids = Vec::new();
    let mut too_many = false;
    org.scan_contacts(None, Some(start), org.now(), |row| {
        let (stamp, id) = org.row_key(&row);
        if stamp > end {
            // Seeded rows are in stamp order, but the overlay restarts lower; keep going.
            return true;
        }
        if ids.len() == MAX_IDS {
            too_many = true;
            return false;
        }
        ids.push(id);
        true
    });
    if too_many {
        return Err(ApiError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "too many ids in the window; narrow start/end",
        ));
    }
    Ok(Json(json!({
        "ids": ids,
        "latestDateCovered": format_datetime(end),
    })))
}

/// `GET …/sobjects/{type}/deleted/`
pub async fn deleted(
    State(app): State<AppState>,
    Path((_version, object)): Path<(String, String)>,
    Query(params): Query<Window>,
) -> Result<Json<JsonValue>, ApiError> {
    contact_only(&object)?;
    let org = lock(&app.org);
    let (start, end) = window(&params, org.now(), 15)?;
    let records: Vec<JsonValue> = org
        .deleted_between(start, end)
        .map(|(at, id)| json!({"id": id, "deletedDate": format_datetime(*at)}))
        .collect();
    // As in an org whose delete log has run for longer than its 15-day retention (no
    // deletions happened before the sandbox started, so nothing is missing from it).
    let earliest = org.now() - 15 * DAY_MS;
    Ok(Json(json!({
        "deletedRecords": records,
        "earliestDateAvailable": format_datetime(earliest),
        "latestDateCovered": format_datetime(end),
    })))
}
