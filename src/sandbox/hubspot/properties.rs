//! The properties API (crm_apis.md §1.7): `GET /crm/v3/properties/{type}` (all, no paging) and
//! `GET /crm/v3/properties/{type}/{name}`, with types, field types, options and read-only flags.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::objects::object_kind;
use super::record::format_ms;
use super::schema::PropertyDef;
use super::state::CLOCK_START_MS;

/// One `Property` as HubSpot describes it.
pub fn property_json(def: &PropertyDef, display_order: usize) -> Value {
    let options: Vec<Value> = def
        .options
        .iter()
        .enumerate()
        .map(|(order, option)| {
            json!({
                "label": option.label,
                "value": option.value,
                "displayOrder": order,
                "hidden": false,
            })
        })
        .collect();
    // Properties were "created" a year before the sandbox clock starts; stable output.
    let created = format_ms(CLOCK_START_MS - 365 * 86_400_000);
    json!({
        "name": def.name,
        "label": def.label,
        "type": def.kind.as_str(),
        "fieldType": def.field_type,
        "groupName": def.group,
        "description": def.description,
        "options": options,
        "displayOrder": display_order,
        "calculated": false,
        "externalOptions": false,
        "hasUniqueValue": def.unique,
        "hidden": false,
        "hubspotDefined": def.hubspot_defined,
        "formField": !def.read_only,
        "createdAt": created,
        "updatedAt": created,
        "archived": false,
        "modificationMetadata": {
            "archivable": !def.hubspot_defined,
            "readOnlyDefinition": def.hubspot_defined,
            "readOnlyValue": def.read_only,
        },
    })
}

pub async fn list(Path(object): Path<String>) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    let results: Vec<Value> = kind
        .schema()
        .properties
        .iter()
        .enumerate()
        .map(|(order, def)| property_json(def, order))
        .collect();
    Ok(Json(json!({"results": results})).into_response())
}

pub async fn read(Path((object, name)): Path<(String, String)>) -> Result<Response, ApiError> {
    let kind = object_kind(&object)?;
    let schema = kind.schema();
    let index = schema.index_of(&name).ok_or_else(|| {
        ApiError::not_found(format!(
            "Unable to find property {name} for object type {}",
            kind.type_id()
        ))
    })?;
    Ok(Json(property_json(schema.def(index), index as usize)).into_response())
}
