//! What happens to every request before and after its handler: numbering and counting, the fault
//! knobs (latency, held requests, injected 429/5xx), authentication, the burst/search/daily
//! budgets, and the rate-limit headers.
//!
//! Order: count and number the request → let search catch up → latency → hold (before) → token
//! revocation → authentication → injected fault → real budgets → handler → headers → hold (after).
//! Authentication comes before injected faults so that a wrong token is always a 401.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;
use super::rate_limit::{add_headers, too_many_requests, Budget, Policy};
use super::schema::ObjectKind;
use super::Shared;
use crate::sandbox::faults::{lock, HoldWhen, InjectedFault};

/// The counter key of a request: `hs.<object>.<operation>` (e.g. `hs.contacts.search`,
/// `hs.calls.batch_create`), `hs.properties.<object>`, `hs.associations.read|create`,
/// `hs.oauth.token`, or `hs.other`.
pub fn endpoint_name(method: &Method, path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let object = |segment: &str| {
        ObjectKind::parse(segment)
            .map(|k| k.path_name().to_string())
            .unwrap_or_else(|| segment.to_string())
    };
    let name = match segments.as_slice() {
        ["oauth", "v1", "token"] => "oauth.token".to_string(),
        ["crm", "v3", "objects", kind] => {
            let op = if method == Method::POST {
                "create"
            } else {
                "list"
            };
            format!("{}.{op}", object(kind))
        }
        ["crm", "v3", "objects", kind, "search"] => format!("{}.search", object(kind)),
        ["crm", "v3", "objects", kind, "merge"] => format!("{}.merge", object(kind)),
        ["crm", "v3", "objects", kind, "batch", op] => format!("{}.batch_{op}", object(kind)),
        ["crm", "v3", "objects", kind, _id] => {
            let op = match *method {
                Method::PATCH => "update",
                Method::DELETE => "archive",
                _ => "read",
            };
            format!("{}.{op}", object(kind))
        }
        ["crm", "v3", "objects", kind, _id, "associations", ..] => {
            format!("{}.associate", object(kind))
        }
        ["crm", "v3", "properties", kind, ..] => format!("properties.{}", object(kind)),
        ["crm", "v4", "objects", _kind, _id, "associations", ..] => {
            if method == Method::GET {
                "associations.read".to_string()
            } else {
                "associations.create".to_string()
            }
        }
        _ => "other".to_string(),
    };
    format!("hs.{name}")
}

fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = if status == StatusCode::SERVICE_UNAVAILABLE {
        "The service is temporarily unavailable. Please retry."
    } else {
        "internal error"
    };
    ApiError::new(status, "INTERNAL_ERROR", message).into_response()
}

pub async fn pipeline(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let endpoint = endpoint_name(request.method(), request.uri().path());
    if endpoint == "hs.oauth.token" {
        // The token endpoint is not an API call: no faults, no budgets.
        let response = next.run(request).await;
        shared
            .counters
            .record(&endpoint, response.status().as_u16());
        return response;
    }
    let plan = shared.faults.plan_request();
    let config = shared.faults.config();
    {
        let mut state = lock(&shared.state);
        // The lag knob may change at runtime; writes from here on use the current value.
        state.search_lag.sandbox_ms = super::duration_ms(config.search_index_lag);
        state.on_request();
    }
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    if let Some((HoldWhen::BeforeProcessing, hold)) = plan.hold {
        // The client gives up long before this ends (dropping the connection drops this
        // future); a client that waits it out gets a 503, never the request applied. Same as
        // the Salesforce sandbox.
        tokio::time::sleep(hold).await;
        let response = server_error(503);
        shared
            .counters
            .record(&endpoint, response.status().as_u16());
        return response;
    }
    if plan.revoke_tokens {
        lock(&shared.tokens).revoke_all();
    }
    let auth =
        lock(&shared.tokens).check(request.headers(), config.token_lifetime, plan.revoke_tokens);
    if let Err(failure) = auth {
        let response = failure.into_error().into_response();
        shared
            .counters
            .record(&endpoint, response.status().as_u16());
        return response;
    }
    let is_search = endpoint.ends_with(".search");
    let refused = match plan.injected {
        Some(InjectedFault::Throttle) => Some(if is_search {
            too_many_requests(Policy::SearchSecondly)
        } else {
            let mut response = too_many_requests(Policy::TenSecondly);
            let budget = shared.budget(0);
            add_headers(response.headers_mut(), budget);
            response
        }),
        Some(InjectedFault::ServerError(status)) => Some(server_error(status)),
        None => refusal(&shared, is_search),
    };
    if let Some(response) = refused {
        shared
            .counters
            .record(&endpoint, response.status().as_u16());
        return response;
    }
    let mut response = next.run(request).await;
    let is_batch_write = endpoint.ends_with(".batch_update") || endpoint.ends_with(".batch_create");
    if is_batch_write && response.status().is_success() && shared.faults.omit_write_ids() {
        response = crate::sandbox::faults::without_write_ids(response).await;
    }
    if !is_search {
        // Search responses carry no rate-limit headers (crm_apis.md §1.12).
        let remaining = lock(&shared.limiter).burst_remaining();
        add_headers(response.headers_mut(), shared.budget(remaining));
    }
    shared
        .counters
        .record(&endpoint, response.status().as_u16());
    if let Some((HoldWhen::AfterProcessing, hold)) = plan.hold {
        // Applied, but the client never hears back: the case idempotent writes must survive.
        tokio::time::sleep(hold).await;
    }
    response
}

