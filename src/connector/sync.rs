//! One inbound sync of a connection into the store (README "How it works", `docs/sync-semantics.md`).
//!
//! 1. Schema check: describe the CRM object; every CRM field the connection's mappings read or
//!    write must exist (and be writable when written), else the sync fails naming the field and
//!    the connection — before anything is read.
//! 2. Read: full (no cursor, or `--full`), else incremental from `cursor − overlap`. Pages are
//!    fetched one ahead while the current page is applied.
//! 3. Each page is applied whole and moves the cursor to the newest `(modified, id)` applied,
//!    in the same transaction — so the cursor only advances after its page commits, and the
//!    store never moves it backwards. Pages that are already read and prepared share a
//!    transaction, for at most [`BATCH_WINDOW`] (a batch never waits for the network). Reads that are not in modification order (HubSpot's full
//!    list) move the cursor only with their last page. Cursor times in the future are clamped
//!    to now.
//! 4. Deletions: Salesforce `deleted` / HubSpot archived records since the previous cursor, and
//!    HubSpot `hs_merged_object_ids`, unlink the records (the contacts stay).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use chrono::Utc;
use serde_json::Value;

use super::report::{InboundReport, SyncReport};
use super::{Connector, ConnectorError, ConnectorKind, Page, ReadPosition, Schema, SyncCursor};
use crate::engine::{Engine, EngineError, FreshShare};

/// What a sync of one connection reads and writes, from the rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPlan {
    pub connection: String,
    pub kind: ConnectorKind,
    /// The CRM object (`Contact`; HubSpot `contacts`).
    pub object: String,
    /// CRM fields the inbound mappings read (paths like `Account.Name` allowed).
    pub source_fields: Vec<String>,
    /// CRM fields the outbound mappings write.
    pub target_fields: Vec<String>,
}

impl SyncPlan {
    /// The plan of a connection of the compiled rule set.
    pub fn from_rules(rules: &crate::lang::eval::ConnectionRules) -> SyncPlan {
        let kind = ConnectorKind::from(rules.kind);
        SyncPlan {
            connection: rules.name.clone(),
            kind,
            object: rules
                .object
                .clone()
                .unwrap_or_else(|| Self::default_object(kind).to_string()),
            source_fields: rules.inbound_source_fields(),
            target_fields: rules.outbound_target_fields(),
        }
    }

    /// The CRM fields a read asks for: those the inbound mappings read, then those the
    /// outbound mappings write (to tell crmsync's own writes coming back from edits made in
    /// the CRM, and to find conflicts with pending writes).
    pub fn read_fields(&self) -> Vec<String> {
        let mut fields = self.source_fields.clone();
        for target in &self.target_fields {
            if !fields.contains(target) {
                fields.push(target.clone());
            }
        }
        fields
    }

    /// The default object of a connection kind when the rules name none.
    pub fn default_object(kind: ConnectorKind) -> &'static str {
        match kind {
            ConnectorKind::Salesforce => "Contact",
            ConnectorKind::Hubspot => "contacts",
        }
    }
}

/// Sync options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Re-read everything, whatever the cursor says.
    pub full: bool,
}

/// Progress of a long read (the CLI shows a bar on a terminal; the daemon logs nothing).
pub trait SyncProgress: Send + Sync {
    /// The read started; `total` records when the CRM says.
    fn start(&self, _total: Option<u64>) {}
    /// `records` more were applied.
    fn advance(&self, _records: u64) {}
    fn finish(&self) {}
}

/// No progress display.
pub struct NoProgress;
impl SyncProgress for NoProgress {}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("connection `{connection}`: the {direction} rules name CRM field `{field}`, which {object} does not have{}", suggest(.suggestion))]
    UnknownCrmField {
        connection: String,
        object: String,
        field: String,
        direction: &'static str,
        suggestion: Option<String>,
    },
    #[error("connection `{connection}`: the outbound rules write CRM field `{field}`, which is read-only in {object}")]
    ReadOnlyCrmField {
        connection: String,
        object: String,
        field: String,
    },
    #[error("connection `{0}`: a sync is already running")]
    AlreadyRunning(String),
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Dispatch(#[from] super::dispatch::DispatchError),
    #[error("connection `{connection}`: a page read task failed: {message}")]
    Task { connection: String, message: String },
}

