//! Inbound import: one page of CRM records → contacts, in one store transaction.
//!
//! Per record: the record id is Salesforce `Id` / HubSpot `id`, and must have that CRM's shape
//! ([`is_record_id`]) else the record is skipped and reported; HubSpot objects are evaluated
//! against their `properties`. The phone (mapped to `phone_number`) must normalize to E.164,
//! else the record is skipped and reported. Several records with one phone (in a page or
//! across pages) resolve to the most recently modified one (Salesforce `SystemModstamp` /
//! `LastModifiedDate`, HubSpot `updatedAt` / `lastmodifieddate`); the others are reported as
//! duplicates and are not linked. Inbound changes never enqueue outbound writes, but for a
//! first link (below).
//!
//! Echoes and conflicts (`reconcile.rs`): a record value equal to what we last pushed is our
//! own write coming back and does not overwrite the contact. A CRM field with a write still
//! pending that the CRM changed since crmsync last read it is a conflict, decided by the
//! connection's policy and recorded in the same transaction.
//!
//! First link: when a contact that already exists (a conversation created it) is linked to a
//! CRM record for the first time, the record's empty values do not clear its non-empty
//! fields, and its conversation/manual values that outbound mappings read are queued for the
//! record (when the connection is the active one).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;

use super::reconcile::{self, FirstLink};
use super::{Engine, EngineError};
use crate::lang::eval::Change;
use crate::lang::eval::ConnectionKind;
use crate::store::{
    Conflict, ContactRecord, EncodedContact, Source, StoreError, SyncCursor, WriteTx,
};
use crate::value::Value;

/// What one page did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    pub read: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: Vec<Skipped>,
    pub field_errors: Vec<RecordFieldError>,
    /// Records read that lost to a more recently modified record with the same phone.
    pub duplicates: Vec<Duplicate>,
    /// Records read that the CRM reports archived: not imported.
    pub archived: usize,
    /// Of the archived records, those that were linked and are unlinked now.
    pub unlinked: usize,
    /// Records NOT read in this page that held a phone and lost it to a more recently
    /// modified record read now. WHY apart from `duplicates`: every record read is counted
    /// once (created + updated + unchanged + skipped + duplicates + archived = read), and the
    /// record displaced was counted when it was read (maybe earlier in the same sync).
    pub displaced: Vec<Duplicate>,
    /// CRM changes to fields with a pending write, each decided by the connection's policy.
    pub conflicts: Vec<Conflict>,
    /// Existing contacts linked to a CRM record for the first time whose local values were
    /// kept or pushed.
    pub first_links: Vec<FirstLink>,
}

impl ImportReport {
    /// Adds another page's counts to this one.
    pub fn absorb(&mut self, other: ImportReport) {
        self.read += other.read;
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.archived += other.archived;
        self.unlinked += other.unlinked;
        self.displaced.extend(other.displaced);
        self.skipped.extend(other.skipped);
        self.field_errors.extend(other.field_errors);
        self.duplicates.extend(other.duplicates);
        self.conflicts.extend(other.conflicts);
        self.first_links.extend(other.first_links);
    }
}

/// A record that was not imported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// The record id, or `#N` (0-based position in the page) when the record has none.
    pub record_id: String,
    pub reason: String,
}

/// A field that could not be written; the record's other fields still applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordFieldError {
    pub record_id: String,
    pub field: String,
    pub value: Json,
    pub reason: String,
}

/// A record that lost to a more recently modified record with the same phone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Duplicate {
    pub record_id: String,
    pub phone: String,
    /// The record the contact stays linked to.
    pub kept_record_id: String,
}

/// The record keys an import reads ([`Engine::record_keys`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKeys {
    /// The keys grouped by their length in bytes. WHY: every key of every record in a file is
    /// looked up here; a key whose length no kept key has (most skipped ones) costs one index,
    /// the others one or two same-length comparisons, where a binary search over all of them
    /// was a tenth of the reading thread.
    by_len: Vec<Vec<String>>,
}

impl RecordKeys {
    pub fn contains(&self, key: &str) -> bool {
        self.by_len
            .get(key.len())
            .is_some_and(|same_len| same_len.iter().any(|k| k == key))
    }
}

