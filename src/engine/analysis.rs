//! Conversation analysis: one conversation event → the contact of its number, in one store
//! transaction, with the outbound write and activity intents it causes.
//!
//! The number is picked by direction (the caller's on inbound, the dialed one on outbound);
//! a conversation without one (web call, API chat) does nothing. An unknown number creates the
//! contact. `merge` mappings are resolved through the [`Merger`] BEFORE the write transaction
//! opens (an LLM call must not hold the store's write lock); inside the transaction the rules
//! are evaluated again over the then-current fields, and a merge whose inputs changed in the
//! meantime falls back to keeping both texts. Re-applying a conversation id is a no-op.

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

impl Engine {
    /// Applies one conversation event (resolving `merge` mappings through `merger` first).
    pub async fn apply_conversation(
        &self,
        event: &ConversationEvent,
        merger: &dyn Merger,
    ) -> Result<ConversationReport, EngineError> {
        let prepared = self.prepare_conversation(event)?;
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

    /// Reads the contact and finds the merges (no writes).
    pub(crate) fn prepare_conversation(
        &self,
        event: &ConversationEvent,
    ) -> Result<Prepared, EngineError> {
        let Some(number) = conversation_number(event) else {
            return Ok(Prepared {
                phone: None,
                merges: Vec::new(),
            });
        };
        let phone = self.normalize_phone(number)?;
        if !self.ruleset.analysis_has_merge() {
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

    /// [`Engine::prepare_conversation`] for a batch, with one read transaction for all.
    fn prepare_conversations(
        &self,
        events: &[ConversationEvent],
    ) -> Result<Vec<Result<Prepared, EngineError>>, EngineError> {
        let phones: Vec<Result<Option<String>, EngineError>> = events
            .iter()
            .map(|event| {
                conversation_number(event)
                    .map(|number| self.normalize_phone(number))
                    .transpose()
            })
            .collect();
        let needs_read =
            self.ruleset.analysis_has_merge() && phones.iter().any(|p| matches!(p, Ok(Some(_))));
        if !needs_read {
            return Ok(phones
                .into_iter()
                .map(|phone| {
                    phone.map(|phone| Prepared {
                        phone,
                        merges: Vec::new(),
                    })
                })
                .collect());
        }
        self.store.read(|tx| {
            let mut prepared = Vec::with_capacity(events.len());
            for (event, phone) in events.iter().zip(phones) {
                prepared.push(match phone {
                    Err(err) => Err(err),
                    Ok(None) => Ok(Prepared {
                        phone: None,
                        merges: Vec::new(),
                    }),
                    Ok(Some(phone)) => self.find_merges(tx, event, &phone).map(|merges| Prepared {
                        phone: Some(phone),
                        merges,
                    }),
                });
            }
            Ok::<_, EngineError>(prepared)
        })
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
        let mut prepared = Vec::with_capacity(events.len());
        for p in self.prepare_conversations(events)? {
            prepared.push(p.map(|p| {
                let merged: BTreeMap<MergeKey, MergeOutcome> = p
                    .merges
                    .iter()
                    .map(|req| {
                        let outcome = crate::merge::merge_blocking(merger, req);
                        (
                            (req.field.clone(), req.old.clone(), req.new.clone()),
                            outcome,
                        )
                    })
                    .collect();
                (p.phone, merged)
            }));
        }
        let now = Utc::now();
        self.store.write(|tx| {
            let mut reports = Vec::with_capacity(events.len());
            for (event, prepared) in events.iter().zip(prepared) {
                reports.push(match prepared {
                    Err(err) => Err(err),
                    Ok((None, _)) => Ok(empty_report(event, ConversationOutcome::NoNumber)),
                    Ok((Some(phone), merged)) => {
                        Ok(self.apply_in_tx(tx, event, &phone, &merged, now)?)
                    }
                });
            }
            Ok::<_, EngineError>(reports)
        })
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
