//! The HTTP API (README "HTTP API"), one file per route group.
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
//! | `GET /v1/store/backup` | bearer |
//! | `GET /healthz`, `GET /metrics` | none |
//!
//! A body is read whole before any handler runs: over `server.body_limit` it is refused with
//! 413, and one that takes longer than `server.body_read_timeout` with 408 (`body.rs`). Every
//! refusal, the framework's own included, answers the JSON error body (`error.rs`).

pub mod auth;
pub mod body;
pub mod conflicts;
pub mod contacts;
pub mod conversations;
pub mod error;
pub mod events;
pub mod health;
pub mod inbound;
pub mod metrics;
pub mod outbox;
mod paging;
pub mod retell;
pub mod store;
pub mod sync;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use super::AppState;
use error::ApiError;

/// The whole router.
pub fn router(state: Arc<AppState>, body: body::BodyLimits) -> Router {
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
        .route("/store/backup", get(store::backup))
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
        // The body arrives whole and within its limits (`body.rs`); axum's own 2 MB default
        // would shadow the configured limit.
        .layer(axum::middleware::from_fn_with_state(
            body,
            body::read_whole_body,
        ))
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(state)
}