impl<S: Into<String>> FromIterator<S> for RecordKeys {
    fn from_iter<I: IntoIterator<Item = S>>(keys: I) -> Self {
        let mut keys: Vec<String> = keys.into_iter().map(Into::into).collect();
        keys.sort();
        keys.dedup();
        let mut by_len: Vec<Vec<String>> = Vec::new();
        for key in keys {
            if by_len.len() <= key.len() {
                by_len.resize_with(key.len() + 1, Vec::new);
            }
            by_len[key.len()].push(key);
        }
        RecordKeys { by_len }
    }
}

/// A page read and resolved by [`Engine::prepare_page`], waiting for [`Engine::commit_page`].
/// Its changes are stamped with the time it was prepared.
pub struct PreparedPage {
    connection: String,
    records: Vec<Json>,
    resolved: Resolved,
    prepared_at: DateTime<Utc>,
}

/// An open write transaction taking prepared pages ([`Engine::import_batch`]).
pub struct PageBatch<'e, 'x, 't> {
    engine: &'e Engine,
    tx: &'x mut WriteTx<'t>,
    /// The store had no contacts when the batch began: records built ahead are written
    /// without a lookup first ([`WriteTx::insert_linked_if_new`]).
    into_empty: bool,
}

impl PageBatch<'_, '_, '_> {
    /// Applies one prepared page and moves the connection's cursor to `cursor` (never
    /// backwards); both become visible when the batch commits. Hands the page's records back.
    /// WHY: freeing a page of `serde_json::Value`s was ~10% of a file import's samples; the
    /// caller can free them off the committing thread, on the thread that parsed them (glibc
    /// and mimalloc free fastest in the arena/heap that allocated).
    pub fn apply(
        &mut self,
        page: PreparedPage,
        cursor: Option<&SyncCursor>,
    ) -> Result<(ImportReport, Vec<Json>), EngineError> {
        let PreparedPage {
            connection,
            records,
            resolved,
            prepared_at,
        } = page;
        let report = self.engine.apply_resolved(
            self.tx,
            &connection,
            &records,
            resolved,
            cursor,
            prepared_at,
            self.into_empty,
        )?;
        Ok((report, records))
    }

    /// Unlinks CRM records (deleted or merged away) inside the batch; returns how many were
    /// linked.
    pub fn unlink(
        &mut self,
        connection: &str,
        record_ids: &[String],
    ) -> Result<usize, EngineError> {
        let mut count = 0;
        for id in record_ids {
            if self.tx.unlink(connection, id)?.is_some() {
                count += 1;
            }
        }
        Ok(count)
    }
}

/// The outcome of pass 1 over a page.
struct Resolved {
    candidates: Vec<ResolvedRecord>,
    archived: Vec<String>,
    report: ImportReport,
}

/// A record that won its phone within the page, by position in the page.
struct ResolvedRecord {
    record_id: String,
    phone: String,
    modstamp: Option<DateTime<Utc>>,
    position: usize,
    /// The contact this record makes when no contact has its phone yet, built ahead of the
    /// commit when the caller expects new contacts (see [`Engine::prepare_page`]).
    fresh: Option<FreshContact>,
}

/// A new contact built from one record, ready to be written.
struct FreshContact {
    row: EncodedContact,
    field_errors: Vec<RecordFieldError>,
}

impl FreshContact {
    /// Reports the contact written.
    fn created(self, report: &mut ImportReport) {
        report.field_errors.extend(self.field_errors);
        report.created += 1;
    }
}

/// One record, read and evaluated, before it meets the store.
struct Candidate<'a> {
    record_id: String,
    /// The record as the CRM returned it (what the rules evaluate).
    record: &'a Json,
    /// Where its CRM fields are (HubSpot: `properties`), for echo detection.
    body: &'a Json,
    phone: String,
    modstamp: Option<DateTime<Utc>>,
    position: usize,
}

impl Engine {
    /// Applies one page of CRM records of `connection` (JSON as that CRM's API returns them)
    /// in one transaction, and advances the connection's cursor to `cursor` in the same
    /// transaction (never backwards).
    pub fn import_page(
        &self,
        connection: &str,
        records: &[Json],
        cursor: Option<&SyncCursor>,
    ) -> Result<ImportReport, EngineError> {
        self.import_page_with(connection, records, cursor, true)
    }

