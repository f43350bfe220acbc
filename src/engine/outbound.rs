//! Outbound intents: what a non-inbound contact change asks the dispatcher to send.
//!
//! A change from analysis or a manual edit, on a contact linked to a record of the ACTIVE
//! connection, enqueues a write of the CRM fields whose outbound mappings read a changed field
//! (coalesced per record: the outbox keeps the latest value per CRM field). The phone number is
//! never written back (the checker forbids mapping it outbound). Inbound changes never come
//! here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Engine, EngineError};
use crate::lang::eval::Ruleset;
use crate::store::{ContactRecord, WriteTx};
use crate::value::Fields;

/// (CRM field, contact fields its outbound mapping reads) for a connection.
pub(crate) fn outbound_links(ruleset: &Ruleset, connection: &str) -> Vec<(String, Vec<String>)> {
    ruleset
        .connection(connection)
        .map(|c| c.outbound_links())
        .unwrap_or_default()
}

impl Engine {
    /// Enqueues the outbound write for `changed` fields of `contact` (already updated), when
    /// the contact is linked to the active connection. Returns the CRM fields enqueued.
    pub(crate) fn enqueue_outbound(
        &self,
        tx: &mut WriteTx<'_>,
        contact: &ContactRecord,
        changed: &[String],
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, serde_json::Value>, EngineError> {
        let Some(active) = self.active_connection.as_deref() else {
            return Ok(BTreeMap::new());
        };
        let Some(record_id) = contact.links.get(active) else {
            return Ok(BTreeMap::new());
        };
        if changed.is_empty() {
            return Ok(BTreeMap::new());
        }
        // The evaluator picks the mappings that read a changed field and evaluates them over
        // the contact's current fields.
        let changed_fields: Fields = changed
            .iter()
            .filter_map(|name| contact.fields.get(name).map(|v| (name.clone(), v.clone())))
            .collect();
        let writes: BTreeMap<String, serde_json::Value> = self
            .ruleset
            .eval_outbound(active, &changed_fields, &contact.fields)
            .into_iter()
            .collect();
        tx.enqueue_write(active, record_id, &contact.phone, writes.clone(), now)?;
        Ok(writes)
    }
}
