//! The embedded redb contact store: every durable fact crmsync keeps.
//!
//! # Tables (one file per group)
//! - `contacts.rs`: contacts keyed by E.164 phone ([`ContactRecord`]: fields, per-field
//!   [`Provenance`], per-connection CRM record ids, what we last pushed per CRM field), and the
//!   index (connection, CRM record id) → phone.
//! - `cursors.rs`: one [`SyncCursor`] per connection, only ever moved forward.
//! - `outbox.rs`: [`PendingWrite`]s keyed by (connection, record id) that coalesce to the latest
//!   values, [`ActivityIntent`]s keyed by conversation id with their [`ActivityState`], and
//!   [`DeadLetter`]s.
//! - `conflicts.rs`: every [`Conflict`] decided between a pending write and a CRM change.
//! - `conversations.rs`: the applied conversation ids (an activity intent also records that its
//!   conversation was applied).
//! - `chat_numbers.rs`: the sender of each inbound SMS chat, from Retell's `chat_inbound`.
//!
//! # Transactions
//! [`Store::write`] runs a closure inside ONE redb write transaction and commits only when it
//! returns `Ok` (an `Err` aborts: nothing of it is visible). The engine writes each event — one
//! page of CRM records, one conversation, one manual edit — through one `write` call, contact
//! changes and outbox intents together (transactional outbox). [`Store::read`] gives a
//! consistent snapshot.
//!
//! [`Store::write_with`]`(false, ..)` commits atomically without an fsync (bulk file import:
//! one [`Store::sync`] at the end); a crash may undo such commits, never half of one.
//!
//! Rows are compact JSON (`row.rs`); the page cache is bounded ([`DEFAULT_CACHE_BYTES`]) so
//! memory stays flat as the store grows.
//!
//! # Dispatcher API (used by the connector's dispatcher)
//! - field writes: [`Store::due_writes`] → send → [`Store::mark_write_sent`] (records
//!   `last_pushed` on the contact for echo detection; removes only the fields whose pending value
//!   is still the one sent, so a change coalesced while the request was in flight is kept),
//!   [`Store::mark_write_failed`] (backoff), [`Store::dead_letter_write`].
//! - activities: [`Store::due_activities`] (includes `Sending` ones: outcome unknown, look up
//!   before resending) → [`Store::mark_activity_sending`] BEFORE the HTTP call →
//!   [`Store::mark_activity_done`] with the CRM id, or [`Store::mark_activity_failed`]
//!   (definitely not created) / [`Store::mark_activity_unknown`] (timeout: maybe created),
//!   [`Store::dead_letter_activity`].
//! - metrics: [`Store::outbox_counts`], [`Store::contact_count`].

mod backup;
mod catalog;
mod chat_numbers;
mod check;
mod conflicts;
mod contacts;
mod conversations;
mod cursors;
mod db;
mod meta;
mod migrate;
mod outbox;
mod row;
mod tables;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use redb::{ReadableTable, ReadableTableMetadata};

pub use backup::BackupReport;
pub use chat_numbers::ChatNumbers;
pub use check::CheckReport;
pub use conflicts::{Conflict, ConflictPolicy, ConflictWinner, CrmTimeSource};
pub use contacts::{crm_fingerprint, ContactRecord, EncodedContact, OutOfStep, Provenance, Source};
pub use conversations::AppliedConversation;
pub use cursors::SyncCursor;
pub use db::{Health, WRITE_RETRY};
pub use meta::FORMAT_VERSION;
pub use outbox::{
    ActivityIntent, ActivityPayload, ActivityState, ConversationKind, DeadLetter, DeadLetterError,
    DeadLetterKind, OutboxCounts, PendingWrite, Resolution,
};

use tables::{decode, encode};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store {path} is locked by another process (is a crmsync daemon running?)")]
    Locked { path: PathBuf },
    #[error("cannot open the store {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("store error: {0}")]
    Db(Box<redb::Error>),
    #[error("corrupt row in store table `{table}` at key `{key}`: {source}")]
    CorruptRow {
        table: &'static str,
        key: String,
        source: serde_json::Error,
    },
    #[error("cannot encode a store row: {0}")]
    Encode(serde_json::Error),
    #[error("no contact with phone {0}")]
    NoContact(String),
    #[error(
        "the store {} is damaged ({detail}): restore it from a backup (`crmsync store backup` \
         makes one), or run `crmsync --store {} store check` to see what can still be read",
        path.display(),
        path.display()
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "the store {} cannot be written ({reason}): writes are refused until one succeeds \
         again (free disk space), reads still work",
        path.display()
    )]
    Unwritable { path: PathBuf, reason: String },
    #[error("the store {} is not available: {reason}", path.display())]
    Unavailable { path: PathBuf, reason: String },
    #[error(
        "the store {} has format version {found}, but this crmsync ({}) reads versions up to \
         {supported}: it was written by a newer crmsync. Run that version, or restore the backup \
         taken before the upgrade (docs/operations.md)",
        path.display(),
        env!("CARGO_PKG_VERSION")
    )]
    TooNew {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("there is no store at {}", path.display())]
    Missing { path: PathBuf },
}

