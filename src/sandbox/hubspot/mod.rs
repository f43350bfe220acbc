//! A HubSpot-compatible loopback server (crm_apis.md §1, §4): contacts, calls and communications
//! over the CRM v3 object, search, batch and properties APIs, v4 associations, HubSpot's error
//! envelope and rate-limit signals, with seeded contacts and fault knobs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), crmsync::sandbox::hubspot::HubSpotSandboxError> {
//! use crmsync::sandbox::hubspot::{HubSpotSandbox, HubSpotSandboxConfig};
//! let sandbox = HubSpotSandbox::start(HubSpotSandboxConfig {
//!     contacts: 1_000,
//!     seed: 7,
//!     ..HubSpotSandboxConfig::default()
//! })
//! .await?;
//! println!("{} (token {})", sandbox.base_url(), sandbox.token());
//! # Ok(()) }
//! ```
//!
//! One file per concern: [`auth`], [`objects`] (list, read, create, update, search handler),
//! [`search`], [`batch`], [`properties`], [`associations`], [`archived`], [`rate_limit`],
//! [`errors`], [`pipeline`] (faults, budgets, counters), [`state`]/[`table`] (the data),
//! [`ops`] (writes shared by handlers and test hooks), [`hooks`] (the test API).

pub mod archived;
pub mod associations;
pub mod auth;
pub mod batch;
pub mod errors;
pub mod hooks;
pub mod objects;
pub mod ops;
pub mod params;
pub mod pipeline;
pub mod properties;
pub mod rate_limit;
pub mod record;
pub mod schema;
pub mod search;
pub mod seed_contacts;
pub mod state;
pub mod table;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post, put};
use axum::{Form, Router};

use self::auth::Tokens;
use self::rate_limit::RateLimiter;
use self::seed_contacts::SeededContacts;
use self::state::{PortalState, SearchLag};
use super::faults::lock;
use super::{Counters, FaultConfig, Faults, Listener, Population, SandboxError};

pub use self::hooks::Activity;
pub use self::schema::ObjectKind;
pub use self::seed_contacts::FIRST_CONTACT_ID;

/// How the sandbox starts. `Default`: 1,000 contacts, seed 0, a free port, no faults.
#[derive(Debug, Clone)]
pub struct HubSpotSandboxConfig {
    /// Seeded contacts (ids `FIRST_CONTACT_ID ..`), generated on demand from `seed`.
    pub contacts: u32,
    pub seed: u64,
    /// 0 picks a free port.
    pub port: u16,
    /// Fault knobs (shared type with the Salesforce sandbox). `search_index_lag` is measured on
    /// the sandbox clock: real time, plus what [`HubSpotSandbox::advance_clock`] added.
    pub faults: FaultConfig,
    /// Requests allowed per rolling ten seconds (real time) before 429 `TEN_SECONDLY_ROLLING`;
    /// reported in `X-HubSpot-RateLimit-Max`. HubSpot's tiers are 100–250; the default is high
    /// enough for benchmarks.
    pub burst_per_10s: u32,
    /// Search requests allowed per second (real time) before the search 429 (HubSpot: 5).
    pub search_per_second: u32,
    /// A write becomes visible to search only after this many further requests (any endpoint).
    pub search_lag_requests: u64,
}

