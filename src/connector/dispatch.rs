//! Draining the outbox: pending field writes and activity intents go to the active connection.
//!
//! One [`dispatch_pass`] sends everything due at the start of the pass, in batches of at most
//! the CRM's limit (200 Salesforce, 100 HubSpot), so N coalesced changes cost ⌈N / limit⌉
//! write requests. Per record:
//! - written → `mark_write_sent` (remembers the values for echo detection);
//! - refused for good (the CRM's error about the record itself: validation, bad value, missing
//!   field, not found) → dead letter with the CRM's message;
//! - refused for now (throttled, 5xx, locked row, timeout, connection error) → **deferred**:
//!   kept in the outbox and retried in a later pass with backoff, for as long as the
//!   connection's `give_up_after` (24 h by default) from the first failure of the spell; only
//!   past that horizon is it dead-lettered, with the last error. Never counted against an
//!   attempt limit: a throttling spell of any length short of the horizon loses nothing;
//! - an answer that cannot be decoded (a "success" without a record id) → deferred too; a field
//!   write is dead-lettered after `max_delivery_attempts` such answers (an activity stays
//!   `Sending`, so it is looked up before it is sent again, and is bounded by the horizon).
//!
//! Every deferral starting a spell and every dead letter is logged (`tracing` warn).
//!
//! Activities are never duplicated: each is marked `Sending` (committed) before its create
//! request; a create whose outcome is unknown (timeout, 5xx after sending, crash) stays
//! `Sending`, and a `Sending` activity is looked up in the CRM ([`Connector::find_activity`])
//! before it is sent again.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    ActivityInput, ActivityKind, Connector, ConnectorError, RecordUpdate, RejectedField,
    WriteResult,
};
use crate::store::{
    ActivityIntent, ActivityState, ConversationKind, PendingWrite, Store, StoreError,
};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// Records whose field writes the CRM accepted.
    pub written: u64,
    /// Write requests sent (batches).
    pub write_requests: u64,
    /// Activities created in the CRM.
    pub activities_logged: u64,
    /// Activities whose outcome was unknown and that were found already in the CRM.
    pub activities_found: u64,
    /// Writes and activities left for a later pass (transient failures).
    pub deferred: u64,
    /// Moved to the dead-letter list in this pass, with the CRM's message.
    pub dead_lettered: Vec<DeadLettered>,
}

impl DispatchReport {
    pub fn failed(&self) -> u64 {
        self.dead_lettered.len() as u64
    }

    pub fn absorb(&mut self, other: DispatchReport) {
        self.written += other.written;
        self.write_requests += other.write_requests;
        self.activities_logged += other.activities_logged;
        self.activities_found += other.activities_found;
        self.deferred += other.deferred;
        self.dead_lettered.extend(other.dead_lettered);
    }
}

/// One dead letter written by this pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLettered {
    /// `field_write` or `activity`.
    pub kind: &'static str,
    /// CRM record id (writes) or conversation id (activities).
    pub key: String,
    pub message: String,
    /// The one CRM field refused, when the CRM named it (the record's other fields were
    /// sent again without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The connection cannot authenticate: nothing can be delivered until that is fixed.
    #[error(transparent)]
    Connector(ConnectorError),
}

/// What the dispatcher needs besides the connector and the store.
#[derive(Debug, Clone)]
pub struct DispatchTarget {
    /// The active connection's name.
    pub connection: String,
    /// The CRM object field writes go to (`Contact`, `contacts`).
    pub object: String,
}

/// Send everything that is due now. Returns after one pass over the due entries; entries that
/// failed transiently are due again later (see [`retry_at`]).
pub async fn dispatch_pass<C: Connector>(
    connector: &C,
    store: &Store,
    target: &DispatchTarget,
) -> Result<DispatchReport, DispatchError> {
    let now = Utc::now();
    let mut report = DispatchReport::default();
    dispatch_writes(connector, store, target, now, &mut report).await?;
    dispatch_activities(connector, store, target, now, &mut report).await?;
    Ok(report)
}

