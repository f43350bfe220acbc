//! Contacts: the row shape, per-field provenance, and the (connection, record id) index.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::row;
use super::StoreError;
use crate::value::{Fields, Value};

/// What last wrote a contact field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Inbound sync from this connection.
    Inbound { connection: String },
    /// Conversation analysis of this conversation.
    Analysis {
        conversation_id: String,
        /// When the conversation ended (else started): what its values are from. `None` in
        /// rows written before it was kept, and for conversations without times.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ended_at: Option<DateTime<Utc>>,
    },
    /// A manual edit (CLI or HTTP API).
    Manual,
}

impl Source {
    /// Short label for listings: `inbound:salesforce`, `analysis:call_1`, `manual`.
    pub fn label(&self) -> String {
        match self {
            Source::Inbound { connection } => format!("inbound:{connection}"),
            Source::Analysis {
                conversation_id, ..
            } => format!("analysis:{conversation_id}"),
            Source::Manual => "manual".to_string(),
        }
    }
}

/// When and by what a field was last written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub source: Source,
    pub at: DateTime<Utc>,
}

/// A CRM field whose last outbound value the CRM refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutOfStep {
    /// The value that was refused.
    pub value: serde_json::Value,
    /// The CRM's message.
    pub message: String,
    pub since: DateTime<Utc>,
}

/// One contact, keyed by its E.164 phone number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactRecord {
    /// E.164; also the key. Kept out of `fields` (it is `phone_number` to the rules).
    pub phone: String,
    /// Built-in and custom fields (never `phone_number`).
    #[serde(default)]
    pub fields: Fields,
    /// Per field: what last wrote it, and when.
    #[serde(default)]
    pub provenance: BTreeMap<String, Provenance>,
    /// Per connection: the CRM record id this contact is linked to.
    #[serde(default)]
    pub links: BTreeMap<String, String>,
    /// Per connection, per CRM field: the value we last pushed (echo detection).
    #[serde(default)]
    pub last_pushed: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// The modification stamp of the CRM record that last won an inbound write, per connection
    /// (used to pick the most recently modified of several records sharing a phone).
    #[serde(default)]
    pub inbound_modstamp: BTreeMap<String, DateTime<Utc>>,
    /// Per field: the end of the latest conversation that stated the field's current value
    /// without changing it (it makes the value that recent; see [`ContactRecord::field_basis`]).
    /// Dropped when the value changes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub confirmed_at: BTreeMap<String, DateTime<Utc>>,
    /// Per connection, per CRM field: a value the CRM refused, so the contact and the CRM
    /// disagree on it until the next inbound sync reads the record back.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub out_of_step: BTreeMap<String, BTreeMap<String, OutOfStep>>,
    /// Per connection, per CRM field an outbound mapping writes: a fingerprint of the value
    /// the CRM had when crmsync last read or wrote it ([`crm_fingerprint`]). A read whose
    /// value has another fingerprint is a change made in the CRM since (conflict detection).
    #[serde(default)]
    pub crm_seen: BTreeMap<String, BTreeMap<String, u64>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ContactRecord {
    /// A new, empty contact.
    pub fn new(phone: &str, at: DateTime<Utc>) -> Self {
        ContactRecord {
            phone: phone.to_string(),
            fields: Fields::new(),
            provenance: BTreeMap::new(),
            links: BTreeMap::new(),
            last_pushed: BTreeMap::new(),
            inbound_modstamp: BTreeMap::new(),
            confirmed_at: BTreeMap::new(),
            out_of_step: BTreeMap::new(),
            crm_seen: BTreeMap::new(),
            created_at: at,
            updated_at: at,
        }
    }

    /// When the information in `field` is from: the end of the conversation that wrote it,
    /// the CRM record's modification stamp (no later than the read) for an inbound value, else
    /// the time it was written; or the end of a later conversation that confirmed the value.
    /// `None` for a field never written.
    pub fn field_basis(&self, field: &str) -> Option<DateTime<Utc>> {
        let p = self.provenance.get(field)?;
        let written = match &p.source {
            Source::Analysis {
                ended_at: Some(ended),
                ..
            } => *ended,
            Source::Inbound { connection } => self
                .inbound_modstamp
                .get(connection)
                .map_or(p.at, |stamp| (*stamp).min(p.at)),
            _ => p.at,
        };
        Some(match self.confirmed_at.get(field) {
            Some(confirmed) => written.max(*confirmed),
            None => written,
        })
    }

    /// The inbound sync read the record of `connection` back: the CRM's values are known
    /// again, so nothing is out of step with it any more.
    pub fn read_back(&mut self, connection: &str) {
        self.out_of_step.remove(connection);
    }

    /// Sets a field and its provenance. Returns whether the stored value changed.
    pub fn set_field(
        &mut self,
        field: &str,
        value: Value,
        source: Source,
        at: DateTime<Utc>,
    ) -> bool {
        let current = self.fields.get(field);
        // Clearing a field that is not there changes nothing.
        if current == Some(&value) || (current.is_none() && value == Value::Null) {
            return false;
        }
        self.fields.insert(field.to_string(), value);
        self.provenance
            .insert(field.to_string(), Provenance { source, at });
        self.confirmed_at.remove(field);
        self.updated_at = at;
        true
    }
}

