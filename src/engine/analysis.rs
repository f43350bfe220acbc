//! Conversation analysis: one conversation event → the contact of its number, in one store
//! transaction, with the outbound write and activity intents it causes.
//!
//! The number is picked by direction (the caller's on inbound, the dialed one on outbound);
//! a conversation without one (web call, API chat) does nothing, and one whose number is
//! withheld or invalid is recorded and reported `no_number`. An unknown number creates the
//! contact. An `overwrite` never replaces a value that is newer than the conversation (a late
//! webhook): it is skipped and reported as `stale` (docs/sync-semantics.md).
//!
//! `merge` mappings are resolved through the [`Merger`] BEFORE the write transaction opens (an
//! LLM call must not hold the store's write lock); inside the transaction the rules are
//! evaluated over the then-current fields, and a merge whose inputs changed in the meantime,
//! or that was never resolved, falls back to keeping both texts — which is all the fallback
//! merger does, so with it nothing is read before the transaction. Re-applying a conversation
//! id is a no-op.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Engine, EngineError};
use crate::event::{ConversationEvent, Direction};
use crate::lang::eval::Change;
use crate::merge::{fallback_merge, MergeError, MergeOutcome, MergeRequest, MergeVia, Merger};
use crate::store::{
    ActivityIntent, ActivityPayload, ActivityState, AppliedConversation, ContactRecord,
    ConversationKind, Source,
};
use crate::value::Value;

/// What applying a conversation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ConversationOutcome {
    /// Applied to the contact with this phone.
    Applied {
        phone: String,
        created: bool,
        /// Contact fields whose stored value changed.
        changed: Vec<String>,
        /// CRM fields enqueued for the active connection.
        outbound: Vec<String>,
        /// An activity intent was recorded for the active connection.
        activity: bool,
    },
    /// This conversation id was applied before; nothing changed.
    AlreadyApplied,
    /// No contact number: the conversation has none (web call, API chat), or the one it names
    /// is withheld or not a phone number. Answered like any other outcome (a webhook that can
    /// never succeed must not be refused, or it is redelivered); `reason` says which.
    NoNumber { reason: String },
}

/// The outcome plus per-field problems (a value that does not fit is skipped, never fatal).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationReport {
    pub conversation_id: String,
    #[serde(flatten)]
    pub outcome: ConversationOutcome,
    pub field_errors: Vec<FieldProblem>,
    /// Fields merged by fallback (old, blank line, new), with the reason.
    pub merge_fallbacks: Vec<FieldProblem>,
    /// `overwrite` values NOT written because the conversation ended before the field's last
    /// write (a late or redelivered webhook must not roll a field back).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<StaleField>,
}

/// An `overwrite` skipped because the field holds newer information than the conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaleField {
    pub field: String,
    /// When the conversation ended (else started): what its values are from.
    pub conversation_ended_at: DateTime<Utc>,
    /// When the field's current value is from (see [`ContactRecord::field_basis`]).
    pub field_written_at: DateTime<Utc>,
    /// What wrote the current value (`inbound:salesforce`, `analysis:<id>`, `manual`).
    pub written_by: String,
}

/// A field and what went wrong with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub value: serde_json::Value,
    pub reason: String,
}

/// The merges a conversation needs, found before the write transaction.
pub(crate) struct Prepared {
    pub(crate) number: Number,
    pub(crate) merges: Vec<MergeRequest>,
}

/// The contact number of a conversation, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Number {
    /// E.164.
    Phone(String),
    /// No number to look at (web call, API chat): nothing is recorded.
    Missing,
    /// A number that is withheld or fails validation: the conversation is recorded as applied
    /// to no contact, so a redelivery is a duplicate, and the reason is reported.
    Unusable { reason: String },
}

type MergeKey = (String, String, String);

/// A conversation event with its contact's number already picked and normalized, ready for a
/// group-commit writer ([`Engine::conversation_input`], [`Engine::apply_inputs_blocking`]).
#[derive(Debug, Clone)]
pub struct ConversationInput {
    event: ConversationEvent,
    number: Number,
}

impl ConversationInput {
    /// The event.
    pub fn event(&self) -> &ConversationEvent {
        &self.event
    }
}

/// One event of a batch and its normalized number.
struct BatchItem<'e> {
    event: &'e ConversationEvent,
    number: Number,
}

