//! The redb database behind a [`super::Store`]: reopened after a failed write, and the boundary
//! where a redb panic on a malformed file becomes an error.
//!
//! # A failed write (a full disk)
//! After an I/O error redb refuses every later operation, reads included, with "Previous I/O
//! error occurred. Please close and re-open the database". So when a transaction meets an I/O
//! error, the database is closed and opened again at once (redb recovers the last commit), and
//! the store turns *unwritable*: reads work, writes are refused with
//! [`StoreError::Unwritable`] naming the error. A write is tried again at most once per
//! [`WRITE_RETRY`] (each failure costs a reopen), or whenever [`Db::probe_write`] is called (the
//! daemon's `/healthz`); the first one that commits makes the store writable again.
//!
//! Every operation holds a shared lock on the open database; a reopen takes it exclusively, so
//! it waits for the operations in flight. WHY `read_recursive`: an operation may call another
//! one on the same thread (a read inside a write's closure) and must not queue behind a waiting
//! reopen. While a reopen waits, new operations are refused rather than queued, so it is not
//! starved; and an operation nested in another never reopens (only the outermost one does, once
//! it has let go of the lock).
//!
//! # A damaged file
//! redb 2 asserts on some malformed files (a truncated file, garbage over its allocator state)
//! instead of returning an error. Every redb call runs under `catch_unwind`; a panic raised in
//! redb's own code (told by its source location, see [`install_panic_hook`]) marks the store
//! *damaged*: that operation and every later one answer [`StoreError::Damaged`], and the
//! database is never touched again (not even closed: closing writes). A panic raised elsewhere
//! (a bug in crmsync) is passed on unchanged.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use redb::Database;

use super::StoreError;

/// The least time between two write attempts while the store is unwritable.
pub const WRITE_RETRY: Duration = Duration::from_secs(1);

/// Read or write: a write is refused up front while the store is unwritable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

pub(crate) struct Db {
    path: PathBuf,
    cache_bytes: usize,
    slot: RwLock<Slot>,
    /// Set while a reopen waits for the operations in flight: new ones are refused meanwhile.
    reopening: AtomicBool,
    /// One reopen at a time.
    reopen_lock: Mutex<()>,
    status: Mutex<Status>,
}

struct Slot {
    /// `None` after a reopen failed (the next operation tries again).
    db: Option<Database>,
    /// Counts reopens, so a failure seen on an older database does not reopen a newer one.
    generation: u64,
}

#[derive(Default)]
struct Status {
    /// Why writes are refused: the I/O error of the write that failed.
    unwritable: Option<String>,
    /// When a write was last tried while unwritable.
    last_try: Option<Instant>,
    /// Why the last reopen failed (while `slot.db` is `None`).
    closed: Option<String>,
    /// What redb said when it panicked: the file is damaged.
    damaged: Option<String>,
}

/// The store's health, for `/healthz` and `crmsync store check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// Writes are refused (reads work): the reason.
    Unwritable(String),
    /// Nothing works until the daemon restarts on a good store: the reason.
    Damaged(String),
    /// Neither reads nor writes work (a reopen failed): the reason.
    Unavailable(String),
}

thread_local! {
    /// How many store operations this thread is inside (operations nest).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The first I/O error redb returned to this thread's outermost operation.
    static IO_FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Whether the last panic on this thread was raised in redb's source.
    static REDB_PANIC: Cell<bool> = const { Cell::new(false) };
}

/// Called for every redb error converted into a [`StoreError`]: an I/O error means redb has
/// closed itself to further use, which the operation's end then deals with.
pub(crate) fn note_redb_error(err: &redb::Error) {
    let message = match err {
        redb::Error::Io(io) => io.to_string(),
        redb::Error::PreviousIo => "an earlier write failed".to_string(),
        _ => return,
    };
    IO_FAILURE.with(|slot| {
        slot.borrow_mut().get_or_insert(message);
    });
}

