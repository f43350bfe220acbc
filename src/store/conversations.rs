//! The set of applied conversation ids (what makes re-applying a conversation a no-op).
//!
//! A conversation is applied when it has a row in `applied_conversations` OR an activity intent
//! in `activities` (`tables.rs`): a conversation that owes a CRM activity is recorded by that
//! intent alone. WHY: an event then writes one conversation-keyed row instead of two, and every
//! such row is a random leaf of a B-tree that the durable commit must write out (the events
//! benchmark in BENCHMARKS.md). A dead-lettered activity leaves an applied row behind.

use chrono::{DateTime, Utc};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::outbox::ActivityIntent;
use super::tables::decode;
use super::StoreError;

/// A conversation that was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedConversation {
    pub conversation_id: String,
    /// The contact it applied to (None: no number, nothing to apply).
    pub phone: Option<String>,
    pub applied_at: DateTime<Utc>,
}

impl AppliedConversation {
    /// What an activity intent says about its conversation: it was applied to the intent's
    /// contact when the intent was created (the engine does both in one transaction).
    pub(crate) fn of_activity(intent: &ActivityIntent) -> AppliedConversation {
        AppliedConversation {
            conversation_id: intent.conversation_id.clone(),
            phone: Some(intent.phone.clone()),
            applied_at: intent.created_at,
        }
    }
}

/// The activity intent of a conversation, whichever connection it is for.
pub(crate) fn activity(
    activities: &impl ReadableTable<&'static str, &'static [u8]>,
    conversation_id: &str,
) -> Result<Option<ActivityIntent>, StoreError> {
    match activities.get(conversation_id)? {
        Some(guard) => Ok(Some(decode("activities", conversation_id, guard.value())?)),
        None => Ok(None),
    }
}

/// The activity intent of a conversation, when it is for `connection`.
pub(crate) fn activity_for(
    activities: &impl ReadableTable<&'static str, &'static [u8]>,
    connection: &str,
    conversation_id: &str,
) -> Result<Option<ActivityIntent>, StoreError> {
    Ok(activity(activities, conversation_id)?.filter(|intent| intent.connection == connection))
}

/// The applied-conversation record for this id: its own row, or the activity standing for it.
pub(crate) fn applied(
    conversations: &impl ReadableTable<&'static str, &'static [u8]>,
    activities: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<AppliedConversation>, StoreError> {
    if let Some(guard) = conversations.get(id)? {
        return Ok(Some(decode("applied_conversations", id, guard.value())?));
    }
    Ok(activity(activities, id)?.map(|intent| AppliedConversation::of_activity(&intent)))
}
