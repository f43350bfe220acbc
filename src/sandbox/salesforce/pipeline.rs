//! What happens to every API request on the instance listener before and after its handler:
//! numbering and fault planning, latency, held requests, bearer auth (401
//! `INVALID_SESSION_ID`), the daily budget (403 `REQUEST_LIMIT_EXCEEDED`), injected throttling
//! and 5xx, the `Sforce-Limit-Info` header, and counting by endpoint and status.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth;
use super::errors::ApiError;
use super::AppState;
use crate::sandbox::faults::{lock, HoldWhen, InjectedFault};

/// Counter names, by endpoint:
/// `sf.token` (login listener), `sf.versions`, `sf.query`, `sf.query_more`, `sf.describe`,
/// `sf.updated`, `sf.deleted`, `sf.sobject_create`, `sf.sobject_get`, `sf.sobject_update`,
/// `sf.sobject_delete`, `sf.collections_update`, `sf.collections_create`, `sf.limits`,
/// `sf.other`.
pub fn classify(method: &Method, path: &str) -> &'static str {
    let rest: Vec<&str> = path
        .trim_start_matches("/services/data/")
        .split('/')
        .skip(1)
        .filter(|s| !s.is_empty())
        .collect();
    match (method.as_str(), rest.as_slice()) {
        ("GET", ["query"]) | ("GET", ["queryAll"]) => "sf.query",
        ("GET", ["query", _]) | ("GET", ["queryAll", _]) => "sf.query_more",
        ("GET", ["sobjects", _, "describe"]) => "sf.describe",
        ("GET", ["sobjects", _, "updated"]) => "sf.updated",
        ("GET", ["sobjects", _, "deleted"]) => "sf.deleted",
        ("POST", ["sobjects", _]) => "sf.sobject_create",
        ("GET", ["sobjects", _, _]) => "sf.sobject_get",
        ("PATCH", ["sobjects", _, _]) => "sf.sobject_update",
        ("DELETE", ["sobjects", _, _]) => "sf.sobject_delete",
        ("PATCH", ["composite", "sobjects"]) => "sf.collections_update",
        ("POST", ["composite", "sobjects"]) => "sf.collections_create",
        ("GET", ["limits"]) => "sf.limits",
        _ => "sf.other",
    }
}

/// `vNN.N`, the only version form Salesforce serves.
fn valid_version(path: &str) -> bool {
    let version = path
        .trim_start_matches("/services/data/")
        .split('/')
        .next()
        .unwrap_or("");
    version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.chars().all(|c| c.is_ascii_digit())
                && minor.chars().all(|c| c.is_ascii_digit())
        })
}

pub async fn api_pipeline(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let endpoint = classify(request.method(), request.uri().path());
    let plan = app.faults.plan_request();
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    if plan.revoke_tokens {
        lock(&app.tokens).revoke_all();
    }
    let mut response = if let Some((HoldWhen::BeforeProcessing, hold)) = plan.hold {
        // The client is expected to give up first; if it does not, the request still has no
        // effect, which is the point of holding *before* processing.
        tokio::time::sleep(hold).await;
        ApiError::server_error(503).into_response()
    } else if !auth::authorized(&app, request.headers(), app.faults.token_lifetime()) {
        ApiError::invalid_session().into_response()
    } else if app.faults.charge_api_call().is_err() {
        ApiError::daily_limit().into_response()
    } else {
        match plan.injected {
            Some(InjectedFault::Throttle) => ApiError::concurrent_limit().into_response(),
            Some(InjectedFault::ServerError(status)) => {
                ApiError::server_error(status).into_response()
            }
            None if !valid_version(request.uri().path()) => ApiError::not_found().into_response(),
            None => next.run(request).await,
        }
    };
    let is_collection_write = matches!(endpoint, "sf.collections_update" | "sf.collections_create");
    if is_collection_write && response.status().is_success() && app.faults.omit_write_ids() {
        response = crate::sandbox::faults::without_write_ids(response).await;
    }
    let (used, limit) = app.faults.usage();
    if let Ok(value) = HeaderValue::from_str(&format!("api-usage={used}/{limit}")) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    app.counters.record(endpoint, response.status().as_u16());
    if let Some((HoldWhen::AfterProcessing, hold)) = plan.hold {
        // Applied, but the client will not hear about it in time.
        tokio::time::sleep(hold).await;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_classified_by_method_and_path() {
        let get = Method::GET;
        assert_eq!(classify(&get, "/services/data/v62.0/query"), "sf.query");
        assert_eq!(
            classify(&get, "/services/data/v62.0/query/01gSB0000000000001-2000"),
            "sf.query_more"
        );
        assert_eq!(
            classify(&get, "/services/data/v62.0/sobjects/Contact/describe/"),
            "sf.describe"
        );
        assert_eq!(
            classify(&Method::PATCH, "/services/data/v62.0/composite/sobjects"),
            "sf.collections_update"
        );
        assert_eq!(
            classify(&Method::POST, "/services/data/v62.0/sobjects/Task"),
            "sf.sobject_create"
        );
        assert!(valid_version("/services/data/v62.0/query"));
        assert!(!valid_version("/services/data/latest/query"));
    }
}