impl Db {
    /// Opens (creating when `create`) the database at `path`.
    pub(crate) fn open(path: &Path, cache_bytes: usize, create: bool) -> Result<Db, StoreError> {
        install_panic_hook();
        let db = open_database(path, cache_bytes, create)?;
        Ok(Db {
            path: path.to_path_buf(),
            cache_bytes,
            slot: RwLock::new(Slot {
                db: Some(db),
                generation: 0,
            }),
            reopening: AtomicBool::new(false),
            reopen_lock: Mutex::new(()),
            status: Mutex::new(Status::default()),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the open database (see the module docs for what a failure does).
    pub(crate) fn run<T, E: From<StoreError>>(
        &self,
        access: Access,
        f: impl FnOnce(&Database) -> Result<T, E>,
    ) -> Result<T, E> {
        let retrying = self.admit(access)?;
        let outermost = DEPTH.with(|d| d.get()) == 0;
        if outermost {
            IO_FAILURE.with(|slot| slot.borrow_mut().take());
        }
        let slot = self.slot.read_recursive();
        let generation = slot.generation;
        let Some(db) = slot.db.as_ref() else {
            drop(slot);
            if outermost && self.due(retrying) {
                self.reopen(generation);
                return self.run_once_more(access, f);
            }
            return Err(self.closed_error().into());
        };
        DEPTH.with(|d| d.set(d.get() + 1));
        REDB_PANIC.with(|p| p.set(false));
        let outcome = catch_unwind(AssertUnwindSafe(|| f(db)));
        DEPTH.with(|d| d.set(d.get() - 1));
        drop(slot);
        let result = match outcome {
            Ok(result) => result,
            Err(panic) => {
                if !REDB_PANIC.with(|p| p.replace(false)) {
                    resume_unwind(panic);
                }
                let detail = format!("redb panicked: {}", panic_message(&*panic));
                self.status.lock().damaged.get_or_insert(detail);
                return Err(self.damaged_error().into());
            }
        };
        if !outermost {
            return result;
        }
        match IO_FAILURE.with(|slot| slot.borrow_mut().take()) {
            Some(reason) => {
                {
                    let mut status = self.status.lock();
                    // A write refused for an earlier failure keeps that failure's reason.
                    if status.unwritable.is_none() || !reason.starts_with("an earlier") {
                        status.unwritable = Some(reason);
                    }
                    status.last_try = Some(Instant::now());
                }
                self.reopen(generation);
                match result {
                    // The error the caller sees says that the store cannot be written.
                    Err(_) => Err(self.unwritable_error().into()),
                    ok => ok,
                }
            }
            None => {
                if access == Access::Write && result.is_ok() && retrying {
                    let mut status = self.status.lock();
                    status.unwritable = None;
                    status.last_try = None;
                }
                result
            }
        }
    }

    /// After a reopen, the operation once more (without another reopen).
    fn run_once_more<T, E: From<StoreError>>(
        &self,
        access: Access,
        f: impl FnOnce(&Database) -> Result<T, E>,
    ) -> Result<T, E> {
        let slot = self.slot.read_recursive();
        if slot.db.is_none() {
            return Err(self.closed_error().into());
        }
        drop(slot);
        self.run(access, f)
    }

    /// Refuses an operation up front: the store is damaged, being reopened, or unwritable (a
    /// write not yet due for another try). Returns whether a write is a retry.
    fn admit(&self, access: Access) -> Result<bool, StoreError> {
        let status = self.status.lock();
        if status.damaged.is_some() {
            drop(status);
            return Err(self.damaged_error());
        }
        if self.reopening.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable {
                path: self.path.clone(),
                reason: "it is being reopened after a failed write; try again".to_string(),
            });
        }
        if access == Access::Write && status.unwritable.is_some() {
            let due = status.last_try.is_none_or(|at| at.elapsed() >= WRITE_RETRY);
            drop(status);
            if !due || DEPTH.with(|d| d.get()) > 0 {
                return Err(self.unwritable_error());
            }
            self.status.lock().last_try = Some(Instant::now());
            return Ok(true);
        }
        Ok(false)
    }

    /// Whether a reopen may be tried now (at most once per [`WRITE_RETRY`] unless forced).
    fn due(&self, forced: bool) -> bool {
        let mut status = self.status.lock();
        let due = forced || status.last_try.is_none_or(|at| at.elapsed() >= WRITE_RETRY);
        if due {
            status.last_try = Some(Instant::now());
        }
        due
    }

    /// Closes the database and opens it again, unless that already happened since
    /// `generation`.
    fn reopen(&self, generation: u64) {
        let _one = self.reopen_lock.lock();
        if self.slot.read_recursive().generation != generation {
            return;
        }
        self.reopening.store(true, Ordering::Release);
        let mut slot = self.slot.write();
        // Closing a database that failed writes nothing: redb checks for the failure first.
        if let Some(old) = slot.db.take() {
            close(old);
        }
        slot.generation += 1;
        match open_database(&self.path, self.cache_bytes, false) {
            Ok(db) => {
                slot.db = Some(db);
                self.status.lock().closed = None;
            }
            Err(StoreError::Damaged { detail, .. }) => {
                self.status.lock().damaged = Some(detail);
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot reopen the store");
                self.status.lock().closed = Some(err.to_string());
            }
        }
        drop(slot);
        self.reopening.store(false, Ordering::Release);
    }

    /// The store's health; while it is unwritable or closed, tries a write first (forced,
    /// whatever [`WRITE_RETRY`] says), so a caller that polls sees it recover.
    pub(crate) fn probe_write(
        &self,
        write: impl FnOnce(&Database) -> Result<(), StoreError>,
    ) -> Health {
        {
            let mut status = self.status.lock();
            if let Some(detail) = &status.damaged {
                return Health::Damaged(detail.clone());
            }
            if status.unwritable.is_none() && status.closed.is_none() {
                return Health::Ok;
            }
            // Forces the try below.
            status.last_try = None;
        }
        let _ = self.run(Access::Write, write);
        let status = self.status.lock();
        if let Some(detail) = &status.damaged {
            Health::Damaged(detail.clone())
        } else if let Some(reason) = &status.closed {
            Health::Unavailable(reason.clone())
        } else if let Some(reason) = &status.unwritable {
            Health::Unwritable(reason.clone())
        } else {
            Health::Ok
        }
    }

    fn unwritable_error(&self) -> StoreError {
        let reason = self.status.lock().unwritable.clone().unwrap_or_default();
        StoreError::Unwritable {
            path: self.path.clone(),
            reason,
        }
    }

    fn damaged_error(&self) -> StoreError {
        let detail = self.status.lock().damaged.clone().unwrap_or_default();
        StoreError::Damaged {
            path: self.path.clone(),
            detail,
        }
    }

    fn closed_error(&self) -> StoreError {
        let status = self.status.lock();
        if let Some(detail) = &status.damaged {
            return StoreError::Damaged {
                path: self.path.clone(),
                detail: detail.clone(),
            };
        }
        StoreError::Unavailable {
            path: self.path.clone(),
            reason: status
                .closed
                .clone()
                .unwrap_or_else(|| "it could not be reopened".to_string()),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let damaged = self.status.get_mut().damaged.is_some();
        if let Some(db) = self.slot.get_mut().db.take() {
            if damaged {
                // Closing writes to the file; a damaged one is left exactly as it is.
                std::mem::forget(db);
            } else {
                close(db);
            }
        }
    }
}

/// Closes a database; a panic in redb while closing (a damaged file) is contained.
fn close(db: Database) {
    if catch_unwind(AssertUnwindSafe(move || drop(db))).is_err() {
        tracing::error!("redb panicked while closing the store");
    }
}

/// Opens the file, mapping redb's errors and panics to store errors naming it.
fn open_database(path: &Path, cache_bytes: usize, create: bool) -> Result<Database, StoreError> {
    REDB_PANIC.with(|p| p.set(false));
    let opened = catch_unwind(AssertUnwindSafe(|| {
        let mut builder = Database::builder();
        builder.set_cache_size(cache_bytes);
        if create {
            builder.create(path)
        } else {
            builder.open(path)
        }
    }));
    let path = path.to_path_buf();
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => Err(StoreError::Locked { path }),
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)))) => {
            Err(StoreError::Damaged { path, detail })
        }
        Ok(Err(other)) => Err(StoreError::Open {
            path,
            message: other.to_string(),
        }),
        Err(panic) => {
            if !REDB_PANIC.with(|p| p.replace(false)) {
                resume_unwind(panic);
            }
            Err(StoreError::Damaged {
                path,
                detail: format!("redb panicked: {}", panic_message(&*panic)),
            })
        }
    }
}

