//! HubSpot CRM v3/v4 JSON shapes (crm_apis.md §1). Lenient on input.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Deserialize)]
pub struct ListResponse {
    #[serde(default)]
    pub results: Vec<Value>,
    #[serde(default)]
    pub paging: Option<Paging>,
    #[serde(default)]
    pub total: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct Paging {
    #[serde(default)]
    pub next: Option<NextPage>,
}

#[derive(Debug, Deserialize)]
pub struct NextPage {
    /// An opaque cursor (list) or a numeric offset string (search).
    pub after: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    pub filter_groups: Vec<FilterGroup>,
    pub sorts: Vec<Sort>,
    pub properties: Vec<String>,
    pub limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FilterGroup {
    pub filters: Vec<Filter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub property_name: String,
    pub operator: &'static str,
    pub value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sort {
    pub property_name: String,
    pub direction: &'static str,
}

#[derive(Debug, Deserialize)]
pub struct PropertiesResponse {
    #[serde(default)]
    pub results: Vec<Property>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    pub name: String,
    #[serde(rename = "type", default)]
    pub property_type: String,
    #[serde(default)]
    pub options: Vec<PropertyOption>,
    #[serde(default)]
    pub modification_metadata: Option<ModificationMetadata>,
    #[serde(default)]
    pub calculated: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct PropertyOption {
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModificationMetadata {
    #[serde(default)]
    pub read_only_value: bool,
}

#[derive(Debug, Serialize)]
pub struct BatchInputs<T> {
    pub inputs: Vec<T>,
}

#[derive(Debug, Serialize)]
pub struct UpdateInput {
    pub id: String,
    pub properties: serde_json::Map<String, Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateInput {
    pub properties: serde_json::Map<String, Value>,
    pub associations: Vec<AssociationInput>,
    pub object_write_trace_id: String,
}

#[derive(Debug, Serialize)]
pub struct AssociationInput {
    pub to: AssociationTarget,
    pub types: Vec<AssociationType>,
}

#[derive(Debug, Serialize)]
pub struct AssociationTarget {
    pub id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationType {
    pub association_category: &'static str,
    pub association_type_id: u32,
}

#[derive(Debug, Serialize)]
pub struct IdInput {
    pub id: String,
}

#[derive(Debug, Serialize)]
pub struct BatchReadRequest {
    pub properties: Vec<String>,
    /// Properties to return with their versions (`propertiesWithHistory`).
    #[serde(
        rename = "propertiesWithHistory",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub properties_with_history: Vec<String>,
    pub inputs: Vec<IdInput>,
}

/// Batch response, 200 or 207.
#[derive(Debug, Deserialize)]
pub struct BatchResponse {
    #[serde(default)]
    pub results: Vec<Value>,
    #[serde(default)]
    pub errors: Vec<BatchError>,
}

#[derive(Debug, Deserialize)]
pub struct BatchError {
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub context: serde_json::Map<String, Value>,
}

impl BatchError {
    /// Every string in the error's context (`ids`, `objectWriteTraceId`, ...): the inputs it is
    /// about.
    pub fn context_values(&self) -> Vec<String> {
        let mut out = Vec::new();
        for v in self.context.values() {
            match v {
                Value::Array(items) => out.extend(items.iter().filter_map(|i| match i {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })),
                Value::String(s) => out.push(s.clone()),
                Value::Number(n) => out.push(n.to_string()),
                _ => {}
            }
        }
        out
    }
}

#[derive(Debug, Deserialize)]
pub struct AssociationsResponse {
    #[serde(default)]
    pub results: Vec<AssociationResult>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationResult {
    /// Typed string in the spec, a number in doc examples: accept both.
    pub to_object_id: Value,
}
