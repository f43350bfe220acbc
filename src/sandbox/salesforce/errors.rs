//! Salesforce error bodies.
//!
//! Request-level errors are a JSON **array** `[{"message","errorCode","fields"?}]`; per-record
//! errors inside a SaveResult use `statusCode` instead of `errorCode` (crm_apis.md §2.2, §2.7).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

/// A request-level error, answered with `status` and a one-element error array.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }

    pub fn invalid_session() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    pub fn daily_limit() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
    }

    pub fn concurrent_limit() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded.",
        )
    }

    pub fn server_error(status: u16) -> Self {
        if status == 503 {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_UNAVAILABLE",
                "Service temporarily unavailable; try again later.",
            )
        } else {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact support: 0-sandbox",
            )
        }
    }

    pub fn malformed_query(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", message)
    }

    pub fn invalid_field(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_FIELD", message)
    }

    pub fn not_found_type(object: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!(
                "The requested resource does not exist: sObject type '{object}' is not supported."
            ),
        )
    }

    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut item = json!({"message": self.message, "errorCode": self.code});
        if !self.fields.is_empty() {
            item["fields"] = json!(self.fields);
        }
        (self.status, Json(json!([item]))).into_response()
    }
}

/// One error of one record in a SaveResult.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordError {
    #[serde(rename = "statusCode")]
    pub status_code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

impl RecordError {
    pub fn new(status_code: &'static str, message: impl Into<String>, field: Option<&str>) -> Self {
        RecordError {
            status_code,
            message: message.into(),
            fields: field.map(|f| vec![f.to_string()]).unwrap_or_default(),
        }
    }

    pub fn rolled_back() -> Self {
        RecordError::new(
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was using AllOrNone header",
            None,
        )
    }
}

/// The result of saving one record (`{"id","success","errors"}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SaveResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub success: bool,
    pub errors: Vec<RecordError>,
}

impl SaveResult {
    pub fn ok(id: String) -> Self {
        SaveResult {
            id: Some(id),
            success: true,
            errors: Vec::new(),
        }
    }

    pub fn failed(id: Option<String>, errors: Vec<RecordError>) -> Self {
        SaveResult {
            id,
            success: false,
            errors,
        }
    }
}

/// Why a test hook (a CRM-side change made through the handle) was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HookError {
    #[error("no live record with id {id}")]
    NotFound { id: String },
    #[error("fields must be a JSON object, got {got}")]
    NotAnObject { got: String },
    #[error("record {id}: {}", messages.join("; "))]
    Rejected { id: String, messages: Vec<String> },
}

impl HookError {
    pub(crate) fn rejected(id: &str, errors: Vec<RecordError>) -> Self {
        HookError::Rejected {
            id: id.to_string(),
            messages: errors
                .into_iter()
                .map(|e| format!("{} ({}): {}", e.status_code, e.fields.join(","), e.message))
                .collect(),
        }
    }
}
