//! The set of applied conversation ids (what makes re-applying a conversation a no-op).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A conversation that was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedConversation {
    pub conversation_id: String,
    /// The contact it applied to (None: no number, nothing to apply).
    pub phone: Option<String>,
    pub applied_at: DateTime<Utc>,
}
