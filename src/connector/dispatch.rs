//! Draining the outbox: pending field writes and activity intents go to the active connection.
//!
//! One [`dispatch_pass`] sends everything due at the start of the pass, in batches of at most
//! the CRM's limit (200 Salesforce, 100 HubSpot), so N coalesced changes cost ⌈N / limit⌉
//! write requests. Per record:
//! - written → `mark_write_sent` (remembers the values for echo detection);
//! - refused for good → dead letter with the CRM's message;
//! - refused for now (locked row, throttled, attempts of the request exhausted) → retried in a
//!   later pass with backoff, dead-lettered after `max_delivery_attempts`;
//! - an answer that cannot be decoded (a "success" without a record id) → the same as refused
//!   for now (an activity stays `Sending`, so it is looked up before it is sent again).
//!
//! Activities are never duplicated: each is marked `Sending` (committed) before its create
//! request; a create whose outcome is unknown (timeout, 5xx after sending, crash) stays
//! `Sending`, and a `Sending` activity is looked up in the CRM ([`Connector::find_activity`])
//! before it is sent again.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ActivityInput, ActivityKind, Connector, ConnectorError, RecordUpdate, WriteResult};
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
            match result.field_write_outcome() {
                Ok(_) => {
                    report.written += 1;
                    sent.push((write.record_id.clone(), write.fields.clone()));
                }
                Err((message, permanent)) => {
                    if permanent || write.attempts + 1 >= max_attempts {
                        store.dead_letter_write(conn, &write.record_id, &message, at)?;
                        report.dead_lettered.push(DeadLettered {
                            kind: "field_write",
                            key: write.record_id.clone(),
                            message,
                        });
                    } else {
                        let when = retry_at(connector, write.attempts, at);
                        store.mark_write_failed(conn, &write.record_id, &message, when)?;
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

impl WriteResult {
    /// For field writes: the record id, or the refusal's (message, permanent). An undecodable
    /// answer is refused for now: setting the same values again is harmless, so it is retried,
    /// then dead-lettered with its message.
    fn field_write_outcome(self) -> Result<String, (String, bool)> {
        match self {
            WriteResult::Written { id } => Ok(id),
            WriteResult::Rejected { message, permanent } => Err((message, permanent)),
            WriteResult::Undecodable { message } => Err((message, false)),
        }
    }
}

fn rejection(e: &ConnectorError) -> WriteResult {
    WriteResult::Rejected {
        message: e.to_string(),
        permanent: !e.is_transient(),
    }
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
    let max_attempts = connector.settings().max_delivery_attempts;
    let conn = target.connection.as_str();
    loop {
        let due = store.due_activities(conn, now, limit)?;
        if due.is_empty() {
            return Ok(());
        }
        // Outcome unknown: look before sending again.
        let mut to_send: Vec<&ActivityIntent> = Vec::with_capacity(due.len());
        for intent in &due {
            if matches!(intent.state, ActivityState::Sending { .. }) {
                match connector.find_activity(&activity_input(intent)).await {
                    Ok(Some(crm_id)) => {
                        store.mark_activity_done(conn, &intent.conversation_id, &crm_id)?;
                        report.activities_found += 1;
                        continue;
                    }
                    Ok(None) => {}
                    Err(e @ ConnectorError::Auth { .. }) => {
                        return Err(DispatchError::Connector(e))
                    }
                    Err(e) => {
                        // Cannot tell whether it exists: sending again could duplicate it.
                        let when = retry_at(connector, intent.attempts, Utc::now());
                        store.mark_activity_unknown(
                            conn,
                            &intent.conversation_id,
                            &e.to_string(),
                            when,
                        )?;
                        report.deferred += 1;
                        continue;
                    }
                }
            }
            if intent.attempts >= max_attempts {
                let message = intent
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "too many attempts".into());
                let message = format!("gave up after {} attempts: {message}", intent.attempts);
                store.dead_letter_activity(conn, &intent.conversation_id, &message, Utc::now())?;
                report.dead_lettered.push(DeadLettered {
                    kind: "activity",
                    key: intent.conversation_id.clone(),
                    message,
                });
                continue;
            }
            to_send.push(intent);
        }
        if to_send.is_empty() {
            continue;
        }
        let ids: Vec<String> = to_send.iter().map(|i| i.conversation_id.clone()).collect();
        // Committed before the request: a crash from here on leaves "outcome unknown".
        store.mark_activity_sending(conn, &ids)?;
        let inputs: Vec<ActivityInput> = to_send.iter().map(|i| activity_input(i)).collect();
        let outcome = connector.create_activities(&inputs).await;
        let at = Utc::now();
        match outcome {
            Ok(results) => {
                for (intent, result) in to_send.iter().zip(results) {
                    let id = &intent.conversation_id;
                    match result {
                        WriteResult::Written { id: crm_id } => {
                            store.mark_activity_done(conn, id, &crm_id)?;
                            report.activities_logged += 1;
                        }
                        WriteResult::Undecodable { message } => {
                            // It may exist: stay `Sending`, so it is looked up before it is
                            // sent again.
                            let when = retry_at(connector, intent.attempts, at);
                            store.mark_activity_unknown(conn, id, &message, when)?;
                            report.deferred += 1;
                        }
                        WriteResult::Rejected { message, permanent } => {
                            // A per-record refusal means the record was not created.
                            if permanent || intent.attempts + 1 >= max_attempts {
                                store.dead_letter_activity(conn, id, &message, at)?;
                                report.dead_lettered.push(DeadLettered {
                                    kind: "activity",
                                    key: id.clone(),
                                    message,
                                });
                            } else {
                                let when = retry_at(connector, intent.attempts, at);
                                store.mark_activity_failed(conn, id, &message, when)?;
                                report.deferred += 1;
                            }
                        }
                    }
                }
            }
            Err(e @ ConnectorError::Auth { .. }) => {
                // Not sent (a 401 is refused before processing).
                for id in &ids {
                    store.mark_activity_failed(conn, id, &e.to_string(), at)?;
                }
                return Err(DispatchError::Connector(e));
            }
            Err(e @ ConnectorError::OutcomeUnknown { .. }) => {
                // Stay `Sending`; due again at once, so the lookup runs in this pass.
                for id in &ids {
                    store.mark_activity_unknown(conn, id, &e.to_string(), now)?;
                }
            }
            Err(e) if e.is_transient() => {
                for intent in &to_send {
                    let when = retry_at(connector, intent.attempts, at);
                    store.mark_activity_failed(
                        conn,
                        &intent.conversation_id,
                        &e.to_string(),
                        when,
                    )?;
                    report.deferred += 1;
                }
            }
            Err(e) => {
                for id in &ids {
                    let message = e.to_string();
                    store.dead_letter_activity(conn, id, &message, at)?;
                    report.dead_lettered.push(DeadLettered {
                        kind: "activity",
                        key: id.clone(),
                        message,
                    });
                }
            }
        }
    }
}
