//! One object type's records: seeded contacts generated on demand plus an overlay of records
//! written since start, and the search index that may trail the records.
//!
//! Search sees an *index* that may lag (crm_apis.md §1.5: "new or updated objects take a few
//! moments to appear in search"). With lag configured, each write leaves the version search saw
//! before it in `stale` until the write is due (after N more requests and/or M milliseconds of
//! sandbox time); list, read and batch endpoints always see the current version.
//!
//! Ordering invariant used by search: every version written since start carries a time from the
//! sandbox clock, which starts after every seeded modification time. Untouched seeded contacts
//! are therefore in (modified, id) order by index, and merge cleanly with the overlay's index.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::iter::Peekable;

use super::record::{parse_ms, Record};
use super::schema::{Computed, ObjectKind, ObjectSchema, PropertyType};
use super::seed_contacts::SeededContacts;
use super::validate::PropertyWrites;

/// When a lagging write becomes visible to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub request_seq: u64,
    pub clock_ms: i64,
}

#[derive(Debug)]
struct Stale {
    due: Due,
    /// The version search still sees; `None` for a record search has not seen yet.
    visible: Option<Record>,
}

/// What a lookup by id found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Live(u64),
    Archived(u64),
    Missing,
}

/// A record as a request sees it: a stored record, or a seeded contact not generated yet.
/// Filters on the id and modification time never generate the seeded person.
pub struct Candidate<'a> {
    schema: &'a ObjectSchema,
    source: Source<'a>,
    generated: OnceCell<Record>,
}

enum Source<'a> {
    Stored(&'a Record),
    Seeded(&'a SeededContacts, u32),
}

impl<'a> Candidate<'a> {
    pub fn id(&self) -> u64 {
        match self.source {
            Source::Stored(r) => r.id,
            Source::Seeded(_, index) => SeededContacts::id_of(index),
        }
    }

    pub fn updated_ms(&self) -> i64 {
        match self.source {
            Source::Stored(r) => r.updated_ms,
            Source::Seeded(seeded, index) => seeded.modified_ms(index),
        }
    }

    pub fn is_archived(&self) -> bool {
        match self.source {
            Source::Stored(r) => r.archived_at.is_some(),
            Source::Seeded(..) => false,
        }
    }

    /// The full record (generates a seeded person on first use).
    pub fn record(&self) -> &Record {
        match self.source {
            Source::Stored(r) => r,
            Source::Seeded(seeded, index) => self.generated.get_or_init(|| seeded.record(index)),
        }
    }

    pub fn value(&self, index: u16) -> Option<Cow<'_, str>> {
        match self.schema.def(index).computed {
            Some(Computed::ObjectId) => Some(Cow::Owned(self.id().to_string())),
            _ => self.record().value(self.schema, index),
        }
    }

    /// A date/datetime/number property as a number for comparisons, without formatting the
    /// computed timestamps.
    pub fn numeric(&self, index: u16) -> Option<f64> {
        let def = self.schema.def(index);
        match def.computed {
            Some(Computed::ObjectId) => Some(self.id() as f64),
            Some(Computed::UpdatedAt) => Some(self.updated_ms() as f64),
            Some(Computed::CreatedAt) => Some(self.record().created_ms as f64),
            None => {
                let text = self.record().stored(index)?;
                match def.kind {
                    PropertyType::Date | PropertyType::Datetime => {
                        parse_ms(text).map(|ms| ms as f64)
                    }
                    _ => text.trim().parse().ok(),
                }
            }
        }
    }
}

/// One object type's records.
#[derive(Debug)]
pub struct ObjectTable {
    pub kind: ObjectKind,
    pub schema: &'static ObjectSchema,
    /// Seeded contacts (contacts table only); generated on demand.
    seeded: Option<SeededContacts>,
    /// Records written since start (including seeded ones once touched), live and archived.
    overlay: BTreeMap<u64, Record>,
    /// Loser id of a merge -> the surviving record's id.
    merged: HashMap<u64, u64>,
    /// Unique property (schema index) -> lower-cased value -> live record id. Built on first
    /// use, because building it generates every seeded contact.
    unique: Option<HashMap<u16, HashMap<String, u64>>>,
    /// Search-visible overlay records by (visible modification time, id).
    by_modified: BTreeSet<(i64, u64)>,
    stale: HashMap<u64, Stale>,
}

