//! Conversation analysis: one conversation event → the contact of its number, in one store
//! transaction, with the outbound write and activity intents it causes.
//!
//! The number is picked by direction (the caller's on inbound, the dialed one on outbound);
//! a conversation without one (web call, API chat) does nothing. An unknown number creates the
//! contact. `merge` mappings are resolved through the [`Merger`] BEFORE the write transaction
//! opens (an LLM call must not hold the store's write lock); inside the transaction the rules
//! are evaluated over the then-current fields, and a merge whose inputs changed in the
//! meantime, or that was never resolved, falls back to keeping both texts — which is all the
//! fallback merger does, so with it nothing is read before the transaction. Re-applying a
//! conversation id is a no-op.

use std::collections::BTreeMap;

use chrono::Utc;
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
    /// The conversation has no phone number (web call or API chat); nothing to apply.
    NoNumber,
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
    pub(crate) phone: Option<String>,
    pub(crate) merges: Vec<MergeRequest>,
}

type MergeKey = (String, String, String);

/// A conversation event with its contact's number already picked and normalized, ready for a
/// group-commit writer ([`Engine::conversation_input`], [`Engine::apply_inputs_blocking`]).
#[derive(Debug, Clone)]
pub struct ConversationInput {
    event: ConversationEvent,
    /// E.164; `None` when the conversation has no number (nothing to apply).
    phone: Option<String>,
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
    phone: Option<String>,
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
        let Some(phone) = self.conversation_phone(event)? else {
            return Ok(Prepared {
                phone: None,
                merges: Vec::new(),
            });
        };
        if !self.needs_merge_read(merger) {
            return Ok(Prepared {
                phone: Some(phone),
                merges: Vec::new(),
            });
        }
        let merges = self.store.read(|tx| self.find_merges(tx, event, &phone))?;
        Ok(Prepared {
            phone: Some(phone),
            merges,
        })
    }

    /// The E.164 phone of the conversation's contact; `None` when it has no number.
    fn conversation_phone(&self, event: &ConversationEvent) -> Result<Option<String>, EngineError> {
        conversation_number(event)
            .map(|number| self.normalize_phone(number))
            .transpose()
    }

    /// Whether merges must be resolved before the write transaction: only when the rules have
    /// a `merge` mapping and the merger does something the transaction cannot do itself.
    fn needs_merge_read(&self, merger: &dyn Merger) -> bool {
        !merger.is_fallback() && self.ruleset.analysis_has_merge()
    }

    /// Picks and normalizes the event's number, so the event can be queued for
    /// [`Engine::apply_inputs_blocking`]. A group-commit writer applies one batch at a time;
    /// doing this (phone parsing: ~8% of the writer's time) on the submitting thread keeps it
    /// off the writer. An invalid number is the submitter's error to answer.
    pub fn conversation_input(
        &self,
        event: ConversationEvent,
    ) -> Result<ConversationInput, EngineError> {
        let phone = self.conversation_phone(&event)?;
        Ok(ConversationInput { event, phone })
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
        let Some(phone) = prepared.phone else {
            return Ok(empty_report(event, ConversationOutcome::NoNumber));
        };
        let now = Utc::now();
        self.store
            .write(|tx| self.apply_in_tx(tx, event, &phone, &merged, now))
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
                self.conversation_phone(event)
                    .map(|phone| BatchItem { event, phone })
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
                    phone: input.phone.clone(),
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
            && items
                .iter()
                .any(|i| matches!(i, Ok(i) if i.phone.is_some()))
        {
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
                    Ok(BatchItem { event, phone: None }) => {
                        Ok(empty_report(event, ConversationOutcome::NoNumber))
                    }
                    Ok(BatchItem {
                        event,
                        phone: Some(phone),
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
                        phone: Some(phone),
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
        let mut report = empty_report(event, ConversationOutcome::NoNumber);
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
        let source = Source::Analysis {
            conversation_id: event.id.clone(),
        };
        let mut changed = Vec::new();
        for change in output.changes {
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
            if contact.set_field(&field, value, source.clone(), now) {
                changed.push(field);
            }
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
        };
        Ok(tx.enqueue_activity(&intent)?)
    }
}

fn empty_report(event: &ConversationEvent, outcome: ConversationOutcome) -> ConversationReport {
    ConversationReport {
        conversation_id: event.id.clone(),
        outcome,
        field_errors: Vec::new(),
        merge_fallbacks: Vec::new(),
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
