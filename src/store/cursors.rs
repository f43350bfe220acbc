//! Per-connection inbound sync cursors.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where incremental inbound sync resumes: records modified at or after `modstamp` (with an
/// overlap window applied by the connector), ties broken by record id. Ordered by
/// (`modstamp`, `last_id`); the store only ever moves a cursor forward.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SyncCursor {
    pub modstamp: DateTime<Utc>,
    pub last_id: String,
}
