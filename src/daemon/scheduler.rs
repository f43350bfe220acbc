//! The daemon's background work: the inbound sync of the active connection on a schedule (or
//! on `POST /v1/sync`), and the outbox dispatcher.
//!
//! - **Sync**: one task per daemon, so at most one sync runs per connection at a time. The first
//!   run after start is due at once (full when the connection has no cursor yet, else
//!   incremental), then every `sync_interval`. A manual trigger runs a full sync as soon as the
//!   running one (if any) ends; while one is queued or running, another trigger is refused
//!   (`409`), as Retell refuses a second `run-sync-job`.
//! - **Dispatch**: drains the outbox whenever an event queued something (woken through a
//!   `Notify`), after each sync, and every `dispatch_interval` for retries that were backed off.
//! - **Shutdown**: both loops stop at the next await point. A sync is dropped between pages (a
//!   page is one store transaction, committed or not; the cursor only moves after a commit, so
//!   the next start resumes where it stopped). The dispatcher gets a short grace period to finish
//!   its batch; an activity whose request was in flight stays marked "sending" in the store and
//!   is looked up before it is sent again.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{watch, Notify};

use super::counters::Counters;

/// A boxed future (the backend is used as a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What ran a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The interval timer (Retell calls this `cron`).
    Schedule,
    /// `POST /v1/sync`.
    Manual,
}

impl Trigger {
    fn label(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

/// `idle`, `queued` (a manual run waits for the running one) or `running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    Idle,
    Queued,
    Running,
}

/// Live counters a running sync updates page by page.
#[derive(Debug, Default)]
pub struct SyncProgress {
    /// Records applied (created, updated or unchanged).
    pub succeeded: AtomicU64,
    /// Records skipped or with a field that could not be written.
    pub failed: AtomicU64,
}

impl SyncProgress {
    pub fn add(&self, succeeded: u64, failed: u64) {
        self.succeeded.fetch_add(succeeded, Ordering::Relaxed);
        self.failed.fetch_add(failed, Ordering::Relaxed);
    }
}

/// What a finished sync reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncOutcome {
    /// Whether it was a full read (the first sync of a connection is full even when not asked).
    pub full: bool,
    /// Records by outcome (`created`, `updated`, `unchanged`, `skipped`, ...), for metrics.
    pub records: Vec<(String, u64)>,
    /// The connector's own summary, shown as `last_report` in `GET /v1/sync`.
    pub report: serde_json::Value,
}

/// What a dispatch pass reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DispatchOutcome {
    pub report: serde_json::Value,
}

/// The sync and dispatch of the active connection. The daemon's implementation is the real
/// connector (see `backend.rs`); the seam exists so the daemon can run without any connection
/// configured (then syncs report "no active connection").
pub trait SyncBackend: Send + Sync {
    /// The connection's name.
    fn connection(&self) -> &str;
    /// One inbound sync (`full`: re-read everything), committing page by page and adding to
    /// `progress` after each commit.
    fn sync<'a>(
        &'a self,
        full: bool,
        progress: &'a SyncProgress,
    ) -> BoxFuture<'a, Result<SyncOutcome, String>>;
    /// Whether the connection has a sync cursor (when not, the next sync is a full one).
    fn has_cursor(&self) -> bool {
        true
    }
    /// One pass over the due outbox entries.
    fn dispatch(&self) -> BoxFuture<'_, Result<DispatchOutcome, String>>;
    /// The connector's cumulative request counters, for metrics.
    fn crm_metrics(&self) -> Option<crate::connector::metrics::MetricsSnapshot> {
        None
    }
}

/// The status `GET /v1/sync` shows.
#[derive(Debug, Clone, Serialize)]
pub struct SyncStatus {
    pub state: SyncState,
    /// The active connection (`null` when none is configured).
    pub connection: Option<String>,
    pub trigger: Option<Trigger>,
    /// Whether the current (or last) run re-reads everything.
    pub full: Option<bool>,
    /// When the current (or last) run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the last run ended (`null` while the first one runs).
    pub finished_at: Option<DateTime<Utc>>,
    /// Records applied by the current (or last) run so far.
    pub succeeded: u64,
    /// Records skipped or failed in the current (or last) run so far.
    pub failed: u64,
    /// The last run's error, if it failed.
    pub last_error: Option<String>,
    /// Runs finished since the daemon started (ok or failed).
    pub runs: u64,
    /// The last finished run's summary.
    pub last_report: Option<serde_json::Value>,
    /// When the next scheduled run is due.
    pub next_run_at: Option<DateTime<Utc>>,
}

