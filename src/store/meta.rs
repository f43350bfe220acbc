//! The `meta` table: the store's format version, so a crmsync never misreads a store that a
//! newer one wrote.
//!
//! [`FORMAT_VERSION`] goes up whenever a table or row form changes in a way an older crmsync
//! would misread (the migrations of `migrate.rs` that an older binary does not know). Opening a
//! store records the version it now has; a store recording a higher one is refused before
//! anything is written to it ([`StoreError::TooNew`]). A store without the table was written
//! before versions were recorded (it is at most version 1; `migrate.rs` brings it to 1).

use std::path::Path;

use redb::{ReadTransaction, ReadableTable, TableDefinition, TableError, WriteTransaction};

use super::StoreError;

/// The format this crmsync reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// key → value. Keys: [`VERSION_KEY`].
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The format version of the store.
pub(crate) const VERSION_KEY: &str = "format_version";
/// The health probe's row, written and removed again (empty between probes).
pub(crate) const PROBE: TableDefinition<&str, &[u8]> = TableDefinition::new("health_probe");
/// How much the health probe writes. WHY this much: a commit of a few bytes fits in the pages
/// redb has free inside its file even when the disk is full, so it would report a store that
/// cannot take the next event as writable; a mebibyte needs room on the disk, as a burst of
/// events does.
const PROBE_BYTES: usize = 1 << 20;

/// The recorded format version (`None`: written before versions were recorded).
pub(crate) fn version(txn: &ReadTransaction) -> Result<Option<u64>, StoreError> {
    let table = match txn.open_table(META) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    Ok(table.get(VERSION_KEY)?.map(|guard| guard.value()))
}

/// Refuses a store of a newer format than [`FORMAT_VERSION`].
pub(crate) fn check_version(path: &Path, txn: &ReadTransaction) -> Result<(), StoreError> {
    match version(txn)? {
        Some(found) if found > FORMAT_VERSION => Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        }),
        _ => Ok(()),
    }
}

/// Records [`FORMAT_VERSION`] (once the store has it: after the migrations).
pub(crate) fn record_version(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut table = txn.open_table(META)?;
    let current = table.get(VERSION_KEY)?.map(|guard| guard.value());
    if current != Some(FORMAT_VERSION) {
        table.insert(VERSION_KEY, FORMAT_VERSION)?;
    }
    Ok(())
}

/// The health probe's write ([`PROBE_BYTES`]); `false` removes it again.
pub(crate) fn probe(txn: &WriteTransaction, write: bool) -> Result<(), StoreError> {
    let mut table = txn.open_table(PROBE)?;
    if write {
        table.insert("probe", vec![0x5a; PROBE_BYTES].as_slice())?;
    } else {
        table.remove("probe")?;
    }
    Ok(())
}