impl ObjectTable {
    pub fn new(kind: ObjectKind, seeded: Option<SeededContacts>) -> Self {
        ObjectTable {
            kind,
            schema: kind.schema(),
            seeded,
            overlay: BTreeMap::new(),
            merged: HashMap::new(),
            unique: None,
            by_modified: BTreeSet::new(),
            stale: HashMap::new(),
        }
    }

    /// A seeded record nobody has written, merged away or archived since start.
    fn untouched_seed(&self, id: u64) -> Option<u32> {
        let index = self.seeded.as_ref()?.index_of(id)?;
        (!self.overlay.contains_key(&id) && !self.merged.contains_key(&id)).then_some(index)
    }

    /// Resolves an id the way a GET does: merged ids lead to the surviving record.
    pub fn resolve(&self, id: u64) -> Lookup {
        let id = self.merged.get(&id).copied().unwrap_or(id);
        match self.overlay.get(&id) {
            Some(r) if r.archived_at.is_some() => Lookup::Archived(id),
            Some(_) => Lookup::Live(id),
            None if self.untouched_seed(id).is_some() => Lookup::Live(id),
            None => Lookup::Missing,
        }
    }

    /// The current version of a record (live or archived), generated if seeded.
    pub fn get(&self, id: u64) -> Option<Cow<'_, Record>> {
        if let Some(record) = self.overlay.get(&id) {
            return Some(Cow::Borrowed(record));
        }
        let index = self.untouched_seed(id)?;
        self.seeded.as_ref().map(|s| Cow::Owned(s.record(index)))
    }

    /// Every current record with id `>= from`, in id order (live and archived).
    pub fn iter_from(&self, from: u64) -> impl Iterator<Item = Candidate<'_>> + '_ {
        let schema = self.schema;
        let seeded_ids = self.seeded_range(from);
        let seeded = seeded_ids.filter_map(move |id| self.seeded_source(id).map(|s| (id, s)));
        let stored = self
            .overlay
            .range(from..)
            .map(|(id, r)| (*id, Source::Stored(r)));
        merge_sorted(seeded, stored, |a, b| a.0.cmp(&b.0), true).map(move |(_, source)| Candidate {
            schema,
            source,
            generated: OnceCell::new(),
        })
    }

    fn seeded_range(&self, from: u64) -> std::ops::Range<u64> {
        match &self.seeded {
            Some(s) => from.max(super::seed_contacts::FIRST_CONTACT_ID)..s.end_id(),
            None => 0..0,
        }
    }

    /// The source of an untouched seeded record.
    fn seeded_source(&self, id: u64) -> Option<Source<'_>> {
        let index = self.untouched_seed(id)?;
        self.seeded.as_ref().map(|s| Source::Seeded(s, index))
    }

    /// Search-visible records in id (creation) order; ascending starts at id `from`.
    pub fn search_by_id(
        &self,
        from: u64,
        ascending: bool,
    ) -> Box<dyn Iterator<Item = Candidate<'_>> + '_> {
        let schema = self.schema;
        let to_seeded = move |id: u64| self.seeded_source(id).map(|s| (id, Some(s)));
        let to_stored =
            move |(id, _): (&u64, &Record)| (*id, self.search_view(*id).map(Source::Stored));
        let out = move |(_, source)| wrap(schema, source);
        if ascending {
            Box::new(
                merge_sorted(
                    self.seeded_range(from).filter_map(to_seeded),
                    self.overlay.range(from..).map(to_stored),
                    |a, b| a.0.cmp(&b.0),
                    true,
                )
                .filter_map(out),
            )
        } else {
            Box::new(
                merge_sorted(
                    self.seeded_range(0).rev().filter_map(to_seeded),
                    self.overlay.iter().rev().map(to_stored),
                    |a, b| a.0.cmp(&b.0),
                    false,
                )
                .filter_map(out),
            )
        }
    }

    /// Search-visible records in (modification time, id) order; ascending starts at `from_ms`.
    pub fn search_by_modified(
        &self,
        from_ms: i64,
        ascending: bool,
    ) -> Box<dyn Iterator<Item = Candidate<'_>> + '_> {
        let schema = self.schema;
        let (seed_len, first) = match &self.seeded {
            Some(s) if ascending => (
                s.population.len(),
                s.first_index_modified_at_or_after(from_ms),
            ),
            Some(s) => (s.population.len(), 0),
            None => (0, 0),
        };
        let keyed_seed = move |index: u32| {
            let id = SeededContacts::id_of(index);
            let seeded = self.seeded.as_ref()?;
            self.untouched_seed(id)?;
            Some((
                (seeded.modified_ms(index), id),
                Some(Source::Seeded(seeded, index)),
            ))
        };
        let keyed_stored =
            move |&(ms, id): &(i64, u64)| ((ms, id), self.search_view(id).map(Source::Stored));
        let out = move |(_, source)| wrap(schema, source);
        if ascending {
            Box::new(
                merge_sorted(
                    (first..seed_len).filter_map(keyed_seed),
                    self.by_modified.range((from_ms, 0)..).map(keyed_stored),
                    |a, b| a.0.cmp(&b.0),
                    true,
                )
                .filter_map(out),
            )
        } else {
            Box::new(
                merge_sorted(
                    (0..seed_len).rev().filter_map(keyed_seed),
                    self.by_modified.iter().rev().map(keyed_stored),
                    |a, b| a.0.cmp(&b.0),
                    false,
                )
                .filter_map(out),
            )
        }
    }

    /// The version of an overlay record search sees, if any.
    fn search_view(&self, id: u64) -> Option<&Record> {
        match self.stale.get(&id) {
            Some(stale) => stale.visible.as_ref(),
            None => self.overlay.get(&id).filter(|r| r.archived_at.is_none()),
        }
    }

    /// The live record whose unique property `index` has `value` (case-insensitive).
    pub fn find_unique(&mut self, index: u16, value: &str) -> Option<u64> {
        self.unique_index()
            .get(&index)
            .and_then(|values| values.get(&value.trim().to_lowercase()))
            .copied()
    }

    pub fn is_unique_property(&self, index: u16) -> bool {
        let def = self.schema.def(index);
        def.unique
    }

    fn unique_index(&mut self) -> &mut HashMap<u16, HashMap<String, u64>> {
        if self.unique.is_none() {
            let mut index: HashMap<u16, HashMap<String, u64>> = self
                .schema
                .properties
                .iter()
                .enumerate()
                .filter(|(_, def)| def.unique && def.computed.is_none())
                .map(|(i, _)| (i as u16, HashMap::new()))
                .collect();
            for candidate in self.iter_from(0) {
                if candidate.is_archived() {
                    continue;
                }
                add_unique(&mut index, candidate.record());
            }
            self.unique = Some(index);
        }
        self.unique.get_or_insert_with(HashMap::new)
    }

    fn index_unique(&mut self, record: &Record, add: bool) {
        let Some(unique) = self.unique.as_mut() else {
            // Not built yet: it will be built from the records when first needed.
            return;
        };
        if add {
            add_unique(unique, record);
        } else {
            for (index, values) in unique.iter_mut() {
                if let Some(value) = record.stored(*index) {
                    let key = value.trim().to_lowercase();
                    if values.get(&key) == Some(&record.id) {
                        values.remove(&key);
                    }
                }
            }
        }
    }

    /// Moves an untouched seeded record into the overlay, keeping it visible to search.
    fn materialize(&mut self, id: u64) {
        let index = self.untouched_seed(id);
        if let (Some(index), Some(seeded)) = (index, self.seeded.as_ref()) {
            let record = seeded.record(index);
            self.by_modified.insert((record.updated_ms, id));
            self.overlay.insert(id, record);
        }
    }

    /// A new record; search sees it at once or when `due`.
    pub fn insert(&mut self, record: Record, due: Option<Due>) {
        let id = record.id;
        self.index_unique(&record, true);
        match due {
            Some(due) => {
                self.stale.insert(id, Stale { due, visible: None });
            }
            None => {
                self.by_modified.insert((record.updated_ms, id));
            }
        }
        self.overlay.insert(id, record);
    }

    /// Applies validated writes to a live record and bumps its modification time to `now`.
    /// Returns the updated record, or `None` when the record is not live.
    pub fn update(
        &mut self,
        id: u64,
        writes: &PropertyWrites,
        now: i64,
        due: Option<Due>,
    ) -> Option<&Record> {
        self.materialize(id);
        let before = self.overlay.get(&id)?.clone();
        if before.archived_at.is_some() {
            return None;
        }
        match due {
            Some(due) => match self.stale.get_mut(&id) {
                // Already stale: search keeps the older version, the wait starts again.
                Some(stale) => stale.due = due,
                None => {
                    self.stale.insert(
                        id,
                        Stale {
                            due,
                            visible: Some(before.clone()),
                        },
                    );
                }
            },
            None => self.forget_visible(id, before.updated_ms),
        }
        self.index_unique(&before, false);
        let mut after = before;
        for (index, value) in writes {
            after.set_at(*index, value, now);
        }
        after.updated_ms = now.max(after.updated_ms);
        self.index_unique(&after, true);
        if due.is_none() {
            self.by_modified.insert((after.updated_ms, id));
        }
        self.overlay.insert(id, after);
        self.overlay.get(&id)
    }

    /// Moves a live record to the recycle bin. Archived records never appear in search.
    pub fn archive(&mut self, id: u64, now: i64) -> bool {
        self.materialize(id);
        let Some(record) = self.overlay.get(&id) else {
            return false;
        };
        if record.archived_at.is_some() {
            return false;
        }
        let snapshot = record.clone();
        self.index_unique(&snapshot, false);
        self.forget_visible(id, snapshot.updated_ms);
        if let Some(record) = self.overlay.get_mut(&id) {
            record.archived_at = Some(now);
            record.updated_ms = now.max(record.updated_ms);
        }
        true
    }

    /// Records that `loser` was merged into `primary`; the loser stops being its own record.
    pub fn merge_away(&mut self, loser: u64, primary: u64) {
        self.materialize(loser);
        if let Some(record) = self.overlay.remove(&loser) {
            self.index_unique(&record, false);
            self.forget_visible(loser, record.updated_ms);
        }
        // Earlier merges into the loser now lead to the primary too.
        for target in self.merged.values_mut() {
            if *target == loser {
                *target = primary;
            }
        }
        self.merged.insert(loser, primary);
    }

    /// Removes whatever search sees for `id` (current or stale version).
    fn forget_visible(&mut self, id: u64, current_modified: i64) {
        match self.stale.remove(&id) {
            Some(Stale {
                visible: Some(old), ..
            }) => {
                self.by_modified.remove(&(old.updated_ms, id));
            }
            Some(Stale { visible: None, .. }) => {}
            None => {
                self.by_modified.remove(&(current_modified, id));
            }
        }
    }

    /// Lets search see every write whose lag has passed.
    pub fn mature(&mut self, request_seq: u64, clock_ms: i64) {
        if self.stale.is_empty() {
            return;
        }
        let due: Vec<u64> = self
            .stale
            .iter()
            .filter(|(_, s)| request_seq >= s.due.request_seq && clock_ms >= s.due.clock_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.make_visible(id);
        }
    }

    /// Lets search see everything now (a test hook).
    pub fn flush_search(&mut self) {
        let ids: Vec<u64> = self.stale.keys().copied().collect();
        for id in ids {
            self.make_visible(id);
        }
    }

    fn make_visible(&mut self, id: u64) {
        if let Some(stale) = self.stale.remove(&id) {
            if let Some(old) = stale.visible {
                self.by_modified.remove(&(old.updated_ms, id));
            }
            if let Some(record) = self.overlay.get(&id) {
                if record.archived_at.is_none() {
                    self.by_modified.insert((record.updated_ms, id));
                }
            }
        }
    }

    /// Records written since start, in id order (for test hooks over small tables).
    pub fn stored(&self) -> impl Iterator<Item = &Record> {
        self.overlay.values()
    }
}

