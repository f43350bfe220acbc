//! The JSON error body every route answers with: `{"error": {"code": "...", "message": "..."}}`.
//!
//! `code` is a stable machine-readable word; `message` says what was wrong and where (the field,
//! the phone number, the record), for the integrator reading the response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request body or a parameter is not acceptable.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: missing or wrong credentials (bearer token or webhook signature).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404: no such contact (or route).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the request conflicts with the current state (a sync already running).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 500: a store or runtime failure. The message is logged and returned: it names what
    /// failed, and carries no secrets (store and engine errors never include credentials).
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(%message, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// 503: the store cannot do what was asked right now (it cannot be written, is being
    /// reopened, or is damaged); the message says why. Logged like a 500.
    pub fn store_unavailable(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(%message, "the store refused a request");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            message,
        )
    }

    /// 503: the daemon is shutting down or a dependency is missing.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The result type of every handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Middleware: answers the framework's own refusals (axum's rejections of a query string or a
/// path, a method the route does not take) in the JSON error body every route documents, with
/// the same status. Their plain-text bodies become the message; the code comes from the status,
/// refined for the two rejections an integrator meets most (query and path).
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    // axum's rejection texts are one line; anything longer is cut rather than buffered.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let (code, message) = describe(status, &method, &path, text);
    let mut mapped = ApiError::new(status, code, message).into_response();
    // Keep what the client may act on (`Allow` of a 405, `Retry-After`, ...).
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            mapped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    mapped
}

/// The code and message of a framework refusal.
fn describe(
    status: StatusCode,
    method: &axum::http::Method,
    path: &str,
    text: String,
) -> (&'static str, String) {
    let or_reason = |text: String| {
        if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            text
        }
    };
    match status {
        // axum adds `Allow` after the route's middleware has run, so it is not known here.
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            format!(
                "{method} is not allowed on {path}; the `Allow` header lists the methods it takes"
            ),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", or_reason(text)),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", or_reason(text)),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", or_reason(text)),
        // The prefixes of axum's `QueryRejection` and `PathRejection` texts.
        StatusCode::BAD_REQUEST if text.starts_with("Failed to deserialize query string") => {
            ("invalid_query", text)
        }
        StatusCode::BAD_REQUEST if text.starts_with("Invalid URL") => ("invalid_path", text),
        s if s.is_server_error() => ("internal", or_reason(text)),
        _ => ("bad_request", or_reason(text)),
    }
}
