//! Moves rows of tables an older crmsync wrote into the tables this one reads, when a store is
//! opened, in one transaction (a crash part-way leaves the old tables as they were).
//!
//! - `contacts` and `record_index` (`&str` keys) → `contacts_v2` and `record_index_v2` (byte
//!   keys, `tables.rs` says why). Rows are copied as they are: the row codec reads every row
//!   form.
//! - `open_activities` (connection, conversation id) → `open_activities_v2` (connection,
//!   created_at, conversation id), the time read from each intent.
//! - `activities` (connection, conversation id) → `activities_v2` (conversation id). An intent
//!   now also records that its conversation was applied (`conversations.rs`); the applied rows
//!   of those conversations are kept, which says the same thing twice.
//!
//! The old tables are then deleted.

use redb::{ReadableTable, TableHandle, WriteTransaction};

use super::outbox::{open_key, ActivityIntent};
use super::tables::{
    decode, ACTIVITIES, ACTIVITIES_V1, CONTACTS, CONTACTS_V1, OPEN_ACTIVITIES, OPEN_ACTIVITIES_V1,
    RECORD_INDEX, RECORD_INDEX_V1,
};
use super::StoreError;

/// Every table this module replaces.
const OLD_TABLES: [&str; 4] = ["contacts", "record_index", "open_activities", "activities"];

/// Whether the store holds tables to migrate.
pub(crate) fn needed(txn: &redb::ReadTransaction) -> Result<bool, StoreError> {
    Ok(txn
        .list_tables()?
        .any(|table| OLD_TABLES.contains(&table.name())))
}

