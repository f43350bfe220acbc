//! What a sync run did: the inbound read, the dispatch, and the API calls it cost.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::dispatch::DispatchReport;
use super::{ConnectorKind, MetricsSnapshot, SyncCursor};
use crate::engine::{Duplicate, FirstLink, ImportReport, RecordFieldError, Skipped};
use crate::store::{Conflict, ConflictWinner};

/// The inbound half of a sync.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InboundReport {
    /// `full` or `incremental`.
    pub mode: &'static str,
    pub pages: u64,
    pub read: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Records not imported, each with its reason (missing or unparsable phone, ...).
    pub skipped: Vec<Skipped>,
    /// Records read that lost to a more recently modified record with the same phone.
    pub duplicates: Vec<Duplicate>,
    /// Records read that the CRM reports archived (not imported; unlinked when linked).
    pub archived: usize,
    /// Records that held a phone and lost it to a more recently modified record read in this
    /// sync; each is counted where it was read (if it was), not again here.
    pub displaced: Vec<Duplicate>,
    /// Fields that could not be coerced; the rest of the record applied.
    pub field_errors: Vec<RecordFieldError>,
    /// Links removed because the CRM deleted, archived or merged the record.
    pub unlinked: usize,
    /// CRM changes to fields crmsync had a pending write for, each with its winner.
    pub conflicts: Vec<Conflict>,
    /// Existing contacts linked for the first time: local values kept over the record's empty
    /// ones, and queued for the record.
    pub first_links: Vec<FirstLink>,
    /// The cursor after the sync.
    pub cursor: Option<SyncCursor>,
}

impl InboundReport {
    /// Every record read, counted once: created + updated + unchanged + skipped + duplicates
    /// + archived. Equals `read` (tests/sync_counts.rs).
    pub fn accounted(&self) -> usize {
        self.created
            + self.updated
            + self.unchanged
            + self.skipped.len()
            + self.duplicates.len()
            + self.archived
    }

    pub(crate) fn absorb(&mut self, page: ImportReport) {
        self.pages += 1;
        self.read += page.read;
        self.created += page.created;
        self.updated += page.updated;
        self.unchanged += page.unchanged;
        self.archived += page.archived;
        self.unlinked += page.unlinked;
        self.displaced.extend(page.displaced);
        self.skipped.extend(page.skipped);
        self.duplicates.extend(page.duplicates);
        self.field_errors.extend(page.field_errors);
        self.conflicts.extend(page.conflicts);
        self.first_links.extend(page.first_links);
    }

    /// Conflicts won by each side: (CRM, crmsync).
    pub fn conflict_wins(&self) -> (usize, usize) {
        let crm = self
            .conflicts
            .iter()
            .filter(|c| c.winner == ConflictWinner::Crm)
            .count();
        (crm, self.conflicts.len() - crm)
    }

    /// Skipped records counted by reason, most frequent first.
    pub fn skipped_by_reason(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for s in &self.skipped {
            *counts.entry(s.reason.clone()).or_insert(0) += 1;
        }
        let mut v: Vec<_> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

/// One `crmsync sync` (or one scheduled sync of the daemon).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncReport {
    pub connection: String,
    pub kind: ConnectorKind,
    pub inbound: InboundReport,
    /// `None` when the connection is not the active one (nothing is pushed to it).
    pub dispatch: Option<DispatchReport>,
    /// Requests this run sent, by endpoint, with retries and throttling.
    pub api: MetricsSnapshot,
    pub duration_ms: u64,
}

impl SyncReport {
    /// The human summary printed by `crmsync sync`.
    pub fn render(&self) -> String {
        let i = &self.inbound;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} sync of `{}` ({}) in {:.1} s",
            i.mode,
            self.connection,
            self.kind.as_str(),
            self.duration_ms as f64 / 1000.0
        );
        let _ = writeln!(
            s,
            "  read {}  created {}  updated {}  unchanged {}  skipped {}  duplicates {}  archived {}  unlinked {}",
            i.read,
            i.created,
            i.updated,
            i.unchanged,
            i.skipped.len(),
            i.duplicates.len(),
            i.archived,
            i.unlinked
        );
        for d in i.displaced.iter().take(10) {
            let _ = writeln!(
                s,
                "    record {} lost {} to the more recently modified {}",
                d.record_id, d.phone, d.kept_record_id
            );
        }
        for (reason, n) in i.skipped_by_reason().iter().take(10) {
            let _ = writeln!(s, "    skipped {n}: {reason}");
        }
        if !i.field_errors.is_empty() {
            let _ = writeln!(s, "  field errors {}", i.field_errors.len());
            for e in i.field_errors.iter().take(10) {
                let _ = writeln!(
                    s,
                    "    record {} field {}: {} ({})",
                    e.record_id, e.field, e.value, e.reason
                );
            }
        }
        if !i.conflicts.is_empty() {
            let (crm, crmsync) = i.conflict_wins();
            let _ = writeln!(
                s,
                "  conflicts {}  (CRM won {crm}, crmsync won {crmsync})",
                i.conflicts.len()
            );
            for c in i.conflicts.iter().take(10) {
                let _ = writeln!(s, "    {}", describe_conflict(c));
            }
        }
        if !i.first_links.is_empty() {
            let kept: usize = i.first_links.iter().map(|f| f.kept.len()).sum();
            let pushed: usize = i.first_links.iter().map(|f| f.pushed.len()).sum();
            let _ = writeln!(
                s,
                "  first links {}  (local values kept {kept}, queued for the CRM {pushed})",
                i.first_links.len()
            );
            for f in i.first_links.iter().take(10) {
                let _ = writeln!(
                    s,
                    "    record {} ({}): kept [{}], queued [{}]",
                    f.record_id,
                    f.phone,
                    f.kept.join(", "),
                    f.pushed.join(", ")
                );
            }
        }
        match &self.dispatch {
            Some(d) => {
                let _ = writeln!(
                    s,
                    "  written {} ({} requests)  activities logged {}  found already logged {}  deferred {}  failed {}",
                    d.written,
                    d.write_requests,
                    d.activities_logged,
                    d.activities_found,
                    d.deferred,
                    d.failed()
                );
                for f in d.dead_lettered.iter().take(10) {
                    let _ = writeln!(s, "    dead letter {} {}: {}", f.kind, f.key, f.message);
                }
            }
            None => {
                let _ = writeln!(s, "  not the active connection: nothing pushed");
            }
        }
        let calls: Vec<String> = self
            .api
            .calls_by_endpoint
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "  API calls {} ({})  retries {}  throttled {}  token refreshes {}",
            self.api.total_calls(),
            calls.join(", "),
            self.api.retries,
            self.api.throttled,
            self.api.token_refreshes
        );
        s
    }
}

/// One line about a conflict: where, both values and times, who won and by which policy.
pub fn describe_conflict(c: &Conflict) -> String {
    let crm_at = match c.crm_at {
        Some(at) => format!(
            "{} ({})",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            match c.crm_at_source {
                crate::store::CrmTimeSource::Property => "property",
                crate::store::CrmTimeSource::Record => "record",
                crate::store::CrmTimeSource::Unknown => "unknown",
            }
        ),
        None => "unknown".to_string(),
    };
    format!(
        "{} record {} ({}) {} [{}]: crmsync {} at {} vs CRM {} at {}: {} wins ({})",
        c.connection,
        c.record_id,
        c.phone,
        c.crm_field,
        c.fields.join(", "),
        c.local_value,
        c.local_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        c.crm_value,
        crm_at,
        c.winner.as_str(),
        c.policy.as_str()
    )
}
