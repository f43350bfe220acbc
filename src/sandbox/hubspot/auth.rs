//! Bearer authentication (crm_apis.md §1.1): the private-app token `sandbox-token`, plus OAuth
//! access tokens from `POST /oauth/v1/token` (refresh-token or client-credentials grant with the
//! sandbox client id and secret), which expire after the fault knob `token_lifetime`.
//!
//! Token "expiry" for the static private-app token: when the fault knob
//! `revoke_tokens_at_request` fires, every OAuth token is revoked and that one request with the
//! static token is refused with 401 `EXPIRED_AUTHENTICATION`, so a client's 401 path (refresh,
//! then retry) runs even though a private-app token itself never expires.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::errors::{correlation_id, ApiError};
use crate::sandbox::credentials;

/// OAuth refresh token the sandbox accepts (as if obtained through an install flow earlier).
pub const HUBSPOT_REFRESH_TOKEN: &str = "sandbox-refresh-token";

/// Seconds an OAuth access token lives when no `token_lifetime` knob is set (HubSpot: 1800).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(1800);

#[derive(Debug, Default)]
pub struct Tokens {
    /// Issued OAuth tokens: when, and whether revoked.
    issued: HashMap<String, (Instant, bool)>,
    next: u64,
}

/// Why a request's credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Unknown,
    Expired,
}

impl AuthFailure {
    pub fn into_error(self) -> ApiError {
        match self {
            AuthFailure::Missing | AuthFailure::Unknown => ApiError::unauthenticated(),
            AuthFailure::Expired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "EXPIRED_AUTHENTICATION",
                "The OAuth token used to make this call expired.",
            ),
        }
    }
}

impl Tokens {
    /// Issues a new OAuth access token.
    pub fn issue(&mut self) -> String {
        self.next += 1;
        let token = format!("sandbox-oauth-{}-{}", self.next, &correlation_id()[..8]);
        self.issued.insert(token.clone(), (Instant::now(), false));
        token
    }

    /// Forgets every OAuth token (they answer 401 `EXPIRED_AUTHENTICATION` from now on).
    pub fn revoke_all(&mut self) {
        for (_, revoked) in self.issued.values_mut() {
            *revoked = true;
        }
    }

    /// Checks `Authorization: Bearer <token>`. `revoking` means the fault knob fired on this
    /// request.
    pub fn check(
        &self,
        headers: &HeaderMap,
        lifetime: Option<Duration>,
        revoking: bool,
    ) -> Result<(), AuthFailure> {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(AuthFailure::Missing)?;
        if token == credentials::HUBSPOT_TOKEN {
            return if revoking {
                Err(AuthFailure::Expired)
            } else {
                Ok(())
            };
        }
        let (issued, revoked) = self.issued.get(token).ok_or(AuthFailure::Unknown)?;
        if *revoked || issued.elapsed() >= lifetime.unwrap_or(DEFAULT_LIFETIME) {
            return Err(AuthFailure::Expired);
        }
        Ok(())
    }
}

/// `POST /oauth/v1/token` (form-encoded): the refresh-token and client-credentials grants.
pub fn token_response(
    tokens: &mut Tokens,
    form: &HashMap<String, String>,
    lifetime: Option<Duration>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let refusal = |status: &str, message: &str| {
        let body = json!({
            "status": status,
            "message": message,
            "correlationId": correlation_id(),
        });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    };
    if field("client_id") != credentials::SALESFORCE_CLIENT_ID {
        return refusal("BAD_CLIENT_ID", "missing or unknown client id");
    }
    if field("client_secret") != credentials::SALESFORCE_CLIENT_SECRET {
        return refusal("BAD_CLIENT_SECRET", "missing or invalid client secret");
    }
    let grant = field("grant_type");
    match grant {
        "refresh_token" if field("refresh_token") != HUBSPOT_REFRESH_TOKEN => {
            return refusal("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        }
        "refresh_token" | "client_credentials" => {}
        _ => return refusal("BAD_GRANT_TYPE", "unsupported grant_type"),
    }
    let access_token = tokens.issue();
    let expires_in = lifetime.unwrap_or(DEFAULT_LIFETIME).as_secs();
    let mut body = json!({
        "access_token": access_token,
        "expires_in": expires_in,
        "token_type": "bearer",
        "hub_id": 1,
    });
    if grant == "refresh_token" {
        body["refresh_token"] = json!(HUBSPOT_REFRESH_TOKEN);
        body["token_use"] = json!("access_token");
    } else {
        body["token_use"] = json!("client_credentials");
    }
    (StatusCode::OK, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn static_token_passes_unless_the_revocation_knob_fires() {
        let tokens = Tokens::default();
        let headers = bearer("sandbox-token");
        assert_eq!(tokens.check(&headers, None, false), Ok(()));
        assert_eq!(
            tokens.check(&headers, None, true),
            Err(AuthFailure::Expired)
        );
        assert_eq!(
            tokens.check(&bearer("nope"), None, false),
            Err(AuthFailure::Unknown)
        );
        assert_eq!(
            tokens.check(&HeaderMap::new(), None, false),
            Err(AuthFailure::Missing)
        );
    }

    #[test]
    fn oauth_tokens_expire_and_can_be_revoked() {
        let mut tokens = Tokens::default();
        let token = tokens.issue();
        assert_eq!(tokens.check(&bearer(&token), None, false), Ok(()));
        assert_eq!(
            tokens.check(&bearer(&token), Some(Duration::ZERO), false),
            Err(AuthFailure::Expired)
        );
        tokens.revoke_all();
        assert_eq!(
            tokens.check(&bearer(&token), None, false),
            Err(AuthFailure::Expired)
        );
    }
}