    /// [`Engine::import_page`] whose commit is atomic but not synced to disk until a later
    /// durable commit or `Store::sync` (bulk file imports: one fsync at the end, not per page).
    pub fn import_page_with(
        &self,
        connection: &str,
        records: &[Json],
        cursor: Option<&SyncCursor>,
        durable: bool,
    ) -> Result<ImportReport, EngineError> {
        let now = Utc::now();
        let resolved = self.resolve(connection, records, 0, now)?;
        self.store.write_with(durable, |tx| {
            self.apply_resolved(tx, connection, records, resolved, cursor, now, false)
        })
    }

    /// The pure half of an import (record ids, phone numbers, duplicates within the page; no
    /// store access), so a caller can run it on another thread than [`Engine::commit_page`].
    ///
    /// It also evaluates the first `fresh` records into the contacts they make if their phones
    /// are new to the store (a first import, a full sync); committing such a record is then a
    /// lookup and two inserts. A record whose phone turns out to be taken is evaluated again
    /// at commit against the stored contact, and the others are evaluated at commit, so the
    /// result is the same for any `fresh`: it only moves work off the committing thread (see
    /// [`super::FreshShare`]).
    pub fn prepare_page(
        &self,
        connection: &str,
        records: Vec<Json>,
        fresh: usize,
    ) -> Result<PreparedPage, EngineError> {
        let prepared_at = Utc::now();
        let resolved = self.resolve(connection, &records, fresh, prepared_at)?;
        Ok(PreparedPage {
            connection: connection.to_string(),
            records,
            resolved,
            prepared_at,
        })
    }

    /// Writes a page prepared by [`Engine::prepare_page`] in one transaction (see
    /// [`Engine::import_page_with`] for `cursor` and `durable`).
    pub fn commit_page(
        &self,
        page: PreparedPage,
        cursor: Option<&SyncCursor>,
        durable: bool,
    ) -> Result<ImportReport, EngineError> {
        let PreparedPage {
            connection,
            records,
            resolved,
            prepared_at,
        } = page;
        self.store.write_with(durable, |tx| {
            self.apply_resolved(
                tx,
                &connection,
                &records,
                resolved,
                cursor,
                prepared_at,
                false,
            )
        })
    }