/// Charges the request to the burst (or search) budget and the daily budget; the 429 to send
/// when a budget is spent.
fn refusal(shared: &Shared, is_search: bool) -> Option<Response> {
    let admitted = {
        let mut limiter = lock(&shared.limiter);
        if is_search {
            limiter.admit_search()
        } else {
            limiter.admit_burst().map(|_| ())
        }
    };
    // The limiter lock is released here: `budget` takes it again.
    if let Err(policy) = admitted {
        let mut response = too_many_requests(policy);
        if !is_search {
            add_headers(response.headers_mut(), shared.budget(0));
        }
        return Some(response);
    }
    if shared.faults.charge_api_call().is_err() {
        let mut response = too_many_requests(Policy::Daily);
        let remaining = lock(&shared.limiter).burst_remaining();
        add_headers(response.headers_mut(), shared.budget(remaining));
        return Some(response);
    }
    None
}

impl Shared {
    /// The budgets as the headers report them, with `remaining` burst requests.
    pub fn budget(&self, remaining: u32) -> Budget {
        let (used, daily) = self.faults.usage();
        Budget {
            max: lock(&self.limiter).burst_max,
            remaining,
            daily,
            daily_remaining: daily.saturating_sub(used),
        }
    }
}

/// Answers unknown paths with HubSpot's envelope.
pub async fn not_found(request: Request<Body>) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        format!(
            "No route for {} {} on this HubSpot sandbox",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response()
}

/// Answers a known path with the wrong method with HubSpot's envelope (not an empty 405).
pub async fn method_not_allowed(request: Request<Body>) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "VALIDATION_ERROR",
        format!(
            "{} is not supported on {}",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_follow_object_and_operation() {
        let name = |m: Method, p: &str| endpoint_name(&m, p);
        assert_eq!(
            name(Method::GET, "/crm/v3/objects/contacts"),
            "hs.contacts.list"
        );
        assert_eq!(
            name(Method::GET, "/crm/v3/objects/0-1/1001"),
            "hs.contacts.read"
        );
        assert_eq!(
            name(Method::PATCH, "/crm/v3/objects/contacts/1001"),
            "hs.contacts.update"
        );
        assert_eq!(
            name(Method::POST, "/crm/v3/objects/calls"),
            "hs.calls.create"
        );
        assert_eq!(
            name(Method::POST, "/crm/v3/objects/communications/batch/create"),
            "hs.communications.batch_create"
        );
        assert_eq!(
            name(Method::POST, "/crm/v3/objects/contacts/search"),
            "hs.contacts.search"
        );
        assert_eq!(
            name(Method::GET, "/crm/v3/properties/contacts"),
            "hs.properties.contacts"
        );
        assert_eq!(
            name(
                Method::GET,
                "/crm/v4/objects/contacts/1001/associations/calls"
            ),
            "hs.associations.read"
        );
        assert_eq!(name(Method::POST, "/oauth/v1/token"), "hs.oauth.token");
        assert_eq!(name(Method::GET, "/nope"), "hs.other");
    }
}