fn wrap<'a>(schema: &'a ObjectSchema, source: Option<Source<'a>>) -> Option<Candidate<'a>> {
    source.map(|source| Candidate {
        schema,
        source,
        generated: OnceCell::new(),
    })
}

fn add_unique(index: &mut HashMap<u16, HashMap<String, u64>>, record: &Record) {
    for (property, values) in index.iter_mut() {
        if let Some(value) = record.stored(*property) {
            values.insert(value.trim().to_lowercase(), record.id);
        }
    }
}

/// Merges two iterators that are each sorted by `cmp` (ascending, or descending when
/// `ascending` is false) into one sorted sequence.
fn merge_sorted<T, A, B, F>(a: A, b: B, cmp: F, ascending: bool) -> MergeSorted<A, B, F>
where
    A: Iterator<Item = T>,
    B: Iterator<Item = T>,
    F: Fn(&T, &T) -> Ordering,
{
    MergeSorted {
        a: a.peekable(),
        b: b.peekable(),
        cmp,
        ascending,
    }
}

struct MergeSorted<A: Iterator, B: Iterator, F> {
    a: Peekable<A>,
    b: Peekable<B>,
    cmp: F,
    ascending: bool,
}

impl<T, A, B, F> Iterator for MergeSorted<A, B, F>
where
    A: Iterator<Item = T>,
    B: Iterator<Item = T>,
    F: Fn(&T, &T) -> Ordering,
{
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let take_a = match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) => {
                let order = (self.cmp)(x, y);
                if self.ascending {
                    order != Ordering::Greater
                } else {
                    order != Ordering::Less
                }
            }
            (Some(_), None) => true,
            (None, _) => false,
        };
        if take_a {
            self.a.next()
        } else {
            self.b.next()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::seed::Population;

    fn seeded_table(n: u32) -> ObjectTable {
        ObjectTable::new(
            ObjectKind::Contacts,
            Some(SeededContacts::new(Population::new(n, 4))),
        )
    }

    fn phone_write(value: &str) -> PropertyWrites {
        vec![(
            ObjectKind::Contacts.schema().index_of("phone").unwrap(),
            value.to_string(),
        )]
    }

    fn modified_ids(table: &ObjectTable) -> Vec<u64> {
        table.search_by_modified(0, true).map(|c| c.id()).collect()
    }

    #[test]
    fn merge_sorted_interleaves_both_directions() {
        let up: Vec<i32> =
            merge_sorted([1, 4, 6].into_iter(), [2, 3, 7].into_iter(), i32::cmp, true).collect();
        assert_eq!(up, [1, 2, 3, 4, 6, 7]);
        let down: Vec<i32> =
            merge_sorted([6, 4, 1].into_iter(), [7, 3].into_iter(), i32::cmp, false).collect();
        assert_eq!(down, [7, 6, 4, 3, 1]);
    }

    #[test]
    fn edits_move_seeded_contacts_to_the_end_of_modified_order() {
        let mut table = seeded_table(5);
        let first = SeededContacts::id_of(0);
        assert_eq!(modified_ids(&table), (1001..1006).collect::<Vec<_>>());
        table.update(first + 1, &phone_write("555"), 2_000_000_000_000, None);
        assert_eq!(modified_ids(&table), [1001, 1003, 1004, 1005, 1002]);
        let by_id: Vec<u64> = table.search_by_id(0, true).map(|c| c.id()).collect();
        assert_eq!(by_id, (1001..1006).collect::<Vec<_>>());
        let down: Vec<u64> = table.search_by_modified(0, false).map(|c| c.id()).collect();
        assert_eq!(down, [1002, 1005, 1004, 1003, 1001]);
    }

    #[test]
    fn lagging_writes_stay_invisible_until_due() {
        let mut table = seeded_table(3);
        let due = Due {
            request_seq: 12,
            clock_ms: 0,
        };
        let now = 2_000_000_000_000;
        assert!(table
            .update(1001, &phone_write("555"), now, Some(due))
            .is_some());
        // Search still sees the old version in its old place; reads see the new one.
        assert_eq!(modified_ids(&table), [1001, 1002, 1003]);
        assert_eq!(table.get(1001).unwrap().updated_ms, now);
        table.mature(11, 0);
        assert_eq!(modified_ids(&table), [1001, 1002, 1003]);
        table.mature(12, 0);
        assert_eq!(modified_ids(&table), [1002, 1003, 1001]);
        let seen = table.search_by_modified(now, true).next().unwrap();
        assert_eq!(seen.updated_ms(), now);
    }

    #[test]
    fn new_records_under_lag_are_absent_from_search() {
        let mut table = ObjectTable::new(ObjectKind::Calls, None);
        let due = Due {
            request_seq: 0,
            clock_ms: 1005,
        };
        table.insert(Record::new(1, 10, 10), Some(due));
        assert_eq!(table.search_by_id(0, true).count(), 0);
        table.mature(100, 1004);
        assert_eq!(table.search_by_id(0, true).count(), 0);
        table.mature(100, 1005);
        assert_eq!(table.search_by_id(0, true).count(), 1);
    }

    #[test]
    fn archive_and_merge_leave_search_and_unique_index() {
        let mut table = seeded_table(3);
        let email = table.schema.index_of("email").unwrap();
        let now = 2_000_000_000_000;
        table.update(1001, &[(email, "A@x.io".to_string())].to_vec(), now, None);
        assert_eq!(table.find_unique(email, "a@X.io"), Some(1001));
        assert!(table.archive(1001, now + 1));
        assert!(!table.archive(1001, now + 2));
        assert_eq!(table.find_unique(email, "a@x.io"), None);
        assert_eq!(table.resolve(1001), Lookup::Archived(1001));
        table.merge_away(1002, 1003);
        assert_eq!(table.resolve(1002), Lookup::Live(1003));
        assert_eq!(table.resolve(9999), Lookup::Missing);
        let by_id: Vec<u64> = table.search_by_id(0, true).map(|c| c.id()).collect();
        assert_eq!(by_id, [1003]);
        assert_eq!(modified_ids(&table), [1003]);
        let listed: Vec<(u64, bool)> = table
            .iter_from(0)
            .map(|c| (c.id(), c.is_archived()))
            .collect();
        assert_eq!(listed, [(1001, true), (1003, false)]);
    }

    #[test]
    fn unique_index_covers_seeded_contacts() {
        let mut table = seeded_table(50);
        let email = table.schema.index_of("email").unwrap();
        let (id, value) = (0..50)
            .find_map(|i| {
                let record = table.get(SeededContacts::id_of(i)).unwrap().into_owned();
                record.stored(email).map(|e| (record.id, e.to_string()))
            })
            .unwrap();
        assert_eq!(table.find_unique(email, &value.to_uppercase()), Some(id));
    }

    #[test]
    fn candidates_answer_time_filters_without_generating() {
        let table = seeded_table(10);
        let candidate = table.iter_from(1005).next().unwrap();
        let modified = table.schema.index_of("lastmodifieddate").unwrap();
        assert_eq!(
            candidate.numeric(modified),
            Some(table.seeded.unwrap().modified_ms(4) as f64)
        );
        assert!(candidate.generated.get().is_none());
        assert!(candidate
            .value(table.schema.index_of("firstname").unwrap())
            .is_some());
        assert!(candidate.generated.get().is_some());
    }
}

