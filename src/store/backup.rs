//! `crmsync store backup`: a consistent copy of a store, made from one read snapshot while the
//! store stays in use (writers are not held up). The copy is a fresh redb file holding every
//! table ([`super::catalog`]); it is written beside its destination under a temporary name,
//! synced, and only then renamed into place, so a crash or a full disk never leaves a partial
//! file under the backup's name.

use std::path::Path;

use super::catalog;
use super::{Store, StoreError};

/// What a backup copied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupReport {
    /// Rows per table.
    pub tables: Vec<(String, u64)>,
}

impl Store {
    /// Copies this store to `dest`, which must not exist yet.
    pub fn backup_to(&self, dest: &Path) -> Result<BackupReport, StoreError> {
        let failed = |message: String| StoreError::Open {
            path: dest.to_path_buf(),
            message,
        };
        if dest.exists() {
            return Err(failed(
                "it exists already; choose another name or remove it first".to_string(),
            ));
        }
        let dir = match dest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let partial = tempfile::Builder::new()
            .prefix(".crmsync-backup-")
            .suffix(".partial")
            .tempfile_in(dir)
            .map_err(|err| failed(format!("cannot create a file beside it: {err}")))?;
        let copy = redb::Database::create(partial.path()).map_err(|err| failed(err.to_string()))?;
        let tables = self.raw(false, |db| {
            let snapshot = db.begin_read()?;
            let unknown = catalog::unknown_tables(&snapshot)?;
            if !unknown.is_empty() {
                return Err(StoreError::Open {
                    path: self.path().to_path_buf(),
                    message: format!(
                        "it holds table(s) this crmsync cannot copy: {} (written by a newer \
                         crmsync?); nothing was backed up",
                        unknown.join(", ")
                    ),
                });
            }
            let txn = copy.begin_write().map_err(|err| failed(err.to_string()))?;
            let tables = catalog::copy_all(&snapshot, &txn, dest)?;
            txn.commit().map_err(|err| failed(err.to_string()))?;
            Ok(tables)
        })?;
        drop(copy);
        partial
            .as_file()
            .sync_all()
            .map_err(|err| failed(err.to_string()))?;
        partial
            .persist_noclobber(dest)
            .map_err(|err| failed(err.error.to_string()))?;
        Ok(BackupReport {
            tables: tables
                .into_iter()
                .map(|(name, rows)| (name.to_string(), rows))
                .collect(),
        })
    }
}
