//! Connectors: the only code that talks HTTP to a CRM.
//!
//! [`Connector`] is the one trait both CRMs implement (read pages since a cursor, describe
//! fields, list deletions, write a batch of field updates, write a batch of activities, find an
//! activity whose outcome is unknown). [`salesforce::SalesforceConnector`] and
//! [`hubspot::HubspotConnector`] implement it over the wire contracts of
//! `docs/sandbox.md`; [`AnyConnector`] picks one at run time.
//!
//! Around them: [`sync`] runs one inbound sync into the store, [`dispatch`] drains the outbox,
//! [`report`] is what both return. [`client`] sends each request with the rate limiter
//! ([`ratelimit`]), auth ([`auth`]) and backoff ([`retry`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::CallOutcome;

pub mod auth;
pub mod client;
pub mod config;
pub mod dispatch;
pub mod endpoint;
pub mod hubspot;
pub mod metrics;
pub mod ratelimit;
pub mod report;
pub mod retry;
pub mod salesforce;
pub mod sync;

/// How far an inbound sync has read: `(modstamp, last_id)`, stored with each committed page.
pub use crate::store::SyncCursor;
pub use config::{ConnectionConfig, ConnectionSettings, Credentials};
pub use metrics::MetricsSnapshot;

/// Which CRM a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    Salesforce,
    Hubspot,
}

impl ConnectorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Salesforce => "salesforce",
            ConnectorKind::Hubspot => "hubspot",
        }
    }

    /// Most records one write request may carry (README "How it works", Delivery).
    pub fn write_batch_limit(self) -> usize {
        match self {
            ConnectorKind::Salesforce => 200,
            ConnectorKind::Hubspot => 100,
        }
    }
}

impl From<crate::lang::eval::ConnectionKind> for ConnectorKind {
    fn from(k: crate::lang::eval::ConnectionKind) -> Self {
        match k {
            crate::lang::eval::ConnectionKind::Salesforce => ConnectorKind::Salesforce,
            crate::lang::eval::ConnectionKind::Hubspot => ConnectorKind::Hubspot,
        }
    }
}

/// A CRM record as the CRM's API returned it, with the two facts sync needs pulled out.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmRecord {
    pub id: String,
    /// `SystemModstamp` (Salesforce) or `lastmodifieddate` (HubSpot).
    pub modified: DateTime<Utc>,
    /// The record exactly as the API returned it (Salesforce: flat fields with `attributes`;
    /// HubSpot: `{id, properties: {..}, createdAt, updatedAt, archived}`).
    pub raw: serde_json::Value,
}

/// Where the next read starts. `since: None` is a full read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadPosition {
    /// Records modified at or after this instant (the cursor minus the overlap window).
    pub since: Option<DateTime<Utc>>,
    /// Connector-specific paging state (Salesforce `nextRecordsUrl`, HubSpot `after`).
    pub token: Option<String>,
}

/// One page of records.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub records: Vec<CrmRecord>,
    /// Where to continue; `None` after the last page.
    pub next: Option<ReadPosition>,
    /// How many records the whole read will return, when the CRM says.
    pub total: Option<u64>,
    /// The records come in `(modified, id)` order, so the cursor may advance after this page.
    /// A full HubSpot list read is in id order: its cursor may only move once it is complete.
    pub ordered: bool,
}

/// A record the CRM deleted, archived or merged away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedRecord {
    pub id: String,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// One field of the CRM object, from describe / the properties API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrmField {
    pub name: String,
    /// The CRM's own type name (`picklist`, `enumeration`, `phone`, ...).
    pub crm_type: String,
    pub updateable: bool,
    /// Picklist / enumeration values.
    pub options: Vec<String>,
}

/// The CRM object's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Schema {
    pub object: String,
    pub fields: BTreeMap<String, CrmField>,
    /// Salesforce relationship names (`Account` for `AccountId`), usable as path roots.
    pub relationships: BTreeSet<String>,
}

