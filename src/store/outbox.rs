//! The transactional outbox: pending field writes, activity intents, dead letters.
//!
//! Intents are written by the engine in the same transaction as the contact change that caused
//! them; the dispatcher (connector module) drains them through the methods on `Store` below.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use crate::event::CallOutcome;

/// Field writes waiting for one CRM record. Several changes coalesce: `fields` always holds the
/// latest value per CRM field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingWrite {
    pub connection: String,
    pub record_id: String,
    /// The contact the record is linked to.
    pub phone: String,
    /// CRM field → value to write.
    pub fields: BTreeMap<String, serde_json::Value>,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// Not due before this time (backoff after a failure).
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// When the oldest still-pending change was enqueued.
    pub enqueued_at: DateTime<Utc>,
    /// When the current run of transient failures began (`None` while none failed): the entry
    /// is deferred, and dead-lettered once this is older than the connection's
    /// `give_up_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_since: Option<DateTime<Utc>>,
}

/// Where an activity intent stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ActivityState {
    /// Not sent yet, or definitely not created by the CRM.
    Pending,
    /// A create request was (or may have been) sent and its outcome is unknown: the dispatcher
    /// must look the activity up in the CRM before sending it again.
    Sending { attempt: u32 },
    /// Created in the CRM with this id.
    Done { crm_id: String },
}

/// Call or chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Call,
    Chat,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Call => "call",
            ConversationKind::Chat => "chat",
        }
    }
}

/// What a CRM activity record needs to say about the conversation (`docs/sync-semantics.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityPayload {
    pub conversation_id: String,
    pub kind: ConversationKind,
    /// `inbound` or `outbound`.
    pub direction: String,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    pub summary: Option<String>,
    pub disconnection_reason: Option<String>,
    pub agent_id: Option<String>,
    /// What became of a call (no answer, busy, voicemail, ...): the status the CRM logs it
    /// with. Absent for chats and for intents stored before it was recorded; the connectors
    /// then derive it from `disconnection_reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<CallOutcome>,
}

/// One call/chat to log as a CRM activity on a linked record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityIntent {
    pub connection: String,
    pub conversation_id: String,
    /// The CRM record the activity is associated with (Salesforce `WhoId`, HubSpot contact id).
    pub record_id: String,
    pub phone: String,
    pub payload: ActivityPayload,
    #[serde(flatten)]
    pub state: ActivityState,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the current run of transient failures began (see [`PendingWrite::deferred_since`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_since: Option<DateTime<Utc>>,
}

/// What a dead letter was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    FieldWrite,
    Activity,
    /// An outbound mapping that failed to evaluate (coercion, function error): the CRM field
    /// it writes was never queued.
    OutboundMapping,
}

/// A write or activity the CRM rejected for good, or an outbound value that could not be
/// computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Sequence number (the table key).
    pub id: u64,
    pub kind: DeadLetterKind,
    pub connection: String,
    /// The CRM record id (field writes) or the conversation id (activities).
    pub key: String,
    pub phone: Option<String>,
    /// The fields or the activity that could not be written.
    pub payload: serde_json::Value,
    /// The CRM's message (or why the outbound mapping failed).
    pub message: String,
    pub attempts: u32,
    pub at: DateTime<Utc>,
    /// The one CRM field this dead letter is about, when the CRM refused a single field of a
    /// write (its other fields were sent without it); `None` for a whole write or an activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// An activity whose create may have reached the CRM (its answer never came back): a retry
    /// looks it up before sending it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outcome_unknown: bool,
    /// What became of it: `None` while it is open (listed, counted). A retried or discarded
    /// dead letter keeps its row and its id, so ids are never reused and a discard's reason
    /// stays on record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
}

/// How an operator acted on a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Resolution {
    /// Queued again in the outbox.
    Retried { at: DateTime<Utc> },
    /// Given up on, with the operator's reason.
    Discarded { at: DateTime<Utc>, reason: String },
}

impl DeadLetter {
    /// Still waiting for an operator.
    pub fn is_open(&self) -> bool {
        self.resolution.is_none()
    }
}

impl super::WriteTx<'_> {
    /// The dead letter with this id, open or not.
    pub fn dead_letter(&self, id: u64) -> Result<Option<DeadLetter>, super::StoreError> {
        match self.dead.get(id)? {
            Some(guard) => Ok(Some(super::tables::decode(
                "dead_letters",
                &id.to_string(),
                guard.value(),
            )?)),
            None => Ok(None),
        }
    }

    /// Records what became of `letter` (it is no longer open).
    pub fn resolve_dead_letter(
        &mut self,
        mut letter: DeadLetter,
        resolution: Resolution,
    ) -> Result<(), super::StoreError> {
        letter.resolution = Some(resolution);
        let bytes = super::tables::encode(&letter)?;
        self.dead.insert(letter.id, bytes.as_slice())?;
        Ok(())
    }
}

/// Why a dead letter cannot be acted on.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("no dead letter #{0}")]
    NotFound(u64),
    #[error("dead letter #{id} was already {what}")]
    Resolved { id: u64, what: String },
    #[error("dead letter #{id}: {reason}")]
    Invalid { id: u64, reason: String },
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

