//! A Salesforce-compatible server on two loopback listeners: "login" (the OAuth token
//! endpoint) and "instance" (the REST API under `/services/data/vXX.X/`), so a client must use
//! the `instance_url` the token response gives it.
//!
//! Start it in-process with [`SalesforceSandbox::start`]; the handle exposes the URLs, test
//! hooks (read, edit, create and delete contacts as a CRM user would, list tasks), the fault
//! knobs and the request counters. Wire contract: `docs/sandbox.md`; what is modelled
//! and what is not: `docs/sandbox.md`.

pub mod auth;
pub mod changes;
pub mod collections;
pub mod describe;
pub mod errors;
pub mod pipeline;
pub mod query;
pub mod record;
pub mod sobjects;
pub mod soql;
pub mod state;

use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value as JsonValue};

use super::counters::Counters;
use super::faults::{lock, FaultConfig, Faults};
use super::seed::{Population, SANDBOX_EPOCH_MS};
use super::server::Listener;
use super::SandboxError;
use collections::{apply, prepare_create, prepare_update};
use describe::SObject;
use errors::ApiError;
pub use errors::HookError;
use query::Locators;
use state::OrgState;

/// The API version the sandbox advertises (any `vNN.N` in a path is accepted).
pub const API_VERSION: &str = "v62.0";

/// Settings of a Salesforce sandbox.
#[derive(Debug, Clone)]
pub struct SalesforceSandboxConfig {
    /// Seeded contacts (generated on demand, so millions are cheap).
    pub contacts: u32,
    pub seed: u64,
    /// Records per query page (Salesforce's default batch is 2,000).
    pub page_size: usize,
    pub faults: FaultConfig,
    /// Port of the login (token) listener; 0 picks a free one.
    pub login_port: u16,
    /// Port of the instance (API) listener; 0 picks a free one.
    pub instance_port: u16,
}

impl Default for SalesforceSandboxConfig {
    fn default() -> Self {
        SalesforceSandboxConfig {
            contacts: 1_000,
            seed: 1,
            page_size: 2_000,
            faults: FaultConfig::default(),
            login_port: 0,
            instance_port: 0,
        }
    }
}

/// Shared state of both listeners.
#[derive(Debug)]
pub struct App {
    pub(crate) org: Mutex<OrgState>,
    pub(crate) population: Population,
    pub(crate) locators: Mutex<Locators>,
    pub(crate) prefetch: Mutex<Option<query::Prefetch>>,
    pub(crate) tokens: Mutex<auth::Tokens>,
    pub(crate) faults: Faults,
    pub(crate) tamper: Arc<super::tamper::Tamper>,
    pub(crate) counters: Counters,
    pub(crate) page_size: usize,
    pub(crate) schema_modified_ms: i64,
    login_url: OnceLock<String>,
    instance_url: OnceLock<String>,
}

impl App {
    pub(crate) fn login_url(&self) -> &str {
        self.login_url.get().map(String::as_str).unwrap_or("")
    }

    pub(crate) fn instance_url(&self) -> &str {
        self.instance_url.get().map(String::as_str).unwrap_or("")
    }
}

pub type AppState = Arc<App>;

/// A running Salesforce sandbox. Dropping it stops both listeners.
#[derive(Debug)]
pub struct SalesforceSandbox {
    app: AppState,
    login: Listener,
    instance: Listener,
}

impl SalesforceSandbox {
    /// Bind both listeners on 127.0.0.1 and start serving. Needs a tokio runtime.
    pub async fn start(config: SalesforceSandboxConfig) -> Result<SalesforceSandbox, SandboxError> {
        let population = Population::new(config.contacts, config.seed);
        let app = Arc::new(App {
            org: Mutex::new(OrgState::new(population)),
            population,
            locators: Mutex::new(Locators::default()),
            prefetch: Mutex::new(None),
            tokens: Mutex::new(auth::Tokens::default()),
            faults: Faults::new(config.faults),
            tamper: Arc::default(),
            counters: Counters::new(),
            page_size: config.page_size.max(1),
            // Metadata "last changed" long before any seeded record.
            schema_modified_ms: SANDBOX_EPOCH_MS - 400 * 86_400_000,
            login_url: OnceLock::new(),
            instance_url: OnceLock::new(),
        });
        let instance = Listener::bind(config.instance_port, instance_router(app.clone())).await?;
        let _ = app.instance_url.set(instance.base_url());
        let login = Listener::bind(config.login_port, login_router(app.clone())).await?;
        let _ = app.login_url.set(login.base_url());
        Ok(SalesforceSandbox {
            app,
            login,
            instance,
        })
    }

