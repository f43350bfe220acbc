//! Applying rules to events: each event is ONE store write transaction that writes the contact
//! changes and the outbound/activity intents they cause (transactional outbox).
//!
//! - [`Engine::import_page`] (`inbound.rs`): one page of CRM records through a connection's
//!   inbound rules.
//! - [`Engine::apply_conversation`] (`analysis.rs`): one conversation event through the
//!   `analysis` rules; `merge` mappings are resolved through a [`Merger`] before the write
//!   transaction opens. Retell webhook bodies are read by [`retell::parse_webhook`]; a chat's
//!   contact is found by [`Engine::resolve_retell`] (`chat_contact.rs`).
//! - [`Engine::manual_set`] (`manual.rs`): a manual edit, validated against the field types.
//! - `reconcile.rs`: echoes, conflicts (decided by the connection's [`ConflictPolicy`]) and
//!   first links, inside an import.
//! - `outbound.rs`: the outbound write and activity intents every non-inbound change causes.
//! - [`Engine::dynamic_variables`] (`vars.rs`): a contact's fields as agent variables.
//! - [`FreshShare`] (`share.rs`): how a bulk import splits evaluation between its two threads.

mod analysis;
mod chat_contact;
mod dead_letters;
mod inbound;
mod manual;
mod outbound;
mod reconcile;
pub mod retell;
mod share;
mod vars;

use std::collections::BTreeMap;

use crate::lang::eval::Ruleset;
use crate::merge::Merger;
use crate::store::{ConflictPolicy, Store, StoreError};
use crate::value::phone::PhoneError;

pub use analysis::{ConversationInput, ConversationOutcome, ConversationReport, StaleField};
pub use chat_contact::ResolvedEvent;
pub use dead_letters::{RefusedRetry, Retried, RetryAllReport};
pub use inbound::{
    is_record_id, Duplicate, ImportReport, PageBatch, PreparedPage, RecordFieldError, RecordKeys,
    Skipped,
};
pub use manual::{ManualReport, OwnedField};
pub use reconcile::FirstLink;
pub use share::FreshShare;

/// Errors for callers; each names the thing that was wrong.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unknown connection `{name}`{}", known_list(.known))]
    UnknownConnection { name: String, known: Vec<String> },
    #[error("the active connection `{0}` is not defined in the rule set")]
    UnknownActiveConnection(String),
    #[error("invalid phone number {input:?}: {reason}")]
    InvalidPhone { input: String, reason: PhoneError },
    #[error("unknown field `{field}`{}", did_you_mean(.suggestion))]
    UnknownField {
        field: String,
        suggestion: Option<String>,
    },
    #[error("field `{field}` cannot be set: {reason}")]
    ReadOnlyField { field: String, reason: String },
    #[error("field `{field}` ({expected}): {value} is not a valid value: {reason}")]
    WrongType {
        field: String,
        expected: String,
        value: String,
        reason: String,
    },
    #[error("no contact with phone {0}")]
    NoContact(String),
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (the rule set defines no connection)".to_string()
    } else {
        format!(" (the rule set defines: {})", known.join(", "))
    }
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

/// The engine: a store, a compiled rule set, and the active connection.
pub struct Engine {
    store: Store,
    ruleset: Ruleset,
    active_connection: Option<String>,
    /// Per connection: (CRM field, contact fields its outbound mapping reads).
    outbound_links: BTreeMap<String, Vec<(String, Vec<String>)>>,
    /// Per connection: how a CRM change to a field with a pending write is decided (absent:
    /// [`ConflictPolicy::LatestWins`]).
    conflict_policies: BTreeMap<String, ConflictPolicy>,
}

impl Engine {
    /// An engine over `store` and a compile result. The active connection is `active` when
    /// given (it must be defined in the rule set), else the rule set's only connection, else
    /// none (then nothing is ever pushed). Phone numbers without a country code are read in
    /// region `US`; see [`Engine::with_region`].
    ///
    /// WHY a `Compiled` and not just its `Ruleset`: the checked program says exactly which
    /// contact fields each outbound mapping reads (its source and its guard), which decides
    /// what a change pushes.
    pub fn new(
        store: Store,
        compiled: crate::lang::Compiled,
        active: Option<&str>,
    ) -> Result<Engine, EngineError> {
        let ruleset = compiled.ruleset;
        let names = connection_names(&ruleset);
        let active_connection = match active {
            Some(name) if names.iter().any(|n| n == name) => Some(name.to_string()),
            Some(name) => return Err(EngineError::UnknownActiveConnection(name.to_string())),
            None if names.len() == 1 => names.into_iter().next(),
            None => None,
        };
        Ok(Engine {
            store,
            ruleset,
            active_connection,
            outbound_links: outbound::links_from_program(&compiled.program),
            conflict_policies: BTreeMap::new(),
        })
    }

    /// Reads numbers without a country code in `region` (ISO 3166, e.g. `GB`); the default
    /// is the rule set's (`US` unless set).
    pub fn with_region(mut self, region: &str) -> Result<Engine, EngineError> {
        self.ruleset
            .set_default_region(region)
            .map_err(|err| match err {
                crate::lang::eval::RulesetError::Region(reason) => EngineError::InvalidPhone {
                    input: format!("default region {region}"),
                    reason,
                },
            })?;
        Ok(self)
    }

    /// Decides conflicts on `connection` (a connection of the rule set) by `policy`.
    pub fn with_conflict_policy(
        mut self,
        connection: &str,
        policy: ConflictPolicy,
    ) -> Result<Engine, EngineError> {
        self.require_connection(connection)?;
        self.conflict_policies
            .insert(connection.to_string(), policy);
        Ok(self)
    }

    /// How conflicts on `connection` are decided.
    pub fn conflict_policy(&self, connection: &str) -> ConflictPolicy {
        self.conflict_policies
            .get(connection)
            .copied()
            .unwrap_or_default()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn ruleset(&self) -> &Ruleset {
        &self.ruleset
    }

    /// The connection outbound writes and activities go to.
    pub fn active_connection(&self) -> Option<&str> {
        self.active_connection.as_deref()
    }

    /// Normalizes a phone number to E.164 (the contact key).
    pub fn normalize_phone(&self, input: &str) -> Result<String, EngineError> {
        self.ruleset
            .phone()
            .normalize(input)
            .map_err(|reason| EngineError::InvalidPhone {
                input: input.to_string(),
                reason,
            })
    }

    /// Checks that `name` is a connection of the rule set.
    pub fn require_connection(&self, name: &str) -> Result<(), EngineError> {
        let names = connection_names(&self.ruleset);
        if names.iter().any(|n| n == name) {
            Ok(())
        } else {
            Err(EngineError::UnknownConnection {
                name: name.to_string(),
                known: names,
            })
        }
    }

    /// Resolves merges with `merger` from synchronous code (the CLI); see
    /// [`Engine::apply_conversation`].
    pub fn apply_conversation_blocking(
        &self,
        event: &crate::event::ConversationEvent,
        merger: &dyn Merger,
    ) -> Result<ConversationReport, EngineError> {
        let prepared = self.prepare_conversation(event, merger)?;
        let merged: BTreeMap<_, _> = prepared
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
        self.commit_conversation(event, prepared, merged)
    }
}

fn connection_names(ruleset: &Ruleset) -> Vec<String> {
    ruleset
        .connections()
        .iter()
        .map(|c| c.name.clone())
        .collect()
}