impl Default for HubSpotSandboxConfig {
    fn default() -> Self {
        HubSpotSandboxConfig {
            contacts: 1_000,
            seed: 0,
            port: 0,
            faults: FaultConfig::default(),
            burst_per_10s: 100_000,
            search_per_second: 10_000,
            search_lag_requests: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubSpotSandboxError {
    #[error(transparent)]
    Listen(#[from] SandboxError),
    #[error("HubSpot sandbox: no live {kind} with id {id}")]
    NotFound { kind: &'static str, id: u64 },
    #[error("HubSpot sandbox: {kind} {id}: {message}")]
    Rejected {
        kind: &'static str,
        id: String,
        message: String,
    },
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct Shared {
    pub state: Mutex<PortalState>,
    pub faults: Faults,
    pub counters: Counters,
    pub limiter: Mutex<RateLimiter>,
    pub tokens: Mutex<Tokens>,
    pub tamper: Arc<super::tamper::Tamper>,
}

impl Shared {
    fn new(config: &HubSpotSandboxConfig) -> Self {
        let seeded = SeededContacts::new(Population::new(config.contacts, config.seed));
        let mut state = PortalState::new(seeded);
        state.search_lag = SearchLag {
            requests: config.search_lag_requests,
            sandbox_ms: duration_ms(config.faults.search_index_lag),
        };
        Shared {
            state: Mutex::new(state),
            faults: Faults::new(config.faults.clone()),
            counters: Counters::new(),
            limiter: Mutex::new(RateLimiter::new(
                config.burst_per_10s,
                config.search_per_second,
            )),
            tokens: Mutex::new(Tokens::default()),
            tamper: Arc::default(),
        }
    }
}

pub(crate) fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The routes, with the fault/auth/budget pipeline around them.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/crm/v3/objects/{object}",
            get(objects::list).post(objects::create),
        )
        .route("/crm/v3/objects/{object}/search", post(objects::search))
        .route("/crm/v3/objects/{object}/merge", post(archived::merge))
        .route(
            "/crm/v3/objects/{object}/batch/{operation}",
            post(batch::batch),
        )
        .route(
            "/crm/v3/objects/{object}/{id}",
            get(objects::read)
                .patch(objects::update)
                .delete(archived::delete),
        )
        .route(
            "/crm/v3/objects/{object}/{id}/associations/{to_object}/{to_id}/{association_type}",
            put(associations::put_v3),
        )
        .route("/crm/v3/properties/{object}", get(properties::list))
        .route("/crm/v3/properties/{object}/{name}", get(properties::read))
        .route(
            "/crm/v4/objects/{object}/{id}/associations/{to_object}",
            get(associations::read_v4),
        )
        .route(
            "/crm/v4/objects/{object}/{id}/associations/default/{to_object}/{to_id}",
            put(associations::put_default_v4),
        )
        .route("/oauth/v1/token", post(oauth_token))
        .fallback(pipeline::not_found)
        .method_not_allowed_fallback(pipeline::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            pipeline::pipeline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            shared.tamper.clone(),
            super::tamper::rewrite,
        ))
        .with_state(shared)
}

async fn oauth_token(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> axum::response::Response {
    let lifetime = shared.faults.config().token_lifetime;
    auth::token_response(&mut lock(&shared.tokens), &form, lifetime)
}

/// A running HubSpot sandbox. Dropping it stops the server.
#[derive(Debug)]
pub struct HubSpotSandbox {
    listener: Listener,
    shared: Arc<Shared>,
}

impl HubSpotSandbox {
    /// Binds `127.0.0.1:<port>` and serves. Must be called inside a tokio runtime.
    pub async fn start(
        config: HubSpotSandboxConfig,
    ) -> Result<HubSpotSandbox, HubSpotSandboxError> {
        let shared = Arc::new(Shared::new(&config));
        let listener = Listener::bind(config.port, router(shared.clone())).await?;
        Ok(HubSpotSandbox { listener, shared })
    }

    /// `http://127.0.0.1:<port>`: the API base (use in place of `https://api.hubapi.com`).
    pub fn base_url(&self) -> String {
        self.listener.base_url()
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.listener.addr()
    }

    /// The private-app token the sandbox accepts.
    pub fn token(&self) -> &'static str {
        super::credentials::HUBSPOT_TOKEN
    }

    /// Requests by endpoint (`hs.contacts.list`, `hs.contacts.search 200`, ...).
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The live fault knobs. After changing `search_index_lag`, the next write uses it.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Knobs for dishonest answers: record ids of the wrong shape (`docs/sandbox.md`).
    pub fn tamper(&self) -> &super::tamper::Tamper {
        &self.shared.tamper
    }

    /// Stops the server and waits for in-flight requests.
    pub async fn shutdown(self) {
        self.listener.shutdown().await;
    }
}