    /// Where clients authenticate: `POST {login_url}/services/oauth2/token`.
    pub fn login_url(&self) -> String {
        self.login.base_url()
    }

    /// Where the API lives (also returned as `instance_url` by the token endpoint).
    pub fn instance_url(&self) -> String {
        self.instance.base_url()
    }

    /// `{instance_url}/services/data/v62.0`
    pub fn api_base(&self) -> String {
        format!("{}/services/data/{API_VERSION}", self.instance.base_url())
    }

    pub fn counters(&self) -> &Counters {
        &self.app.counters
    }

    /// The live fault knobs (`faults().update(|f| f.server_error_fraction = 0.2)`).
    pub fn faults(&self) -> &Faults {
        &self.app.faults
    }

    /// Knobs for dishonest answers: a foreign `nextRecordsUrl`, record ids of the wrong shape
    /// (`docs/sandbox.md`).
    pub fn tamper(&self) -> &super::tamper::Tamper {
        &self.app.tamper
    }

    pub fn population(&self) -> Population {
        self.app.population
    }

    /// The id of seeded contact number `index` (0-based).
    pub fn contact_id(index: u32) -> String {
        state::contact_id(index)
    }

    /// A contact as the API returns it (all fields, with `attributes`), if live.
    pub fn contact(&self, id: &str) -> Option<JsonValue> {
        let org = lock(&self.app.org);
        org.contact(id).map(|record| record.to_json(API_VERSION))
    }

    /// Live contacts.
    pub fn contact_count(&self) -> u64 {
        lock(&self.app.org).contact_count()
    }

    /// Edit a contact as a CRM user would: validated like an API update, stamped with the org
    /// clock. Returns the new SystemModstamp.
    pub fn edit_contact(&self, id: &str, fields: JsonValue) -> Result<DateTime<Utc>, HookError> {
        let fields = as_object(fields)?;
        let mut org = lock(&self.app.org);
        if org.contact(id).is_none() {
            return Err(HookError::NotFound { id: id.to_string() });
        }
        let prepared = prepare_update(&org, SObject::Contact, id, &fields)
            .map_err(|errors| HookError::rejected(id, errors))?;
        let at = org.tick();
        apply(&mut org, prepared, at).map_err(|e| HookError::rejected(id, vec![e]))?;
        Ok(to_datetime(at))
    }

    /// Create a contact (needs at least `LastName`); returns its id.
    pub fn create_contact(&self, fields: JsonValue) -> Result<String, HookError> {
        let fields = as_object(fields)?;
        let mut org = lock(&self.app.org);
        let prepared = prepare_create(&org, SObject::Contact, &fields)
            .map_err(|errors| HookError::rejected("(new contact)", errors))?;
        let at = org.tick();
        apply(&mut org, prepared, at).map_err(|e| HookError::rejected("(new contact)", vec![e]))
    }

    /// Delete a contact; it then shows in `sobjects/Contact/deleted`.
    pub fn delete_contact(&self, id: &str) -> Result<(), HookError> {
        let mut org = lock(&self.app.org);
        if org.contact(id).is_none() {
            return Err(HookError::NotFound { id: id.to_string() });
        }
        let at = org.tick();
        org.delete_contact(id, at);
        Ok(())
    }

    /// Every task, in creation order, as the API returns them.
    pub fn tasks(&self) -> Vec<JsonValue> {
        lock(&self.app.org)
            .tasks()
            .iter()
            .map(|t| t.to_json(API_VERSION))
            .collect()
    }

