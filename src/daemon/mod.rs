//! `crmsync run`: the daemon. It serves the HTTP API (Retell webhooks, the generic conversation
//! endpoint, contacts, sync control, health, metrics), runs the inbound sync of the active
//! connection on a schedule, and drains the outbox continuously.
//!
//! # Threads and the store
//! The store is redb: a synchronous API with one writer at a time. Handlers never touch it on an
//! async worker thread; every store or engine call goes through [`AppState::blocking`], which
//! runs it on tokio's blocking pool behind a small semaphore (so 200 concurrent webhooks queue
//! for the writer instead of parking 200 threads). Each event is one write transaction, so
//! concurrent posts are applied exactly once each, in some order, and a duplicate delivery of
//! the same conversation is a no-op.
//!
//! # Slow clients
//! Connections are served by [`serve`]: a request's head must arrive within
//! `server.header_read_timeout` and its body within `server.body_read_timeout`, and at most
//! `server.max_connections` are open at once (one more is answered 503).
//!
//! # Shutdown
//! [`RunningDaemon::shutdown`] (or SIGINT/SIGTERM in `crmsync run`) stops accepting connections,
//! lets in-flight requests finish, stops the scheduler between pages (a page's transaction either
//! committed or never started; the cursor only moves after a commit) and lets the dispatcher
//! finish the batch in hand. Whatever was not sent stays in the outbox for the next start.
//! All of it within `server.shutdown_timeout`: what is still running then is stopped, and a
//! request cut that way was never answered, so its sender retries it (a redelivered event is a
//! no-op, a store transaction that had begun runs to its end).

pub mod backend;
pub mod counters;
pub mod http;
pub mod scheduler;
pub mod serve;
pub mod signature;
pub mod writer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::engine::Engine;
use crate::merge::Merger;
use crate::store::{Store, StoreError};
use crate::value::phone::PhoneNormalizer;
use counters::Counters;
use http::error::{ApiError, ApiResult};
use scheduler::{Scheduler, SyncBackend};

/// Everything the daemon needs, resolved: secrets read, rules compiled, store open. The CLI
/// builds it from the config file; tests build it directly (no environment variables).
pub struct DaemonOptions {
    /// Where to listen (`127.0.0.1:0` in tests).
    pub listen: SocketAddr,
    /// Bearer token for `/v1`.
    pub api_token: String,
    /// Retell API key for webhook signatures.
    pub retell_api_key: String,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// The engine (it owns the store), with the active connection and default region set.
    pub engine: Arc<Engine>,
    /// Resolves `merge` mappings (the LLM, or the fallback).
    pub merger: Arc<dyn Merger>,
    /// Sync and dispatch of the active connection; `None` runs the daemon without a CRM
    /// (webhooks and contacts only).
    pub backend: Option<Arc<dyn SyncBackend>>,
    /// Region for phone numbers without a country code (must match the engine's).
    pub phone: PhoneNormalizer,
    /// Apply concurrent conversation events in shared transactions (one writer thread). Turn
    /// it off when `merger` calls an LLM, so slow merges do not hold up everyone's events.
    pub group_commit: bool,
    /// Time between scheduled incremental syncs.
    pub sync_interval: Duration,
    /// Time between outbox passes when nothing wakes the dispatcher.
    pub dispatch_interval: Duration,
    /// Where a Retell chat's number is looked for (`retell.chat_number_keys`).
    pub chat_number_keys: Vec<String>,
    /// Read deadlines, the connection cap and the shutdown deadline.
    pub limits: serve::Limits,
}

/// How many store/engine calls may run on the blocking pool at once. redb has one writer, so
/// more would only park threads.
const BLOCKING_PERMITS: usize = 8;

/// Shared state of the HTTP handlers and background tasks.
pub struct AppState {
    pub api_token: String,
    pub retell_api_key: String,
    pub engine: Arc<Engine>,
    pub merger: Arc<dyn Merger>,
    pub phone: PhoneNormalizer,
    pub counters: Counters,
    pub scheduler: Arc<Scheduler>,
    /// The group-commit writer, when enabled.
    pub writer: Option<writer::ConversationWriter>,
    /// Where a Retell chat's number is looked for (`retell.chat_number_keys`).
    pub chat_number_keys: Arc<[String]>,
    blocking_permits: Semaphore,
    shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// Runs a synchronous store/engine call on the blocking pool.
    pub async fn blocking<T, F>(&self, work: F) -> ApiResult<T>
    where
        F: FnOnce() -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .blocking_permits
            .acquire()
            .await
            .map_err(|_| ApiError::unavailable("the daemon is shutting down"))?;
        // If the client disconnects, this future is dropped but the spawned task still runs to
        // completion: a started transaction always commits or aborts as a whole.
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| ApiError::internal(format!("a store task failed: {err}")))?
    }

    /// The contact store (owned by the engine).
    pub fn store(&self) -> &Store {
        self.engine.store()
    }

    /// Tells the dispatcher there is something new in the outbox.
    pub fn wake_dispatcher(&self) {
        self.scheduler.dispatch_wake.notify_one();
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// A cheap read, to prove the store answers.
    pub async fn store_probe(&self) -> Result<(), String> {
        let engine = self.engine.clone();
        self.blocking(move || {
            engine
                .store()
                .contact_count()
                .map(|_| ())
                .map_err(store_error)
        })
        .await
        .map_err(|err| err.message)
    }

    /// Whether the store can be written (see [`Store::health`]).
    pub async fn store_health(&self) -> Result<crate::store::Health, String> {
        let engine = self.engine.clone();
        self.blocking(move || Ok(engine.store().health()))
            .await
            .map_err(|err| err.message)
    }

    /// Reads outbox depth, dead letters and contact count into the metrics gauges.
    pub async fn refresh_store_gauges(&self) -> ApiResult<()> {
        let engine = self.engine.clone();
        let (counts, contacts) = self
            .blocking(move || {
                let store = engine.store();
                let counts = store.outbox_counts().map_err(store_error)?;
                let contacts = store.contact_count().map_err(store_error)?;
                Ok((counts, contacts))
            })
            .await?;
        self.counters.set_store_gauges(
            counts.pending_writes,
            counts.pending_activities + counts.sending_activities,
            counts.dead_letters,
            contacts,
        );
        self.counters
            .set_deferred(counts.deferred_writes, counts.deferred_activities);
        if let Some((connection, snapshot)) = self.scheduler.crm_metrics() {
            self.counters.observe_crm(&connection, &snapshot);
        }
        Ok(())
    }
}

