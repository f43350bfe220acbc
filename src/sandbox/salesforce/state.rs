//! The sandbox org's data: seeded contacts (generated on demand), an overlay of edited and
//! created contacts, the delete log, tasks and the org clock (real time plus a test offset,
//! `crate::sandbox::clock`).
//!
//! Contact order is `(SystemModstamp, Id)`. Seeded contact `i` has id `003SB{i:010}AAA` and a
//! modstamp monotone in `i`, so seeded contacts are already in that order and any position in
//! them is found by binary search; edits move a contact into the overlay, stamped by the org
//! clock, which is real time and so later than every seeded stamp. So a full scan is "seeded contacts not
//! superseded, in index order, then the overlay in key order", with no sort and no copy.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::describe::{SObject, SYSTEM_MODSTAMP};
use super::errors::RecordError;
use super::record::{contact_from_person, Record, Val};
use crate::sandbox::clock::SandboxClock;
use crate::sandbox::seed::Population;

/// Position in contact order: `(SystemModstamp ms, Id)`.
pub type Key = (i64, String);

/// The id of seeded (or created) contact number `index`.
pub fn contact_id(index: u32) -> String {
    format!("003SB{index:010}AAA")
}

fn task_id(index: usize) -> String {
    format!("00TSB{index:010}AAA")
}

/// The index inside a sandbox contact id, if it is one.
pub fn contact_index(id: &str) -> Option<u32> {
    let digits = id.strip_prefix("003SB")?.get(..10)?;
    if id.len() != 18 || !id.ends_with("AAA") {
        return None;
    }
    digits.parse().ok()
}

/// One contact met during a scan.
pub enum Row<'a> {
    Seeded(u32),
    Stored(&'a Record),
}

#[derive(Debug)]
pub struct OrgState {
    pub population: Population,
    clock: SandboxClock,
    overlay: HashMap<String, Record>,
    overlay_order: BTreeSet<Key>,
    /// Seeded indices whose current version lives in the overlay, or that were deleted.
    superseded: HashSet<u32>,
    deleted: HashMap<String, i64>,
    /// `(deleted at, id)` in deletion order (the clock only moves forward).
    deleted_log: Vec<(i64, String)>,
    next_created: u32,
    tasks: Vec<Record>,
    task_positions: HashMap<String, usize>,
}

impl OrgState {
    pub fn new(population: Population) -> OrgState {
        OrgState {
            population,
            clock: SandboxClock::new(),
            overlay: HashMap::new(),
            overlay_order: BTreeSet::new(),
            superseded: HashSet::new(),
            deleted: HashMap::new(),
            deleted_log: Vec::new(),
            next_created: population.len(),
            tasks: Vec::new(),
            task_positions: HashMap::new(),
        }
    }

    /// The org clock (epoch ms): real time, plus what [`OrgState::advance_clock`] added.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The time to stamp one write request with (never before an earlier one): all records
    /// saved by one request share a modstamp (as in a Salesforce transaction).
    pub fn tick(&mut self) -> i64 {
        self.clock.tick()
    }

    /// Moves the org clock forward by `ms` (tests: time passing without waiting).
    pub fn advance_clock(&mut self, ms: i64) {
        self.clock.advance(ms);
    }

    fn seeded_key(&self, index: u32) -> Key {
        (self.population.modified_ms(index), contact_id(index))
    }

    /// A seeded contact with only Id and timestamps filled: enough to evaluate filters on
    /// those fields without generating the person.
    pub fn seeded_light(&self, index: u32) -> Record {
        let ms = self.population.modified_ms(index);
        Record::new(SObject::Contact, contact_id(index), ms, ms)
    }

    pub fn seeded_full(&self, index: u32) -> Record {
        seeded_contact(self.population, index)
    }