impl Schema {
    /// Whether a source path like `Email` or `Account.Name` starts at a known field.
    pub fn has_path_root(&self, path: &str) -> bool {
        let root = path.split('.').next().unwrap_or(path);
        self.fields.contains_key(root) || self.relationships.contains(root)
    }
}

/// Field values to write to one CRM record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordUpdate {
    pub record_id: String,
    /// CRM field name → value, already formatted for the CRM by the outbound rules.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// What the CRM said about one record of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteResult {
    /// Written; the CRM id of the record (the created activity's id for creates).
    Written { id: String },
    /// Refused, with the CRM's message. `permanent` rejections go to the dead-letter list.
    Rejected { message: String, permanent: bool },
    /// Refused for good because of these fields alone (the CRM named each one, and nothing
    /// else was wrong): the record's other fields can be sent again without them.
    FieldsRejected { fields: Vec<RejectedField> },
    /// The CRM's answer for this record cannot be decoded (a "success" without a record id):
    /// it may or may not have been applied, so it is neither `Written` nor `Rejected`. The
    /// dispatcher retries (an update is idempotent; an activity is looked up before it is sent
    /// again) and dead-letters it after the connection's attempts, with `message`.
    Undecodable { message: String },
}

/// A field the CRM refused, with its error code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedField {
    /// The CRM's field name (`Email`, `email`).
    pub field: String,
    pub code: String,
    pub message: String,
}

impl RejectedField {
    /// `field: CODE: message` for reports and dead letters.
    pub fn describe(&self) -> String {
        format!("{}: {}: {}", self.field, self.code, self.message)
    }

    /// Every refused field, described and joined with `; `.
    pub fn describe_all(fields: &[RejectedField]) -> String {
        fields
            .iter()
            .map(RejectedField::describe)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The message of [`WriteResult::Undecodable`] for a success that names no record.
pub(crate) const SUCCESS_WITHOUT_ID: &str =
    "unexpected response: the CRM reported success without a record id";

/// Call or chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKind {
    Call,
    Chat,
}

/// A conversation to log on a CRM contact.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityInput {
    /// The conversation id: the idempotency key (`Subject = "Call <id>"`).
    pub conversation_id: String,
    pub kind: ActivityKind,
    /// The CRM id of the contact record the activity belongs to.
    pub contact_record_id: String,
    /// `inbound` / `outbound`.
    pub direction: Option<String>,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    pub summary: Option<String>,
    pub disconnection_reason: Option<String>,
    /// What became of a call; `None` when not recorded (derived from `disconnection_reason`).
    pub outcome: Option<CallOutcome>,
}

impl ActivityInput {
    /// What became of the call (a chat counts as connected).
    pub fn call_outcome(&self) -> CallOutcome {
        match self.kind {
            ActivityKind::Chat => CallOutcome::Connected,
            ActivityKind::Call => self
                .outcome
                .unwrap_or_else(|| CallOutcome::of(self.disconnection_reason.as_deref(), None)),
        }
    }

    /// The subject/title the activity is created with and found by.
    pub fn subject(&self) -> String {
        match self.kind {
            ActivityKind::Call => format!("Call {}", self.conversation_id),
            ActivityKind::Chat => format!("Chat {}", self.conversation_id),
        }
    }

    /// The activity's text: the id, numbers, disconnection reason and summary.
    pub fn description(&self) -> String {
        let mut lines = vec![format!(
            "{} id: {}",
            match self.kind {
                ActivityKind::Call => "Call",
                ActivityKind::Chat => "Chat",
            },
            self.conversation_id
        )];
        if let Some(d) = &self.direction {
            lines.push(format!("Direction: {d}"));
        }
        if let Some(f) = &self.from_number {
            lines.push(format!("From: {f}"));
        }
        if let Some(t) = &self.to_number {
            lines.push(format!("To: {t}"));
        }
        if let Some(r) = &self.disconnection_reason {
            lines.push(format!("Disconnection reason: {r}"));
        }
        let outcome = self.call_outcome();
        if !outcome.connected() {
            lines.push(format!("Outcome: {}", outcome.label()));
        }
        if let Some(s) = &self.summary {
            lines.push(String::new());
            lines.push(s.clone());
        }
        lines.join("\n")
    }