impl Engine {
    /// Applies one conversation event (resolving `merge` mappings through `merger` first).
    pub async fn apply_conversation(
        &self,
        event: &ConversationEvent,
        merger: &dyn Merger,
    ) -> Result<ConversationReport, EngineError> {
        let prepared = self.prepare_conversation(event, merger)?;
        let mut merged = BTreeMap::new();
        for req in &prepared.merges {
            let outcome = merger.merge(req).await;
            merged.insert(
                (req.field.clone(), req.old.clone(), req.new.clone()),
                outcome,
            );
        }
        self.commit_conversation(event, prepared, merged)
    }

    /// Picks and normalizes the number, then reads the contact and finds the merges (no
    /// writes). With the fallback merger nothing is read: the transaction resolves its merges.
    pub(crate) fn prepare_conversation(
        &self,
        event: &ConversationEvent,
        merger: &dyn Merger,
    ) -> Result<Prepared, EngineError> {
        let number = self.conversation_phone(event);
        let Number::Phone(phone) = &number else {
            return Ok(Prepared {
                number,
                merges: Vec::new(),
            });
        };
        if !self.needs_merge_read(merger) {
            return Ok(Prepared {
                number,
                merges: Vec::new(),
            });
        }
        let merges = self.store.read(|tx| self.find_merges(tx, event, phone))?;
        Ok(Prepared { number, merges })
    }

    /// The E.164 phone of the conversation's contact, or why there is none.
    fn conversation_phone(&self, event: &ConversationEvent) -> Number {
        let Some(number) = conversation_number(event) else {
            return Number::Missing;
        };
        match self.normalize_phone(number) {
            Ok(phone) => Number::Phone(phone),
            Err(err) => Number::Unusable {
                reason: unusable_reason(event, number, &err),
            },
        }
    }

    /// Whether merges must be resolved before the write transaction: only when the rules have
    /// a `merge` mapping and the merger does something the transaction cannot do itself.
    fn needs_merge_read(&self, merger: &dyn Merger) -> bool {
        !merger.is_fallback() && self.ruleset.analysis_has_merge()
    }

    /// Picks and normalizes the event's number, so the event can be queued for
    /// [`Engine::apply_inputs_blocking`]. A group-commit writer applies one batch at a time;
    /// doing this (phone parsing: ~8% of the writer's time) on the submitting thread keeps it
    /// off the writer. A withheld or invalid number is not an error: the event applies with
    /// outcome `no_number`.
    pub fn conversation_input(
        &self,
        event: ConversationEvent,
    ) -> Result<ConversationInput, EngineError> {
        let number = self.conversation_phone(&event);
        Ok(ConversationInput { event, number })
    }

    /// The merges a conversation needs against the stored contact (none when already applied).
    fn find_merges(
        &self,
        tx: &crate::store::ReadTx,
        event: &ConversationEvent,
        phone: &str,
    ) -> Result<Vec<MergeRequest>, EngineError> {
        if tx.conversation(&event.id)?.is_some() {
            return Ok(Vec::new());
        }
        let current = tx.contact(phone)?.map(|c| c.fields).unwrap_or_default();
        Ok(self
            .ruleset
            .eval_analysis_merges(event, &current)
            .into_iter()
            .filter_map(|change| match change {
                Change::Merge {
                    field,
                    old,
                    new,
                    instruction,
                } => Some(MergeRequest {
                    field: field.to_string(),
                    instruction,
                    old,
                    new,
                }),
                Change::Set { .. } => None,
            })
            .collect())
    }

    /// The write transaction of a conversation.
    pub(crate) fn commit_conversation(
        &self,
        event: &ConversationEvent,
        prepared: Prepared,
        merged: BTreeMap<MergeKey, MergeOutcome>,
    ) -> Result<ConversationReport, EngineError> {
        let now = Utc::now();
        match prepared.number {
            Number::Missing => Ok(no_number_report(event, &Number::Missing)),
            unusable @ Number::Unusable { .. } => self
                .store
                .write(|tx| self.record_without_contact(tx, event, &unusable, now)),
            Number::Phone(phone) => self
                .store
                .write(|tx| self.apply_in_tx(tx, event, &phone, &merged, now)),
        }
    }

    /// A conversation whose number is unusable: recorded as applied to no contact (a
    /// redelivery is then a duplicate), reported as `no_number` with the reason.
    fn record_without_contact(
        &self,
        tx: &mut crate::store::WriteTx<'_>,
        event: &ConversationEvent,
        number: &Number,
        now: DateTime<Utc>,
    ) -> Result<ConversationReport, EngineError> {
        if tx.conversation(&event.id)?.is_some() {
            return Ok(empty_report(event, ConversationOutcome::AlreadyApplied));
        }
        tx.mark_conversation_applied(&AppliedConversation {
            conversation_id: event.id.clone(),
            phone: None,
            applied_at: now,
        })?;
        Ok(no_number_report(event, number))
    }