/// Whether an entry deferred since `since` has waited out the connection's horizon: the first
/// failure of a spell never gives up (it starts the clock).
fn past_horizon<C: Connector>(
    connector: &C,
    since: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> bool {
    let horizon = connector.settings().give_up_after;
    since.is_some_and(|since| (at - since).to_std().is_ok_and(|waited| waited >= horizon))
}

/// The message of an entry given up on at the horizon.
fn gave_up(attempts: u32, since: Option<DateTime<Utc>>, at: DateTime<Utc>, last: &str) -> String {
    let waited = since
        .and_then(|since| (at - since).to_std().ok())
        .map(|d| {
            humantime_serde::re::humantime::format_duration(std::time::Duration::from_secs(
                d.as_secs(),
            ))
            .to_string()
        })
        .unwrap_or_else(|| "0s".into());
    format!("gave up after {waited} of transient errors ({attempts} attempts): {last}")
}

/// When a failed entry is due again: the connection's backoff base doubled per attempt, at
/// most its backoff cap.
pub fn retry_at<C: Connector>(connector: &C, attempts: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    let r = connector.settings().retry;
    let wait = r
        .base_delay
        .saturating_mul(1u32 << attempts.min(16))
        .min(r.max_delay);
    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(60))
}

async fn dispatch_writes<C: Connector>(
    connector: &C,
    store: &Store,
    target: &DispatchTarget,
    now: DateTime<Utc>,
    report: &mut DispatchReport,
) -> Result<(), DispatchError> {
    let limit = connector.settings().kind.write_batch_limit();
    let max_attempts = connector.settings().max_delivery_attempts;
    let conn = target.connection.as_str();
    loop {
        let due = store.due_writes(conn, now, limit)?;
        if due.is_empty() {
            return Ok(());
        }
        let results = send_writes(connector, &target.object, &due, report).await?;
        let mut sent: Vec<(String, BTreeMap<String, serde_json::Value>)> = Vec::new();
        let at = Utc::now();
        for (write, result) in due.iter().zip(results) {
            // A refusal of some fields: those are dead-lettered, the rest is due again now.
            let result = match result {
                WriteResult::FieldsRejected { fields } => {
                    match reject_fields(store, conn, write, fields, at, report)? {
                        None => continue,
                        Some(message) => WriteResult::Rejected {
                            message,
                            permanent: true,
                        },
                    }
                }
                other => other,
            };
            match result.field_write_outcome() {
                Ok(_) => {
                    report.written += 1;
                    sent.push((write.record_id.clone(), write.fields.clone()));
                }
                Err(failure) => {
                    let attempts = write.attempts + 1;
                    let give_up = match &failure {
                        Failure::Refused(message) => Some(message.clone()),
                        Failure::Undecodable(message) if attempts >= max_attempts => {
                            Some(format!("gave up after {attempts} attempts: {message}"))
                        }
                        Failure::Transient(message) | Failure::Undecodable(message)
                            if past_horizon(connector, write.deferred_since, at) =>
                        {
                            Some(gave_up(attempts, write.deferred_since, at, message))
                        }
                        _ => None,
                    };
                    if let Some(message) = give_up {
                        tracing::warn!(connection = conn, record = %write.record_id, %message, "field write dead-lettered");
                        store.dead_letter_write(conn, &write.record_id, &message, at)?;
                        report.dead_lettered.push(DeadLettered {
                            kind: "field_write",
                            key: write.record_id.clone(),
                            message,
                            field: None,
                        });
                    } else {
                        let message = failure.message();
                        let when = retry_at(connector, write.attempts, at);
                        log_deferral(
                            conn,
                            "field write",
                            &write.record_id,
                            write.deferred_since,
                            message,
                            when,
                        );
                        store.mark_write_failed(conn, &write.record_id, message, when)?;
                        report.deferred += 1;
                    }
                }
            }
        }
        if !sent.is_empty() {
            store.mark_write_sent(conn, &sent, at)?;
        }
    }
}

/// One batch; when the CRM refuses the whole request, each record is tried alone so that one
/// bad record does not dead-letter its neighbours.
async fn send_writes<C: Connector>(
    connector: &C,
    object: &str,
    due: &[PendingWrite],
    report: &mut DispatchReport,
) -> Result<Vec<WriteResult>, DispatchError> {
    let batch: Vec<RecordUpdate> = due
        .iter()
        .map(|w| RecordUpdate {
            record_id: w.record_id.clone(),
            fields: w.fields.clone().into_iter().collect(),
        })
        .collect();
    report.write_requests += 1;
    match connector.update_records(object, &batch).await {
        Ok(results) => Ok(results),
        Err(e @ ConnectorError::Auth { .. }) => Err(DispatchError::Connector(e)),
        Err(ConnectorError::Api { message, .. }) if batch.len() > 1 => {
            tracing::warn!(%message, "batch refused as a whole; sending its records one by one");
            let mut out = Vec::with_capacity(batch.len());
            for one in batch.chunks(1) {
                report.write_requests += 1;
                out.push(match connector.update_records(object, one).await {
                    Ok(mut r) if r.len() == 1 => r.remove(0),
                    Ok(_) => WriteResult::Rejected {
                        message: "the CRM returned no result for this record".into(),
                        permanent: false,
                    },
                    Err(e @ ConnectorError::Auth { .. }) => {
                        return Err(DispatchError::Connector(e))
                    }
                    Err(e) => rejection(&e),
                });
            }
            Ok(out)
        }
        Err(e) => Ok(vec![rejection(&e); batch.len()]),
    }
}