    /// The current version of a contact, `None` when unknown or deleted.
    pub fn contact(&self, id: &str) -> Option<Cow<'_, Record>> {
        if let Some(record) = self.overlay.get(id) {
            return Some(Cow::Borrowed(record));
        }
        let index = contact_index(id)?;
        if index < self.population.len() && !self.superseded.contains(&index) {
            return Some(Cow::Owned(self.seeded_full(index)));
        }
        None
    }

    pub fn is_deleted(&self, id: &str) -> bool {
        self.deleted.contains_key(id)
    }

    pub fn task(&self, id: &str) -> Option<&Record> {
        self.task_positions.get(id).map(|&i| &self.tasks[i])
    }

    pub fn get(&self, object: SObject, id: &str) -> Option<Cow<'_, Record>> {
        match object {
            SObject::Contact => self.contact(id),
            SObject::Task => self.task(id).map(Cow::Borrowed),
        }
    }

    pub fn tasks(&self) -> &[Record] {
        &self.tasks
    }

    /// Live contacts (seeded not deleted, plus created).
    pub fn contact_count(&self) -> u64 {
        let seeded_live = u64::from(self.population.len()) - self.superseded.len() as u64;
        // The overlay holds edited seeded contacts (already subtracted above) and created ones.
        seeded_live + self.overlay.len() as u64
    }

    /// Apply validated field values to an existing record and stamp it `at`.
    pub fn update(
        &mut self,
        object: SObject,
        id: &str,
        values: Vec<(usize, Val)>,
        at: i64,
    ) -> Result<(), RecordError> {
        match object {
            SObject::Contact => {
                let mut record = match self.contact(id) {
                    Some(record) => record.into_owned(),
                    None => return Err(missing_record(id, self.is_deleted(id))),
                };
                self.overlay_order
                    .remove(&(record.modstamp(), id.to_string()));
                for (index, value) in values {
                    record.values[index] = value;
                }
                record.touch(at);
                self.put_contact(record);
                Ok(())
            }
            SObject::Task => {
                let position = *self
                    .task_positions
                    .get(id)
                    .ok_or_else(|| missing_record(id, false))?;
                let record = &mut self.tasks[position];
                for (index, value) in values {
                    record.values[index] = value;
                }
                record.touch(at);
                Ok(())
            }
        }
    }

    fn put_contact(&mut self, record: Record) {
        let id = record.id().to_string();
        if let Some(index) = contact_index(&id).filter(|i| *i < self.population.len()) {
            self.superseded.insert(index);
        }
        self.overlay_order.insert((record.modstamp(), id.clone()));
        self.overlay.insert(id, record);
    }

    /// Create a record from validated values, stamped `at`; returns its id.
    pub fn create(&mut self, object: SObject, values: Vec<(usize, Val)>, at: i64) -> String {
        let id = match object {
            SObject::Contact => {
                let id = contact_id(self.next_created);
                self.next_created += 1;
                id
            }
            SObject::Task => task_id(self.tasks.len() + 1),
        };
        let mut record = Record::new(object, id.clone(), at, at);
        for (index, value) in values {
            record.values[index] = value;
        }
        match object {
            SObject::Contact => self.put_contact(record),
            SObject::Task => {
                self.task_positions.insert(id.clone(), self.tasks.len());
                self.tasks.push(record);
            }
        }
        id
    }

    /// Delete a contact at `at`; it then appears in the delete log. `false` when not live.
    pub fn delete_contact(&mut self, id: &str, at: i64) -> bool {
        let Some(record) = self.contact(id).map(|r| r.modstamp()) else {
            return false;
        };
        self.overlay_order.remove(&(record, id.to_string()));
        self.overlay.remove(id);
        if let Some(index) = contact_index(id).filter(|i| *i < self.population.len()) {
            self.superseded.insert(index);
        }
        self.deleted.insert(id.to_string(), at);
        self.deleted_log.push((at, id.to_string()));
        true
    }

    /// Deletions with `start <= deleted at <= end`.
    pub fn deleted_between(&self, start: i64, end: i64) -> impl Iterator<Item = &(i64, String)> {
        let first = self.deleted_log.partition_point(|(at, _)| *at < start);
        self.deleted_log[first..]
            .iter()
            .take_while(move |(at, _)| *at <= end)
    }

    /// Visit live contacts in `(SystemModstamp, Id)` order, starting strictly after `after`
    /// and at or after modstamp `lower`, skipping contacts stamped later than `as_of` (the
    /// query's snapshot time). `visit` returns `false` to stop.
    pub fn scan_contacts(
        &self,
        after: Option<&Key>,
        lower: Option<i64>,
        as_of: i64,
        mut visit: impl FnMut(Row<'_>) -> bool,
    ) {
        let n = self.population.len();
        let mut start = 0u32;
        if let Some(after) = after {
            start = start.max(partition_point(n, |i| self.seeded_key(i) <= *after));
        }
        if let Some(lower) = lower {
            start = start.max(partition_point(n, |i| {
                self.population.modified_ms(i) < lower
            }));
        }
        for index in start..n {
            if self.superseded.contains(&index) {
                continue;
            }
            if !visit(Row::Seeded(index)) {
                return;
            }
        }
        let from = match (after, lower) {
            (Some(after), Some(lower)) if after.0 >= lower => Bound::After(after),
            (Some(after), None) => Bound::After(after),
            (_, Some(lower)) => Bound::From((lower, String::new())),
            (None, None) => Bound::From((i64::MIN, String::new())),
        };
        let range: Box<dyn Iterator<Item = &Key>> = match &from {
            Bound::After(key) => Box::new(
                self.overlay_order
                    .range::<Key, _>((std::ops::Bound::Excluded(*key), std::ops::Bound::Unbounded)),
            ),
            Bound::From(key) => Box::new(self.overlay_order.range::<Key, _>(key..)),
        };
        for key in range {
            if key.0 > as_of {
                return;
            }
            if let Some(record) = self.overlay.get(&key.1) {
                if !visit(Row::Stored(record)) {
                    return;
                }
            }
        }
    }

    /// The stamp of the newest contact (seeded or overlay).
    pub fn latest_contact_stamp(&self) -> i64 {
        self.overlay_order
            .last()
            .map(|(ms, _)| *ms)
            .unwrap_or_else(|| self.population.last_modified_ms())
    }

    /// Modstamp of a stored record or seeded index (used for keys of scanned rows).
    pub fn row_key(&self, row: &Row<'_>) -> Key {
        match row {
            Row::Seeded(index) => self.seeded_key(*index),
            Row::Stored(record) => (stamp_of(record), record.id().to_string()),
        }
    }
}

