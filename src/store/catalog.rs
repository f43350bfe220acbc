//! Every table a store may hold, by name: what `crmsync store check` walks and
//! `crmsync store backup` copies. A table found in a store and missing here makes both fail
//! loudly (a backup that silently left a table out would lose it), so a new table must be added
//! here, to [`copy_all`] and to `check.rs`.

use std::path::Path;

use redb::{
    Key, ReadTransaction, TableDefinition, TableError, TableHandle, Value, WriteTransaction,
};

use super::meta::{META, PROBE};
use super::tables::{
    ACTIVITIES, CHAT_NUMBERS, CONFLICTS, CONTACTS, CONVERSATIONS, CURSORS, DEAD_LETTERS,
    OPEN_ACTIVITIES, PENDING_WRITES, RECORD_INDEX,
};
use super::StoreError;

/// The names of the tables of the current format.
pub(crate) const TABLES: [&str; 12] = [
    "contacts_v2",
    "record_index_v2",
    "sync_cursors",
    "pending_writes",
    "activities_v2",
    "open_activities_v2",
    "dead_letters",
    "applied_conversations",
    "conflicts",
    "chat_numbers",
    "meta",
    "health_probe",
];

/// The tables in the store that this crmsync does not know.
pub(crate) fn unknown_tables(txn: &ReadTransaction) -> Result<Vec<String>, StoreError> {
    Ok(txn
        .list_tables()?
        .map(|table| table.name().to_string())
        .filter(|name| !TABLES.contains(&name.as_str()))
        .collect())
}

/// Copies every table from a read snapshot into a write transaction (of the file `dest`);
/// returns the rows copied per table.
pub(crate) fn copy_all(
    from: &ReadTransaction,
    to: &WriteTransaction,
    dest: &Path,
) -> Result<Vec<(&'static str, u64)>, StoreError> {
    Ok(vec![
        ("contacts_v2", copy(from, to, CONTACTS, dest)?),
        ("record_index_v2", copy(from, to, RECORD_INDEX, dest)?),
        ("sync_cursors", copy(from, to, CURSORS, dest)?),
        ("pending_writes", copy(from, to, PENDING_WRITES, dest)?),
        ("activities_v2", copy(from, to, ACTIVITIES, dest)?),
        ("open_activities_v2", copy(from, to, OPEN_ACTIVITIES, dest)?),
        ("dead_letters", copy(from, to, DEAD_LETTERS, dest)?),
        (
            "applied_conversations",
            copy(from, to, CONVERSATIONS, dest)?,
        ),
        ("conflicts", copy(from, to, CONFLICTS, dest)?),
        ("chat_numbers", copy(from, to, CHAT_NUMBERS, dest)?),
        ("meta", copy(from, to, META, dest)?),
        ("health_probe", copy(from, to, PROBE, dest)?),
    ])
}

/// WHY the copy's errors are mapped by hand: converted with `?`, an I/O error of the copy (its
/// disk is full) would count as one of the store's own (`db.rs`).
fn copy<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    table: TableDefinition<K, V>,
    dest: &Path,
) -> Result<u64, StoreError> {
    let failed = |err: &dyn std::fmt::Display| StoreError::Open {
        path: dest.to_path_buf(),
        message: err.to_string(),
    };
    let source = match from.open_table(table) {
        Ok(source) => source,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(err) => return Err(err.into()),
    };
    let mut target = to.open_table(table).map_err(|err| failed(&err))?;
    let mut rows = 0;
    for entry in redb::ReadableTable::iter(&source)? {
        let (key, value) = entry?;
        target
            .insert(key.value(), value.value())
            .map_err(|err| failed(&err))?;
        rows += 1;
    }
    Ok(rows)
}