/// A stable 64-bit fingerprint of a CRM field's value, compared loosely as CRM APIs hand
/// values back (HubSpot returns every property as text, and `""` for a cleared one; Salesforce
/// may return `5` for `5.0`): null and `""` are one value, numbers compare by their value.
/// WHY a hash: it is stored on every contact linked to the active connection and computed for
/// every record read, and a notes field can be long. FNV-1a: stable across builds and
/// platforms, and a few nanoseconds a field where the import reads ~10 µs a record.
pub fn crm_fingerprint(value: &serde_json::Value) -> u64 {
    let text = match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => match s.parse::<f64>() {
            Ok(n) if n.is_finite() && !s.trim().is_empty() => format!("{n}"),
            _ => s.clone(),
        },
        serde_json::Value::Number(n) => n.as_f64().map(|f| f.to_string()).unwrap_or_default(),
        serde_json::Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    };
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    text.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod fingerprint_tests {
    use super::crm_fingerprint;
    use serde_json::json;

    #[test]
    fn values_a_crm_hands_back_in_its_own_notation_fingerprint_alike() {
        assert_eq!(crm_fingerprint(&json!(null)), crm_fingerprint(&json!("")));
        assert_eq!(crm_fingerprint(&json!(5)), crm_fingerprint(&json!("5.0")));
        assert_eq!(
            crm_fingerprint(&json!(true)),
            crm_fingerprint(&json!("true"))
        );
        assert_ne!(crm_fingerprint(&json!("a")), crm_fingerprint(&json!("b")));
        // Stable across builds: a stored fingerprint must still match.
        assert_eq!(crm_fingerprint(&json!("")), 0xcbf2_9ce4_8422_2325);
        assert_eq!(crm_fingerprint(&json!("a")), 0xaf63_dc4c_8601_ec8c);
    }
}

/// A contact already encoded as its stored row: built where the CPU is free (the thread that
/// parses an import), written where the store is (the committing thread).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedContact {
    phone: String,
    bytes: Vec<u8>,
}

impl EncodedContact {
    pub fn new(contact: &ContactRecord) -> Result<Self, StoreError> {
        Ok(EncodedContact {
            phone: contact.phone.clone(),
            bytes: row::encode(contact)?,
        })
    }

    /// The contact's phone (its key).
    pub fn phone(&self) -> &str {
        &self.phone
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

pub(crate) type ContactsTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;
pub(crate) type IndexTable<'t> = redb::Table<'t, (&'static [u8], &'static [u8]), &'static str>;

pub(crate) fn get_contact(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    phone: &str,
) -> Result<Option<ContactRecord>, StoreError> {
    match table.get(phone.as_bytes())? {
        Some(guard) => Ok(Some(row::decode(phone, guard.value())?)),
        None => Ok(None),
    }
}

pub(crate) fn put_contact(
    table: &mut ContactsTable<'_>,
    contact: &ContactRecord,
) -> Result<(), StoreError> {
    let bytes = row::encode(contact)?;
    table.insert(contact.phone.as_bytes(), bytes.as_slice())?;
    Ok(())
}

pub(crate) fn phone_for_record(
    table: &impl ReadableTable<(&'static [u8], &'static [u8]), &'static str>,
    connection: &str,
    record_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(table
        .get(index_key(connection, record_id))?
        .map(|guard| guard.value().to_string()))
}

/// The record index key of (connection, CRM record id).
pub(crate) fn index_key<'a>(connection: &'a str, record_id: &'a str) -> (&'a [u8], &'a [u8]) {
    (connection.as_bytes(), record_id.as_bytes())
}

/// Calls `f` with up to `limit` contacts in phone order, starting after `after`, decoding one
/// row at a time (a listing of any size holds one contact in memory).
pub(crate) fn visit_contacts<E: From<StoreError>>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    after: Option<&str>,
    limit: usize,
    mut f: impl FnMut(ContactRecord) -> Result<(), E>,
) -> Result<(), E> {
    let range = match after {
        Some(after) => table.range::<&[u8]>((
            std::ops::Bound::Excluded(after.as_bytes()),
            std::ops::Bound::Unbounded,
        )),
        None => table.range::<&[u8]>(..),
    }
    .map_err(StoreError::from)?;
    for entry in range.take(limit) {
        let (key, value) = entry.map_err(StoreError::from)?;
        let phone = phone_of_key(key.value())?;
        f(row::decode(phone, value.value())?)?;
    }
    Ok(())
}

/// A contacts key as the phone it is (written from a `&str`, so UTF-8 unless corrupt).
pub(crate) fn phone_of_key(key: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(key).map_err(|err| StoreError::CorruptRow {
        table: "contacts",
        key: String::from_utf8_lossy(key).into_owned(),
        source: serde::de::Error::custom(err),
    })
}
