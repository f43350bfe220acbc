//! The redb table definitions and the row codec.
//!
//! Contact rows are MessagePack (`row.rs`: they are most of a store's bytes). The other rows are
//! serde_json bytes through `encode`/`decode` below: readable with any JSON tool when debugging
//! a store, and a small part of an event's cost (BENCHMARKS.md).

use redb::TableDefinition;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// phone (E.164, as bytes) → `ContactRecord` (`row.rs`).
/// WHY bytes, not `&str`: redb compares `&str` keys by validating both sides as UTF-8 on every
/// comparison, which was a tenth of a bulk import's committing thread; byte keys compare with
/// `memcmp` in the same order (UTF-8 sorts bytewise as it sorts by code point).
pub(crate) const CONTACTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("contacts_v2");
/// (connection, CRM record id), as bytes → phone.
pub(crate) const RECORD_INDEX: TableDefinition<(&[u8], &[u8]), &str> =
    TableDefinition::new("record_index_v2");
/// The `&str`-keyed tables of stores written before the byte keys; `migrate.rs` moves their
/// rows to the tables above when such a store is opened.
pub(crate) const CONTACTS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("contacts");
pub(crate) const RECORD_INDEX_V1: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("record_index");
/// connection → `SyncCursor`.
pub(crate) const CURSORS: TableDefinition<&str, &[u8]> = TableDefinition::new("sync_cursors");
/// (connection, CRM record id) → `PendingWrite`.
pub(crate) const PENDING_WRITES: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("pending_writes");
/// conversation id → `ActivityIntent` (one per conversation: an activity is logged on the
/// active connection only). The intent also records that its conversation was applied
/// (`conversations.rs`).
pub(crate) const ACTIVITIES: TableDefinition<&str, &[u8]> = TableDefinition::new("activities_v2");
/// The (connection, conversation id)-keyed form, which `migrate.rs` replaces.
pub(crate) const ACTIVITIES_V1: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("activities");
/// (connection, intent's `created_at` in ns, conversation id) → () for every activity intent
/// that is not `Done`: the dispatcher and the metrics scan this small set, oldest first,
/// instead of every activity ever logged. WHY keyed by time: a new intent lands at the end of
/// the B-tree, so a group commit of events appends to one leaf here instead of dirtying a
/// random leaf per event (each dirty leaf is written and fsynced at commit).
pub(crate) const OPEN_ACTIVITIES: TableDefinition<(&str, i64, &str), ()> =
    TableDefinition::new("open_activities_v2");
/// The (connection, conversation id)-keyed form of the set, which `migrate.rs` replaces.
pub(crate) const OPEN_ACTIVITIES_V1: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("open_activities");
/// sequence number → `DeadLetter`.
pub(crate) const DEAD_LETTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");
/// conversation id → `AppliedConversation`, for applied conversations that owe no activity
/// (`conversations.rs`).
pub(crate) const CONVERSATIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("applied_conversations");
/// sequence number → `Conflict` (`conflicts.rs`), oldest first.
pub(crate) const CONFLICTS: TableDefinition<u64, &[u8]> = TableDefinition::new("conflicts");
/// chat id → `ChatNumbers` (`chat_numbers.rs`): the sender of an inbound SMS chat.
pub(crate) const CHAT_NUMBERS: TableDefinition<&str, &[u8]> = TableDefinition::new("chat_numbers");

pub(crate) fn encode<T: Serialize>(row: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(row).map_err(StoreError::Encode)
}

pub(crate) fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::CorruptRow {
        table,
        key: key.to_string(),
        source,
    })
}