impl StoreError {
    /// A failure of the store itself (damaged, unwritable, unavailable), as opposed to a
    /// problem with what was asked of it: the daemon answers 503 for these.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Damaged { .. }
                | StoreError::Unwritable { .. }
                | StoreError::Unavailable { .. }
        )
    }
}

macro_rules! from_redb {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(err: $ty) -> Self {
                let err: redb::Error = err.into();
                db::note_redb_error(&err);
                StoreError::Db(Box::new(err))
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The page cache [`Store::open`] uses: 64 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// The contact store (cheap to share behind an `Arc`; redb serializes writers).
pub struct Store {
    db: db::Db,
}

/// The tables of one write transaction.
pub struct WriteTx<'t> {
    contacts: contacts::ContactsTable<'t>,
    index: contacts::IndexTable<'t>,
    cursors: redb::Table<'t, &'static str, &'static [u8]>,
    pending: redb::Table<'t, (&'static str, &'static str), &'static [u8]>,
    activities: redb::Table<'t, &'static str, &'static [u8]>,
    open_activities: redb::Table<'t, (&'static str, i64, &'static str), ()>,
    dead: redb::Table<'t, u64, &'static [u8]>,
    conversations: redb::Table<'t, &'static str, &'static [u8]>,
    conflicts: redb::Table<'t, u64, &'static [u8]>,
}

/// The tables of one read snapshot.
pub struct ReadTx {
    contacts: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    index: redb::ReadOnlyTable<(&'static [u8], &'static [u8]), &'static str>,
    cursors: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    pending: redb::ReadOnlyTable<(&'static str, &'static str), &'static [u8]>,
    activities: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    open_activities: redb::ReadOnlyTable<(&'static str, i64, &'static str), ()>,
    dead: redb::ReadOnlyTable<u64, &'static [u8]>,
    conversations: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    conflicts: redb::ReadOnlyTable<u64, &'static [u8]>,
}

impl Store {
    /// Opens the store at `path`, creating it (and its tables) when missing. A file that is not
    /// a redb store, is damaged, was written by a newer crmsync, or is held by another process
    /// is an error naming the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// [`Store::open`] with a page cache of `cache_bytes` (redb's default is 1 GiB, which a
    /// large store would fill: the cache bounds the process's memory).
    pub fn open_with_cache(
        path: impl AsRef<Path>,
        cache_bytes: usize,
    ) -> Result<Store, StoreError> {
        Self::open_inner(path.as_ref(), cache_bytes, true)
    }

    /// Opens an existing store; a missing file is [`StoreError::Missing`] (nothing is created).
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        Self::open_inner(path, DEFAULT_CACHE_BYTES, false)
    }

    fn open_inner(path: &Path, cache_bytes: usize, create: bool) -> Result<Store, StoreError> {
        let store = Store {
            db: db::Db::open(path, cache_bytes, create)?,
        };
        // Refuse a newer format before anything is written to it.
        store.db.run(db::Access::Read, |db| {
            meta::check_version(path, &db.begin_read()?)
        })?;
        store.db.run(db::Access::Write, |db| {
            if migrate::needed(&db.begin_read()?)? {
                let txn = db.begin_write()?;
                migrate::run(&txn)?;
                txn.commit()?;
            }
            Ok::<_, StoreError>(())
        })?;
        // Create every table up front so read transactions never meet a missing table, and
        // record the format version.
        store.db.run(db::Access::Write, |db| {
            let txn = db.begin_write()?;
            WriteTx::open(&txn)?;
            meta::record_version(&txn)?;
            txn.commit()?;
            Ok::<_, StoreError>(())
        })?;
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// The store's health: whether it can be written (trying a small durable write when an
    /// earlier one failed, so a caller that polls sees it recover), or why not.
    pub fn health(&self) -> Health {
        self.db.probe_write(|db| {
            for write in [true, false] {
                let txn = db.begin_write()?;
                meta::probe(&txn, write)?;
                txn.commit()?;
            }
            Ok(())
        })
    }

    /// Runs `f` in one write transaction; commits when it returns `Ok`, aborts on `Err`. The
    /// commit is durable (fsync) when this returns.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_with(true, f)
    }

    /// Like [`Store::write`]; with `durable = false` the commit is atomic but not yet synced to
    /// disk (a crash may undo it, never half of it) until a later durable commit or
    /// [`Store::sync`]. For bulk imports, where one fsync per page would dominate.
    pub fn write_with<T, E: From<StoreError>>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.db.run(db::Access::Write, |db| {
            let mut txn = db.begin_write().map_err(StoreError::from)?;
            if !durable {
                txn.set_durability(redb::Durability::Eventual);
            }
            let result = {
                let mut tx = WriteTx::open(&txn)?;
                f(&mut tx)
            };
            match result {
                Ok(value) => {
                    txn.commit().map_err(StoreError::from)?;
                    Ok(value)
                }
                Err(err) => {
                    // Dropping an uncommitted transaction aborts it; abort explicitly to surface
                    // storage errors only when there is no better error to report.
                    let _ = txn.abort();
                    Err(err)
                }
            }
        })
    }

    /// Makes every earlier commit durable (an empty durable commit).
    pub fn sync(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(()))
    }

    /// Runs `f` on a consistent read snapshot.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&ReadTx) -> Result<T, E>,
    ) -> Result<T, E> {
        self.db.run(db::Access::Read, |db| {
            let txn = db.begin_read().map_err(StoreError::from)?;
            let tx = ReadTx::open(&txn)?;
            f(&tx)
        })
    }

    /// Runs `f` on the raw database (for the modules of this one that use tables of their
    /// own), with the same failure handling as [`Store::read`] and [`Store::write`].
    pub(crate) fn raw<T, E: From<StoreError>>(
        &self,
        write: bool,
        f: impl FnOnce(&redb::Database) -> Result<T, E>,
    ) -> Result<T, E> {
        let access = if write {
            db::Access::Write
        } else {
            db::Access::Read
        };
        self.db.run(access, f)
    }

    // ----- convenience reads (one snapshot each) -----

    /// The contact with this E.164 phone.
    pub fn contact(&self, phone: &str) -> Result<Option<ContactRecord>, StoreError> {
        self.read(|tx| tx.contact(phone))
    }

    /// Up to `limit` contacts in phone order, starting after `after` (for paging).
    pub fn contacts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        self.read(|tx| tx.contacts(after, limit))
    }

    /// Calls `f` with up to `limit` contacts in phone order, starting after `after`, from one
    /// snapshot, one contact at a time: memory stays flat however many are listed. An `Err`
    /// from `f` stops the listing and is returned.
    pub fn visit_contacts<E: From<StoreError>>(
        &self,
        after: Option<&str>,
        limit: usize,
        f: impl FnMut(ContactRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        self.read(|tx| contacts::visit_contacts(&tx.contacts, after, limit, f))
    }

    /// How many contacts there are.
    pub fn contact_count(&self) -> Result<u64, StoreError> {
        self.read(|tx| Ok(tx.contacts.len()?))
    }

    /// The phone of the contact linked to this CRM record.
    pub fn phone_for_record(
        &self,
        connection: &str,
        record_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.read(|tx| tx.phone_for_record(connection, record_id))
    }

    /// The connection's sync cursor.
    pub fn cursor(&self, connection: &str) -> Result<Option<SyncCursor>, StoreError> {
        self.read(|tx| tx.cursor(connection))
    }

    /// Moves the cursor forward (a cursor behind the stored one is ignored). Returns whether it
    /// moved. Use [`WriteTx::advance_cursor`] to move it in the same transaction as a page.
    pub fn advance_cursor(
        &self,
        connection: &str,
        cursor: &SyncCursor,
    ) -> Result<bool, StoreError> {
        self.write(|tx| tx.advance_cursor(connection, cursor))
    }

    /// Forgets the cursor (full re-sync; the active connection changed).
    pub fn reset_cursor(&self, connection: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.cursors.remove(connection)?;
            Ok(())
        })
    }

    /// Whether this conversation was applied already.
    pub fn conversation_applied(&self, conversation_id: &str) -> Result<bool, StoreError> {
        self.read(|tx| tx.conversation(conversation_id).map(|c| c.is_some()))
    }

    // ----- outbox: listings -----

    /// Pending field writes (all connections when `connection` is None), in key order.
    pub fn pending_writes(
        &self,
        connection: Option<&str>,
    ) -> Result<Vec<PendingWrite>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.pending.iter()? {
                let (key, value) = entry?;
                let (conn, id) = key.value();
                if connection.is_some_and(|c| c != conn) {
                    continue;
                }
                out.push(decode::<PendingWrite>("pending_writes", id, value.value())?);
            }
            Ok(out)
        })
    }

    /// The CRM fields with a pending write, per record id of `record_ids` that has one (one
    /// snapshot).
    pub fn pending_fields(
        &self,
        connection: &str,
        record_ids: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        self.read(|tx| {
            let mut out = BTreeMap::new();
            for id in record_ids {
                if let Some(guard) = tx.pending.get((connection, id.as_str()))? {
                    let write: PendingWrite = decode("pending_writes", id, guard.value())?;
                    out.insert(id.clone(), write.fields.into_keys().collect());
                }
            }
            Ok(out)
        })
    }

    /// Activity intents in every state (all connections when `connection` is None), by
    /// connection, then conversation id.
    pub fn activities(&self, connection: Option<&str>) -> Result<Vec<ActivityIntent>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.activities.iter()? {
                let (key, value) = entry?;
                let intent: ActivityIntent = decode("activities", key.value(), value.value())?;
                if connection.is_none_or(|c| c == intent.connection) {
                    out.push(intent);
                }
            }
            // The table is in conversation id order; a stable sort keeps it within a connection.
            out.sort_by(|a, b| a.connection.cmp(&b.connection));
            Ok(out)
        })
    }

    /// The activity intents not yet logged in the CRM (pending, or sent with an unknown
    /// outcome), by connection, oldest first. Reads the open set only: its cost does not grow
    /// with the activities logged over the store's life.
    pub fn open_activities(&self) -> Result<Vec<ActivityIntent>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.open_activities.iter()? {
                let (key, _) = entry?;
                let (connection, _, id) = key.value();
                if let Some(intent) = tx.activity(connection, id)? {
                    out.push(intent);
                }
            }
            Ok(out)
        })
    }

    /// The open dead letters (not retried or discarded), oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let mut all = self.dead_letter_history()?;
        all.retain(DeadLetter::is_open);
        Ok(all)
    }

    /// Up to `limit` recorded conflicts with an id above `after`, oldest first (all
    /// connections when `connection` is None).
    pub fn conflicts(
        &self,
        connection: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Conflict>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.conflicts.range(after.saturating_add(1)..)? {
                if out.len() >= limit {
                    break;
                }
                let (key, value) = entry?;
                let conflict: Conflict =
                    decode("conflicts", &key.value().to_string(), value.value())?;
                if connection.is_none_or(|c| c == conflict.connection) {
                    out.push(conflict);
                }
            }
            Ok(out)
        })
    }

    /// How many conflicts were recorded.
    pub fn conflict_count(&self) -> Result<u64, StoreError> {
        self.read(|tx| Ok(tx.conflicts.len()?))
    }

    /// Outbox depth and dead letters, for metrics.
    pub fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.read(|tx| {
            let mut counts = OutboxCounts {
                pending_writes: tx.pending.len()?,
                ..OutboxCounts::default()
            };
            // Retried and discarded dead letters keep their rows: count the open ones.
            for entry in tx.dead.iter()? {
                let (key, value) = entry?;
                let letter: DeadLetter =
                    decode("dead_letters", &key.value().to_string(), value.value())?;
                if letter.is_open() {
                    counts.dead_letters += 1;
                }
            }
            // Only open intents are decoded; every other row is a done one.
            for entry in tx.pending.iter()? {
                let (key, value) = entry?;
                let write: PendingWrite = decode("pending_writes", key.value().1, value.value())?;
                if write.deferred_since.is_some() {
                    counts.deferred_writes += 1;
                }
            }
            let open = tx.open_activities.len()?;
            counts.done_activities = tx.activities.len()?.saturating_sub(open);
            for entry in tx.open_activities.iter()? {
                let (key, _) = entry?;
                let (conn, _, id) = key.value();
                if let Some(intent) = tx.activity(conn, id)? {
                    if intent.deferred_since.is_some() {
                        counts.deferred_activities += 1;
                    }
                    match intent.state {
                        ActivityState::Pending => counts.pending_activities += 1,
                        ActivityState::Sending { .. } => counts.sending_activities += 1,
                        ActivityState::Done { .. } => counts.done_activities += 1,
                    }
                }
            }
            Ok(counts)
        })
    }

    // ----- outbox: dispatcher, field writes -----

    /// Up to `limit` pending writes for `connection` that are due at `now`.
    pub fn due_writes(
        &self,
        connection: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingWrite>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.pending.range((connection, "")..)? {
                let (key, value) = entry?;
                let (conn, id) = key.value();
                if conn != connection || out.len() >= limit {
                    break;
                }
                let write: PendingWrite = decode("pending_writes", id, value.value())?;
                if write.next_attempt_at <= now {
                    out.push(write);
                }
            }
            Ok(out)
        })
    }

    /// The CRM accepted `sent` for each record: remember it as `last_pushed` on the linked
    /// contact (echo detection) and drop the fields whose pending value is still the one sent.
    pub fn mark_write_sent(
        &self,
        connection: &str,
        sent: &[(String, BTreeMap<String, serde_json::Value>)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            for (record_id, fields) in sent {
                tx.record_pushed(connection, record_id, fields, at)?;
                let Some(mut write) = tx.pending_write(connection, record_id)? else {
                    continue;
                };
                write
                    .fields
                    .retain(|name, value| fields.get(name) != Some(value));
                if write.fields.is_empty() {
                    tx.pending.remove((connection, record_id.as_str()))?;
                } else {
                    // Newer values arrived while the request was in flight: send them promptly.
                    write.attempts = 0;
                    write.last_error = None;
                    write.next_attempt_at = at;
                    write.deferred_since = None;
                    tx.put_pending(&write)?;
                }
            }
            Ok(())
        })
    }

    /// A transient failure: count the attempt and retry at `retry_at`.
    pub fn mark_write_failed(
        &self,
        connection: &str,
        record_id: &str,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            if let Some(mut write) = tx.pending_write(connection, record_id)? {
                write.attempts += 1;
                write.last_error = Some(error.to_string());
                write.next_attempt_at = retry_at;
                write.deferred_since.get_or_insert_with(Utc::now);
                tx.put_pending(&write)?;
            }
            Ok(())
        })
    }

    /// The CRM rejected the write for good: move it to the dead letters with its message.
    pub fn dead_letter_write(
        &self,
        connection: &str,
        record_id: &str,
        message: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            if let Some(write) = tx.pending_write(connection, record_id)? {
                tx.pending.remove((connection, record_id))?;
                tx.add_dead_letter(DeadLetter {
                    id: 0,
                    kind: DeadLetterKind::FieldWrite,
                    connection: connection.to_string(),
                    key: record_id.to_string(),
                    phone: Some(write.phone.clone()),
                    payload: serde_json::to_value(&write.fields).map_err(StoreError::Encode)?,
                    message: message.to_string(),
                    attempts: write.attempts + 1,
                    at,
                    field: None,
                    outcome_unknown: false,
                    resolution: None,
                })?;
            }
            Ok(())
        })
    }

    // ----- outbox: dispatcher, activities -----

    /// Up to `limit` activities for `connection` that are not done and due at `now`. Those in
    /// state `Sending` may already exist in the CRM: look them up before sending again.
    pub fn due_activities(
        &self,
        connection: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ActivityIntent>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            // Scans the open intents only: done ones stay in `activities` for idempotency, and
            // would otherwise make every dispatch pass cost the whole history.
            for entry in tx.open_activities.range((connection, i64::MIN, "")..)? {
                let (key, _) = entry?;
                let (conn, _, id) = key.value();
                if conn != connection || out.len() >= limit {
                    break;
                }
                let Some(intent) = tx.activity(conn, id)? else {
                    continue;
                };
                let open = !matches!(intent.state, ActivityState::Done { .. });
                if open && intent.next_attempt_at <= now {
                    out.push(intent);
                }
            }
            Ok(out)
        })
    }

    /// Records that a create request is about to be sent (call this and let it commit BEFORE
    /// the HTTP request, so a crash leaves "outcome unknown" rather than "not sent").
    pub fn mark_activity_sending(
        &self,
        connection: &str,
        conversation_ids: &[String],
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            for id in conversation_ids {
                tx.update_activity(connection, id, |intent| {
                    if matches!(intent.state, ActivityState::Done { .. }) {
                        return;
                    }
                    intent.attempts += 1;
                    intent.state = ActivityState::Sending {
                        attempt: intent.attempts,
                    };
                })?;
            }
            Ok(())
        })
    }

    /// The CRM created the activity with this id.
    pub fn mark_activity_done(
        &self,
        connection: &str,
        conversation_id: &str,
        crm_id: &str,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.update_activity(connection, conversation_id, |intent| {
                intent.state = ActivityState::Done {
                    crm_id: crm_id.to_string(),
                };
                intent.last_error = None;
            })
        })
    }

    /// The CRM definitely did not create the activity (e.g. a 429 or a 5xx before processing):
    /// back to `Pending`, retry at `retry_at`.
    pub fn mark_activity_failed(
        &self,
        connection: &str,
        conversation_id: &str,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.update_activity(connection, conversation_id, |intent| {
                if matches!(intent.state, ActivityState::Done { .. }) {
                    return;
                }
                intent.state = ActivityState::Pending;
                intent.last_error = Some(error.to_string());
                intent.next_attempt_at = retry_at;
                intent.deferred_since.get_or_insert_with(Utc::now);
            })
        })
    }

    /// The outcome is unknown (timeout, connection reset): stay `Sending`, retry at `retry_at`
    /// after looking the activity up.
    pub fn mark_activity_unknown(
        &self,
        connection: &str,
        conversation_id: &str,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.update_activity(connection, conversation_id, |intent| {
                if matches!(intent.state, ActivityState::Done { .. }) {
                    return;
                }
                intent.last_error = Some(error.to_string());
                intent.next_attempt_at = retry_at;
                intent.deferred_since.get_or_insert_with(Utc::now);
            })
        })
    }

    /// The CRM rejected the activity for good: dead-letter it (the intent row is removed).
    pub fn dead_letter_activity(
        &self,
        connection: &str,
        conversation_id: &str,
        message: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.dead_letter_activity_as(connection, conversation_id, message, at, false)
    }

    /// Dead-letters the activity; `outcome_unknown` when its create may have reached the CRM,
    /// so that a retry looks it up before sending it again.
    pub fn dead_letter_activity_as(
        &self,
        connection: &str,
        conversation_id: &str,
        message: &str,
        at: DateTime<Utc>,
        outcome_unknown: bool,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            if let Some(intent) = tx.activity(connection, conversation_id)? {
                tx.activities.remove(conversation_id)?;
                tx.open_activities.remove(outbox::open_key(&intent))?;
                // The intent stood for the applied conversation: it stays applied.
                tx.mark_conversation_applied(&AppliedConversation::of_activity(&intent))?;
                tx.add_dead_letter(DeadLetter {
                    id: 0,
                    kind: DeadLetterKind::Activity,
                    connection: connection.to_string(),
                    key: conversation_id.to_string(),
                    phone: Some(intent.phone.clone()),
                    payload: serde_json::to_value(&intent.payload).map_err(StoreError::Encode)?,
                    message: message.to_string(),
                    attempts: intent.attempts,
                    at,
                    field: None,
                    outcome_unknown,
                    resolution: None,
                })?;
            }
            Ok(())
        })
    }
}

