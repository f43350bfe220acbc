//! HubSpot's error envelope (crm_apis.md §1.13) and the per-record errors of batch responses.
//!
//! Every non-2xx answer the sandbox gives is `{status:"error", message, correlationId, category,
//! subCategory?, errors?, context?}`, so a connector's error parsing is exercised on every path.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// A random UUID v4 string; HubSpot's `correlationId` is one.
pub fn correlation_id() -> String {
    let bits: u128 = rand::random();
    // Set the version (4) and variant (10xx) bits so it is a well-formed v4 UUID.
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// One entry of an error's `errors` array (e.g. a property that failed validation).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorDetail {
    pub message: String,
    pub code: &'static str,
    pub property: Option<String>,
}

impl ErrorDetail {
    pub fn property(code: &'static str, property: &str, message: String) -> Self {
        ErrorDetail {
            message,
            code,
            property: Some(property.to_string()),
        }
    }

    fn to_json(&self) -> Value {
        let mut item = json!({"message": self.message, "code": self.code});
        if let Some(property) = &self.property {
            item["context"] = json!({"propertyName": [property]});
        }
        item
    }
}

/// A whole-request failure, rendered as HubSpot's error envelope.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub category: &'static str,
    pub sub_category: Option<&'static str>,
    pub message: String,
    pub errors: Vec<ErrorDetail>,
    pub context: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, category: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            category,
            sub_category: None,
            message: message.into(),
            errors: Vec::new(),
            context: Map::new(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", message)
    }

    pub fn unauthenticated() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication \
             and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )
    }

    pub fn with_errors(mut self, errors: Vec<ErrorDetail>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_sub_category(mut self, sub_category: &'static str) -> Self {
        self.sub_category = Some(sub_category);
        self
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id(),
            "category": self.category,
        });
        if let Some(sub) = self.sub_category {
            body["subCategory"] = json!(sub);
        }
        if !self.errors.is_empty() {
            body["errors"] = Value::Array(self.errors.iter().map(ErrorDetail::to_json).collect());
        }
        if !self.context.is_empty() {
            body["context"] = Value::Object(self.context.clone());
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// One item of a batch response's `errors` array (HubSpot's `StandardError`).
#[derive(Debug, Clone)]
pub struct BatchError {
    pub category: &'static str,
    pub message: String,
    /// The record the error is about (`id` in the item), when there is one.
    pub id: Option<String>,
    pub context: Vec<(&'static str, Vec<String>)>,
    pub errors: Vec<ErrorDetail>,
}

impl BatchError {
    pub fn to_json(&self) -> Value {
        let mut context = Map::new();
        for (key, values) in &self.context {
            context.insert((*key).to_string(), json!(values));
        }
        let mut item = json!({
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": context,
        });
        if let Some(id) = &self.id {
            item["id"] = json!(id);
        }
        if !self.errors.is_empty() {
            item["errors"] = Value::Array(self.errors.iter().map(ErrorDetail::to_json).collect());
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_are_v4_uuids() {
        let id = correlation_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{id}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(correlation_id(), id);
    }

    #[test]
    fn envelope_has_the_required_fields() {
        let body = ApiError::validation("bad").body();
        assert_eq!(body["status"], "error");
        assert_eq!(body["category"], "VALIDATION_ERROR");
        assert_eq!(body["message"], "bad");
        assert!(body["correlationId"].is_string());
        assert!(body.get("errors").is_none());
    }
}
