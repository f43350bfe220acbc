//! Outbound intents: what a non-inbound contact change asks the dispatcher to send.
//!
//! A change from analysis or a manual edit, on a contact linked to a record of the ACTIVE
//! connection, enqueues a write of the CRM fields whose outbound mappings read a changed field
//! (coalesced per record: the outbox keeps the latest value per CRM field). The phone number is
//! never written back (the checker forbids mapping it outbound). Inbound changes never come
//! here. Which contact fields a mapping reads (its source and its guard) comes from the checked
//! program, so a guarded mapping is linked like any other. A mapping that fails to evaluate
//! (coercion, function error) is recorded as a dead letter, never dropped silently.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Engine, EngineError};

use crate::lang::check::CheckedProgram;
use crate::store::{ContactRecord, WriteTx};

/// (CRM field, contact fields read) per connection, straight from the checked program.
pub(crate) fn links_from_program(
    program: &CheckedProgram,
) -> BTreeMap<String, Vec<(String, Vec<String>)>> {
    program
        .connections
        .iter()
        .map(|c| {
            let mut links: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for m in &c.outbound {
                let reads = links.entry(m.target.clone()).or_default();
                for id in &m.reads {
                    let name = program.fields.get(*id).name.clone();
                    if !reads.contains(&name) {
                        reads.push(name);
                    }
                }
            }
            (c.kind.name().to_string(), links.into_iter().collect())
        })
        .collect()
}

impl Engine {
    /// (CRM field, contact fields it reads) for `connection`.
    pub(crate) fn links(&self, connection: &str) -> &[(String, Vec<String>)] {
        self.outbound_links
            .get(connection)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

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
        let due: Vec<&str> = self
            .links(active)
            .iter()
            .filter(|(_, reads)| reads.iter().any(|r| changed.contains(r)))
            .map(|(target, _)| target.as_str())
            .collect();
        if due.is_empty() {
            return Ok(BTreeMap::new());
        }
        // Evaluated over all the contact's fields (a mapping may read unchanged ones too), then
        // narrowed to the CRM fields whose mapping reads a changed field.
        let report = self.ruleset.eval_outbound_report(active, &contact.fields);
        let writes: BTreeMap<String, serde_json::Value> = report
            .values
            .into_iter()
            .filter(|(target, _)| due.contains(&target.as_str()))
            .collect();
        tx.enqueue_write(active, record_id, &contact.phone, writes.clone(), now)?;
        // A mapping that cannot compute its value would otherwise leave the CRM field stale
        // without a word: each failure is a dead letter (listed by `outbox`, counted in
        // `/metrics`), naming the contact, the record, the CRM field and the value at fault.
        for error in report
            .errors
            .into_iter()
            .filter(|e| due.contains(&e.field.as_str()))
        {
            let message = format!(
                "outbound mapping `{} -> {}` failed for contact {}: {}",
                error.source, error.field, contact.phone, error.reason
            );
            tracing::warn!(
                connection = active,
                record = %record_id,
                field = %error.field,
                %message,
                "outbound value not computed"
            );
            let payload = serde_json::json!({
                "field": error.field,
                "source": error.source,
                "value": error.value,
            });
            tx.dead_letter_mapping(active, record_id, &contact.phone, payload, &message, now)?;
        }
        Ok(writes)
    }
}