    /// Applies several conversations in ONE write transaction (group commit: one fsync for
    /// the batch). Each event is still all-or-nothing with respect to the others' outcome
    /// reports; a store failure fails the whole batch (nothing of it is written). Events whose
    /// number is invalid get their own error and do not stop the batch.
    pub fn apply_conversations_blocking(
        &self,
        events: &[ConversationEvent],
        merger: &dyn Merger,
    ) -> Result<Vec<Result<ConversationReport, EngineError>>, EngineError> {
        let items = events
            .iter()
            .map(|event| {
                Ok(BatchItem {
                    event,
                    number: self.conversation_phone(event),
                })
            })
            .collect();
        self.apply_batch(items, merger)
    }

    /// [`Engine::apply_conversations_blocking`] for events whose number was already normalized
    /// ([`Engine::conversation_input`]): what a group-commit writer thread calls. One write
    /// transaction, one fsync; a store failure fails the whole batch.
    pub fn apply_inputs_blocking(
        &self,
        inputs: &[ConversationInput],
        merger: &dyn Merger,
    ) -> Result<Vec<ConversationReport>, EngineError> {
        let items = inputs
            .iter()
            .map(|input| {
                Ok(BatchItem {
                    event: &input.event,
                    number: input.number.clone(),
                })
            })
            .collect();
        // Every item is `Ok`, so every report is too.
        self.apply_batch(items, merger)?.into_iter().collect()
    }

    /// The batch: merges resolved first (one read transaction for all, and only when
    /// [`Engine::needs_merge_read`]), then every event in arrival order in ONE write
    /// transaction, each seeing the ones before it.
    fn apply_batch(
        &self,
        items: Vec<Result<BatchItem<'_>, EngineError>>,
        merger: &dyn Merger,
    ) -> Result<Vec<Result<ConversationReport, EngineError>>, EngineError> {
        let merges = if self.needs_merge_read(merger)
            && items.iter().any(|i| {
                matches!(
                    i,
                    Ok(BatchItem {
                        number: Number::Phone(_),
                        ..
                    })
                )
            }) {
            self.resolve_batch_merges(&items, merger)?
        } else {
            Vec::new()
        };
        let no_merges = BTreeMap::new();
        let now = Utc::now();
        self.store.write(|tx| {
            let mut reports = Vec::with_capacity(items.len());
            for (n, item) in items.into_iter().enumerate() {
                reports.push(match item {
                    Err(err) => Err(err),
                    Ok(BatchItem {
                        event,
                        number: Number::Missing,
                    }) => Ok(no_number_report(event, &Number::Missing)),
                    Ok(BatchItem {
                        event,
                        number: unusable @ Number::Unusable { .. },
                    }) => Ok(self.record_without_contact(tx, event, &unusable, now)?),
                    Ok(BatchItem {
                        event,
                        number: Number::Phone(phone),
                    }) => {
                        let merged = merges.get(n).unwrap_or(&no_merges);
                        Ok(self.apply_in_tx(tx, event, &phone, merged, now)?)
                    }
                });
            }
            Ok::<_, EngineError>(reports)
        })
    }

