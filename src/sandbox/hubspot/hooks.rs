//! The test API of a running sandbox: look at records, make CRM-side changes (edits bump
//! `lastmodifieddate` on the sandbox clock, exactly as a user's edit in HubSpot would), archive
//! and merge contacts, list logged activities with their associations, move the clock, and turn
//! the knobs that are not in [`FaultConfig`](crate::sandbox::FaultConfig).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::ops::{self, WriteError};
use super::schema::ObjectKind;
use super::seed_contacts::SeededContacts;
use super::table::Lookup;
use super::{duration_ms, HubSpotSandbox, HubSpotSandboxError};
use crate::sandbox::faults::lock;

/// A call or communication as stored, with the contacts it is associated with.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: u64,
    pub kind: ObjectKind,
    /// Every set property, computed ones (`hs_object_id`, timestamps) included.
    pub properties: BTreeMap<String, String>,
    pub contact_ids: Vec<u64>,
    pub archived: bool,
}

fn properties_map(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::String((*v).to_string())))
        .collect()
}

fn rejected(kind: ObjectKind, id: impl ToString, err: WriteError) -> HubSpotSandboxError {
    match err {
        WriteError::NotFound(_) => HubSpotSandboxError::NotFound {
            kind: kind.singular(),
            id: id.to_string().parse().unwrap_or(0),
        },
        other => HubSpotSandboxError::Rejected {
            kind: kind.singular(),
            id: id.to_string(),
            message: other.to_api(kind).message,
        },
    }
}

impl HubSpotSandbox {
    /// The id of seeded contact `index` (0-based).
    pub fn contact_id(index: u32) -> u64 {
        SeededContacts::id_of(index)
    }

    /// A record as the API would return it with every property requested (nulls dropped),
    /// live or archived; merged ids resolve to the survivor. `None` when it never existed.
    pub fn record(&self, kind: ObjectKind, id: u64) -> Option<Value> {
        let state = lock(&self.shared.state);
        let table = state.table(kind);
        let id = match table.resolve(id) {
            Lookup::Live(id) | Lookup::Archived(id) => id,
            Lookup::Missing => return None,
        };
        let record = table.get(id)?;
        let names: Vec<&str> = kind.schema().properties.iter().map(|p| p.name).collect();
        let mut json = record.to_json(kind.schema(), &names);
        if let Some(props) = json.get_mut("properties").and_then(Value::as_object_mut) {
            props.retain(|_, v| !v.is_null());
        }
        Some(json)
    }

    /// A contact as [`HubSpotSandbox::record`] returns it.
    pub fn contact(&self, id: u64) -> Option<Value> {
        self.record(ObjectKind::Contacts, id)
    }

    /// One property of a contact (`None` when unset or no such contact).
    pub fn contact_property(&self, id: u64, name: &str) -> Option<String> {
        self.contact(id)?
            .get("properties")?
            .get(name)?
            .as_str()
            .map(str::to_string)
    }

    /// A CRM-side edit: validated like an API write, bumps `lastmodifieddate` to the next tick
    /// of the sandbox clock, subject to the search lag. Returns the new `lastmodifieddate`.
    pub fn edit_contact(
        &self,
        id: u64,
        properties: &[(&str, &str)],
    ) -> Result<String, HubSpotSandboxError> {
        let kind = ObjectKind::Contacts;
        let mut state = lock(&self.shared.state);
        let now = state.tick();
        let written = ops::update(&mut state, kind, id, &properties_map(properties), now)
            .map_err(|e| rejected(kind, id, e))?;
        Ok(super::record::format_ms(
            state.table(kind).get(written).map_or(now, |r| r.updated_ms),
        ))
    }

    /// A contact created in the CRM; returns its id.
    pub fn create_contact(&self, properties: &[(&str, &str)]) -> Result<u64, HubSpotSandboxError> {
        let kind = ObjectKind::Contacts;
        let mut state = lock(&self.shared.state);
        let now = state.tick();
        ops::create(&mut state, kind, &properties_map(properties), &[], now)
            .map_err(|e| rejected(kind, "new", e))
    }

    /// Deletes (archives) a contact, as a CRM user would.
    pub fn archive_contact(&self, id: u64) -> Result<(), HubSpotSandboxError> {
        let kind = ObjectKind::Contacts;
        let mut state = lock(&self.shared.state);
        if !matches!(state.table(kind).resolve(id), Lookup::Live(_)) {
            return Err(HubSpotSandboxError::NotFound {
                kind: kind.singular(),
                id,
            });
        }
        let now = state.tick();
        ops::archive(&mut state, kind, id, now);
        Ok(())
    }

    /// Merges contact `loser` into `primary`.
    pub fn merge_contacts(&self, primary: u64, loser: u64) -> Result<(), HubSpotSandboxError> {
        let kind = ObjectKind::Contacts;
        let mut state = lock(&self.shared.state);
        let now = state.tick();
        ops::merge(&mut state, primary, loser, now)
            .map(|_| ())
            .map_err(|e| rejected(kind, loser, e))
    }

    /// Every call or communication logged so far, in id order.
    pub fn activities(&self, kind: ObjectKind) -> Vec<Activity> {
        let state = lock(&self.shared.state);
        let table = state.table(kind);
        let schema = kind.schema();
        table
            .stored()
            .map(|record| {
                let properties = (0..schema.properties.len() as u16)
                    .filter_map(|index| {
                        record
                            .value(schema, index)
                            .map(|v| (schema.def(index).name.to_string(), v.into_owned()))
                    })
                    .collect();
                let contact_ids = state
                    .associations
                    .of((kind, record.id), ObjectKind::Contacts)
                    .iter()
                    .map(|e| e.to_id)
                    .collect();
                Activity {
                    id: record.id,
                    kind,
                    properties,
                    contact_ids,
                    archived: record.archived_at.is_some(),
                }
            })
            .collect()
    }

    pub fn calls(&self) -> Vec<Activity> {
        self.activities(ObjectKind::Calls)
    }

    pub fn communications(&self) -> Vec<Activity> {
        self.activities(ObjectKind::Communications)
    }

    /// The sandbox clock (epoch ms): the real time, as HubSpot stamps writes, plus what
    /// [`HubSpotSandbox::advance_clock`] added.
    pub fn now_ms(&self) -> i64 {
        lock(&self.shared.state).now_ms()
    }

    /// Moves the sandbox clock forward (e.g. past a `search_index_lag`, or to make a CRM edit
    /// later than a local change without waiting).
    pub fn advance_clock(&self, by: Duration) {
        let mut state = lock(&self.shared.state);
        state.advance_clock(duration_ms(by));
        let (seq, clock) = (state.request_seq, state.now_ms());
        for kind in ObjectKind::ALL {
            state.table_mut(kind).mature(seq, clock);
        }
    }

    /// Makes every pending write visible to search at once.
    pub fn flush_search_index(&self) {
        lock(&self.shared.state).flush_search();
    }

    /// A write becomes visible to search only after `requests` further requests.
    pub fn set_search_lag_requests(&self, requests: u64) {
        lock(&self.shared.state).search_lag.requests = requests;
    }

    /// The rolling ten-second budget (real time) for non-search requests.
    pub fn set_burst_limit(&self, per_10s: u32) {
        lock(&self.shared.limiter).burst_max = per_10s;
    }

    /// The search API's per-second budget (real time).
    pub fn set_search_per_second(&self, per_second: u32) {
        lock(&self.shared.limiter).search_per_second = per_second;
    }
}