    /// Pass 1: ids, phones, modstamps, in-page duplicates; archived records to unlink; for the
    /// first `fresh` winners, the contact each makes if its phone is new (stamped `now`).
    fn resolve(
        &self,
        connection: &str,
        records: &[Json],
        fresh: usize,
        now: DateTime<Utc>,
    ) -> Result<Resolved, EngineError> {
        self.require_connection(connection)?;
        let kind = self.kind(connection);
        let mut out = Resolved {
            candidates: Vec::new(),
            archived: Vec::new(),
            report: ImportReport {
                read: records.len(),
                ..ImportReport::default()
            },
        };
        let mut winners: HashMap<String, Candidate<'_>> = HashMap::new();
        for (position, record) in records.iter().enumerate() {
            let Some(record_id) = record_id(kind, record) else {
                out.report.skipped.push(Skipped {
                    record_id: format!("#{position}"),
                    reason: format!("no record id (`{}`)", id_key(kind)),
                });
                continue;
            };
            if let Some(reason) = bad_record_id(kind, record) {
                out.report.skipped.push(Skipped { record_id, reason });
                continue;
            }
            if record.get("archived").and_then(Json::as_bool) == Some(true) {
                out.archived.push(record_id);
                continue;
            }
            let phone = match self.phone_of(connection, record) {
                Ok(phone) => phone,
                Err(reason) => {
                    out.report.skipped.push(Skipped { record_id, reason });
                    continue;
                }
            };
            let candidate = Candidate {
                record_id,
                record,
                body: rules_body(kind, record),
                modstamp: modstamp(kind, record),
                position,
                phone,
            };
            match winners.remove(&candidate.phone) {
                None => {
                    winners.insert(candidate.phone.clone(), candidate);
                }
                Some(previous) => {
                    let (keep, lose) = if newer(&candidate, &previous) {
                        (candidate, previous)
                    } else {
                        (previous, candidate)
                    };
                    out.report.duplicates.push(Duplicate {
                        record_id: lose.record_id,
                        phone: keep.phone.clone(),
                        kept_record_id: keep.record_id.clone(),
                    });
                    winners.insert(keep.phone.clone(), keep);
                }
            }
        }
        let mut winners: Vec<Candidate<'_>> = winners.into_values().collect();
        winners.sort_by_key(|c| c.position);
        out.candidates = winners
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let fresh = if i < fresh {
                    Some(self.fresh_contact(connection, &c, now)?)
                } else {
                    None
                };
                Ok(ResolvedRecord {
                    record_id: c.record_id,
                    phone: c.phone,
                    modstamp: c.modstamp,
                    position: c.position,
                    fresh,
                })
            })
            .collect::<Result<_, EngineError>>()?;
        Ok(out)
    }

    /// Applies several prepared pages in ONE write transaction: the group commit of inbound
    /// pages. Each page is still all-or-nothing (a page never spans two transactions) and a
    /// page's cursor moves with it; `f` returning `Err` aborts every page of the batch.
    /// WHY: a commit copies every B-tree leaf the batch touched, and CRM records arrive in id
    /// order, so their phones land in random leaves. Per page of 2,000 that is ~2,000 leaves
    /// (8 MB) copied per commit; in one transaction a leaf is copied once and then updated in
    /// place (BENCHMARKS.md, "Import").
    pub fn import_batch<T, E: From<StoreError> + From<EngineError>>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut PageBatch<'_, '_, '_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.store.write_with(durable, |tx| {
            let into_empty = tx.contact_count()? == 0;
            let mut batch = PageBatch {
                engine: self,
                tx,
                into_empty,
            };
            f(&mut batch)
        })
    }

    /// Pass 2 inside a transaction.
    #[allow(clippy::too_many_arguments)]
    fn apply_resolved(
        &self,
        tx: &mut WriteTx<'_>,
        connection: &str,
        records: &[Json],
        resolved: Resolved,
        cursor: Option<&SyncCursor>,
        now: DateTime<Utc>,
        into_empty: bool,
    ) -> Result<ImportReport, EngineError> {
        let kind = self.kind(connection);
        let links = self.links(connection);
        let Resolved {
            candidates,
            archived,
            mut report,
        } = resolved;
        report.archived = archived.len();
        for record_id in &archived {
            if tx.unlink(connection, record_id)?.is_some() {
                report.unlinked += 1;
            }
        }
        for resolved in candidates {
            let Some(record) = records.get(resolved.position) else {
                continue;
            };
            let candidate = Candidate {
                record_id: resolved.record_id,
                record,
                body: rules_body(kind, record),
                phone: resolved.phone,
                modstamp: resolved.modstamp,
                position: resolved.position,
            };
            self.import_one(
                tx,
                connection,
                &candidate,
                resolved.fresh,
                into_empty,
                links,
                now,
                &mut report,
            )?;
        }
        if let Some(cursor) = cursor {
            tx.advance_cursor(connection, cursor)?;
        }
        report.skipped.sort_by(|a, b| a.record_id.cmp(&b.record_id));
        Ok(report)
    }

    /// The top-level keys of a record that importing it through `connection` can read: the
    /// record id and modification stamps, `archived` and `properties`, every CRM field the
    /// inbound rules read (the first segment of a path) and every field the outbound rules
    /// write (echo detection). A reader may leave every other key out of the records it hands
    /// to an import, as a sync leaves them out of its queries.
    pub fn record_keys(&self, connection: &str) -> Result<RecordKeys, EngineError> {
        self.require_connection(connection)?;
        let mut keys: Vec<String> = [
            "Id",
            "id",
            "SystemModstamp",
            "LastModifiedDate",
            "updatedAt",
            "archived",
            "properties",
            "propertiesWithHistory",
        ]
        .map(String::from)
        .into();
        if let Some(rules) = self.ruleset.connection(connection) {
            for field in rules.inbound_source_fields() {
                let first = field.split('.').next().unwrap_or_default().to_string();
                keys.push(first);
            }
            keys.extend(rules.outbound_target_fields());
        }
        Ok(keys.into_iter().collect())
    }

    fn kind(&self, connection: &str) -> ConnectionKind {
        self.ruleset
            .connection(connection)
            .map(|c| c.kind)
            .unwrap_or(ConnectionKind::Salesforce)
    }

    /// Unlinks CRM records that were deleted, archived or merged away: the contacts and their
    /// data stay, but no longer push to or log activities on those records. Returns how many
    /// records were linked.
    pub fn unlink(&self, connection: &str, record_ids: &[String]) -> Result<usize, EngineError> {
        self.require_connection(connection)?;
        self.import_batch(true, |batch| batch.unlink(connection, record_ids))
    }

    /// The record's phone as E.164, or why it has none.
    fn phone_of(&self, connection: &str, record: &Json) -> Result<String, String> {
        self.ruleset
            .inbound_phone(connection, record)
            .map_err(|err| err.reason)
    }

    /// The contact a record makes when no contact has its phone: what [`Engine::import_one`]
    /// writes for a new phone, built without the store.
    fn fresh_contact(
        &self,
        connection: &str,
        candidate: &Candidate<'_>,
        now: DateTime<Utc>,
    ) -> Result<FreshContact, EngineError> {
        let mut contact = ContactRecord::new(&candidate.phone, now);
        let output =
            self.ruleset
                .eval_inbound_known_phone(connection, candidate.record, &contact.fields);
        let field_errors = field_errors(candidate, output.errors);
        let source = Source::Inbound {
            connection: connection.to_string(),
        };
        for (field, value) in output.changes.into_iter().map(set_value) {
            if field != "phone_number" {
                contact.set_field(field, value, source.clone(), now);
            }
        }
        contact
            .links
            .insert(connection.to_string(), candidate.record_id.clone());
        if let Some(stamp) = candidate.modstamp {
            contact
                .inbound_modstamp
                .insert(connection.to_string(), stamp);
        }
        if self.active_connection() == Some(connection) {
            reconcile::remember_seen(
                &mut contact,
                connection,
                candidate.body,
                self.links(connection),
            );
        }
        Ok(FreshContact {
            row: EncodedContact::new(&contact)?,
            field_errors,
        })
    }

    /// Applies one record: a new phone gets the record's fresh contact (built here unless
    /// `prepare_page` built it), a known phone is evaluated against its stored contact. With
    /// `into_empty` (the import began on an empty store, so phones are new but for duplicates)
    /// a contact built ahead is written without looking the phone up first.
    #[allow(clippy::too_many_arguments)]
    fn import_one(
        &self,
        tx: &mut WriteTx<'_>,
        connection: &str,
        candidate: &Candidate<'_>,
        fresh: Option<FreshContact>,
        into_empty: bool,
        links: &[(String, Vec<String>)],
        now: DateTime<Utc>,
        report: &mut ImportReport,
    ) -> Result<(), EngineError> {
        let existing = match fresh {
            Some(fresh) if into_empty => {
                match tx.insert_linked_if_new(connection, &candidate.record_id, &fresh.row)? {
                    Some(stored) => stored,
                    None => {
                        fresh.created(report);
                        return Ok(());
                    }
                }
            }
            fresh => match tx.contact(&candidate.phone)? {
                Some(stored) => stored,
                None => {
                    let fresh = match fresh {
                        Some(fresh) => fresh,
                        None => self.fresh_contact(connection, candidate, now)?,
                    };
                    tx.insert_linked(connection, &candidate.record_id, &fresh.row)?;
                    fresh.created(report);
                    return Ok(());
                }
            },
        };
        let mut contact = existing.clone();

        // Across pages: another record of this connection already owns the phone.
        if let Some(owner) = contact.links.get(connection) {
            if *owner != candidate.record_id {
                let owner_stamp = contact.inbound_modstamp.get(connection).copied();
                let wins = match (candidate.modstamp, owner_stamp) {
                    (Some(new), Some(old)) => new >= old,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => true,
                };
                if !wins {
                    report.duplicates.push(Duplicate {
                        record_id: candidate.record_id.clone(),
                        phone: candidate.phone.clone(),
                        kept_record_id: owner.clone(),
                    });
                    return Ok(());
                }
                report.displaced.push(Duplicate {
                    record_id: owner.clone(),
                    phone: candidate.phone.clone(),
                    kept_record_id: candidate.record_id.clone(),
                });
            }
        }
        // A record that moved to another phone is let go by its old contact in `tx.link`.
        let output =
            self.ruleset
                .eval_inbound_known_phone(connection, candidate.record, &contact.fields);
        report
            .field_errors
            .extend(field_errors(candidate, output.errors));

        let first_link = !contact.links.contains_key(connection);
        let guarded = reconcile::reconcile(
            tx,
            &reconcile::Decide {
                connection,
                record_id: &candidate.record_id,
                record: candidate.record,
                body: candidate.body,
                modstamp: candidate.modstamp,
                policy: self.conflict_policy(connection),
                now,
            },
            &mut contact,
            links,
            &mut report.conflicts,
        )?;
        let source = Source::Inbound {
            connection: connection.to_string(),
        };
        let mut changed = false;
        let mut kept = Vec::new();
        for (field, value) in output.changes.into_iter().map(set_value) {
            if field == "phone_number" || guarded.contains(field) {
                continue;
            }
            let local_set = contact.fields.get(field).is_some_and(|v| !v.is_blank());
            if local_set
                && first_link
                && (value.is_blank() || self.record_empty_for(connection, candidate.body, field))
            {
                // What a conversation captured is not wiped by a record that has nothing
                // there (nor by what a value map's `else` makes of nothing).
                kept.push(field.to_string());
                continue;
            }
            if local_set
                && reconcile::captured_locally(&contact, field, links)
                && (value.is_blank() || self.record_empty_for(connection, candidate.body, field))
            {
                continue;
            }
            changed |= contact.set_field(field, value, source.clone(), now);
        }
        let relinked = contact.links.get(connection) != Some(&candidate.record_id);
        tx.link(&mut contact, connection, &candidate.record_id)?;
        if let Some(stamp) = candidate.modstamp {
            contact
                .inbound_modstamp
                .insert(connection.to_string(), stamp);
        }
        contact.read_back(connection);
        if self.active_connection() == Some(connection) {
            reconcile::remember_seen(&mut contact, connection, candidate.body, links);
        }
        if first_link {
            let pushed = if self.active_connection() == Some(connection) {
                self.push_local_values(tx, connection, candidate, &contact, now)?
            } else {
                Vec::new()
            };
            if !kept.is_empty() || !pushed.is_empty() {
                report.first_links.push(FirstLink {
                    record_id: candidate.record_id.clone(),
                    phone: contact.phone.clone(),
                    kept,
                    pushed,
                });
            }
        }
        if changed || relinked {
            report.updated += 1;
        } else {
            report.unchanged += 1;
        }
        if changed || relinked || existing != contact {
            if changed || relinked {
                contact.updated_at = now;
            }
            tx.put_contact(&contact)?;
        }
        Ok(())
    }

    /// Whether every record path the inbound mappings of `field` read is empty in `body`.
    fn record_empty_for(&self, connection: &str, body: &Json, field: &str) -> bool {
        let Some(rules) = self.ruleset.connection(connection) else {
            return false;
        };
        let reads = rules.inbound_reads_of(field);
        !reads.is_empty()
            && reads
                .iter()
                .all(|path| reconcile::path_is_blank(body, path))
    }

    /// On a first link to the active connection: queues, for the record, the CRM fields whose
    /// outbound mappings read a value a conversation or a manual edit set, unless the record
    /// holds that value already. Returns the CRM fields queued.
    fn push_local_values(
        &self,
        tx: &mut WriteTx<'_>,
        connection: &str,
        candidate: &Candidate<'_>,
        contact: &ContactRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, EngineError> {
        let local: Vec<String> = contact
            .provenance
            .iter()
            .filter(|(field, p)| {
                matches!(p.source, Source::Analysis { .. } | Source::Manual)
                    && contact
                        .fields
                        .get(field.as_str())
                        .is_some_and(|v| !v.is_blank())
            })
            .map(|(field, _)| field.clone())
            .collect();
        if local.is_empty() {
            return Ok(Vec::new());
        }
        // The same path as any local change (a mapping that fails is a dead letter), then the
        // fields the record holds already are taken back out.
        let written = self.enqueue_outbound(tx, contact, &local, now)?;
        let mut pushed = Vec::new();
        for (target, value) in written {
            let held = candidate
                .body
                .get(&target)
                .is_some_and(|seen| reconcile::same_crm_value(&value, seen));
            if held {
                tx.drop_pending_field(connection, &candidate.record_id, &target)?;
            } else {
                pushed.push(target);
            }
        }
        Ok(pushed)
    }
}

