//! The HTTP API (DESIGN.md §4), one file per route group.
//!
//! | route | auth |
//! | --- | --- |
//! | `POST /webhooks/retell` | Retell signature |
//! | `POST /webhooks/retell/inbound` | Retell signature |
//! | `POST /v1/conversations` | bearer |
//! | `GET /v1/contacts`, `GET/PATCH /v1/contacts/{phone}` | bearer |
//! | `POST/GET /v1/sync` | bearer |
//! | `GET /v1/conflicts` | bearer |
//! | `GET /v1/outbox`, `POST /v1/outbox/dead-letters/...` (retry, retry-all, discard) | bearer |
//! | `GET /healthz`, `GET /metrics` | none |
//!
//! Bodies larger than the configured limit are refused with 413 before any handler runs.

pub mod auth;
pub mod conflicts;
pub mod contacts;
pub mod conversations;
pub mod error;
pub mod events;
pub mod health;
pub mod inbound;
pub mod metrics;
pub mod outbox;
pub mod retell;
pub mod sync;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;

use super::AppState;
use error::ApiError;

/// The whole router.
pub fn router(state: Arc<AppState>, body_limit: usize) -> Router {
    let v1 = Router::new()
        .route("/contacts", get(contacts::list_contacts))
        .route(
            "/contacts/{phone}",
            get(contacts::get_contact).patch(contacts::patch_contact),
        )
        .route("/conversations", post(conversations::post))
        .route("/sync", post(sync::start).get(sync::status))
        .route("/conflicts", get(conflicts::list))
        .merge(outbox::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_bearer,
        ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/webhooks/retell", post(retell::webhook))
        .route("/webhooks/retell/inbound", post(inbound::inbound))
        .nest("/v1", v1)
        .fallback(|| async { ApiError::not_found("no such route") })
        // axum's own 2 MB default would shadow the configured limit; the tower-http layer
        // answers 413 from Content-Length up front and stops chunked bodies at the limit.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(body_limit))
        .with_state(state)
}