    /// When the conversation happened (end, else start).
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.end_time.or(self.start_time)
    }
}

/// A failure talking to a CRM. Every variant names the connection, and the endpoint where one
/// was involved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectorError {
    #[error("connection `{connection}`: {endpoint}: {message}")]
    Api {
        connection: String,
        endpoint: &'static str,
        message: String,
    },
    #[error("connection `{connection}`: {endpoint}: gave up after {attempts} attempts: {message}")]
    Exhausted {
        connection: String,
        endpoint: &'static str,
        attempts: u32,
        message: String,
    },
    #[error("connection `{connection}`: {endpoint}: outcome unknown, the CRM may have applied it: {message}")]
    OutcomeUnknown {
        connection: String,
        endpoint: &'static str,
        message: String,
    },
    #[error("connection `{connection}`: authentication failed: {message}")]
    Auth { connection: String, message: String },
    #[error("connection `{connection}`: {endpoint}: unexpected response: {message}")]
    Decode {
        connection: String,
        endpoint: &'static str,
        message: String,
    },
    #[error("connection `{connection}`: {endpoint}: {message}")]
    Transport {
        connection: String,
        endpoint: &'static str,
        message: String,
    },
}

impl ConnectorError {
    /// Worth trying again later (a later dispatch pass), as opposed to a refusal.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ConnectorError::Exhausted { .. }
                | ConnectorError::OutcomeUnknown { .. }
                | ConnectorError::Transport { .. }
        )
    }
}

/// The operations sync and dispatch need from a CRM. Methods return `Send` futures so that a
/// connector can be driven from spawned tasks.
pub trait Connector: Send + Sync {
    fn settings(&self) -> &ConnectionSettings;

    /// The request counters so far.
    fn metrics(&self) -> MetricsSnapshot;

    /// Field names, types and picklist values of `object`.
    fn describe(&self, object: &str)
        -> impl Future<Output = Result<Schema, ConnectorError>> + Send;

    /// One page of `object` records with `fields`, from `pos`.
    fn read_page(
        &self,
        object: &str,
        fields: &[String],
        pos: &ReadPosition,
    ) -> impl Future<Output = Result<Page, ConnectorError>> + Send;