impl<'t> WriteTx<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(WriteTx {
            contacts: txn.open_table(tables::CONTACTS)?,
            index: txn.open_table(tables::RECORD_INDEX)?,
            cursors: txn.open_table(tables::CURSORS)?,
            pending: txn.open_table(tables::PENDING_WRITES)?,
            activities: txn.open_table(tables::ACTIVITIES)?,
            open_activities: txn.open_table(tables::OPEN_ACTIVITIES)?,
            dead: txn.open_table(tables::DEAD_LETTERS)?,
            conversations: txn.open_table(tables::CONVERSATIONS)?,
            conflicts: txn.open_table(tables::CONFLICTS)?,
        })
    }

    /// The contact with this phone (sees this transaction's own writes).
    pub fn contact(&self, phone: &str) -> Result<Option<ContactRecord>, StoreError> {
        contacts::get_contact(&self.contacts, phone)
    }

    /// Inserts or replaces a contact.
    pub fn put_contact(&mut self, contact: &ContactRecord) -> Result<(), StoreError> {
        contacts::put_contact(&mut self.contacts, contact)
    }

    /// The phone of the contact linked to this CRM record.
    pub fn phone_for_record(
        &self,
        connection: &str,
        record_id: &str,
    ) -> Result<Option<String>, StoreError> {
        contacts::phone_for_record(&self.index, connection, record_id)
    }

    /// How many contacts the store holds (this transaction's writes included).
    pub fn contact_count(&self) -> Result<u64, StoreError> {
        Ok(self.contacts.len()?)
    }

    /// Writes a new contact that is linked to `record_id` of `connection` (its row says so
    /// already) and indexes the link: [`WriteTx::link`] plus [`WriteTx::put_contact`] for a
    /// contact that was not in the store. A contact the record was linked to before lets go.
    pub fn insert_linked(
        &mut self,
        connection: &str,
        record_id: &str,
        contact: &EncodedContact,
    ) -> Result<(), StoreError> {
        self.contacts
            .insert(contact.phone().as_bytes(), contact.bytes())?;
        self.index_new_link(connection, record_id, contact.phone())
    }

    /// [`WriteTx::insert_linked`] when no contact has the phone yet; otherwise writes nothing
    /// and returns the stored contact. One B-tree search when the phone is new (the insert
    /// hands back a row it replaced, which is then put back), so it suits imports into a store
    /// where phones are mostly new.
    pub fn insert_linked_if_new(
        &mut self,
        connection: &str,
        record_id: &str,
        contact: &EncodedContact,
    ) -> Result<Option<ContactRecord>, StoreError> {
        let phone = contact.phone();
        let replaced = self
            .contacts
            .insert(phone.as_bytes(), contact.bytes())?
            .map(|guard| guard.value().to_vec());
        if let Some(stored) = replaced {
            self.contacts.insert(phone.as_bytes(), stored.as_slice())?;
            return Ok(Some(row::decode(phone, &stored)?));
        }
        self.index_new_link(connection, record_id, phone)?;
        Ok(None)
    }

    /// Indexes the link of a contact just written; a contact the record was linked to before
    /// lets go.
    fn index_new_link(
        &mut self,
        connection: &str,
        record_id: &str,
        phone: &str,
    ) -> Result<(), StoreError> {
        let moved_from = self
            .index
            .insert(contacts::index_key(connection, record_id), phone)?
            .map(|guard| guard.value().to_string());
        if let Some(old_phone) = moved_from.filter(|old| old != phone) {
            self.release(connection, record_id, &old_phone)?;
        }
        Ok(())
    }

    /// Links `contact` to a CRM record of `connection` (updates the contact in place — the
    /// caller writes it with `put_contact` — and the index). A previous record of the same
    /// connection on this contact is unlinked from the index, and a contact the record was
    /// linked to before (the record's phone changed in the CRM) lets go of it.
    pub fn link(
        &mut self,
        contact: &mut ContactRecord,
        connection: &str,
        record_id: &str,
    ) -> Result<(), StoreError> {
        if let Some(previous) = contact.links.get(connection) {
            if previous == record_id {
                return Ok(());
            }
            self.index
                .remove(contacts::index_key(connection, previous))?;
        }
        contact
            .links
            .insert(connection.to_string(), record_id.to_string());
        // The index insert hands back the previous entry: no separate lookup per record.
        let moved_from = self
            .index
            .insert(
                contacts::index_key(connection, record_id),
                contact.phone.as_str(),
            )?
            .map(|guard| guard.value().to_string());
        if let Some(old_phone) = moved_from.filter(|old| *old != contact.phone) {
            self.release(connection, record_id, &old_phone)?;
        }
        Ok(())
    }

    /// Unlinks a CRM record (deleted, archived or merged away). The contact and its data stay.
    /// Returns the phone of the contact it was linked to.
    pub fn unlink(
        &mut self,
        connection: &str,
        record_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let Some(phone) = self
            .index
            .remove(contacts::index_key(connection, record_id))?
            .map(|guard| guard.value().to_string())
        else {
            return Ok(None);
        };
        self.release(connection, record_id, &phone)?;
        Ok(Some(phone))
    }

    /// The contact at `phone` stops being linked to the record, and the record's queued writes
    /// are dropped (the index entry is the caller's business).
    fn release(
        &mut self,
        connection: &str,
        record_id: &str,
        phone: &str,
    ) -> Result<(), StoreError> {
        if let Some(mut contact) = self.contact(phone)? {
            if contact.links.get(connection).map(String::as_str) == Some(record_id) {
                contact.links.remove(connection);
                contact.last_pushed.remove(connection);
                contact.inbound_modstamp.remove(connection);
                contact.crm_seen.remove(connection);
                self.put_contact(&contact)?;
            }
        }
        // Writes queued for a record that no longer exists (or now belongs to another
        // contact) can never succeed as they were queued.
        self.pending.remove((connection, record_id))?;
        Ok(())
    }

    /// Records a decided conflict; returns its sequence number.
    pub fn record_conflict(&mut self, mut conflict: Conflict) -> Result<u64, StoreError> {
        let next = match self.conflicts.last()? {
            Some((key, _)) => key.value() + 1,
            None => 1,
        };
        conflict.id = next;
        let bytes = encode(&conflict)?;
        self.conflicts.insert(next, bytes.as_slice())?;
        Ok(next)
    }

    /// Drops one CRM field from the pending write for (connection, record id); the write goes
    /// when it has no field left. Returns the value that was pending.
    pub fn drop_pending_field(
        &mut self,
        connection: &str,
        record_id: &str,
        field: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let Some(mut write) = self.pending_write(connection, record_id)? else {
            return Ok(None);
        };
        let dropped = write.fields.remove(field);
        if write.fields.is_empty() {
            self.pending.remove((connection, record_id))?;
        } else if dropped.is_some() {
            self.put_pending(&write)?;
        }
        Ok(dropped)
    }

    /// Merges `fields` into the pending write for (connection, record id).
    pub fn enqueue_write(
        &mut self,
        connection: &str,
        record_id: &str,
        phone: &str,
        fields: BTreeMap<String, serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if fields.is_empty() {
            return Ok(());
        }
        let existing = self.pending_write(connection, record_id)?;
        let write = outbox::coalesce(existing, connection, record_id, phone, fields, now);
        self.put_pending(&write)
    }

    /// Records an outbound mapping that failed to evaluate for the record linked to `phone`:
    /// a dead letter, so the write that never happened is listed and counted.
    pub fn dead_letter_mapping(
        &mut self,
        connection: &str,
        record_id: &str,
        phone: &str,
        payload: serde_json::Value,
        message: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.add_dead_letter(DeadLetter {
            id: 0,
            kind: DeadLetterKind::OutboundMapping,
            connection: connection.to_string(),
            key: record_id.to_string(),
            phone: Some(phone.to_string()),
            payload,
            message: message.to_string(),
            attempts: 0,
            at,
            field: None,
            outcome_unknown: false,
            resolution: None,
        })
    }

    /// The pending write for (connection, record id).
    pub fn pending_write(
        &self,
        connection: &str,
        record_id: &str,
    ) -> Result<Option<PendingWrite>, StoreError> {
        match self.pending.get((connection, record_id))? {
            Some(guard) => Ok(Some(decode("pending_writes", record_id, guard.value())?)),
            None => Ok(None),
        }
    }

    fn put_pending(&mut self, write: &PendingWrite) -> Result<(), StoreError> {
        let bytes = encode(write)?;
        self.pending.insert(
            (write.connection.as_str(), write.record_id.as_str()),
            bytes.as_slice(),
        )?;
        Ok(())
    }

    /// Records an activity intent, which also marks its conversation applied; an intent that
    /// already exists for the conversation is left alone (never duplicated, whichever connection
    /// it is for). Returns whether it was new.
    pub fn enqueue_activity(&mut self, intent: &ActivityIntent) -> Result<bool, StoreError> {
        let key = intent.conversation_id.as_str();
        let bytes = encode(intent)?;
        // One B-tree operation per event: the insert hands back an intent already recorded
        // (not expected, since a conversation applies once), which is then put back unchanged.
        let previous = self
            .activities
            .insert(key, bytes.as_slice())?
            .map(|guard| guard.value().to_vec());
        if let Some(previous) = previous {
            self.activities.insert(key, previous.as_slice())?;
            return Ok(false);
        }
        self.set_activity_open(intent)?;
        Ok(true)
    }

    /// The activity intent for (connection, conversation id).
    pub fn activity(
        &self,
        connection: &str,
        conversation_id: &str,
    ) -> Result<Option<ActivityIntent>, StoreError> {
        conversations::activity_for(&self.activities, connection, conversation_id)
    }

    fn update_activity(
        &mut self,
        connection: &str,
        conversation_id: &str,
        f: impl FnOnce(&mut ActivityIntent),
    ) -> Result<(), StoreError> {
        if let Some(mut intent) = self.activity(connection, conversation_id)? {
            f(&mut intent);
            let bytes = encode(&intent)?;
            self.activities.insert(conversation_id, bytes.as_slice())?;
            self.set_activity_open(&intent)?;
        }
        Ok(())
    }

    /// Keeps `open_activities` in step with the intent's state.
    fn set_activity_open(&mut self, intent: &ActivityIntent) -> Result<(), StoreError> {
        let key = outbox::open_key(intent);
        if matches!(intent.state, ActivityState::Done { .. }) {
            self.open_activities.remove(key)?;
        } else {
            self.open_activities.insert(key, ())?;
        }
        Ok(())
    }

    fn add_dead_letter(&mut self, mut letter: DeadLetter) -> Result<(), StoreError> {
        let next = match self.dead.last()? {
            Some((key, _)) => key.value() + 1,
            None => 1,
        };
        letter.id = next;
        let bytes = encode(&letter)?;
        self.dead.insert(next, bytes.as_slice())?;
        Ok(())
    }

    /// Remembers what we pushed to a record's CRM fields, on the linked contact.
    fn record_pushed(
        &mut self,
        connection: &str,
        record_id: &str,
        fields: &BTreeMap<String, serde_json::Value>,
        _at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(phone) = self.phone_for_record(connection, record_id)? else {
            return Ok(());
        };
        let Some(mut contact) = self.contact(&phone)? else {
            return Ok(());
        };
        let pushed = contact
            .last_pushed
            .entry(connection.to_string())
            .or_default();
        for (name, value) in fields {
            pushed.insert(name.clone(), value.clone());
        }
        // The CRM now holds these values: a later read of them is no change made in the CRM.
        let seen = contact.crm_seen.entry(connection.to_string()).or_default();
        for (name, value) in fields {
            seen.insert(name.clone(), contacts::crm_fingerprint(value));
        }
        self.put_contact(&contact)
    }

    /// The connection's cursor as of this transaction.
    pub fn cursor(&self, connection: &str) -> Result<Option<SyncCursor>, StoreError> {
        match self.cursors.get(connection)? {
            Some(guard) => Ok(Some(decode("sync_cursors", connection, guard.value())?)),
            None => Ok(None),
        }
    }

    /// Moves the cursor forward; a cursor not after the stored one is ignored. Returns whether
    /// it moved.
    pub fn advance_cursor(
        &mut self,
        connection: &str,
        cursor: &SyncCursor,
    ) -> Result<bool, StoreError> {
        if let Some(current) = self.cursor(connection)? {
            if *cursor <= current {
                return Ok(false);
            }
        }
        let bytes = encode(cursor)?;
        self.cursors.insert(connection, bytes.as_slice())?;
        Ok(true)
    }

    /// The applied-conversation record for this id (sees this transaction's own writes).
    pub fn conversation(&self, id: &str) -> Result<Option<AppliedConversation>, StoreError> {
        conversations::applied(&self.conversations, &self.activities, id)
    }

    /// Marks a conversation applied. One with an activity intent is marked by that intent
    /// already ([`WriteTx::enqueue_activity`]), and writes nothing more.
    pub fn mark_conversation_applied(
        &mut self,
        applied: &AppliedConversation,
    ) -> Result<(), StoreError> {
        if self
            .activities
            .get(applied.conversation_id.as_str())?
            .is_some()
        {
            return Ok(());
        }
        let bytes = encode(applied)?;
        self.conversations
            .insert(applied.conversation_id.as_str(), bytes.as_slice())?;
        Ok(())
    }
}