impl DeadLetterError {
    /// The open dead letter `id`, or why there is none.
    pub fn open(tx: &super::WriteTx<'_>, id: u64) -> Result<DeadLetter, DeadLetterError> {
        let letter = tx.dead_letter(id)?.ok_or(DeadLetterError::NotFound(id))?;
        match &letter.resolution {
            None => Ok(letter),
            Some(Resolution::Retried { at }) => Err(DeadLetterError::Resolved {
                id,
                what: format!("retried at {}", at.to_rfc3339()),
            }),
            Some(Resolution::Discarded { at, reason }) => Err(DeadLetterError::Resolved {
                id,
                what: format!("discarded at {} ({reason})", at.to_rfc3339()),
            }),
        }
    }
}

impl super::Store {
    /// Discards the open dead letter `id` with the operator's `reason` (kept on its row).
    pub fn discard_dead_letter(
        &self,
        id: u64,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<DeadLetter, DeadLetterError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(DeadLetterError::Invalid {
                id,
                reason: "a discard needs a reason".into(),
            });
        }
        self.write(|tx| {
            let letter = DeadLetterError::open(tx, id)?;
            let resolution = Resolution::Discarded {
                at,
                reason: reason.to_string(),
            };
            tx.resolve_dead_letter(letter.clone(), resolution.clone())?;
            Ok(DeadLetter {
                resolution: Some(resolution),
                ..letter
            })
        })
    }

    /// Every dead letter ever written, open or resolved, oldest first.
    pub fn dead_letter_history(&self) -> Result<Vec<DeadLetter>, super::StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.dead.iter()? {
                let (key, value) = entry?;
                out.push(super::tables::decode::<DeadLetter>(
                    "dead_letters",
                    &key.value().to_string(),
                    value.value(),
                )?);
            }
            Ok(out)
        })
    }
}

impl super::Store {
    /// The CRM refused `refused` (CRM field, message) of the write `sent` to `record_id`: each
    /// becomes a dead letter naming its field, the linked contact is marked out of step for it,
    /// and the rest of the pending write stays due, unchanged, to be sent again without them.
    /// A refused field whose pending value changed since `sent` stays pending: the new value
    /// may be fine. One transaction.
    pub fn dead_letter_fields(
        &self,
        connection: &str,
        record_id: &str,
        sent: &BTreeMap<String, serde_json::Value>,
        refused: &[(String, String)],
        at: DateTime<Utc>,
    ) -> Result<(), super::StoreError> {
        self.write(|tx| {
            let Some(mut write) = tx.pending_write(connection, record_id)? else {
                return Ok(());
            };
            let mut contact = tx.contact(&write.phone)?;
            for (field, message) in refused {
                let Some(value) = sent.get(field) else {
                    continue;
                };
                if write.fields.get(field) == Some(value) {
                    write.fields.remove(field);
                }
                tx.add_dead_letter(DeadLetter {
                    id: 0,
                    kind: DeadLetterKind::FieldWrite,
                    connection: connection.to_string(),
                    key: record_id.to_string(),
                    phone: Some(write.phone.clone()),
                    payload: serde_json::json!({ field.as_str(): value }),
                    message: message.clone(),
                    attempts: write.attempts + 1,
                    at,
                    field: Some(field.clone()),
                    outcome_unknown: false,
                    resolution: None,
                })?;
                if let Some(contact) = contact.as_mut() {
                    contact
                        .out_of_step
                        .entry(connection.to_string())
                        .or_default()
                        .insert(
                            field.clone(),
                            super::OutOfStep {
                                value: value.clone(),
                                message: message.clone(),
                                since: at,
                            },
                        );
                }
            }
            if let Some(contact) = &contact {
                tx.put_contact(contact)?;
            }
            if write.fields.is_empty() {
                tx.pending.remove((connection, record_id))?;
            } else {
                tx.put_pending(&write)?;
            }
            Ok(())
        })
    }
}

/// Sizes for metrics and `crmsync outbox`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxCounts {
    pub pending_writes: u64,
    pub pending_activities: u64,
    /// Activities whose create outcome is unknown (will be looked up before resending).
    pub sending_activities: u64,
    pub done_activities: u64,
    pub dead_letters: u64,
    /// Pending writes waiting out transient failures (throttling, 5xx, timeouts, connection
    /// errors), and the same for activities.
    #[serde(default)]
    pub deferred_writes: u64,
    #[serde(default)]
    pub deferred_activities: u64,
}

/// Merges `fields` into a pending write (latest value per CRM field wins).
pub(crate) fn coalesce(
    existing: Option<PendingWrite>,
    connection: &str,
    record_id: &str,
    phone: &str,
    fields: BTreeMap<String, serde_json::Value>,
    now: DateTime<Utc>,
) -> PendingWrite {
    match existing {
        Some(mut write) => {
            write.fields.extend(fields);
            write.phone = phone.to_string();
            write
        }
        None => PendingWrite {
            connection: connection.to_string(),
            record_id: record_id.to_string(),
            phone: phone.to_string(),
            fields,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            enqueued_at: now,
            deferred_since: None,
        },
    }
}

/// An open intent's key in `open_activities` (see `tables.rs`).
pub(crate) fn open_key(intent: &ActivityIntent) -> (&str, i64, &str) {
    (
        intent.connection.as_str(),
        // Out of range only after the year 2262.
        intent.created_at.timestamp_nanos_opt().unwrap_or(i64::MAX),
        intent.conversation_id.as_str(),
    )
}
