//! Salesforce REST JSON shapes (crm_apis.md §2). Lenient on input: unknown fields are ignored,
//! optional ones default.

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResponse {
    #[serde(default)]
    pub total_size: Option<u64>,
    pub done: bool,
    #[serde(default)]
    pub next_records_url: Option<String>,
    #[serde(default)]
    pub records: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeResponse {
    pub name: String,
    #[serde(default)]
    pub fields: Vec<DescribeField>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeField {
    pub name: String,
    #[serde(rename = "type", default)]
    pub field_type: String,
    #[serde(default)]
    pub updateable: bool,
    #[serde(default)]
    pub relationship_name: Option<String>,
    #[serde(default)]
    pub picklist_values: Vec<PicklistValue>,
}

#[derive(Debug, Deserialize)]
pub struct PicklistValue {
    pub value: String,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedResponse {
    #[serde(default)]
    pub deleted_records: Vec<DeletedItem>,
    #[serde(default)]
    pub earliest_date_available: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedItem {
    pub id: String,
    #[serde(default)]
    pub deleted_date: Option<String>,
}

/// `PATCH`/`POST /composite/sobjects` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionRequest {
    pub all_or_none: bool,
    pub records: Vec<serde_json::Value>,
}

/// One SaveResult of an sObject Collections response.
#[derive(Debug, Deserialize)]
pub struct SaveResult {
    #[serde(default)]
    pub id: Option<String>,
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<SaveError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SaveError {
    #[serde(default)]
    pub status_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}