/// The search orders are merges of two sources (untouched seeded contacts and written records)
/// with a lagging view; these properties check them against plain filtering and sorting.
#[cfg(test)]
mod order_properties {
    use super::*;
    use crate::sandbox::seed::Population;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Edit(u32),
        Archive(u32),
        Merge(u32, u32),
        Create,
        Mature,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u32..40).prop_map(Op::Edit),
            1 => (0u32..40).prop_map(Op::Archive),
            1 => (0u32..40, 0u32..40).prop_map(|(a, b)| Op::Merge(a, b)),
            1 => Just(Op::Create),
            1 => Just(Op::Mature),
        ]
    }

    fn keys<'a>(it: impl Iterator<Item = Candidate<'a>>) -> Vec<(i64, u64)> {
        it.map(|c| (c.updated_ms(), c.id())).collect()
    }

    proptest! {
        #[test]
        fn search_orders_agree_with_filtering_and_sorting(
            ops in proptest::collection::vec(op(), 0..40),
            lagging in any::<bool>(),
            cut in 0usize..60,
        ) {
            let mut table = ObjectTable::new(
                ObjectKind::Contacts,
                Some(SeededContacts::new(Population::new(30, 5))),
            );
            let notes = table.schema.index_of("notes").unwrap_or(0);
            let mut now = crate::sandbox::seed::SANDBOX_EPOCH_MS;
            let mut seq = 0u64;
            let mut next_id = 5_000u64;
            for op in ops {
                now += 1_000;
                seq += 1;
                let due = lagging.then_some(Due { request_seq: seq + 2, clock_ms: 0 });
                let id = |i: u32| SeededContacts::id_of(i % 32);
                match op {
                    Op::Edit(i) => {
                        table.update(id(i), &vec![(notes, format!("n{seq}"))], now, due);
                    }
                    Op::Archive(i) => {
                        table.archive(id(i), now);
                    }
                    Op::Merge(a, b) => {
                        if let (Lookup::Live(a), Lookup::Live(b)) =
                            (table.resolve(id(a)), table.resolve(id(b)))
                        {
                            if a != b {
                                table.merge_away(b, a);
                                table.update(a, &Vec::new(), now, due);
                            }
                        }
                    }
                    Op::Create => {
                        next_id += 1;
                        table.insert(Record::new(next_id, now, now), due);
                    }
                    Op::Mature => table.mature(seq, 0),
                }
            }
            for flushed in [false, true] {
                if flushed {
                    table.flush_search();
                }
                let by_id = keys(table.search_by_id(0, true));
                let mut sorted = by_id.clone();
                sorted.sort_by_key(|(_, id)| *id);
                prop_assert_eq!(&by_id, &sorted);
                let ascending = keys(table.search_by_modified(i64::MIN, true));
                let mut expected = by_id.clone();
                expected.sort();
                prop_assert_eq!(&ascending, &expected);
                let mut descending = keys(table.search_by_modified(0, false));
                descending.reverse();
                prop_assert_eq!(&descending, &expected);
                // Starting at a bound equals filtering the whole order.
                if let Some(&(from, _)) = expected.get(cut.min(expected.len().saturating_sub(1))) {
                    let tail: Vec<_> = expected.iter().copied().filter(|(t, _)| *t >= from).collect();
                    prop_assert_eq!(keys(table.search_by_modified(from, true)), tail);
                }
                if let Some(&(_, from_id)) = sorted.get(cut.min(sorted.len().saturating_sub(1))) {
                    let tail: Vec<_> = sorted.iter().copied().filter(|(_, id)| *id >= from_id).collect();
                    prop_assert_eq!(keys(table.search_by_id(from_id, true)), tail);
                }
                // Once nothing lags, search sees exactly the live records, current versions.
                if flushed || !lagging {
                    let live: Vec<_> = table
                        .iter_from(0)
                        .filter(|c| !c.is_archived())
                        .map(|c| (c.updated_ms(), c.id()))
                        .collect();
                    prop_assert_eq!(&by_id, &live);
                }
            }
        }
    }
}