/// Migrates every old table still in the store.
pub(crate) fn run(txn: &WriteTransaction) -> Result<(), StoreError> {
    let names: Vec<String> = txn
        .list_tables()?
        .map(|table| table.name().to_string())
        .collect();
    if names.iter().any(|name| name == CONTACTS_V1.name()) {
        {
            let old = txn.open_table(CONTACTS_V1)?;
            let mut new = txn.open_table(CONTACTS)?;
            for entry in old.iter()? {
                let (phone, row) = entry?;
                new.insert(phone.value().as_bytes(), row.value())?;
            }
        }
        txn.delete_table(CONTACTS_V1)?;
    }
    if names.iter().any(|name| name == RECORD_INDEX_V1.name()) {
        {
            let old = txn.open_table(RECORD_INDEX_V1)?;
            let mut new = txn.open_table(RECORD_INDEX)?;
            for entry in old.iter()? {
                let (key, phone) = entry?;
                let (connection, record_id) = key.value();
                new.insert((connection.as_bytes(), record_id.as_bytes()), phone.value())?;
            }
        }
        txn.delete_table(RECORD_INDEX_V1)?;
    }
    if names.iter().any(|name| name == OPEN_ACTIVITIES_V1.name()) {
        {
            let old = txn.open_table(OPEN_ACTIVITIES_V1)?;
            // Stores with this table are older than `activities_v2`, so the intents are here.
            let activities = txn.open_table(ACTIVITIES_V1)?;
            let mut new = txn.open_table(OPEN_ACTIVITIES)?;
            for entry in old.iter()? {
                let (key, _) = entry?;
                let (connection, conversation_id) = key.value();
                if let Some(row) = activities.get((connection, conversation_id))? {
                    let intent: ActivityIntent =
                        decode("activities", conversation_id, row.value())?;
                    new.insert(open_key(&intent), ())?;
                }
            }
        }
        txn.delete_table(OPEN_ACTIVITIES_V1)?;
    }
    if names.iter().any(|name| name == ACTIVITIES_V1.name()) {
        {
            let old = txn.open_table(ACTIVITIES_V1)?;
            let mut new = txn.open_table(ACTIVITIES)?;
            let mut open = txn.open_table(OPEN_ACTIVITIES)?;
            for entry in old.iter()? {
                let (key, row) = entry?;
                let (_, conversation_id) = key.value();
                // A conversation applies once, so it has one intent; were there two (a store
                // edited by hand), the first connection's is kept and the other dropped.
                if new.get(conversation_id)?.is_none() {
                    new.insert(conversation_id, row.value())?;
                } else {
                    let dropped: ActivityIntent =
                        decode("activities", conversation_id, row.value())?;
                    open.remove(open_key(&dropped))?;
                }
            }
        }
        txn.delete_table(ACTIVITIES_V1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ActivityPayload, ActivityState, ContactRecord, ConversationKind, Store};
    use chrono::Utc;
    use redb::Database;

    fn intent(id: &str, state: ActivityState) -> ActivityIntent {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 21, 10, 0, 0).unwrap();
        ActivityIntent {
            connection: "salesforce".into(),
            conversation_id: id.into(),
            record_id: "003A".into(),
            phone: "+14155550101".into(),
            payload: ActivityPayload {
                conversation_id: id.into(),
                kind: ConversationKind::Call,
                direction: "inbound".into(),
                from_number: None,
                to_number: None,
                start_time: None,
                end_time: None,
                duration_ms: None,
                summary: None,
                disconnection_reason: None,
                agent_id: None,
                outcome: None,
            },
            state,
            attempts: 0,
            next_attempt_at: at,
            last_error: None,
            created_at: at,
            deferred_since: None,
        }
    }

    #[test]
    fn a_store_with_the_old_tables_opens_with_its_contacts_links_and_activities() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.redb");
        let mut ada = ContactRecord::new("+14155550101", Utc::now());
        ada.links.insert("salesforce".into(), "003A".into());
        {
            // As crmsync wrote stores before the byte keys (a JSON row, as before MessagePack).
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut contacts = txn.open_table(CONTACTS_V1).unwrap();
                let row = format!(
                    r#"{{"f":{{}},"s":[],"pv":[],"l":{{"salesforce":"003A"}},"c":{}}}"#,
                    ada.created_at.timestamp_nanos_opt().unwrap()
                );
                contacts.insert("+14155550101", row.as_bytes()).unwrap();
                let mut index = txn.open_table(RECORD_INDEX_V1).unwrap();
                index
                    .insert(("salesforce", "003A"), "+14155550101")
                    .unwrap();
                let mut activities = txn.open_table(ACTIVITIES_V1).unwrap();
                let mut open = txn.open_table(OPEN_ACTIVITIES_V1).unwrap();
                for (id, state) in [
                    ("call_1", ActivityState::Pending),
                    (
                        "call_2",
                        ActivityState::Done {
                            crm_id: "00T1".into(),
                        },
                    ),
                ] {
                    let intent = intent(id, state);
                    let row = crate::store::tables::encode(&intent).unwrap();
                    activities
                        .insert(("salesforce", id), row.as_slice())
                        .unwrap();
                    if id == "call_1" {
                        open.insert(("salesforce", id), ()).unwrap();
                    }
                }
            }
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.contact("+14155550101").unwrap(), Some(ada));
        assert_eq!(
            store.phone_for_record("salesforce", "003A").unwrap(),
            Some("+14155550101".to_string())
        );
        assert_eq!(store.contact_count().unwrap(), 1);
        let due = store.due_activities("salesforce", Utc::now(), 10).unwrap();
        assert_eq!(due, [intent("call_1", ActivityState::Pending)]);
        let counts = store.outbox_counts().unwrap();
        assert_eq!((counts.pending_activities, counts.done_activities), (1, 1));
        assert_eq!(
            store.activities(Some("salesforce")).unwrap(),
            [
                intent("call_1", ActivityState::Pending),
                intent(
                    "call_2",
                    ActivityState::Done {
                        crm_id: "00T1".into()
                    }
                )
            ]
        );
        // Each intent, now keyed by its conversation, says that conversation was applied.
        assert!(store.conversation_applied("call_1").unwrap());
        assert!(store.conversation_applied("call_2").unwrap());
        assert!(!store.conversation_applied("call_3").unwrap());
        let gone = store
            .raw(false, |db| needed(&db.begin_read()?).map(|needed| !needed))
            .unwrap();
        assert!(gone, "the old tables are gone");
        drop(store);
        // Opening again finds nothing to migrate and changes nothing.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.contact_count().unwrap(), 1);
    }
}
