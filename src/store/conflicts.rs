//! Conflicts: a CRM field changed in the CRM while a crmsync write to it was still pending.
//!
//! Each conflict is decided by the connection's [`ConflictPolicy`] inside the transaction that
//! imports the CRM record, and recorded here in that same transaction with the outbox change
//! it causes (the losing side's value dropped from the pending write, or kept out of the
//! contact): a crash leaves the decision, its outbox change and its record all present or all
//! absent. The table is append-only, keyed by a sequence number, oldest first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a conflict on one CRM field is decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// The side changed most recently wins: the local change's time (the contact field's
    /// provenance) against the CRM's modification time of the field (HubSpot's per-property
    /// timestamp when read, else the record's modification time).
    #[default]
    LatestWins,
    /// The CRM's value always wins: the pending write of the field is dropped.
    CrmWins,
    /// crmsync's pending value always wins: it is sent and overwrites the CRM's value.
    CrmsyncWins,
}

impl ConflictPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictPolicy::LatestWins => "latest_wins",
            ConflictPolicy::CrmWins => "crm_wins",
            ConflictPolicy::CrmsyncWins => "crmsync_wins",
        }
    }
}

/// Which side a conflict went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictWinner {
    /// The CRM's value stays; crmsync's pending write of the field was dropped and the contact
    /// takes the CRM's value.
    Crm,
    /// crmsync's pending value is sent; the CRM's value was not imported.
    Crmsync,
}

impl ConflictWinner {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictWinner::Crm => "crm",
            ConflictWinner::Crmsync => "crmsync",
        }
    }
}

/// Where the CRM-side time of a conflict came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrmTimeSource {
    /// The property's own modification time (HubSpot `propertiesWithHistory`).
    Property,
    /// The record's modification time (Salesforce `SystemModstamp`, HubSpot `updatedAt`): an
    /// upper bound of when the field changed.
    Record,
    /// The CRM gave no time.
    Unknown,
}

/// One decided conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// Sequence number (the table key); 0 until recorded.
    pub id: u64,
    pub connection: String,
    pub record_id: String,
    /// The contact's phone (E.164).
    pub phone: String,
    /// The contact fields the CRM field's outbound mapping reads.
    pub fields: Vec<String>,
    /// The CRM field both sides changed.
    pub crm_field: String,
    /// crmsync's pending value for the CRM field.
    pub local_value: serde_json::Value,
    /// The CRM's value.
    pub crm_value: serde_json::Value,
    /// When the local change was made (the contact field's provenance time).
    pub local_at: DateTime<Utc>,
    /// When the CRM's value was written, as far as the CRM says.
    pub crm_at: Option<DateTime<Utc>>,
    pub crm_at_source: CrmTimeSource,
    pub winner: ConflictWinner,
    pub policy: ConflictPolicy,
    /// When crmsync decided it.
    pub decided_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_read_as_their_config_names() {
        for policy in [
            ConflictPolicy::LatestWins,
            ConflictPolicy::CrmWins,
            ConflictPolicy::CrmsyncWins,
        ] {
            let yaml = serde_yaml::to_string(&policy).unwrap();
            assert_eq!(yaml.trim(), policy.as_str());
            assert_eq!(
                serde_yaml::from_str::<ConflictPolicy>(policy.as_str()).unwrap(),
                policy
            );
        }
        assert!(serde_yaml::from_str::<ConflictPolicy>("newest").is_err());
    }

    fn conflict(connection: &str, record_id: &str, winner: ConflictWinner) -> Conflict {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        Conflict {
            id: 0,
            connection: connection.into(),
            record_id: record_id.into(),
            phone: "+14155550101".into(),
            fields: vec!["lead_status".into()],
            crm_field: "Lead_Status__c".into(),
            local_value: "Working - Contacted".into(),
            crm_value: "Closed - Converted".into(),
            local_at: at,
            crm_at: Some(at),
            crm_at_source: CrmTimeSource::Record,
            winner,
            policy: ConflictPolicy::LatestWins,
            decided_at: at,
        }
    }

    #[test]
    fn conflicts_are_numbered_listed_in_order_and_paged() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path().join("s.redb")).unwrap();
        let ids = store
            .write(|tx| {
                Ok::<_, crate::store::StoreError>(vec![
                    tx.record_conflict(conflict("salesforce", "003A", ConflictWinner::Crm))?,
                    tx.record_conflict(conflict("hubspot", "501", ConflictWinner::Crmsync))?,
                    tx.record_conflict(conflict("salesforce", "003B", ConflictWinner::Crmsync))?,
                ])
            })
            .unwrap();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(store.conflict_count().unwrap(), 3);
        let all = store.conflicts(None, 0, 10).unwrap();
        assert_eq!(all.iter().map(|c| c.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        let page = store.conflicts(None, 1, 1).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].record_id, "501");
        let sf = store.conflicts(Some("salesforce"), 0, 10).unwrap();
        assert_eq!(
            sf.iter().map(|c| c.record_id.as_str()).collect::<Vec<_>>(),
            vec!["003A", "003B"]
        );
    }

    #[test]
    fn a_dropped_field_leaves_the_rest_of_the_write_and_the_last_one_the_whole_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path().join("s.redb")).unwrap();
        let at = DateTime::<Utc>::UNIX_EPOCH;
        store
            .write(|tx| {
                let fields = [("A", "1"), ("B", "2")]
                    .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
                    .into();
                tx.enqueue_write("salesforce", "003A", "+14155550101", fields, at)?;
                assert_eq!(
                    tx.drop_pending_field("salesforce", "003A", "A")?,
                    Some("1".into())
                );
                assert_eq!(tx.drop_pending_field("salesforce", "003A", "Z")?, None);
                let left = tx.pending_write("salesforce", "003A")?.unwrap();
                assert_eq!(left.fields.keys().collect::<Vec<_>>(), vec!["B"]);
                tx.drop_pending_field("salesforce", "003A", "B")?;
                assert_eq!(tx.pending_write("salesforce", "003A")?, None);
                Ok::<_, crate::store::StoreError>(())
            })
            .unwrap();
    }
}
