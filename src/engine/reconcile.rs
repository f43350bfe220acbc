//! Inside an import of one CRM record linked to a contact: echoes of crmsync's own writes,
//! conflicts between a pending write and a CRM change, and what a first link keeps.
//!
//! A CRM field with an outbound mapping is in one of these states when its record is read:
//! - its value equals what crmsync last pushed there: an echo. The contact fields the mapping
//!   reads are not overwritten (they may have changed again since).
//! - a write of it is pending and the CRM has not changed it since crmsync last read or wrote
//!   it (same fingerprint, `ContactRecord::crm_seen`): the local change is newer, the contact
//!   fields are kept and the write goes out.
//! - a write of it is pending AND the CRM changed it since (another value, not the pending
//!   one): a conflict. The connection's [`ConflictPolicy`] picks the winner; the loser is
//!   dropped from the outbox (CRM wins: the contact then takes the CRM's value) or from the
//!   import (crmsync wins: the contact fields are kept and the write overwrites the CRM).
//!   Never both. The decision, the outbox change and the [`Conflict`] row are written in the
//!   import's transaction.
//!
//! Latest wins compares the local change's time (the newest provenance time of the contact
//! fields the mapping reads) with the CRM's time for the field: HubSpot's per-property
//! timestamp when the record carries `propertiesWithHistory`, else the record's modification
//! time (an upper bound: another field edited later makes the CRM look later). A tie goes to
//! crmsync: the CRM's clock has at best millisecond (Salesforce: second) precision.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;

use super::inbound::parse_stamp;
use super::EngineError;
use crate::store::{
    crm_fingerprint, Conflict, ConflictPolicy, ConflictWinner, ContactRecord, CrmTimeSource,
    Source, WriteTx,
};

/// An existing contact linked to a CRM record for the first time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstLink {
    pub record_id: String,
    pub phone: String,
    /// Contact fields whose non-empty value was kept over the record's empty one.
    pub kept: Vec<String>,
    /// CRM fields queued for the record from the contact's conversation/manual values.
    pub pushed: Vec<String>,
}

/// The record being imported, and how to decide.
pub(super) struct Decide<'a> {
    pub connection: &'a str,
    pub record_id: &'a str,
    /// The record as the CRM returned it (HubSpot: with `propertiesWithHistory` when read).
    pub record: &'a Json,
    /// Where its CRM fields are (HubSpot: `properties`).
    pub body: &'a Json,
    pub modstamp: Option<DateTime<Utc>>,
    pub policy: ConflictPolicy,
    pub now: DateTime<Utc>,
}

