//! Chat id → the numbers of an inbound SMS chat, as Retell's `chat_inbound` webhook named them.
//!
//! WHY a table of its own: Retell's chat object (the body of `chat_analyzed`) carries no phone
//! number. The inbound webhook, which Retell calls when the SMS arrives and before the agent
//! answers, is the only message that names the sender together with the chat id, and
//! `chat_analyzed` comes minutes or hours later, possibly to a restarted daemon. A row is written
//! durably before the webhook is answered, and dropped once its chat has been applied (the
//! applied conversation then answers a redelivery). A chat that is never analysed leaves its
//! row behind (about a hundred bytes).

use chrono::{DateTime, Utc};
use redb::TableError;
use serde::{Deserialize, Serialize};

use super::tables::{decode, encode, CHAT_NUMBERS};
use super::{Store, StoreError};

/// What `chat_inbound` said about one chat, as received (not normalized: a withheld or
/// malformed sender is kept, so the chat's report can name it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatNumbers {
    /// The sender: the contact's number.
    pub from_number: String,
    /// The number the SMS was sent to (yours).
    pub to_number: Option<String>,
    pub agent_id: Option<String>,
    pub received_at: DateTime<Utc>,
}

impl Store {
    /// Records the numbers of a chat (a redelivered webhook writes the same row again). Durable
    /// when this returns.
    pub fn remember_chat_numbers(
        &self,
        chat_id: &str,
        numbers: &ChatNumbers,
    ) -> Result<(), StoreError> {
        let row = encode(numbers)?;
        self.raw(true, |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(CHAT_NUMBERS)?;
                table.insert(chat_id, row.as_slice())?;
            }
            txn.commit()?;
            Ok(())
        })
    }

    /// The numbers `chat_inbound` gave for this chat, if it was seen.
    pub fn chat_numbers(&self, chat_id: &str) -> Result<Option<ChatNumbers>, StoreError> {
        self.raw(false, |db| {
            let txn = db.begin_read()?;
            let table = match txn.open_table(CHAT_NUMBERS) {
                Ok(table) => table,
                // No chat_inbound was ever recorded in this store.
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(err) => return Err(err.into()),
            };
            match table.get(chat_id)? {
                Some(row) => Ok(Some(decode("chat_numbers", chat_id, row.value())?)),
                None => Ok(None),
            }
        })
    }

    /// Drops a chat's row once the chat was applied. Not synced to disk by itself (atomic; the
    /// next durable commit makes it durable): a crash before that only leaves a row that is no
    /// longer read.
    pub fn forget_chat_numbers(&self, chat_id: &str) -> Result<(), StoreError> {
        // Most chats found their number elsewhere: a read is cheaper than a write transaction.
        if self.chat_numbers(chat_id)?.is_none() {
            return Ok(());
        }
        self.raw(true, |db| {
            let mut txn = db.begin_write()?;
            txn.set_durability(redb::Durability::Eventual);
            {
                let mut table = txn.open_table(CHAT_NUMBERS)?;
                table.remove(chat_id)?;
            }
            txn.commit()?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_survive_reopening_and_are_dropped_when_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let numbers = ChatNumbers {
            from_number: "+14155550101".into(),
            to_number: Some("+18885550100".into()),
            agent_id: Some("agent_1".into()),
            received_at: Utc::now(),
        };
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.chat_numbers("chat_1").unwrap(), None);
            store.remember_chat_numbers("chat_1", &numbers).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.chat_numbers("chat_1").unwrap(), Some(numbers));
        assert_eq!(store.chat_numbers("chat_2").unwrap(), None);
        store.forget_chat_numbers("chat_1").unwrap();
        assert_eq!(store.chat_numbers("chat_1").unwrap(), None);
    }
}