    /// Records deleted, archived or merged away since `since`.
    fn read_deleted(
        &self,
        object: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<DeletedRecord>, ConnectorError>> + Send;

    /// Update up to [`ConnectorKind::write_batch_limit`] records in one request; one result per
    /// input, in order.
    fn update_records(
        &self,
        object: &str,
        batch: &[RecordUpdate],
    ) -> impl Future<Output = Result<Vec<WriteResult>, ConnectorError>> + Send;

    /// Create up to the batch limit of activities in one request; one result per input.
    /// [`ConnectorError::OutcomeUnknown`] means some may exist: look them up with
    /// [`Connector::find_activity`] before sending again.
    fn create_activities(
        &self,
        batch: &[ActivityInput],
    ) -> impl Future<Output = Result<Vec<WriteResult>, ConnectorError>> + Send;

    /// The CRM id of an already-logged activity for this conversation on this contact.
    fn find_activity(
        &self,
        activity: &ActivityInput,
    ) -> impl Future<Output = Result<Option<String>, ConnectorError>> + Send;

    /// [`Connector::find_activity`] for each of `batch`, in order. WHY a batch: after a failed
    /// batch create every activity of it is "outcome unknown"; looking them up one request
    /// each made a dispatcher under sustained CRM faults spend its requests on lookups and fall
    /// behind for good (BENCHMARKS.md, "Soak"). A CRM that can ask once does.
    fn find_activities(
        &self,
        batch: &[ActivityInput],
    ) -> impl Future<Output = Result<Vec<Option<String>>, ConnectorError>> + Send;

    /// Per record id, when each of `properties` got its value, in the CRM's own shape
    /// (HubSpot's `propertiesWithHistory`); empty for a CRM that keeps no per-field times
    /// (Salesforce gives a record's modification time only). Sync reads it for records with a
    /// pending write, to decide conflicts by the field's time.
    fn read_property_history(
        &self,
        _object: &str,
        _ids: &[String],
        _properties: &[String],
    ) -> impl Future<Output = Result<HashMap<String, serde_json::Value>, ConnectorError>> + Send
    {
        async { Ok(HashMap::new()) }
    }
}

/// Either connector, chosen at run time from the connection's kind.
#[derive(Debug)]
pub enum AnyConnector {
    Salesforce(salesforce::SalesforceConnector),
    Hubspot(hubspot::HubspotConnector),
}

impl AnyConnector {
    pub fn new(settings: ConnectionSettings) -> Result<Self, ConnectorError> {
        Ok(match settings.kind {
            ConnectorKind::Salesforce => {
                AnyConnector::Salesforce(salesforce::SalesforceConnector::new(settings)?)
            }
            ConnectorKind::Hubspot => {
                AnyConnector::Hubspot(hubspot::HubspotConnector::new(settings)?)
            }
        })
    }
}

macro_rules! delegate {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            AnyConnector::Salesforce($c) => $e,
            AnyConnector::Hubspot($c) => $e,
        }
    };
}

impl Connector for AnyConnector {
    fn settings(&self) -> &ConnectionSettings {
        delegate!(self, c => c.settings())
    }
    fn metrics(&self) -> MetricsSnapshot {
        delegate!(self, c => c.metrics())
    }
    async fn describe(&self, object: &str) -> Result<Schema, ConnectorError> {
        delegate!(self, c => c.describe(object).await)
    }
    async fn read_page(
        &self,
        object: &str,
        fields: &[String],
        pos: &ReadPosition,
    ) -> Result<Page, ConnectorError> {
        delegate!(self, c => c.read_page(object, fields, pos).await)
    }
    async fn read_deleted(
        &self,
        object: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DeletedRecord>, ConnectorError> {
        delegate!(self, c => c.read_deleted(object, since).await)
    }
    async fn update_records(
        &self,
        object: &str,
        batch: &[RecordUpdate],
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        delegate!(self, c => c.update_records(object, batch).await)
    }
    async fn create_activities(
        &self,
        batch: &[ActivityInput],
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        delegate!(self, c => c.create_activities(batch).await)
    }
    async fn find_activity(
        &self,
        activity: &ActivityInput,
    ) -> Result<Option<String>, ConnectorError> {
        delegate!(self, c => c.find_activity(activity).await)
    }
    async fn find_activities(
        &self,
        batch: &[ActivityInput],
    ) -> Result<Vec<Option<String>>, ConnectorError> {
        delegate!(self, c => c.find_activities(batch).await)
    }
    async fn read_property_history(
        &self,
        object: &str,
        ids: &[String],
        properties: &[String],
    ) -> Result<HashMap<String, serde_json::Value>, ConnectorError> {
        delegate!(self, c => c.read_property_history(object, ids, properties).await)
    }
}

/// Parse the CRMs' datetime formats: RFC 3339 (`2024-09-11T13:27:39.356Z`), Salesforce's
/// `2013-05-20T20:49:32.000+0000`, and epoch milliseconds.
pub fn parse_crm_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(d.with_timezone(&Utc));
    }
    s.parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crm_datetimes_parse() {
        let a = parse_crm_datetime("2013-05-20T20:49:32.000+0000").unwrap();
        let b = parse_crm_datetime("2013-05-20T20:49:32Z").unwrap();
        let c = parse_crm_datetime("1369082972000").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!(parse_crm_datetime("yesterday").is_none());
    }
}