/// Whether a record path (`Email`, `Account.Name`) holds nothing: missing, null or blank text.
pub(super) fn path_is_blank(body: &Json, path: &[String]) -> bool {
    let mut at = body;
    for segment in path {
        match at.get(segment) {
            Some(next) => at = next,
            None => return true,
        }
    }
    match at {
        Json::Null => true,
        Json::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Whether an empty CRM value must leave `field` alone after the first link: a conversation
/// wrote it and no outbound mapping reads it. WHY: such a field is never pushed, so the CRM's
/// emptiness says nothing (the record was re-read because something else changed, often
/// crmsync's own write); a two-way field is pushed, and a CRM value that then turns empty is a
/// change made in the CRM.
pub(super) fn captured_locally(
    contact: &ContactRecord,
    field: &str,
    links: &[(String, Vec<String>)],
) -> bool {
    matches!(
        contact.provenance.get(field).map(|p| &p.source),
        Some(Source::Analysis { .. })
    ) && !links
        .iter()
        .any(|(_, reads)| reads.iter().any(|r| r == field))
}

/// Decides echoes and conflicts for a record linked to `contact`. Returns the contact fields
/// the import must not overwrite; drops pending fields that lost, records conflicts (also in
/// `conflicts`), and forgets pushed values the CRM has since replaced.
pub(super) fn reconcile(
    tx: &mut WriteTx<'_>,
    d: &Decide<'_>,
    contact: &mut ContactRecord,
    links: &[(String, Vec<String>)],
    conflicts: &mut Vec<Conflict>,
) -> Result<BTreeSet<String>, EngineError> {
    let mut guarded = BTreeSet::new();
    if links.is_empty() || contact.links.get(d.connection).map(String::as_str) != Some(d.record_id)
    {
        return Ok(guarded);
    }
    let pending = tx.pending_write(d.connection, d.record_id)?;
    let mut pushed_now: BTreeMap<String, Json> =
        contact.last_pushed.remove(d.connection).unwrap_or_default();
    let seen_before = contact
        .crm_seen
        .get(d.connection)
        .cloned()
        .unwrap_or_default();
    let read_before = contact.inbound_modstamp.get(d.connection).copied();
    for (crm_field, reads) in links {
        let in_record = d.body.get(crm_field);
        let pending_value = pending.as_ref().and_then(|p| p.fields.get(crm_field));
        let echo = match (pushed_now.get(crm_field), in_record) {
            (Some(sent), Some(seen)) => same_crm_value(sent, seen),
            _ => false,
        };
        if let (Some(local), Some(seen), false) = (pending_value, in_record, echo) {
            let crm_at = crm_time(d, crm_field, seen);
            let changed_in_crm = match seen_before.get(crm_field) {
                Some(fingerprint) => *fingerprint != crm_fingerprint(seen),
                // Not read before (a store older than fingerprints): by time.
                None => match (crm_at.0, read_before) {
                    (Some(at), Some(before)) => at > before,
                    _ => true,
                },
            };
            if changed_in_crm && !same_crm_value(local, seen) {
                let local_at = local_time(contact, reads, d.connection)
                    .or(pending.as_ref().map(|p| p.enqueued_at))
                    .unwrap_or(d.now);
                let winner = match d.policy {
                    ConflictPolicy::CrmWins => ConflictWinner::Crm,
                    ConflictPolicy::CrmsyncWins => ConflictWinner::Crmsync,
                    ConflictPolicy::LatestWins => match crm_at.0 {
                        Some(at) if at > local_at => ConflictWinner::Crm,
                        _ => ConflictWinner::Crmsync,
                    },
                };
                let conflict = Conflict {
                    id: 0,
                    connection: d.connection.to_string(),
                    record_id: d.record_id.to_string(),
                    phone: contact.phone.clone(),
                    fields: reads.clone(),
                    crm_field: crm_field.clone(),
                    local_value: local.clone(),
                    crm_value: seen.clone(),
                    local_at,
                    crm_at: crm_at.0,
                    crm_at_source: crm_at.1,
                    winner,
                    policy: d.policy,
                    decided_at: d.now,
                };
                match winner {
                    ConflictWinner::Crm => {
                        tx.drop_pending_field(d.connection, d.record_id, crm_field)?;
                        pushed_now.remove(crm_field);
                    }
                    ConflictWinner::Crmsync => guarded.extend(reads.iter().cloned()),
                }
                let id = tx.record_conflict(conflict.clone())?;
                conflicts.push(Conflict { id, ..conflict });
                continue;
            }
        }
        let pending_here = pending_value.is_some();
        if echo || pending_here {
            guarded.extend(reads.iter().cloned());
        }
        if !echo && in_record.is_some() && !pending_here {
            pushed_now.remove(crm_field);
        }
    }
    if !pushed_now.is_empty() {
        contact
            .last_pushed
            .insert(d.connection.to_string(), pushed_now);
    }
    Ok(guarded)
}

/// Remembers the fingerprints of the record's values of the CRM fields outbound mappings
/// write (fields the read did not return keep their old fingerprint).
pub(super) fn remember_seen(
    contact: &mut ContactRecord,
    connection: &str,
    body: &Json,
    links: &[(String, Vec<String>)],
) {
    let mut read = links
        .iter()
        .filter_map(|(crm_field, _)| Some((crm_field, body.get(crm_field)?)))
        .peekable();
    if read.peek().is_none() {
        return;
    }
    let seen = contact.crm_seen.entry(connection.to_string()).or_default();
    for (crm_field, value) in read {
        seen.insert(crm_field.clone(), crm_fingerprint(value));
    }
}

/// When the contact fields a mapping reads were last changed other than by this connection's
/// inbound sync (the local change a pending write carries).
fn local_time(
    contact: &ContactRecord,
    reads: &[String],
    connection: &str,
) -> Option<DateTime<Utc>> {
    reads
        .iter()
        .filter_map(|field| contact.provenance.get(field))
        .filter(|p| !matches!(&p.source, Source::Inbound { connection: c } if c == connection))
        .map(|p| p.at)
        .max()
}

/// The CRM's time for the current value of `crm_field`: HubSpot's per-property history (the
/// newest version holding the value read; newest first, as HubSpot lists them), else the
/// record's modification time.
fn crm_time(
    d: &Decide<'_>,
    crm_field: &str,
    seen: &Json,
) -> (Option<DateTime<Utc>>, CrmTimeSource) {
    let versions = d
        .record
        .get("propertiesWithHistory")
        .and_then(|h| h.get(crm_field))
        .and_then(Json::as_array);
    if let Some(versions) = versions {
        let stamp = |v: &Json| v.get("timestamp").and_then(parse_stamp);
        let matching = versions
            .iter()
            .find(|v| {
                v.get("value")
                    .is_some_and(|value| same_crm_value(value, seen))
            })
            .or_else(|| versions.first());
        if let Some(at) = matching.and_then(stamp) {
            return (Some(at), CrmTimeSource::Property);
        }
    }
    match d.modstamp {
        Some(at) => (Some(at), CrmTimeSource::Record),
        None => (None, CrmTimeSource::Unknown),
    }
}

/// CRM APIs hand values back in their own notation (HubSpot returns every property as text,
/// Salesforce may return `5` for `5.0`): compare loosely on the text form.
pub(super) fn same_crm_value(sent: &Json, seen: &Json) -> bool {
    if sent == seen {
        return true;
    }
    let text = |v: &Json| match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => n.as_f64().map(|f| f.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Null => Some(String::new()),
        _ => None,
    };
    match (text(sent), text(seen)) {
        (Some(a), Some(b)) => {
            a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
        }
        _ => false,
    }
}
