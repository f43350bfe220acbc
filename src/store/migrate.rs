//! Moves rows of tables an older crmsync wrote into the tables this one reads, when a store is
//! opened, in one transaction (a crash part-way leaves the old tables as they were).
//!
//! - `contacts` and `record_index` (`&str` keys) → `contacts_v2` and `record_index_v2` (byte
//!   keys, `tables.rs` says why). Rows are copied as they are: the row codec reads every row
//!   form. The old tables are then deleted.

use redb::{ReadableTable, TableHandle, WriteTransaction};

use super::tables::{CONTACTS, CONTACTS_V1, RECORD_INDEX, RECORD_INDEX_V1};
use super::StoreError;

/// Whether the store holds tables to migrate.
pub(crate) fn needed(txn: &redb::ReadTransaction) -> Result<bool, StoreError> {
    Ok(txn
        .list_tables()?
        .any(|table| table.name() == CONTACTS_V1.name() || table.name() == RECORD_INDEX_V1.name()))
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ContactRecord, Store};
    use chrono::Utc;
    use redb::Database;

    #[test]
    fn a_store_with_str_keyed_tables_opens_with_its_contacts_and_links() {
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
        let reader = store.db.begin_read().unwrap();
        assert!(!needed(&reader).unwrap(), "the old tables are gone");
        drop(reader);
        drop(store);
        // Opening again finds nothing to migrate and changes nothing.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.contact_count().unwrap(), 1);
    }
}
