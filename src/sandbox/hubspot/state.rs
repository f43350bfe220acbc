//! The sandbox portal: one table per object type, associations between records, the sandbox
//! clock (real time plus a test offset, `crate::sandbox::clock`) and the search-lag setting.

use std::collections::HashMap;

use super::schema::ObjectKind;
use super::seed_contacts::SeededContacts;
use super::table::{Due, ObjectTable};
use crate::sandbox::clock::SandboxClock;

/// The shared epoch (2026-01-01T00:00:00Z): seeded records are older.
pub const CLOCK_START_MS: i64 = crate::sandbox::seed::SANDBOX_EPOCH_MS;

/// How long a write stays invisible to search. Zero for both means search sees writes at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchLag {
    /// The write becomes visible once this many further requests (of any kind) have arrived.
    pub requests: u64,
    /// ... and once the sandbox clock (real time) has moved this far past the write.
    pub sandbox_ms: i64,
}

impl SearchLag {
    pub fn is_zero(&self) -> bool {
        self.requests == 0 && self.sandbox_ms == 0
    }
}

/// A directed association between two records, with HubSpot's type id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssociationEdge {
    pub to_kind: ObjectKind,
    pub to_id: u64,
    pub type_id: u32,
}

/// The HubSpot-defined association type ids for a pair, in both directions (crm_apis.md §1.10):
/// `(from -> to, to -> from)`.
pub fn association_types(from: ObjectKind, to: ObjectKind) -> Option<(u32, u32)> {
    match (from, to) {
        (ObjectKind::Calls, ObjectKind::Contacts) => Some((194, 193)),
        (ObjectKind::Contacts, ObjectKind::Calls) => Some((193, 194)),
        (ObjectKind::Communications, ObjectKind::Contacts) => Some((81, 82)),
        (ObjectKind::Contacts, ObjectKind::Communications) => Some((82, 81)),
        _ => None,
    }
}

/// Associations between records, indexed from both ends.
#[derive(Debug, Default)]
pub struct Associations {
    edges: HashMap<(ObjectKind, u64), Vec<AssociationEdge>>,
}

impl Associations {
    /// Adds `from -> to` and its reverse; adding an existing association is a no-op.
    pub fn associate(&mut self, from: (ObjectKind, u64), to: (ObjectKind, u64)) -> bool {
        let Some((forward, reverse)) = association_types(from.0, to.0) else {
            return false;
        };
        let out = self.edges.entry(from).or_default();
        let edge = AssociationEdge {
            to_kind: to.0,
            to_id: to.1,
            type_id: forward,
        };
        if !out.contains(&edge) {
            out.push(edge);
        }
        let back = self.edges.entry(to).or_default();
        let edge = AssociationEdge {
            to_kind: from.0,
            to_id: from.1,
            type_id: reverse,
        };
        if !back.contains(&edge) {
            back.push(edge);
        }
        true
    }

    /// Associations of one record to records of `to_kind`.
    pub fn of(&self, from: (ObjectKind, u64), to_kind: ObjectKind) -> Vec<AssociationEdge> {
        self.edges
            .get(&from)
            .map(|edges| {
                edges
                    .iter()
                    .filter(|e| e.to_kind == to_kind)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Moves every association of `loser` to `primary` (contact merge).
    pub fn repoint(&mut self, kind: ObjectKind, loser: u64, primary: u64) {
        let Some(edges) = self.edges.remove(&(kind, loser)) else {
            return;
        };
        for edge in edges {
            if let Some(back) = self.edges.get_mut(&(edge.to_kind, edge.to_id)) {
                back.retain(|e| !(e.to_kind == kind && e.to_id == loser));
            }
            self.associate((kind, primary), (edge.to_kind, edge.to_id));
        }
    }
}

/// The whole sandbox portal.
#[derive(Debug)]
pub struct PortalState {
    tables: [ObjectTable; 3],
    pub associations: Associations,
    /// Real time in epoch ms plus what tests added, never going back.
    clock: SandboxClock,
    next_id: u64,
    /// Requests received so far (any endpoint); drives the request-count search lag.
    pub request_seq: u64,
    pub search_lag: SearchLag,
}

impl PortalState {
    pub fn new(seeded: SeededContacts) -> Self {
        PortalState {
            tables: ObjectKind::ALL.map(|kind| {
                let seed = (kind == ObjectKind::Contacts).then_some(seeded);
                ObjectTable::new(kind, seed)
            }),
            associations: Associations::default(),
            clock: SandboxClock::new(),
            next_id: seeded.end_id(),
            request_seq: 0,
            search_lag: SearchLag::default(),
        }
    }

    pub fn table(&self, kind: ObjectKind) -> &ObjectTable {
        &self.tables[kind as usize]
    }

    pub fn table_mut(&mut self, kind: ObjectKind) -> &mut ObjectTable {
        &mut self.tables[kind as usize]
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The time to stamp one write request with: now, never before an earlier write.
    pub fn tick(&mut self) -> i64 {
        self.clock.tick()
    }

    pub fn advance_clock(&mut self, ms: i64) {
        self.clock.advance(ms);
    }

    pub fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// When a write happening now becomes visible to search (`None`: at once).
    pub fn due_now(&self) -> Option<Due> {
        (!self.search_lag.is_zero()).then_some(Due {
            request_seq: self.request_seq.saturating_add(self.search_lag.requests),
            clock_ms: self.now_ms().saturating_add(self.search_lag.sandbox_ms),
        })
    }

    /// Counts a request and lets search catch up with writes whose lag has passed.
    pub fn on_request(&mut self) {
        self.request_seq += 1;
        let (seq, clock) = (self.request_seq, self.now_ms());
        for table in &mut self.tables {
            table.mature(seq, clock);
        }
    }

    pub fn flush_search(&mut self) {
        for table in &mut self.tables {
            table.flush_search();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associations_are_indexed_both_ways_and_repointed_on_merge() {
        let mut assoc = Associations::default();
        assert!(assoc.associate((ObjectKind::Calls, 9), (ObjectKind::Contacts, 1)));
        assert!(assoc.associate((ObjectKind::Calls, 9), (ObjectKind::Contacts, 1)));
        assert!(!assoc.associate((ObjectKind::Calls, 9), (ObjectKind::Communications, 1)));
        let from_call = assoc.of((ObjectKind::Calls, 9), ObjectKind::Contacts);
        assert_eq!(from_call.len(), 1);
        assert_eq!(from_call[0].type_id, 194);
        let from_contact = assoc.of((ObjectKind::Contacts, 1), ObjectKind::Calls);
        assert_eq!(from_contact[0].type_id, 193);
        assoc.repoint(ObjectKind::Contacts, 1, 2);
        assert!(assoc
            .of((ObjectKind::Contacts, 1), ObjectKind::Calls)
            .is_empty());
        assert_eq!(
            assoc.of((ObjectKind::Calls, 9), ObjectKind::Contacts)[0].to_id,
            2
        );
    }
}