/// The text of a panic payload, on one line.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.as_str()
    } else {
        "(no message)"
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a source file is redb's (a registry, git or vendored copy of the crate).
fn is_redb_source(file: &str) -> bool {
    let file = file.replace('\\', "/");
    file.split('/')
        .any(|part| part == "redb" || part.starts_with("redb-"))
}

/// Installs (once per process) a panic hook that tells a panic raised in redb's source from any
/// other: a redb panic is noted for the operation's `catch_unwind` and reported as one line
/// (the store error that follows says what to do); every other panic goes to the previous hook
/// unchanged.
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            match info.location().filter(|at| is_redb_source(at.file())) {
                Some(at) => {
                    REDB_PANIC.with(|p| p.set(true));
                    let message = panic_message(info.payload());
                    eprintln!(
                        "crmsync: redb panicked at {}:{}: {message} (contained: the store is treated as damaged)",
                        at.file(),
                        at.line()
                    );
                }
                None => previous(info),
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redb_sources_are_told_from_others() {
        assert!(is_redb_source(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/redb-2.6.4/src/db.rs"
        ));
        assert!(is_redb_source("vendor/redb/src/tree_store/btree.rs"));
        assert!(!is_redb_source("src/store/mod.rs"));
        assert!(!is_redb_source("/home/x/redbird/src/lib.rs"));
    }
}