impl ReadTx {
    fn open(txn: &redb::ReadTransaction) -> Result<Self, StoreError> {
        Ok(ReadTx {
            contacts: txn.open_table(tables::CONTACTS)?,
            index: txn.open_table(tables::RECORD_INDEX)?,
            cursors: txn.open_table(tables::CURSORS)?,
            pending: txn.open_table(tables::PENDING_WRITES)?,
            activities: txn.open_table(tables::ACTIVITIES)?,
            open_activities: txn.open_table(tables::OPEN_ACTIVITIES)?,
            dead: txn.open_table(tables::DEAD_LETTERS)?,
            conversations: txn.open_table(tables::CONVERSATIONS)?,
            conflicts: txn.open_table(tables::CONFLICTS)?,
        })
    }

    /// The activity intent for (connection, conversation id).
    fn activity(
        &self,
        connection: &str,
        conversation_id: &str,
    ) -> Result<Option<ActivityIntent>, StoreError> {
        conversations::activity_for(&self.activities, connection, conversation_id)
    }

    /// The contact with this phone.
    pub fn contact(&self, phone: &str) -> Result<Option<ContactRecord>, StoreError> {
        contacts::get_contact(&self.contacts, phone)
    }

    /// Up to `limit` contacts in phone order after `after`.
    pub fn contacts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        let mut out = Vec::new();
        contacts::visit_contacts(&self.contacts, after, limit, |contact| {
            out.push(contact);
            Ok::<_, StoreError>(())
        })?;
        Ok(out)
    }

    /// The phone of the contact linked to this CRM record.
    pub fn phone_for_record(
        &self,
        connection: &str,
        record_id: &str,
    ) -> Result<Option<String>, StoreError> {
        contacts::phone_for_record(&self.index, connection, record_id)
    }

    /// The connection's cursor.
    pub fn cursor(&self, connection: &str) -> Result<Option<SyncCursor>, StoreError> {
        match self.cursors.get(connection)? {
            Some(guard) => Ok(Some(decode("sync_cursors", connection, guard.value())?)),
            None => Ok(None),
        }
    }

    /// The applied-conversation record for this id.
    pub fn conversation(&self, id: &str) -> Result<Option<AppliedConversation>, StoreError> {
        conversations::applied(&self.conversations, &self.activities, id)
    }
}