    /// Per item (by position), the merges resolved through `merger` against the contacts as
    /// stored before the batch (one read transaction).
    fn resolve_batch_merges(
        &self,
        items: &[Result<BatchItem<'_>, EngineError>],
        merger: &dyn Merger,
    ) -> Result<Vec<BTreeMap<MergeKey, MergeOutcome>>, EngineError> {
        let requests = self.store.read(|tx| {
            let mut requests = Vec::with_capacity(items.len());
            for item in items {
                requests.push(match item {
                    Ok(BatchItem {
                        event,
                        number: Number::Phone(phone),
                    }) => self.find_merges(tx, event, phone)?,
                    _ => Vec::new(),
                });
            }
            Ok::<_, EngineError>(requests)
        })?;
        Ok(requests
            .iter()
            .map(|reqs| {
                reqs.iter()
                    .map(|req| {
                        let outcome = crate::merge::merge_blocking(merger, req);
                        (
                            (req.field.clone(), req.old.clone(), req.new.clone()),
                            outcome,
                        )
                    })
                    .collect()
            })
            .collect())
    }

    /// One conversation inside a write transaction.
    fn apply_in_tx(
        &self,
        tx: &mut crate::store::WriteTx<'_>,
        event: &ConversationEvent,
        phone: &str,
        merged: &BTreeMap<MergeKey, MergeOutcome>,
        now: chrono::DateTime<Utc>,
    ) -> Result<ConversationReport, EngineError> {
        if tx.conversation(&event.id)?.is_some() {
            return Ok(empty_report(event, ConversationOutcome::AlreadyApplied));
        }
        // The outcome is set once the contact is written, below.
        let mut report = empty_report(event, ConversationOutcome::AlreadyApplied);
        let existing = tx.contact(phone)?;
        let created = existing.is_none();
        let mut contact = existing.unwrap_or_else(|| ContactRecord::new(phone, now));
        let output = self.ruleset.eval_analysis(event, &contact.fields);
        for error in output.errors {
            report.field_errors.push(FieldProblem {
                field: error.field,
                value: error.value,
                reason: error.reason,
            });
        }
        // What the conversation's values are from: compared with each field's basis, and kept
        // as this write's basis, so two conversations order by when they happened, not by when
        // their webhooks arrived.
        let happened = event.end_time.or(event.start_time);
        let source = Source::Analysis {
            conversation_id: event.id.clone(),
            ended_at: happened,
        };
        let mut changed = Vec::new();
        let touched: Vec<String> = output
            .changes
            .iter()
            .map(|c| c.field().to_string())
            .collect();
        for change in output.changes {
            let is_set = matches!(change, Change::Set { .. });
            let (field, value) = match change {
                Change::Set { field, value } => (field.to_string(), value),
                Change::Merge {
                    field,
                    old,
                    new,
                    instruction,
                } => {
                    let field = field.to_string();
                    let key = (field.clone(), old.clone(), new.clone());
                    let outcome = merged.get(&key).cloned().unwrap_or_else(|| {
                        // The stored text changed since the merge was resolved (or it was
                        // never resolved): keep both rather than call an LLM under the lock.
                        let req = MergeRequest {
                            field: field.clone(),
                            instruction,
                            old: old.clone(),
                            new: new.clone(),
                        };
                        fallback_merge(&req, MergeError::NotConfigured)
                    });
                    if let MergeVia::Fallback { reason } = &outcome.via {
                        report.merge_fallbacks.push(FieldProblem {
                            field: field.clone(),
                            value: serde_json::Value::String(new),
                            reason: reason.to_string(),
                        });
                    }
                    (field, Value::String(outcome.text))
                }
            };
            if field == "phone_number" {
                continue;
            }
            if let Some(stale) = stale_overwrite(&contact, &field, happened, is_set) {
                report.stale.push(stale);
                continue;
            }
            if contact.set_field(&field, value, source.clone(), now) {
                changed.push(field);
            }
        }
        if let Some(happened) = happened {
            self.refresh_confirmed(&mut contact, event, &touched, happened);
        }
        let outbound = self.enqueue_outbound(tx, &contact, &changed, now)?;
        let activity = self.enqueue_activity(tx, &contact, event, now)?;
        tx.put_contact(&contact)?;
        tx.mark_conversation_applied(&AppliedConversation {
            conversation_id: event.id.clone(),
            phone: Some(phone.to_string()),
            applied_at: now,
        })?;
        report.outcome = ConversationOutcome::Applied {
            phone: phone.to_string(),
            created,
            changed,
            outbound: outbound.into_keys().collect(),
            activity,
        };
        Ok(report)
    }

    /// Fields whose stored value this conversation repeats (its mapping yields no change
    /// because the value is the same) are marked confirmed at the conversation's time when it
    /// is later: the information is now that recent, so a conversation from before it,
    /// delivered late, cannot replace it. Values, provenance (what WROTE the value) and the
    /// outbox are untouched. Found by evaluating the rules again without those fields (only
    /// when there are candidates).
    fn refresh_confirmed(
        &self,
        contact: &mut ContactRecord,
        event: &ConversationEvent,
        touched: &[String],
        happened: DateTime<Utc>,
    ) {
        let candidates: Vec<&str> = self
            .ruleset
            .analysis_target_fields()
            .filter(|f| !touched.iter().any(|t| t == f))
            .filter(|f| contact.fields.get(*f).is_some_and(|v| !v.is_blank()))
            .filter(|f| contact.field_basis(f).is_some_and(|basis| basis < happened))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let mut probe = contact.fields.clone();
        for field in &candidates {
            probe.remove(*field);
        }
        let output = self.ruleset.eval_analysis(event, &probe);
        for change in output.changes {
            if let Change::Set { field, value } = change {
                if candidates.contains(&field) && contact.fields.get(field) == Some(&value) {
                    contact.confirmed_at.insert(field.to_string(), happened);
                }
            }
        }
    }

    /// Records the activity intent when the contact is linked to the active connection and
    /// that connection logs this kind of conversation.
    fn enqueue_activity(
        &self,
        tx: &mut crate::store::WriteTx<'_>,
        contact: &ContactRecord,
        event: &ConversationEvent,
        now: chrono::DateTime<Utc>,
    ) -> Result<bool, EngineError> {
        let Some(active) = self.active_connection.as_deref() else {
            return Ok(false);
        };
        let Some(record_id) = contact.links.get(active) else {
            return Ok(false);
        };
        let Some(rules) = self.ruleset.connection(active) else {
            return Ok(false);
        };
        let kind = match event.kind {
            crate::event::ConversationKind::Call => ConversationKind::Call,
            crate::event::ConversationKind::Chat => ConversationKind::Chat,
        };
        let logs = match kind {
            ConversationKind::Call => rules.log_calls,
            ConversationKind::Chat => rules.log_chats,
        };
        if !logs {
            return Ok(false);
        }
        let intent = ActivityIntent {
            connection: active.to_string(),
            conversation_id: event.id.clone(),
            record_id: record_id.clone(),
            phone: contact.phone.clone(),
            payload: ActivityPayload {
                conversation_id: event.id.clone(),
                kind,
                direction: match event.direction {
                    Direction::Inbound => "inbound".to_string(),
                    Direction::Outbound => "outbound".to_string(),
                },
                from_number: event.from_number.clone(),
                to_number: event.to_number.clone(),
                start_time: event.start_time,
                end_time: event.end_time,
                duration_ms: event.duration_ms,
                summary: event.summary.clone(),
                disconnection_reason: event.disconnection_reason.clone(),
                agent_id: event.agent_id.clone(),
                outcome: event.call_outcome(),
            },
            state: ActivityState::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            deferred_since: None,
        };
        Ok(tx.enqueue_activity(&intent)?)
    }
}

pub(super) fn empty_report(
    event: &ConversationEvent,
    outcome: ConversationOutcome,
) -> ConversationReport {
    ConversationReport {
        conversation_id: event.id.clone(),
        outcome,
        field_errors: Vec::new(),
        merge_fallbacks: Vec::new(),
        stale: Vec::new(),
    }
}

fn no_number_report(event: &ConversationEvent, number: &Number) -> ConversationReport {
    let reason = match number {
        Number::Unusable { reason } => reason.clone(),
        _ => match event.kind {
            crate::event::ConversationKind::Call => "a web call has no phone number".to_string(),
            crate::event::ConversationKind::Chat => "the chat names no phone number".to_string(),
        },
    };
    empty_report(event, ConversationOutcome::NoNumber { reason })
}

/// The skipped write when a `Set` from a conversation that happened at `happened` would
/// replace a value that is newer. Only a non-empty value is protected: a `Set` over one comes
/// from an `overwrite` mapping (`fill_if_empty` writes only empty fields, and `merge` keeps
/// both texts, so neither can lose newer information). A conversation without times cannot be
/// ordered and applies as before.
fn stale_overwrite(
    contact: &ContactRecord,
    field: &str,
    happened: Option<DateTime<Utc>>,
    is_set: bool,
) -> Option<StaleField> {
    let happened = happened?;
    if !is_set || contact.fields.get(field).is_none_or(Value::is_blank) {
        return None;
    }
    let basis = contact.field_basis(field)?;
    (happened < basis).then(|| StaleField {
        field: field.to_string(),
        conversation_ended_at: happened,
        field_written_at: basis,
        written_by: contact
            .provenance
            .get(field)
            .map(|p| p.source.label())
            .unwrap_or_default(),
    })
}

/// Words telephony providers send in place of a withheld caller id.
const WITHHELD: &[&str] = &[
    "anonymous",
    "restricted",
    "private",
    "unknown",
    "unavailable",
];

/// Why `number` (the contact number of `event`) cannot be used.
fn unusable_reason(event: &ConversationEvent, number: &str, err: &EngineError) -> String {
    let whose = match event.direction {
        Direction::Inbound => "caller's",
        Direction::Outbound => "dialed",
    };
    let word = number.trim().to_ascii_lowercase();
    if WITHHELD.contains(&word.as_str()) {
        format!("the {whose} number is withheld ({number:?})")
    } else {
        format!("the {whose} number is unusable: {err}")
    }
}

/// The contact's number: the caller's on inbound, the dialed one on outbound.
pub(crate) fn conversation_number(event: &ConversationEvent) -> Option<&str> {
    let number = match event.direction {
        Direction::Inbound => event.from_number.as_deref(),
        Direction::Outbound => event.to_number.as_deref(),
    }?;
    (!number.trim().is_empty()).then_some(number)
}
