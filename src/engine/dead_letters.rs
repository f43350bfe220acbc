//! Retrying a dead letter: what it stood for goes through the outbox again.
//!
//! One transaction per dead letter: the letter is marked retried in the same commit that queues
//! it again, so a retry is never queued twice (a second retry of the same id is refused).
//! - a field write (whole, or one refused field) queues the CURRENT value of each of its CRM
//!   fields, computed from the contact by the outbound mappings now in force: the contact may
//!   have changed since, and the old value may be what the CRM refused;
//! - an outbound mapping that failed is evaluated again; when it still fails, the retry is
//!   refused with the reason and the letter stays open;
//! - an activity is queued again for the record its contact is linked to; when its create may
//!   have reached the CRM (`outcome_unknown`), it is queued as "outcome unknown", so the
//!   dispatcher looks it up before sending it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Engine;
use crate::store::{
    ActivityIntent, ActivityPayload, ActivityState, ContactRecord, DeadLetter, DeadLetterError,
    DeadLetterKind, Resolution, WriteTx,
};

/// What one retry queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retried {
    pub id: u64,
    pub kind: DeadLetterKind,
    pub connection: String,
    /// The CRM record the write or activity goes to.
    pub record_id: String,
    /// CRM fields queued (writes), or the conversation id (activities).
    pub queued: Vec<String>,
}

/// The outcome of retrying every open dead letter.
#[derive(Debug, Default, Serialize)]
pub struct RetryAllReport {
    pub retried: Vec<Retried>,
    /// Dead letters that stay open, with why.
    pub refused: Vec<RefusedRetry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefusedRetry {
    pub id: u64,
    pub message: String,
}

impl Engine {
    /// Queues the open dead letter `id` again (see the module doc).
    pub fn retry_dead_letter(&self, id: u64) -> Result<Retried, DeadLetterError> {
        let now = Utc::now();
        self.store().write(|tx| {
            let letter = DeadLetterError::open(tx, id)?;
            let retried = self.requeue(tx, &letter, now)?;
            tx.resolve_dead_letter(letter, Resolution::Retried { at: now })?;
            Ok(retried)
        })
    }

    /// Retries every open dead letter, each in its own transaction; one that cannot be retried
    /// is reported and stays open.
    pub fn retry_all_dead_letters(&self) -> Result<RetryAllReport, DeadLetterError> {
        let mut report = RetryAllReport::default();
        for letter in self.store().dead_letters()? {
            match self.retry_dead_letter(letter.id) {
                Ok(retried) => report.retried.push(retried),
                Err(DeadLetterError::Store(err)) => return Err(err.into()),
                Err(err) => report.refused.push(RefusedRetry {
                    id: letter.id,
                    message: err.to_string(),
                }),
            }
        }
        Ok(report)
    }

    fn requeue(
        &self,
        tx: &mut WriteTx<'_>,
        letter: &DeadLetter,
        now: DateTime<Utc>,
    ) -> Result<Retried, DeadLetterError> {
        let invalid = |reason: String| DeadLetterError::Invalid {
            id: letter.id,
            reason,
        };
        if self.active_connection() != Some(letter.connection.as_str()) {
            return Err(invalid(format!(
                "connection `{}` is not the active connection, which alone is written to",
                letter.connection
            )));
        }
        let phone = letter
            .phone
            .as_deref()
            .ok_or_else(|| invalid("it names no contact".into()))?;
        let mut contact = tx
            .contact(phone)?
            .ok_or_else(|| invalid(format!("contact {phone} no longer exists")))?;
        let record_id = contact
            .links
            .get(&letter.connection)
            .cloned()
            .ok_or_else(|| {
                invalid(format!(
                    "contact {phone} is no longer linked to a `{}` record",
                    letter.connection
                ))
            })?;
        let queued = match letter.kind {
            DeadLetterKind::Activity => {
                let mut payload: ActivityPayload =
                    serde_json::from_value(letter.payload.clone())
                        .map_err(|e| invalid(format!("its activity cannot be read: {e}")))?;
                payload.conversation_id = letter.key.clone();
                let intent = ActivityIntent {
                    connection: letter.connection.clone(),
                    conversation_id: letter.key.clone(),
                    record_id: record_id.clone(),
                    phone: phone.to_string(),
                    payload,
                    // The create may have reached the CRM: look it up before sending again.
                    state: if letter.outcome_unknown {
                        ActivityState::Sending {
                            attempt: letter.attempts,
                        }
                    } else {
                        ActivityState::Pending
                    },
                    attempts: 0,
                    next_attempt_at: now,
                    last_error: None,
                    created_at: now,
                    deferred_since: None,
                };
                if !tx.enqueue_activity(&intent)? {
                    return Err(invalid(format!(
                        "an activity for conversation {} is already queued",
                        letter.key
                    )));
                }
                vec![letter.key.clone()]
            }
            DeadLetterKind::FieldWrite | DeadLetterKind::OutboundMapping => {
                let fields = crm_fields(letter);
                if fields.is_empty() {
                    return Err(invalid("it names no CRM field".into()));
                }
                let values = self
                    .current_values(&contact, &letter.connection, &fields)
                    .map_err(invalid)?;
                // Out of step until the CRM takes (or refuses again) the value queued now.
                if let Some(refused) = contact.out_of_step.get_mut(&letter.connection) {
                    for field in &fields {
                        refused.remove(field);
                    }
                    if refused.is_empty() {
                        contact.out_of_step.remove(&letter.connection);
                    }
                    tx.put_contact(&contact)?;
                }
                tx.enqueue_write(&letter.connection, &record_id, phone, values, now)?;
                fields
            }
        };
        Ok(Retried {
            id: letter.id,
            kind: letter.kind,
            connection: letter.connection.clone(),
            record_id,
            queued,
        })
    }

    /// The value each of `fields` has now, by the outbound mappings of `connection`; an error
    /// names a field whose mapping fails or no longer exists.
    fn current_values(
        &self,
        contact: &ContactRecord,
        connection: &str,
        fields: &[String],
    ) -> Result<std::collections::BTreeMap<String, serde_json::Value>, String> {
        let report = self
            .ruleset()
            .eval_outbound_report(connection, &contact.fields);
        let mut values = std::collections::BTreeMap::new();
        for field in fields {
            if let Some(e) = report.errors.iter().find(|e| &e.field == field) {
                return Err(format!(
                    "outbound mapping `{} -> {}` still fails: {}",
                    e.source, e.field, e.reason
                ));
            }
            match report.values.iter().find(|(name, _)| name == field) {
                Some((_, value)) => {
                    values.insert(field.clone(), value.clone());
                }
                None => {
                    return Err(format!(
                        "the rules no longer compute CRM field `{field}` for contact {}",
                        contact.phone
                    ))
                }
            }
        }
        Ok(values)
    }
}

/// The CRM fields a write or mapping dead letter is about.
fn crm_fields(letter: &DeadLetter) -> Vec<String> {
    match (letter.kind, &letter.field) {
        (DeadLetterKind::FieldWrite, Some(field)) => vec![field.clone()],
        (DeadLetterKind::FieldWrite, None) => letter
            .payload
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default(),
        (DeadLetterKind::OutboundMapping, _) => letter
            .payload
            .get("field")
            .and_then(|f| f.as_str())
            .map(|f| vec![f.to_string()])
            .unwrap_or_default(),
        (DeadLetterKind::Activity, _) => Vec::new(),
    }
}