fn suggest(s: &Option<String>) -> String {
    match s {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

/// Check the plan against the CRM's schema.
pub fn check_schema(plan: &SyncPlan, schema: &Schema) -> Result<(), SyncError> {
    let closest = |field: &str| {
        schema
            .fields
            .keys()
            .map(|k| {
                (
                    strsim::jaro_winkler(&k.to_lowercase(), &field.to_lowercase()),
                    k,
                )
            })
            .filter(|(score, _)| *score >= 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| k.clone())
    };
    for f in &plan.source_fields {
        if !schema.has_path_root(f) {
            let root = f.split('.').next().unwrap_or(f);
            return Err(SyncError::UnknownCrmField {
                connection: plan.connection.clone(),
                object: schema.object.clone(),
                field: f.clone(),
                direction: "inbound",
                suggestion: closest(root),
            });
        }
    }
    for f in &plan.target_fields {
        match schema.fields.get(f) {
            None => {
                return Err(SyncError::UnknownCrmField {
                    connection: plan.connection.clone(),
                    object: schema.object.clone(),
                    field: f.clone(),
                    direction: "outbound",
                    suggestion: closest(f),
                })
            }
            Some(field) if !field.updateable => {
                return Err(SyncError::ReadOnlyCrmField {
                    connection: plan.connection.clone(),
                    object: schema.object.clone(),
                    field: f.clone(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Held while a connection syncs: one sync per (store, connection) at a time (in this process;
/// the redb store file cannot be opened by two processes).
struct RunningGuard(String);

fn running() -> &'static Mutex<HashSet<String>> {
    static RUNNING: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    RUNNING.get_or_init(|| Mutex::new(HashSet::new()))
}

impl RunningGuard {
    fn take(store: &str, connection: &str) -> Result<Self, SyncError> {
        let key = format!("{store}\u{0}{connection}");
        let mut set = running().lock().unwrap_or_else(|e| e.into_inner());
        if !set.insert(key.clone()) {
            return Err(SyncError::AlreadyRunning(connection.to_string()));
        }
        Ok(RunningGuard(key))
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let mut set = running().lock().unwrap_or_else(|e| e.into_inner());
        set.remove(&self.0);
    }
}

/// Run blocking store work without stalling the runtime's other tasks (the next page's fetch,
/// an in-process sandbox).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

type PageTask = tokio::task::JoinHandle<Result<Page, ConnectorError>>;

/// A fetched page on its way to `prepare_page`: records, cursor, merged-away ids, count.
type Incoming = (Vec<Value>, Option<SyncCursor>, Vec<String>, u64);

/// A page prepared by the engine, waiting for its commit.
struct Staged {
    page: crate::engine::PreparedPage,
    cursor: Option<SyncCursor>,
    merged: Vec<String>,
    n: u64,
}

/// A committed page, reported back to the sync.
struct Applied {
    report: crate::engine::ImportReport,
    unlinked: usize,
    n: u64,
}

/// How long one store transaction keeps taking pages that are already prepared.
/// WHY: each commit copies every B-tree leaf it touched, and CRM records arrive in id order,
/// so their phones land in random leaves: at one page (2,000 records) per commit, a 1M-record
/// full sync copies ~4 GB of leaves. Batching pages cuts that roughly in proportion
/// (BENCHMARKS.md, "Sync"). The window bounds how long another writer (the daemon's webhook
/// writer) can wait for the store during a large sync; a batch never waits for the network.
pub const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_secs(2);

/// Aborts the read-ahead task when the sync stops early.
struct ReadAhead(Option<PageTask>);
impl Drop for ReadAhead {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

/// One inbound sync of `plan.connection`: schema check, read, apply, unlink deletions.
pub async fn sync_inbound<C: Connector + 'static>(
    connector: Arc<C>,
    engine: &Arc<Engine>,
    plan: &SyncPlan,
    options: SyncOptions,
    progress: &dyn SyncProgress,
) -> Result<InboundReport, SyncError> {
    let _guard = RunningGuard::take(
        &engine.store().path().display().to_string(),
        &plan.connection,
    )?;
    let schema = connector.describe(&plan.object).await?;
    check_schema(plan, &schema)?;

    let conn = plan.connection.as_str();
    let previous = blocking(|| engine.store().cursor(conn)).map_err(EngineError::from)?;
    let overlap = chrono::Duration::from_std(connector.settings().overlap)
        .unwrap_or(chrono::Duration::minutes(2));
    let since = match (&previous, options.full) {
        (Some(c), false) => Some(c.modstamp - overlap),
        _ => None,
    };
    let mut report = InboundReport {
        mode: if since.is_some() {
            "incremental"
        } else {
            "full"
        },
        ..InboundReport::default()
    };

    let fields: Arc<[String]> = plan.read_fields().into();
    let object: Arc<str> = plan.object.clone().into();
    let fetch = |pos: ReadPosition| -> PageTask {
        let c = connector.clone();
        let fields = fields.clone();
        let object = object.clone();
        tokio::spawn(async move { c.read_page(&object, &fields, &pos).await })
    };

    // A three-stage pipeline: page k+2 is fetched (async task) while page k+1 is prepared
    // (record ids, phones: `Engine::prepare_page`, on the committer's helper thread) while
    // page k commits (`commit_pages`, on a blocking thread). Commits are atomic but not
    // individually fsynced (the cursor moves in the same transaction, so a crash loses both
    // together and the next sync re-reads); one durable commit ends the read.
    let (pages, incoming) = tokio::sync::mpsc::channel::<Incoming>(2);
    let (applied_sender, mut applied) = tokio::sync::mpsc::unbounded_channel::<Applied>();
    let committer = {
        let engine = engine.clone();
        let conn = conn.to_string();
        // A full sync mostly meets phones new to the store (a first sync), an incremental one
        // mostly known ones.
        let expect_new = since.is_none();
        tokio::task::spawn_blocking(move || {
            commit_pages(&engine, &conn, incoming, applied_sender, expect_new)
        })
    };
    let mut ahead = ReadAhead(Some(fetch(ReadPosition { since, token: None })));
    let mut newest: Option<SyncCursor> = None;
    let mut started = false;
    let absorb = |a: Applied, report: &mut InboundReport| {
        report.absorb(a.report);
        report.unlinked += a.unlinked;
        progress.advance(a.n);
    };
    let mut read_error = None;
    while let Some(task) = ahead.0.take() {
        let mut page = match task.await {
            Ok(Ok(page)) => page,
            Ok(Err(err)) => {
                read_error = Some(SyncError::from(err));
                break;
            }
            Err(err) => {
                read_error = Some(SyncError::Task {
                    connection: plan.connection.clone(),
                    message: err.to_string(),
                });
                break;
            }
        };
        if let Some(next) = &page.next {
            ahead.0 = Some(fetch(next.clone()));
        }
        if !started {
            progress.start(page.total);
            started = true;
        }
        let now = Utc::now();
        for r in &page.records {
            let c = SyncCursor {
                modstamp: r.modified.min(now),
                last_id: r.id.clone(),
            };
            if newest.as_ref().is_none_or(|n| c > *n) {
                newest = Some(c);
            }
        }
        let last = page.next.is_none();
        let cursor = if page.ordered || last {
            newest.clone()
        } else {
            None
        };
        if let Err(err) = attach_history(connector.as_ref(), engine, plan, &mut page).await {
            read_error = Some(err);
            break;
        }
        let merged = merged_ids(&page);
        let n = page.records.len() as u64;
        let records: Vec<Value> = page.records.into_iter().map(|r| r.raw).collect();
        while let Ok(a) = applied.try_recv() {
            absorb(a, &mut report);
        }
        if pages.send((records, cursor, merged, n)).await.is_err() {
            // The committer stopped: its error is reported below.
            break;
        }
    }
    drop(ahead);
    drop(pages);
    let committed = committer.await.map_err(|e| SyncError::Task {
        connection: plan.connection.clone(),
        message: format!("applying pages: {e}"),
    })?;
    while let Ok(a) = applied.try_recv() {
        absorb(a, &mut report);
    }
    committed?;
    if let Some(err) = read_error {
        return Err(err);
    }
    blocking(|| engine.store().sync()).map_err(EngineError::from)?;
    progress.finish();

    if let Some(prev) = &previous {
        let deleted = connector
            .read_deleted(&plan.object, prev.modstamp - overlap)
            .await?;
        if !deleted.is_empty() {
            let ids: Vec<String> = deleted.into_iter().map(|d| d.id).collect();
            report.unlinked += blocking(|| engine.unlink(conn, &ids))?;
        }
    }
    report.cursor = blocking(|| engine.store().cursor(conn)).map_err(EngineError::from)?;
    Ok(report)
}

/// Prepared pages that may wait for the committer.
const QUEUE: usize = 2;

/// The committing end of the pipeline (a blocking thread): prepares pages on a helper thread
/// and applies them in batches of at most [`BATCH_WINDOW`], each batch one transaction that
/// only takes pages already prepared. A page is reported in `applied` once its batch commits.
fn commit_pages(
    engine: &Engine,
    conn: &str,
    mut incoming: tokio::sync::mpsc::Receiver<Incoming>,
    applied: tokio::sync::mpsc::UnboundedSender<Applied>,
    expect_new: bool,
) -> Result<(), EngineError> {
    // Staged pages not yet taken by the committer (see `FreshShare`).
    let queued = AtomicUsize::new(0);
    let queued = &queued;
    std::thread::scope(|scope| {
        let (staged_sender, staged) =
            std::sync::mpsc::sync_channel::<Result<Staged, EngineError>>(QUEUE);
        // Applied pages go back to the helper to be freed there, off the committing thread
        // (the critical path; see `PageBatch::apply`).
        let (spent_sender, spent) = std::sync::mpsc::channel::<Vec<Value>>();
        scope.spawn(move || {
            let mut share = if expect_new {
                FreshShare::balanced()
            } else {
                FreshShare::none()
            };
            while let Some((records, cursor, merged, n)) = incoming.blocking_recv() {
                spent.try_iter().for_each(drop);
                let fresh = share.of(records.len());
                let prepared = engine.prepare_page(conn, records, fresh);
                share.observe(queued.fetch_add(1, Ordering::Relaxed), QUEUE);
                let prepared = prepared.map(|page| Staged {
                    page,
                    cursor,
                    merged,
                    n,
                });
                if staged_sender.send(prepared).is_err() {
                    break;
                }
            }
        });
        // Dropping `staged` on an error stops the helper at its next send.
        while let Ok(first) = staged.recv() {
            queued.fetch_sub(1, Ordering::Relaxed);
            let mut next = Some(first?);
            let opened = Instant::now();
            let mut done = Vec::new();
            engine.import_batch(false, |batch| {
                while let Some(page) = next.take() {
                    let (report, records) = batch.apply(page.page, page.cursor.as_ref())?;
                    let unlinked = batch.unlink(conn, &page.merged)?;
                    done.push(Applied {
                        report,
                        unlinked,
                        n: page.n,
                    });
                    // The helper may be done (then this page is freed here).
                    let _ = spent_sender.send(records);
                    if opened.elapsed() < BATCH_WINDOW {
                        next = staged.try_recv().ok().transpose()?;
                        if next.is_some() {
                            queued.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok::<_, EngineError>(())
            })?;
            for page in done {
                // The sync may have stopped listening (cancelled); the pages are committed.
                let _ = applied.send(page);
            }
        }
        Ok(())
    })
}

/// Records of the page that have a write pending get the CRM's per-field times of the
/// pending fields (HubSpot `propertiesWithHistory`, one batch read per 50 such records), so
/// that a conflict is decided by when the field changed rather than the whole record. Other
/// records, and CRMs without per-field times, cost nothing.
async fn attach_history<C: Connector>(
    connector: &C,
    engine: &Engine,
    plan: &SyncPlan,
    page: &mut Page,
) -> Result<(), SyncError> {
    if plan.kind != ConnectorKind::Hubspot || plan.target_fields.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = page.records.iter().map(|r| r.id.clone()).collect();
    let pending = blocking(|| engine.store().pending_fields(&plan.connection, &ids))
        .map_err(EngineError::from)?;
    if pending.is_empty() {
        return Ok(());
    }
    let mut fields: Vec<String> = pending.values().flatten().cloned().collect();
    fields.sort();
    fields.dedup();
    let with_pending: Vec<String> = pending.into_keys().collect();
    let mut history = connector
        .read_property_history(&plan.object, &with_pending, &fields)
        .await?;
    for record in &mut page.records {
        if let (Some(versions), Some(raw)) =
            (history.remove(&record.id), record.raw.as_object_mut())
        {
            raw.insert("propertiesWithHistory".to_string(), versions);
        }
    }
    Ok(())
}

/// HubSpot survivors of a merge list the ids merged into them; those ids are gone.
fn merged_ids(page: &Page) -> Vec<String> {
    page.records
        .iter()
        .filter_map(|r| {
            r.raw
                .get("properties")
                .and_then(|p| p.get("hs_merged_object_ids"))
                .and_then(Value::as_str)
        })
        .flat_map(|s| {
            s.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
        .collect()
}

/// One inbound sync, then (when `dispatch` names the active connection's target) one dispatch
/// pass: what `crmsync sync` and the daemon's scheduler run.
pub async fn sync_once<C: Connector + 'static>(
    connector: Arc<C>,
    engine: &Arc<Engine>,
    plan: &SyncPlan,
    options: SyncOptions,
    dispatch: Option<&super::dispatch::DispatchTarget>,
    progress: &dyn SyncProgress,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let before = connector.metrics();
    let inbound = sync_inbound(connector.clone(), engine, plan, options, progress).await?;
    let dispatch = match dispatch {
        Some(target) => {
            Some(super::dispatch::dispatch_pass(connector.as_ref(), engine.store(), target).await?)
        }
        None => None,
    };
    Ok(SyncReport {
        connection: plan.connection.clone(),
        kind: plan.kind,
        inbound,
        dispatch,
        api: connector.metrics().since(&before),
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::CrmField;

    fn schema() -> Schema {
        let mut s = Schema {
            object: "Contact".into(),
            ..Schema::default()
        };
        for (name, updateable) in [
            ("Phone", true),
            ("Email", true),
            ("Notes__c", true),
            ("CreatedDate", false),
        ] {
            s.fields.insert(
                name.into(),
                CrmField {
                    name: name.into(),
                    crm_type: "string".into(),
                    updateable,
                    options: vec![],
                },
            );
        }
        s.relationships.insert("Account".into());
        s
    }

    fn plan(source: &[&str], target: &[&str]) -> SyncPlan {
        SyncPlan {
            connection: "salesforce".into(),
            kind: ConnectorKind::Salesforce,
            object: "Contact".into(),
            source_fields: source.iter().map(|s| s.to_string()).collect(),
            target_fields: target.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_missing_crm_field_names_field_and_connection() {
        let err = check_schema(&plan(&["Phone", "Emial"], &[]), &schema()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection `salesforce`: the inbound rules name CRM field `Emial`, which Contact does not have (did you mean `Email`?)"
        );
        let err = check_schema(&plan(&["Phone"], &["Lead_Status__c"]), &schema()).unwrap_err();
        assert!(
            err.to_string()
                .contains("outbound rules name CRM field `Lead_Status__c`"),
            "{err}"
        );
        let err = check_schema(&plan(&["Phone"], &["CreatedDate"]), &schema()).unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
    }

    #[test]
    fn relationship_paths_and_known_fields_pass() {
        check_schema(&plan(&["Phone", "Account.Name"], &["Notes__c"]), &schema()).unwrap();
    }

    #[test]
    fn one_sync_per_connection() {
        let g = RunningGuard::take("a.redb", "x-test").unwrap();
        assert!(matches!(
            RunningGuard::take("a.redb", "x-test"),
            Err(SyncError::AlreadyRunning(_))
        ));
        let other_store = RunningGuard::take("b.redb", "x-test").unwrap();
        drop(g);
        RunningGuard::take("a.redb", "x-test").unwrap();
        drop(other_store);
    }
}