/// Why a field write did not land.
enum Failure {
    /// The CRM refused the record for good.
    Refused(String),
    /// Throttled, 5xx, timeout, connection error: deferred up to the horizon.
    Transient(String),
    /// An answer that cannot be read: setting the same values again is harmless, so it is
    /// retried, then dead-lettered after `max_delivery_attempts`.
    Undecodable(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Refused(m) | Failure::Transient(m) | Failure::Undecodable(m) => m,
        }
    }
}

/// Logs a deferral: a warning when it starts a spell of failures, a debug line after that (a
/// long outage would otherwise repeat the same warning for every entry on every pass).
fn log_deferral(
    connection: &str,
    what: &str,
    key: &str,
    deferred_since: Option<DateTime<Utc>>,
    error: &str,
    next_attempt: DateTime<Utc>,
) {
    if deferred_since.is_none() {
        tracing::warn!(connection, key, %error, %next_attempt, "{what} deferred: the CRM is unavailable for now");
    } else {
        tracing::debug!(connection, key, %error, %next_attempt, "{what} still deferred");
    }
}

impl WriteResult {
    /// For field writes: the record id, or why not. A field write is split before a refusal of
    /// some of its fields comes here; an activity cannot be created in part.
    fn field_write_outcome(self) -> Result<String, Failure> {
        match self {
            WriteResult::Written { id } => Ok(id),
            WriteResult::Rejected {
                message,
                permanent: true,
            } => Err(Failure::Refused(message)),
            WriteResult::Rejected { message, .. } => Err(Failure::Transient(message)),
            WriteResult::Undecodable { message } => Err(Failure::Undecodable(message)),
            WriteResult::FieldsRejected { fields } => {
                Err(Failure::Refused(RejectedField::describe_all(&fields)))
            }
        }
    }
}

fn rejection(e: &ConnectorError) -> WriteResult {
    match e {
        ConnectorError::Api { message, .. } => match property_errors(message) {
            Some(fields) => WriteResult::FieldsRejected { fields },
            None => WriteResult::Rejected {
                message: e.to_string(),
                permanent: true,
            },
        },
        // An answer that cannot be read says nothing about the record.
        ConnectorError::Decode { .. } => WriteResult::Undecodable {
            message: e.to_string(),
        },
        _ => WriteResult::Rejected {
            message: e.to_string(),
            permanent: !e.is_transient(),
        },
    }
}

/// The properties named by a refusal of a whole request whose message is HubSpot's
/// `Property values were not valid: [{"isValid":false,"message":..,"error":CODE,"name":..}]`
/// (what HubSpot answers when it refuses a request rather than one input of a batch).
fn property_errors(message: &str) -> Option<Vec<RejectedField>> {
    #[derive(serde::Deserialize)]
    struct Invalid {
        #[serde(default)]
        message: String,
        #[serde(default)]
        error: String,
        name: String,
    }
    const PREFIX: &str = "Property values were not valid: ";
    let list = &message[message.find(PREFIX)? + PREFIX.len()..];
    let items: Vec<Invalid> = serde_json::Deserializer::from_str(list)
        .into_iter()
        .next()?
        .ok()?;
    let fields: Vec<RejectedField> = items
        .into_iter()
        .map(|i| RejectedField {
            field: i.name,
            code: i.error,
            message: i.message,
        })
        .collect();
    (!fields.is_empty()).then_some(fields)
}