enum Bound<'a> {
    After(&'a Key),
    From(Key),
}

fn stamp_of(record: &Record) -> i64 {
    match record.get(SYSTEM_MODSTAMP) {
        Val::DateTime(ms) => *ms,
        _ => 0,
    }
}

/// A seeded contact as a full record (pure: no org state needed).
pub fn seeded_contact(population: Population, index: u32) -> Record {
    contact_from_person(contact_id(index), population.person(index))
}

/// First index in `0..n` for which `pred` is false (`pred` must be true then false).
fn partition_point(n: u32, pred: impl Fn(u32) -> bool) -> u32 {
    let (mut low, mut high) = (0u32, n);
    while low < high {
        let mid = low + (high - low) / 2;
        if pred(mid) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    low
}

fn missing_record(id: &str, deleted: bool) -> RecordError {
    if deleted {
        RecordError::new("ENTITY_IS_DELETED", "entity is deleted", None)
    } else {
        RecordError::new(
            "INVALID_CROSS_REFERENCE_KEY",
            format!("invalid cross reference id: {id}"),
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_ids(org: &OrgState, after: Option<&Key>, lower: Option<i64>) -> Vec<String> {
        let mut ids = Vec::new();
        org.scan_contacts(after, lower, org.now(), |row| {
            ids.push(org.row_key(&row).1);
            true
        });
        ids
    }

    #[test]
    fn edits_move_contacts_to_the_end_and_deletes_remove_them() {
        let mut org = OrgState::new(Population::new(10, 1));
        assert_eq!(scan_ids(&org, None, None).len(), 10);
        let first = contact_id(0);
        let at = org.tick();
        org.update(SObject::Contact, &first, vec![], at).unwrap();
        let ids = scan_ids(&org, None, None);
        assert_eq!(ids.len(), 10);
        assert_eq!(ids.last(), Some(&first));
        assert!(org.delete_contact(&contact_id(5), org.now()));
        assert_eq!(scan_ids(&org, None, None).len(), 9);
        assert!(org.contact(&contact_id(5)).is_none());
        assert!(org.is_deleted(&contact_id(5)));
        assert_eq!(org.contact_count(), 9);
        let at = org.tick();
        let err = org
            .update(SObject::Contact, &contact_id(5), vec![], at)
            .unwrap_err();
        assert_eq!(err.status_code, "ENTITY_IS_DELETED");
    }

    #[test]
    fn scans_resume_strictly_after_a_key_and_from_a_lower_stamp() {
        let org = OrgState::new(Population::new(100, 1));
        let all = scan_ids(&org, None, None);
        let key = org.row_key(&Row::Seeded(41));
        let rest = scan_ids(&org, Some(&key), None);
        assert_eq!(rest, all[42..].to_vec());
        let lower = org.population.modified_ms(50);
        let from = scan_ids(&org, None, Some(lower));
        let first = (0..100)
            .find(|i| org.population.modified_ms(*i) >= lower)
            .unwrap();
        assert_eq!(from, all[first as usize..].to_vec());
    }

    #[test]
    fn contact_ids_round_trip() {
        assert_eq!(contact_index(&contact_id(123_456)), Some(123_456));
        assert_eq!(contact_index("003000000000000AAA"), None);
        assert_eq!(contact_id(7).len(), 18);
    }
}
