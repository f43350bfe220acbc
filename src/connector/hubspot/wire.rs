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
    /// The details (`ErrorDetail` in HubSpot's SDKs): one per refused property.
    #[serde(default)]
    pub errors: Vec<ErrorDetail>,
}

/// One detail of a HubSpot error: `{message, code, in?, context?: {propertyName: [..]}}`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: String,
    /// "The name of the field or parameter in which the error was found."
    #[serde(default, rename = "in")]
    pub within: Option<String>,
    #[serde(default)]
    pub context: serde_json::Map<String, Value>,
}

/// The strings of `context[key]` (HubSpot's contexts map a key to a list of strings).
fn context_strings(context: &serde_json::Map<String, Value>, key: &str) -> Vec<String> {
    match context.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl BatchError {
    /// The refused properties of a `VALIDATION_ERROR` about property values: from each
    /// detail's `context.propertyName` (or `in`), else the error's own `context.propertyName`
    /// with its message. `None` when the error is about something else, or names no property.
    pub fn rejected_properties(&self) -> Option<Vec<crate::connector::RejectedField>> {
        if self.category != "VALIDATION_ERROR" {
            return None;
        }
        let mut out = Vec::new();
        for detail in &self.errors {
            let mut names = context_strings(&detail.context, "propertyName");
            if names.is_empty() {
                names.extend(detail.within.clone());
            }
            if names.is_empty() {
                // A detail about no property: the record itself is at fault.
                return None;
            }
            out.extend(
                names
                    .into_iter()
                    .map(|field| crate::connector::RejectedField {
                        field,
                        code: detail.code.clone(),
                        message: detail.message.clone(),
                    }),
            );
        }
        if out.is_empty() {
            out = context_strings(&self.context, "propertyName")
                .into_iter()
                .map(|field| crate::connector::RejectedField {
                    field,
                    code: self.category.clone(),
                    message: self.message.clone(),
                })
                .collect();
        }
        (!out.is_empty()).then_some(out)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(value: Value) -> BatchError {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_validation_error_names_its_refused_properties() {
        // A batch error item as HubSpot's `StandardError`: details carry the property name.
        let e = error(json!({
            "status": "error", "category": "VALIDATION_ERROR", "id": "1004",
            "message": "Property values were not valid: [...]",
            "context": {"id": ["1004"], "propertyName": ["email"]},
            "errors": [{"message": "Email address x is invalid", "code": "INVALID_EMAIL",
                        "context": {"propertyName": ["email"]}}]
        }));
        let fields = e.rejected_properties().unwrap();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].field, "email");
        assert_eq!(fields[0].code, "INVALID_EMAIL");
        assert_eq!(fields[0].message, "Email address x is invalid");
        // Only the error's own context names it: its category and message stand in.
        let bare = error(json!({"category": "VALIDATION_ERROR", "message": "bad",
                                "context": {"propertyName": ["hs_lead_status"]}}));
        assert_eq!(
            bare.rejected_properties().unwrap()[0].field,
            "hs_lead_status"
        );
        // `in` names the field when the context does not.
        let within = error(json!({"category": "VALIDATION_ERROR", "message": "bad",
                                  "errors": [{"message": "m", "code": "C", "in": "phone"}]}));
        assert_eq!(within.rejected_properties().unwrap()[0].field, "phone");
    }

    #[test]
    fn other_errors_refuse_the_whole_record() {
        let missing = error(json!({"category": "OBJECT_NOT_FOUND", "message": "gone",
                                   "context": {"ids": ["9"]}}));
        assert!(missing.rejected_properties().is_none());
        // A detail about no property: the record is at fault, not one field.
        let mixed = error(json!({"category": "VALIDATION_ERROR", "message": "bad",
                                 "errors": [{"message": "a", "code": "X",
                                             "context": {"propertyName": ["email"]}},
                                            {"message": "b", "code": "Y"}]}));
        assert!(mixed.rejected_properties().is_none());
    }
}