/// A store failure: 503 when the store itself cannot serve (unwritable, being reopened,
/// damaged; the client may retry later), else 500.
pub fn store_error(err: StoreError) -> ApiError {
    if err.is_unavailable() {
        ApiError::store_unavailable(err.to_string())
    } else {
        ApiError::internal(err.to_string())
    }
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("a daemon task failed: {0}")]
    Task(String),
}

/// A daemon started in this process.
pub struct RunningDaemon {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    server: JoinHandle<serve::Stopped>,
}

impl RunningDaemon {
    /// The address it listens on (the real port when `listen` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops (see the module docs) and waits until everything has stopped.
    pub async fn shutdown(self) -> Result<serve::Stopped, DaemonError> {
        let _ = self.stop.send(true);
        self.wait().await
    }

    /// Waits until the daemon stops (after `stop_on` fired, for [`start_with_shutdown`]), and
    /// says what the shutdown deadline cut short.
    pub async fn wait(self) -> Result<serve::Stopped, DaemonError> {
        self.server
            .await
            .map_err(|err| DaemonError::Task(err.to_string()))
    }
}

/// Starts the daemon; it runs until [`RunningDaemon::shutdown`].
pub async fn start(options: DaemonOptions) -> Result<RunningDaemon, DaemonError> {
    start_with_shutdown(options, std::future::pending()).await
}

/// Starts the daemon; it stops when `stop_on` completes (e.g. a signal) or on
/// [`RunningDaemon::shutdown`].
pub async fn start_with_shutdown(
    options: DaemonOptions,
    stop_on: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningDaemon, DaemonError> {
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| DaemonError::Bind {
        addr: options.listen,
        source,
    })?;
    let (stop, shutdown) = watch::channel(false);
    let counters = Counters::new();
    let scheduler = Arc::new(Scheduler::new(
        options.backend,
        options.sync_interval,
        options.dispatch_interval,
        counters.clone(),
    ));
    let writer = if options.group_commit {
        Some(
            writer::ConversationWriter::start(options.engine.clone(), options.merger.clone())
                .map_err(|err| {
                    DaemonError::Task(format!("cannot start the writer thread: {err}"))
                })?,
        )
    } else {
        None
    };
    let state = Arc::new(AppState {
        api_token: options.api_token,
        retell_api_key: options.retell_api_key,
        engine: options.engine,
        merger: options.merger,
        phone: options.phone,
        counters,
        scheduler: scheduler.clone(),
        writer,
        chat_number_keys: options.chat_number_keys.into(),
        blocking_permits: Semaphore::new(BLOCKING_PERMITS),
        shutdown: shutdown.clone(),
    });
    let limits = options.limits;
    let router = http::router(
        state.clone(),
        http::body::BodyLimits {
            max_bytes: options.body_limit,
            read_timeout: limits.body_read_timeout,
        },
    );

    // An external stop (signal) flips the same switch as `RunningDaemon::shutdown`.
    let external = stop.clone();
    tokio::spawn(async move {
        stop_on.await;
        let _ = external.send(true);
    });

    let sync_task = tokio::spawn(scheduler.clone().run_sync_loop(shutdown.clone()));
    let dispatch_task = tokio::spawn(scheduler.run_dispatch_loop(shutdown.clone()));
    let server = tokio::spawn(async move {
        let (stop, connections_cut) =
            serve::serve(listener, router, limits, shutdown.clone()).await;
        // The HTTP server is done; wait for the background loops to reach a safe point too, so
        // the store can be closed by the caller, but no later than the shutdown deadline.
        let deadline = stop + limits.shutdown_timeout;
        let mut background_cut = false;
        for mut task in [sync_task, dispatch_task] {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tracing::warn!(
                    "shutdown timeout: stopping a background task before its safe point"
                );
                task.abort();
                let _ = task.await;
                background_cut = true;
            }
        }
        serve::Stopped {
            connections_cut,
            background_cut,
        }
    });
    tracing::info!(%addr, "crmsync daemon listening");
    Ok(RunningDaemon {
        addr,
        state,
        stop,
        server,
    })
}