/// A write the CRM refused because of some of its fields: those fields become dead letters
/// naming them, the contact is marked out of step for them, and the rest of the write stays
/// due at once, so this pass sends it again without them (each round drops at least one
/// field, so it ends). `Some(message)` when the refusal cannot be split (a named field that
/// this write does not carry): the whole write is refused with that message.
fn reject_fields(
    store: &Store,
    connection: &str,
    write: &PendingWrite,
    fields: Vec<RejectedField>,
    at: DateTime<Utc>,
    report: &mut DispatchReport,
) -> Result<Option<String>, DispatchError> {
    if fields.is_empty() || !fields.iter().all(|f| write.fields.contains_key(&f.field)) {
        let all: Vec<String> = fields.iter().map(RejectedField::describe).collect();
        return Ok(Some(all.join("; ")));
    }
    // One dead letter per field, even when the CRM names a field in several errors.
    let mut refused: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in fields {
        refused
            .entry(f.field)
            .or_default()
            .push(format!("{}: {}", f.code, f.message));
    }
    let refused: Vec<(String, String)> = refused
        .into_iter()
        .map(|(field, messages)| (field, messages.join("; ")))
        .collect();
    store.dead_letter_fields(connection, &write.record_id, &write.fields, &refused, at)?;
    for (field, message) in refused {
        tracing::warn!(record = %write.record_id, %field, %message, "the CRM refused one field; sending the others again without it");
        report.dead_lettered.push(DeadLettered {
            kind: "field_write",
            key: write.record_id.clone(),
            message,
            field: Some(field),
        });
    }
    Ok(None)
}

/// The connector's view of an activity intent.
pub fn activity_input(intent: &ActivityIntent) -> ActivityInput {
    let p = &intent.payload;
    ActivityInput {
        conversation_id: intent.conversation_id.clone(),
        kind: match p.kind {
            ConversationKind::Call => ActivityKind::Call,
            ConversationKind::Chat => ActivityKind::Chat,
        },
        contact_record_id: intent.record_id.clone(),
        direction: Some(p.direction.clone()),
        from_number: p.from_number.clone(),
        to_number: p.to_number.clone(),
        start_time: p.start_time,
        end_time: p.end_time,
        duration_ms: p.duration_ms,
        summary: p.summary.clone(),
        disconnection_reason: p.disconnection_reason.clone(),
        outcome: p.outcome,
    }
}

async fn dispatch_activities<C: Connector>(
    connector: &C,
    store: &Store,
    target: &DispatchTarget,
    now: DateTime<Utc>,
    report: &mut DispatchReport,
) -> Result<(), DispatchError> {
    let limit = connector.settings().kind.write_batch_limit();
    let conn = target.connection.as_str();
    loop {
        let due = store.due_activities(conn, now, limit)?;
        if due.is_empty() {
            return Ok(());
        }
        let mut to_send: Vec<&ActivityIntent> = Vec::with_capacity(due.len());
        let mut unknown: Vec<&ActivityIntent> = Vec::new();
        for intent in &due {
            let sending = matches!(intent.state, ActivityState::Sending { .. });
            if past_horizon(connector, intent.deferred_since, Utc::now()) {
                let last = intent.last_error.as_deref().unwrap_or("no answer");
                let message = gave_up(intent.attempts, intent.deferred_since, Utc::now(), last);
                dead_letter_activity(store, conn, intent, message, sending, report)?;
            } else if sending {
                unknown.push(intent);
            } else {
                to_send.push(intent);
            }
        }
        // Outcome unknown: look before sending again, all of them at once (a failed batch
        // leaves up to a whole batch unknown; one lookup each fell behind for good under
        // sustained CRM faults).
        if !unknown.is_empty() {
            let inputs: Vec<ActivityInput> = unknown.iter().map(|i| activity_input(i)).collect();
            match connector.find_activities(&inputs).await {
                Ok(found) => {
                    for (intent, found) in unknown.into_iter().zip(found) {
                        match found {
                            Some(crm_id) => {
                                store.mark_activity_done(conn, &intent.conversation_id, &crm_id)?;
                                report.activities_found += 1;
                            }
                            None => to_send.push(intent),
                        }
                    }
                }
                Err(e @ ConnectorError::Auth { .. }) => return Err(DispatchError::Connector(e)),
                Err(e) => {
                    // Cannot tell whether they exist: sending again could duplicate them.
                    for intent in unknown {
                        defer_activity(
                            connector,
                            store,
                            conn,
                            intent,
                            &e.to_string(),
                            true,
                            report,
                        )?;
                    }
                }
            }
        }
        if to_send.is_empty() {
            continue;
        }
        let ids: Vec<String> = to_send.iter().map(|i| i.conversation_id.clone()).collect();
        // Committed before the request: a crash from here on leaves "outcome unknown".
        store.mark_activity_sending(conn, &ids)?;
        let inputs: Vec<ActivityInput> = to_send.iter().map(|i| activity_input(i)).collect();
        let outcome = connector.create_activities(&inputs).await;
        match outcome {
            Ok(results) => {
                for (intent, result) in to_send.iter().zip(results) {
                    match result {
                        WriteResult::Written { id: crm_id } => {
                            store.mark_activity_done(conn, &intent.conversation_id, &crm_id)?;
                            report.activities_logged += 1;
                        }
                        // It may exist: stay `Sending`, so it is looked up before it is sent
                        // again.
                        WriteResult::Undecodable { message } => {
                            defer_activity(connector, store, conn, intent, &message, true, report)?;
                        }
                        // A per-record refusal means the record was not created.
                        WriteResult::Rejected {
                            message,
                            permanent: true,
                        } => dead_letter_activity(store, conn, intent, message, false, report)?,
                        WriteResult::Rejected { message, .. } => {
                            defer_activity(
                                connector, store, conn, intent, &message, false, report,
                            )?;
                        }
                        // An activity cannot be created in part: refused as a whole.
                        WriteResult::FieldsRejected { fields } => {
                            let message = RejectedField::describe_all(&fields);
                            dead_letter_activity(store, conn, intent, message, false, report)?;
                        }
                    }
                }
            }
            Err(e @ ConnectorError::Auth { .. }) => {
                // Not sent (a 401 is refused before processing).
                let at = Utc::now();
                for id in &ids {
                    store.mark_activity_failed(conn, id, &e.to_string(), at)?;
                }
                return Err(DispatchError::Connector(e));
            }
            Err(e @ ConnectorError::OutcomeUnknown { .. }) => {
                // Stay `Sending`; due again at once, so the lookup runs in this pass.
                for intent in &to_send {
                    if intent.deferred_since.is_none() {
                        tracing::warn!(connection = conn, conversation = %intent.conversation_id, error = %e, "activity create outcome unknown; it is looked up before it is sent again");
                    }
                    store.mark_activity_unknown(
                        conn,
                        &intent.conversation_id,
                        &e.to_string(),
                        now,
                    )?;
                }
            }
            // An answer that cannot be read: the Tasks may exist.
            Err(e @ ConnectorError::Decode { .. }) => {
                for intent in &to_send {
                    defer_activity(connector, store, conn, intent, &e.to_string(), true, report)?;
                }
            }
            Err(e) if e.is_transient() => {
                for intent in &to_send {
                    defer_activity(
                        connector,
                        store,
                        conn,
                        intent,
                        &e.to_string(),
                        false,
                        report,
                    )?;
                }
            }
            Err(e) => {
                for intent in &to_send {
                    dead_letter_activity(store, conn, intent, e.to_string(), false, report)?;
                }
            }
        }
    }
}

