//! Bearer-token check for the `/v1` routes.
//!
//! The token is compared as SHA-256 digests with a constant-time equality, so neither the
//! token's length nor how many leading characters matched leaks through response timing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::daemon::AppState;

/// Middleware: lets the request through only with `Authorization: Bearer <token>`.
pub async fn require_bearer(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    match presented {
        Some(token) if tokens_match(token, &state.api_token) => next.run(request).await,
        Some(_) => ApiError::unauthorized("the bearer token is not valid").into_response(),
        None => ApiError::unauthorized(
            "this route needs `Authorization: Bearer <token>` (the token is read from the \
             environment variable named by `server.api_token_env`)",
        )
        .into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is case-insensitive and
/// separated from the token by one or more spaces (RFC 7235 §2.1, RFC 6750 §2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn tokens_match(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    // Fold every byte so the time does not depend on where the first difference is.
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, tokens_match};

    #[test]
    fn the_scheme_is_case_insensitive() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR   t0k "] {
            assert_eq!(bearer_token(value), Some("t0k"), "{value:?}");
        }
        for value in [
            "Bearert0k",
            "Basic t0k",
            "Bearer ",
            "Bearer",
            "Bearerx t0k",
            "",
        ] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }

    #[test]
    fn compares_whole_tokens() {
        assert!(tokens_match("s3cret-token", "s3cret-token"));
        assert!(!tokens_match("s3cret-toke", "s3cret-token"));
        assert!(!tokens_match("", "s3cret-token"));
        assert!(!tokens_match("S3cret-token", "s3cret-token"));
    }
}