/// Why a manual sync was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("a sync is already {0}; wait for it to finish (GET /v1/sync)")]
    Busy(&'static str),
    #[error("no active connection is configured, so there is nothing to sync")]
    NoConnection,
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

struct Inner {
    status: SyncStatus,
    manual_requested: bool,
    progress: Option<Arc<SyncProgress>>,
}

/// Shared handle: the HTTP routes read the status and trigger runs through it.
pub struct Scheduler {
    backend: Option<Arc<dyn SyncBackend>>,
    inner: Mutex<Inner>,
    manual: Notify,
    /// Wakes the dispatcher (new outbox entries).
    pub dispatch_wake: Notify,
    sync_interval: Duration,
    dispatch_interval: Duration,
    counters: Counters,
}

impl Scheduler {
    pub fn new(
        backend: Option<Arc<dyn SyncBackend>>,
        sync_interval: Duration,
        dispatch_interval: Duration,
        counters: Counters,
    ) -> Scheduler {
        let connection = backend.as_ref().map(|b| b.connection().to_string());
        Scheduler {
            backend,
            inner: Mutex::new(Inner {
                status: SyncStatus {
                    state: SyncState::Idle,
                    connection,
                    trigger: None,
                    full: None,
                    started_at: None,
                    finished_at: None,
                    succeeded: 0,
                    failed: 0,
                    last_error: None,
                    runs: 0,
                    last_report: None,
                    next_run_at: None,
                },
                manual_requested: false,
                progress: None,
            }),
            manual: Notify::new(),
            dispatch_wake: Notify::new(),
            sync_interval,
            dispatch_interval,
            counters,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock can only come from a bug in this file; the status is
        // plain data, so keep serving it rather than poisoning every later request.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The current status, with live counts when a run is in progress.
    pub fn status(&self) -> SyncStatus {
        let inner = self.lock();
        let mut status = inner.status.clone();
        if let Some(progress) = &inner.progress {
            status.succeeded = progress.succeeded.load(Ordering::Relaxed);
            status.failed = progress.failed.load(Ordering::Relaxed);
        }
        status
    }

    /// Queues a full sync (`POST /v1/sync`).
    pub fn trigger_full(&self, shutting_down: bool) -> Result<SyncStatus, TriggerError> {
        if shutting_down {
            return Err(TriggerError::ShuttingDown);
        }
        if self.backend.is_none() {
            return Err(TriggerError::NoConnection);
        }
        {
            let mut inner = self.lock();
            match inner.status.state {
                SyncState::Running => return Err(TriggerError::Busy("running")),
                SyncState::Queued => return Err(TriggerError::Busy("queued")),
                SyncState::Idle => {}
            }
            inner.manual_requested = true;
            inner.status.state = SyncState::Queued;
            inner.status.trigger = Some(Trigger::Manual);
            inner.status.full = Some(true);
        }
        self.manual.notify_one();
        Ok(self.status())
    }

    /// The active connection's name and its connector's request counters.
    pub fn crm_metrics(&self) -> Option<(String, crate::connector::metrics::MetricsSnapshot)> {
        let backend = self.backend.as_ref()?;
        Some((backend.connection().to_string(), backend.crm_metrics()?))
    }

    /// The sync loop; returns when `shutdown` turns true.
    pub async fn run_sync_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(backend) = self.backend.clone() else {
            stopped(&mut shutdown).await;
            return;
        };
        // The first run is due at once: a fresh connection gets its full import, a restarted
        // daemon catches up on what changed while it was down.
        let mut next_due = tokio::time::Instant::now();
        loop {
            self.lock().status.next_run_at = Some(
                Utc::now()
                    + chrono::Duration::from_std(
                        next_due.saturating_duration_since(tokio::time::Instant::now()),
                    )
                    .unwrap_or_default(),
            );
            let trigger = tokio::select! {
                _ = stopped(&mut shutdown) => return,
                _ = tokio::time::sleep_until(next_due) => Trigger::Schedule,
                _ = self.manual.notified() => Trigger::Manual,
            };
            let full = {
                let mut inner = self.lock();
                let manual = std::mem::take(&mut inner.manual_requested);
                manual || trigger == Trigger::Manual
            };
            let trigger = if full { Trigger::Manual } else { trigger };
            // Reading the cursor is a quick store read; done off the async workers all the same.
            let probe = backend.clone();
            let first = tokio::task::spawn_blocking(move || !probe.has_cursor())
                .await
                .unwrap_or(false);
            let finished = self
                .run_one(&backend, trigger, full || first, &mut shutdown)
                .await;
            if !finished {
                return;
            }
            self.dispatch_wake.notify_one();
            // A manual run does not move the schedule, unless the scheduled time passed
            // while it ran.
            if trigger == Trigger::Schedule || next_due <= tokio::time::Instant::now() {
                next_due = tokio::time::Instant::now() + self.sync_interval;
            }
        }
    }

    /// Runs one sync; false when it was cut short by shutdown.
    async fn run_one(
        &self,
        backend: &Arc<dyn SyncBackend>,
        trigger: Trigger,
        full: bool,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let progress = Arc::new(SyncProgress::default());
        {
            let mut inner = self.lock();
            inner.progress = Some(progress.clone());
            let status = &mut inner.status;
            status.state = SyncState::Running;
            status.trigger = Some(trigger);
            status.full = Some(full);
            status.started_at = Some(Utc::now());
            status.succeeded = 0;
            status.failed = 0;
            status.last_error = None;
        }
        tracing::info!(
            connection = backend.connection(),
            full,
            trigger = trigger.label(),
            "sync started"
        );
        let result = tokio::select! {
            result = backend.sync(full, &progress) => Some(result),
            _ = stopped(shutdown) => None,
        };
        let mut inner = self.lock();
        inner.progress = None;
        let status = &mut inner.status;
        status.succeeded = progress.succeeded.load(Ordering::Relaxed);
        status.failed = progress.failed.load(Ordering::Relaxed);
        status.state = SyncState::Idle;
        status.finished_at = Some(Utc::now());
        let connection = backend.connection().to_string();
        match result {
            None => {
                status.last_error = Some(
                    "interrupted by shutdown; the next start resumes from the last committed page"
                        .to_string(),
                );
                self.counters
                    .sync_run(&connection, trigger.label(), "cancelled");
                tracing::info!(%connection, "sync interrupted by shutdown");
                false
            }
            Some(Ok(outcome)) => {
                status.runs += 1;
                status.full = Some(outcome.full);
                self.counters
                    .conflicts_in_report(&connection, &outcome.report);
                status.last_report = Some(outcome.report);
                for (label, count) in &outcome.records {
                    self.counters.sync_records(&connection, label, *count);
                }
                self.counters.sync_run(&connection, trigger.label(), "ok");
                tracing::info!(%connection, succeeded = status.succeeded, failed = status.failed, "sync finished");
                true
            }
            Some(Err(message)) => {
                status.runs += 1;
                tracing::warn!(%connection, error = %message, "sync failed");
                status.last_error = Some(message);
                self.counters
                    .sync_run(&connection, trigger.label(), "failed");
                true
            }
        }
    }

    /// The dispatch loop; returns when `shutdown` turns true (after a grace period for the pass
    /// in progress).
    pub async fn run_dispatch_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(backend) = self.backend.clone() else {
            stopped(&mut shutdown).await;
            return;
        };
        loop {
            let pass = backend.dispatch();
            tokio::pin!(pass);
            let result = tokio::select! {
                result = &mut pass => result,
                _ = stopped(&mut shutdown) => {
                    // Let the batch in hand finish, briefly; dropping it later is still safe.
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, &mut pass).await;
                    return;
                }
            };
            if let Err(message) = result {
                tracing::warn!(connection = backend.connection(), error = %message, "dispatch pass failed");
            }
            tokio::select! {
                _ = stopped(&mut shutdown) => return,
                _ = self.dispatch_wake.notified() => {}
                _ = tokio::time::sleep(self.dispatch_interval) => {}
            }
        }
    }
}

/// Completes when the shutdown switch turns on (or its sender is gone). Returns `()` rather than
/// the watch guard, so nothing that is not `Send` lives across an await.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// How long the dispatcher may keep working after a shutdown request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
