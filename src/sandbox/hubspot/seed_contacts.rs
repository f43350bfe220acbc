//! Seeded contacts: the shared [`Population`] mapped onto HubSpot contact properties.
//!
//! Seeded contacts are never stored up front: contact `FIRST_CONTACT_ID + i` is person `i`,
//! generated when a request touches it (see `table.rs`). Only records written since start are
//! kept in memory.

use crate::sandbox::seed::{LeadStage, Person, Population};

use super::record::Record;
use super::schema::ObjectKind;

/// Id of seeded person 0; person `i` has id `FIRST_CONTACT_ID + i`.
pub const FIRST_CONTACT_ID: u64 = 1001;

/// The seeded contacts of one sandbox.
#[derive(Debug, Clone, Copy)]
pub struct SeededContacts {
    pub population: Population,
}

impl SeededContacts {
    pub fn new(population: Population) -> Self {
        SeededContacts { population }
    }

    pub fn len(&self) -> u64 {
        u64::from(self.population.len())
    }

    pub fn is_empty(&self) -> bool {
        self.population.is_empty()
    }

    /// One past the last seeded id: the first id free for new records.
    pub fn end_id(&self) -> u64 {
        FIRST_CONTACT_ID + self.len()
    }

    pub fn index_of(&self, id: u64) -> Option<u32> {
        (FIRST_CONTACT_ID..self.end_id())
            .contains(&id)
            .then(|| (id - FIRST_CONTACT_ID) as u32)
    }

    pub fn id_of(index: u32) -> u64 {
        FIRST_CONTACT_ID + u64::from(index)
    }

    /// Modification time of a seeded contact, without generating it.
    pub fn modified_ms(&self, index: u32) -> i64 {
        self.population.modified_ms(index)
    }

    /// The first index whose modification time is at least `ms` (times are monotone in index).
    pub fn first_index_modified_at_or_after(&self, ms: i64) -> u32 {
        let (mut lo, mut hi) = (0u32, self.population.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.modified_ms(mid) < ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Seeded contact `index` as a stored record.
    pub fn record(&self, index: u32) -> Record {
        person_record(&self.population.person(index))
    }
}

/// The hs_lead_status value of a seeded person. The example rules map NEW, IN_PROGRESS and
/// QUALIFIED and send everything else to `else`, so the other stages use several of HubSpot's
/// remaining default options.
fn lead_status(stage: LeadStage, index: u32) -> &'static str {
    match stage {
        LeadStage::New => "NEW",
        LeadStage::Working if index.is_multiple_of(5) => "ATTEMPTED_TO_CONTACT",
        LeadStage::Working => "IN_PROGRESS",
        LeadStage::Qualified => "QUALIFIED",
        LeadStage::Unqualified => match index % 3 {
            0 => "UNQUALIFIED",
            1 => "BAD_TIMING",
            _ => "OPEN_DEAL",
        },
    }
}

pub fn person_record(person: &Person) -> Record {
    let schema = ObjectKind::Contacts.schema();
    let mut record = Record::new(
        SeededContacts::id_of(person.index),
        person.created_ms,
        person.modified_ms,
    );
    let mut set = |name: &str, value: Option<String>| {
        if let (Some(index), Some(value)) = (schema.index_of(name), value) {
            record.set(index, &value);
        }
    };
    set("firstname", Some(person.first_name.clone()));
    set("lastname", Some(person.last_name.clone()));
    set("email", person.email.clone());
    set("phone", person.phone.clone());
    set("mobilephone", person.mobile_phone.clone());
    set("jobtitle", person.title.clone());
    set(
        "hs_lead_status",
        person
            .lead_stage
            .map(|stage| lead_status(stage, person.index).to_string()),
    );
    set(
        "lifecyclestage",
        Some(match person.lead_stage {
            Some(LeadStage::Qualified) => "salesqualifiedlead".to_string(),
            _ => "lead".to_string(),
        }),
    );
    set(
        "renewal_date",
        person
            .renewal_date
            .map(|d| d.format("%Y-%m-%d").to_string()),
    );
    set(
        "annualrevenue",
        person.annual_revenue.map(|revenue| format!("{revenue}")),
    );
    set(
        "do_not_call",
        person.do_not_call.then(|| "true".to_string()),
    );
    set("notes", person.notes.clone());
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_indexes_and_back() {
        let seeded = SeededContacts::new(Population::new(10, 1));
        assert_eq!(seeded.index_of(FIRST_CONTACT_ID), Some(0));
        assert_eq!(seeded.index_of(FIRST_CONTACT_ID + 9), Some(9));
        assert_eq!(seeded.index_of(FIRST_CONTACT_ID + 10), None);
        assert_eq!(seeded.end_id(), FIRST_CONTACT_ID + 10);
    }

    #[test]
    fn binary_search_finds_the_first_index_at_a_time() {
        let seeded = SeededContacts::new(Population::new(1_000, 1));
        let t = seeded.modified_ms(500);
        let first = seeded.first_index_modified_at_or_after(t);
        assert_eq!(seeded.modified_ms(first), t);
        assert!(first == 0 || seeded.modified_ms(first - 1) < t);
        assert_eq!(seeded.first_index_modified_at_or_after(i64::MAX), 1_000);
    }

    #[test]
    fn seeded_records_carry_valid_property_values() {
        let seeded = SeededContacts::new(Population::new(200, 9));
        let schema = ObjectKind::Contacts.schema();
        let status = schema.get("hs_lead_status").unwrap();
        for index in 0..200 {
            let record = seeded.record(index);
            assert_eq!(record.id, FIRST_CONTACT_ID + u64::from(index));
            assert_eq!(record.updated_ms, seeded.modified_ms(index));
            if let Some(value) = record.value_by_name(schema, "hs_lead_status") {
                assert!(status.options.iter().any(|o| o.value == value));
            }
            assert!(record.value_by_name(schema, "firstname").is_some());
        }
    }
}