    /// Tasks whose `WhoId` is `who_id`.
    pub fn tasks_for(&self, who_id: &str) -> Vec<JsonValue> {
        self.tasks()
            .into_iter()
            .filter(|t| t["WhoId"] == json!(who_id))
            .collect()
    }

    /// Invalidate every issued access token (the next API call gets 401).
    pub fn revoke_tokens(&self) {
        lock(&self.app.tokens).revoke_all();
    }

    /// The org clock: real time, plus what [`SalesforceSandbox::advance_clock`] added.
    pub fn now(&self) -> DateTime<Utc> {
        to_datetime(lock(&self.app.org).now())
    }

    /// Moves the org clock forward (a test's stand-in for time passing, e.g. a CRM user's
    /// edit made a minute after a local change).
    pub fn advance_clock(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        lock(&self.app.org).advance_clock(ms);
    }

    /// The CRM becomes unreachable: both listeners stop accepting connections (clients get
    /// "connection refused") until [`SalesforceSandbox::accept_connections`]. State, tokens and
    /// addresses are kept.
    pub async fn refuse_connections(&mut self) {
        self.login.stop().await;
        self.instance.stop().await;
    }

    /// Serve again on the same addresses after [`SalesforceSandbox::refuse_connections`].
    pub async fn accept_connections(&mut self) -> Result<(), SandboxError> {
        self.instance
            .resume(instance_router(self.app.clone()))
            .await?;
        self.login.resume(login_router(self.app.clone())).await
    }

    /// Stop both listeners, waiting for in-flight requests.
    pub async fn shutdown(self) {
        self.login.shutdown().await;
        self.instance.shutdown().await;
    }
}

fn as_object(fields: JsonValue) -> Result<serde_json::Map<String, JsonValue>, HookError> {
    match fields {
        JsonValue::Object(map) => Ok(map),
        other => Err(HookError::NotAnObject {
            got: other.to_string(),
        }),
    }
}

fn to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn login_router(app: AppState) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(auth::token))
        .with_state(app)
}

fn instance_router(app: AppState) -> Router {
    let api = Router::new()
        .route("/services/data/{version}/query", get(query::query))
        .route("/services/data/{version}/query/", get(query::query))
        .route(
            "/services/data/{version}/query/{locator}",
            get(query::query_more),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/describe",
            get(describe::describe),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/describe/",
            get(describe::describe),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/updated",
            get(changes::updated),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/updated/",
            get(changes::updated),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/deleted",
            get(changes::deleted),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/deleted/",
            get(changes::deleted),
        )
        .route(
            "/services/data/{version}/sobjects/{object}",
            post(sobjects::create),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{id}",
            get(sobjects::get)
                .patch(sobjects::update)
                .delete(sobjects::delete),
        )
        .route(
            "/services/data/{version}/composite/sobjects",
            patch(collections::update).post(collections::create),
        )
        .route("/services/data/{version}/limits", get(limits))
        .fallback(not_found)
        // Collections of 200 records with long text fields exceed axum's 2 MB default; the
        // sandbox accepts what Salesforce does (its REST request limit is 50 MB).
        .layer(axum::extract::DefaultBodyLimit::max(50 * 1024 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            pipeline::api_pipeline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.tamper.clone(),
            super::tamper::rewrite,
        ));
    Router::new()
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .merge(api)
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// `GET /services/data`: the versions list (no auth, no limit header, as in Salesforce).
async fn versions(State(app): State<AppState>) -> Response {
    app.counters.record("sf.versions", 200);
    let version = API_VERSION.trim_start_matches('v');
    Json(json!([{
        "label": "Winter '25",
        "url": format!("/services/data/{API_VERSION}"),
        "version": version,
    }]))
    .into_response()
}

/// `GET …/limits`: the daily budget as Salesforce reports it.
async fn limits(State(app): State<AppState>) -> Response {
    let (used, limit) = app.faults.usage();
    (
        StatusCode::OK,
        Json(json!({
            "DailyApiRequests": {"Max": limit, "Remaining": limit.saturating_sub(used)},
        })),
    )
        .into_response()
}
