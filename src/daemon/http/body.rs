//! Reading a request's body: at most `server.body_limit` bytes (413 beyond), and all of it
//! within `server.body_read_timeout` of the head's arrival (408 otherwise), before any handler
//! runs.
//!
//! The deadline is for the whole body, not between reads: tower-http's
//! `RequestBodyTimeoutLayer` restarts its timer at every frame, so a client trickling one byte
//! a second would never trip it. Every handler takes its body whole anyway, so reading it here
//! costs no extra copy.

use std::time::Duration;

use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The body limits.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body, in bytes.
    pub max_bytes: usize,
    /// Time to receive the whole body.
    pub read_timeout: Duration,
}

/// Middleware: reads the whole body within the limits, then runs the handler with it.
pub async fn read_whole_body(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    // A Content-Length over the limit is refused before anything is read.
    if body.size_hint().lower() > limits.max_bytes as u64 {
        return too_large(limits).into_response();
    }
    let read = tokio::time::timeout(
        limits.read_timeout,
        axum::body::to_bytes(body, limits.max_bytes),
    )
    .await;
    match read {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(err)) if is_length_limit(&err) => too_large(limits).into_response(),
        Ok(Err(err)) => ApiError::bad_request(
            "invalid_body",
            format!("could not read the request body: {err}"),
        )
        .into_response(),
        Err(_) => {
            let mut response = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} (server.body_read_timeout)",
                    humantime_serde::re::humantime::format_duration(limits.read_timeout)
                ),
            )
            .into_response();
            // The rest of the body may still be on its way: the connection cannot be reused.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

fn too_large(limits: BodyLimits) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "the request body is larger than {} bytes (server.body_limit)",
            limits.max_bytes
        ),
    )
}

fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}
