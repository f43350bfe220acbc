//! OAuth 2.0 token endpoint (`POST /services/oauth2/token` on the login listener) and bearer
//! checks on the instance listener.
//!
//! Grants: `client_credentials` (`sandbox-client` / `sandbox-secret`; no refresh token, as in
//! Salesforce) and `refresh_token` (the fixed [`SALESFORCE_REFRESH_TOKEN`], as if obtained
//! earlier through an authorization-code flow). There is no `expires_in`: tokens die when the
//! `token_lifetime` knob says so or when revoked, and the client learns it from a 401.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::AppState;
use crate::sandbox::credentials::{
    SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, SALESFORCE_REFRESH_TOKEN,
};
use crate::sandbox::faults::lock;

/// The sandbox org and its integration user, as they appear in the identity URL.
const ORG_ID: &str = "00DSB0000000001AAA";
const USER_ID: &str = "005SB0000000001AAA";

/// Issued access tokens and when they were issued.
#[derive(Debug, Default)]
pub struct Tokens {
    issued: HashMap<String, Instant>,
    next: u64,
}

impl Tokens {
    fn issue(&mut self) -> String {
        self.next += 1;
        let mut mac = hmac_for(&self.next.to_string());
        mac.update(b"access");
        let digest = hex::encode(mac.finalize().into_bytes());
        let token = format!("{ORG_ID}!AQsandbox{}.{}", self.next, &digest[..32]);
        self.issued.insert(token.clone(), Instant::now());
        token
    }

    /// Whether `token` was issued, not revoked, and younger than `lifetime`.
    pub fn is_valid(&self, token: &str, lifetime: Option<Duration>) -> bool {
        match self.issued.get(token) {
            Some(issued) => lifetime.is_none_or(|life| issued.elapsed() < life),
            None => false,
        }
    }

    pub fn revoke_all(&mut self) {
        self.issued.clear();
    }
}

fn hmac_for(data: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty-key MAC.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SALESFORCE_CLIENT_SECRET.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data.as_bytes());
    mac
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /services/oauth2/token` (form-encoded).
pub async fn token(
    State(app): State<AppState>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let response = token_response(&app, form);
    app.counters.record("sf.token", response.status().as_u16());
    response
}

fn token_response(
    app: &AppState,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            "invalid_request",
            "request must be application/x-www-form-urlencoded",
        );
    };
    let field = |name: &str| form.get(name).map(String::as_str);
    let client_ok = field("client_id") == Some(SALESFORCE_CLIENT_ID);
    match field("grant_type") {
        Some("client_credentials") => {
            if !client_ok || field("client_secret") != Some(SALESFORCE_CLIENT_SECRET) {
                return oauth_error("invalid_client", "invalid client credentials");
            }
        }
        Some("refresh_token") => {
            if field("client_id").is_none() {
                return oauth_error("invalid_client_id", "client identifier invalid");
            }
            let secret_ok = field("client_secret").is_none_or(|s| s == SALESFORCE_CLIENT_SECRET);
            if !client_ok || !secret_ok {
                return oauth_error("invalid_client", "invalid client credentials");
            }
            if field("refresh_token") != Some(SALESFORCE_REFRESH_TOKEN) {
                return oauth_error("invalid_grant", "expired access/refresh token");
            }
        }
        Some(_) => return oauth_error("unsupported_grant_type", "grant type not supported"),
        None => return oauth_error("invalid_request", "grant_type is required"),
    }
    let access_token = lock(&app.tokens).issue();
    let issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
        .to_string();
    let identity = format!("{}/id/{ORG_ID}/{USER_ID}", app.login_url());
    let mut mac = hmac_for(&identity);
    mac.update(issued_at.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    (
        StatusCode::OK,
        Json(json!({
            "access_token": access_token,
            "signature": signature,
            "scope": "api",
            "instance_url": app.instance_url(),
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        })),
    )
        .into_response()
}

/// Whether the request carries a live bearer token.
pub fn authorized(app: &AppState, headers: &HeaderMap, lifetime: Option<Duration>) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return false;
    };
    (scheme.eq_ignore_ascii_case("Bearer") || scheme.eq_ignore_ascii_case("OAuth"))
        && lock(&app.tokens).is_valid(token.trim(), lifetime)
}
