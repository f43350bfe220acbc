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
use chrono::NaiveDate;

use crate::lang::check::CheckedProgram;
use crate::lang::eval::{ConnectionRules, Ruleset};
use crate::store::{ContactRecord, WriteTx};
use crate::value::{FieldType, Fields, Value};

/// (CRM field, contact fields its outbound mapping reads) for one connection.
///
/// The compiled rule set does not expose which fields each outbound mapping reads, so this
/// probes `eval_outbound` once per source field with sample values of the field's type (every
/// variant of an enum; `true` and `false`; ...) at engine start. A mapping that reads several
/// fields, or whose guard is false for every probe, links only through the probes that yield
/// a value; see the module docs.
pub(crate) fn outbound_links(
    ruleset: &Ruleset,
    rules: &ConnectionRules,
) -> Vec<(String, Vec<String>)> {
    let mut links: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for field in rules.outbound_source_fields() {
        let Some(def) = ruleset.field(&field) else {
            continue;
        };
        for probe in probes(&def.ty) {
            let fields = Fields::from([(field.clone(), probe)]);
            for (target, _) in ruleset.eval_outbound(&rules.name, &fields) {
                let reads = links.entry(target).or_default();
                if !reads.contains(&field) {
                    reads.push(field.clone());
                }
            }
        }
    }
    links.into_iter().collect()
}

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

fn probes(ty: &FieldType) -> Vec<Value> {
    let date = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    match ty {
        FieldType::String => vec![Value::String("probe".into()), Value::String(String::new())],
        FieldType::Number => vec![Value::Number(1.0), Value::Number(0.0)],
        FieldType::Boolean => vec![Value::Bool(true), Value::Bool(false)],
        FieldType::Date => vec![Value::Date(date)],
        FieldType::Datetime => vec![Value::Datetime(
            date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
        )],
        FieldType::Enum(variants) => variants.iter().map(|v| Value::Enum(v.clone())).collect(),
    }
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
        let writes: BTreeMap<String, serde_json::Value> = self
            .ruleset
            .eval_outbound(active, &contact.fields)
            .into_iter()
            .filter(|(target, _)| due.contains(&target.as_str()))
            .collect();
        tx.enqueue_write(active, record_id, &contact.phone, writes.clone(), now)?;
        Ok(writes)
    }
}
