//! `crmsync store check`: opens a store (redb recovers it if it was not closed cleanly), then
//! walks every table and decodes every row. Reports the rows per table, or what is damaged.
//! WHY not redb's `check_integrity` as well: it repairs what it finds, writing to the file, and
//! a check should leave a damaged store as it was.

use std::path::Path;

use redb::{AccessGuard, Key, ReadTransaction, ReadableTable, TableDefinition, TableError, Value};
use serde::Serialize;

use super::catalog;
use super::meta::{self, META};
use super::tables::{
    decode, ACTIVITIES, CHAT_NUMBERS, CONFLICTS, CONTACTS, CONVERSATIONS, CURSORS, DEAD_LETTERS,
    OPEN_ACTIVITIES, PENDING_WRITES, RECORD_INDEX,
};
use super::{
    row, ActivityIntent, AppliedConversation, ChatNumbers, Conflict, DeadLetter, PendingWrite,
    Store, StoreError, SyncCursor,
};

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The recorded format version (`None`: a store from before versions were recorded).
    pub format_version: Option<u64>,
    /// Rows per table, in the order they were walked.
    pub tables: Vec<(String, u64)>,
    /// Each problem found: the table, the key and what is wrong. Empty when the store is sound.
    pub problems: Vec<String>,
}

impl Store {
    /// Checks the store at `path` (which must exist). A store too damaged to open is an error
    /// ([`StoreError::Damaged`]); one that opens is walked, and its damage is listed in
    /// [`CheckReport::problems`].
    pub fn check_file(path: &Path) -> Result<CheckReport, StoreError> {
        let store = Store::open_existing(path)?;
        store.check()
    }

    /// Walks every table of this store (one read snapshot). A failure to read is damage, and
    /// names the file.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        self.walk().map_err(|err| match err {
            StoreError::Db(_) | StoreError::CorruptRow { .. } => StoreError::Damaged {
                path: self.path().to_path_buf(),
                detail: err.to_string(),
            },
            other => other,
        })
    }

    fn walk(&self) -> Result<CheckReport, StoreError> {
        self.raw(false, |db| {
            let txn = db.begin_read()?;
            let mut problems = Vec::new();
            for name in catalog::unknown_tables(&txn)? {
                problems.push(format!(
                    "table `{name}` is not one this crmsync knows (written by a newer one?)"
                ));
            }
            let mut tables = Vec::new();
            let mut walk = |name: &str, rows: Result<u64, String>| match rows {
                Ok(rows) => tables.push((name.to_string(), rows)),
                Err(problem) => problems.push(format!("table `{name}`: {problem}")),
            };
            walk(
                "contacts_v2",
                rows(&txn, CONTACTS, |k, v| {
                    let phone = String::from_utf8_lossy(k.value()).into_owned();
                    row::decode(&phone, v.value()).err()
                }),
            );
            walk("record_index_v2", rows(&txn, RECORD_INDEX, |_, _| None));
            walk(
                "sync_cursors",
                rows(&txn, CURSORS, |k, v| {
                    decode::<SyncCursor>("sync_cursors", k.value(), v.value()).err()
                }),
            );
            walk(
                "pending_writes",
                rows(&txn, PENDING_WRITES, |k, v| {
                    decode::<PendingWrite>("pending_writes", k.value().1, v.value()).err()
                }),
            );
            walk(
                "activities_v2",
                rows(&txn, ACTIVITIES, |k, v| {
                    decode::<ActivityIntent>("activities", k.value(), v.value()).err()
                }),
            );
            walk(
                "open_activities_v2",
                rows(&txn, OPEN_ACTIVITIES, |_, _| None),
            );
            walk(
                "dead_letters",
                rows(&txn, DEAD_LETTERS, |k, v| {
                    let key = k.value().to_string();
                    decode::<DeadLetter>("dead_letters", &key, v.value()).err()
                }),
            );
            walk(
                "applied_conversations",
                rows(&txn, CONVERSATIONS, |k, v| {
                    decode::<AppliedConversation>("applied_conversations", k.value(), v.value())
                        .err()
                }),
            );
            walk(
                "conflicts",
                rows(&txn, CONFLICTS, |k, v| {
                    let key = k.value().to_string();
                    decode::<Conflict>("conflicts", &key, v.value()).err()
                }),
            );
            walk(
                "chat_numbers",
                rows(&txn, CHAT_NUMBERS, |k, v| {
                    decode::<ChatNumbers>("chat_numbers", k.value(), v.value()).err()
                }),
            );
            walk("meta", rows(&txn, META, |_, _| None));
            walk("health_probe", rows(&txn, meta::PROBE, |_, _| None));
            Ok(CheckReport {
                format_version: meta::version(&txn)?,
                tables,
                problems,
            })
        })
    }
}

/// Counts a table's rows, checking each with `row_error`; the first problem ends the walk of
/// the table (a row that does not decode, or a page redb cannot read).
fn rows<K: Key + 'static, V: Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<K, V>,
    mut row_error: impl FnMut(&AccessGuard<'_, K>, &AccessGuard<'_, V>) -> Option<StoreError>,
) -> Result<u64, String> {
    let source = match txn.open_table(table) {
        Ok(source) => source,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(err) => return Err(StoreError::from(err).to_string()),
    };
    let mut count = 0;
    for entry in source
        .iter()
        .map_err(|err| StoreError::from(err).to_string())?
    {
        let (key, value) = entry.map_err(|err| StoreError::from(err).to_string())?;
        if let Some(err) = row_error(&key, &value) {
            return Err(err.to_string());
        }
        count += 1;
    }
    Ok(count)
}