/// An inbound change as a field and the value to store.
fn set_value(change: Change<'_>) -> (&str, Value) {
    match change {
        Change::Set { field, value } => (field, value),
        // The checker allows merge only in analysis; treat defensively as a set.
        Change::Merge { field, new, .. } => (field, Value::String(new)),
    }
}

/// The record's field errors as the import reports them (a bad phone skips the record, so it
/// is never among them).
fn field_errors(
    candidate: &Candidate<'_>,
    errors: Vec<crate::lang::eval::FieldError>,
) -> Vec<RecordFieldError> {
    errors
        .into_iter()
        .filter(|error| error.field != "phone_number")
        .map(|error| RecordFieldError {
            record_id: candidate.record_id.clone(),
            field: error.field,
            value: error.value,
            reason: error.reason,
        })
        .collect()
}

fn newer(a: &Candidate<'_>, b: &Candidate<'_>) -> bool {
    match (a.modstamp, b.modstamp) {
        (Some(x), Some(y)) if x != y => x > y,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        // Same or unknown stamps: the later record in the page wins.
        _ => a.position > b.position,
    }
}

fn id_key(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::Salesforce => "Id",
        ConnectionKind::Hubspot => "id",
    }
}

/// The record's id as the CRM gave it (a HubSpot id may come as a JSON number), `None` when it
/// has none.
fn record_id(kind: ConnectionKind, record: &Json) -> Option<String> {
    match record.get(id_key(kind))? {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether `id` has the shape of a record id of `kind`: Salesforce, 15 or 18 ASCII letters and
/// digits; HubSpot, 1 to 20 digits. WHY checked: ids go into request paths, SOQL and the store's
/// links, and one a CRM (or something between it and crmsync) answered with any other shape
/// is not a record crmsync can address (docs/sync-semantics.md).
pub fn is_record_id(kind: ConnectionKind, id: &str) -> bool {
    match kind {
        ConnectionKind::Salesforce => {
            matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        ConnectionKind::Hubspot => {
            (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
        }
    }
}

/// Why a record's id is refused, when it is.
fn bad_record_id(kind: ConnectionKind, record: &Json) -> Option<String> {
    let id = record.get(id_key(kind))?;
    let well_formed = match (kind, id) {
        (ConnectionKind::Salesforce, Json::String(s)) => is_record_id(kind, s),
        (ConnectionKind::Hubspot, Json::String(s)) => is_record_id(kind, s),
        (ConnectionKind::Hubspot, Json::Number(n)) => n.as_u64().is_some(),
        _ => false,
    };
    (!well_formed).then(|| {
        let shape = match kind {
            ConnectionKind::Salesforce => "a Salesforce id is 15 or 18 letters and digits",
            ConnectionKind::Hubspot => "a HubSpot id is digits",
        };
        format!(
            "field `{}`: {id} is not a record id ({shape})",
            id_key(kind)
        )
    })
}

/// What the inbound rules read: HubSpot objects keep their fields under `properties`.
fn rules_body(kind: ConnectionKind, record: &Json) -> &Json {
    match kind {
        ConnectionKind::Hubspot => record.get("properties").unwrap_or(record),
        ConnectionKind::Salesforce => record,
    }
}

fn modstamp(kind: ConnectionKind, record: &Json) -> Option<DateTime<Utc>> {
    let candidates: [Option<&Json>; 2] = match kind {
        ConnectionKind::Salesforce => {
            [record.get("SystemModstamp"), record.get("LastModifiedDate")]
        }
        ConnectionKind::Hubspot => [
            record.get("updatedAt"),
            record.get("properties").and_then(|p| {
                p.get("lastmodifieddate")
                    .or_else(|| p.get("hs_lastmodifieddate"))
            }),
        ],
    };
    candidates.into_iter().flatten().find_map(parse_stamp)
}

pub(super) fn parse_stamp(value: &Json) -> Option<DateTime<Utc>> {
    match value {
        Json::String(text) => crate::value::coerce::parse_datetime(text).ok(),
        Json::Number(n) => crate::value::coerce::from_epoch_ms(n.as_f64()?).ok(),
        _ => None,
    }
}