/// Keeps an activity for a later pass: `Sending` (looked up first) when the CRM may have
/// created it, `Pending` when it surely did not.
fn defer_activity<C: Connector>(
    connector: &C,
    store: &Store,
    connection: &str,
    intent: &ActivityIntent,
    error: &str,
    may_exist: bool,
    report: &mut DispatchReport,
) -> Result<(), DispatchError> {
    let id = &intent.conversation_id;
    let when = retry_at(connector, intent.attempts, Utc::now());
    log_deferral(
        connection,
        "activity",
        id,
        intent.deferred_since,
        error,
        when,
    );
    if may_exist {
        store.mark_activity_unknown(connection, id, error, when)?;
    } else {
        store.mark_activity_failed(connection, id, error, when)?;
    }
    report.deferred += 1;
    Ok(())
}

fn dead_letter_activity(
    store: &Store,
    connection: &str,
    intent: &ActivityIntent,
    message: String,
    outcome_unknown: bool,
    report: &mut DispatchReport,
) -> Result<(), DispatchError> {
    let id = &intent.conversation_id;
    tracing::warn!(connection, conversation = %id, %message, outcome_unknown, "activity dead-lettered");
    store.dead_letter_activity_as(connection, id, &message, Utc::now(), outcome_unknown)?;
    report.dead_lettered.push(DeadLettered {
        kind: "activity",
        key: id.clone(),
        message,
        field: None,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_request_names_its_properties_when_hubspot_lists_them() {
        let message = r#"connection `hubspot`: contacts_batch_update: VALIDATION_ERROR: Property values were not valid: [{"isValid":false,"message":"Email address x is invalid","error":"INVALID_EMAIL","name":"email"}]"#;
        let fields = property_errors(message).unwrap();
        assert_eq!(
            fields,
            [RejectedField {
                field: "email".into(),
                code: "INVALID_EMAIL".into(),
                message: "Email address x is invalid".into(),
            }]
        );
        assert!(property_errors("VALIDATION_ERROR: Property values were not valid").is_none());
        assert!(property_errors("OBJECT_NOT_FOUND: gone").is_none());
    }
}
