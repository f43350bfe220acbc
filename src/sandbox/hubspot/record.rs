//! One stored HubSpot record and its JSON shape (crm_apis.md §1.2).
//!
//! Stored property values are kept as a small sorted vector keyed by the schema's property index:
//! 100,000 contacts must fit comfortably in memory, and a `HashMap<String, String>` per record
//! costs several times more.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::schema::{Computed, ObjectSchema};

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: u64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub archived_at: Option<i64>,
    props: Vec<(u16, Box<str>)>,
    /// When each property was last written through the API or a hook (sorted by index); a
    /// property not listed has had its value since the record was created.
    times: Vec<(u16, i64)>,
}

impl Record {
    pub fn new(id: u64, created_ms: i64, updated_ms: i64) -> Self {
        Record {
            id,
            created_ms,
            updated_ms,
            archived_at: None,
            props: Vec::new(),
            times: Vec::new(),
        }
    }

    /// A stored (non-computed) value; a cleared property has none.
    pub fn stored(&self, index: u16) -> Option<&str> {
        self.props
            .binary_search_by_key(&index, |(i, _)| *i)
            .ok()
            .map(|pos| &*self.props[pos].1)
            .filter(|v| !v.is_empty())
    }

    /// Whether the property had a value that was then cleared.
    fn cleared(&self, index: u16) -> bool {
        self.props
            .binary_search_by_key(&index, |(i, _)| *i)
            .is_ok_and(|pos| self.props[pos].1.is_empty())
    }

    /// Sets a stored value; the empty string clears it, as in HubSpot. A property that had a
    /// value and was cleared reads back as `""` (as HubSpot answers), one never set as `null`:
    /// the empty value is kept as that marker.
    pub fn set(&mut self, index: u16, value: &str) {
        match self.props.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(pos) => self.props[pos].1 = value.into(),
            Err(_) if value.is_empty() => {}
            Err(pos) => self.props.insert(pos, (index, value.into())),
        }
    }

    /// Sets a stored value written at `at`: a value that changes (or a clear) moves the
    /// property's modification time, one written again unchanged does not.
    pub fn set_at(&mut self, index: u16, value: &str, at: i64) {
        if self.stored(index).unwrap_or_default() == value {
            return;
        }
        self.set(index, value);
        match self.times.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(pos) => self.times[pos].1 = at,
            Err(pos) => self.times.insert(pos, (index, at)),
        }
    }

    /// When a stored property got its current value (`None`: it never had one).
    pub fn property_time(&self, index: u16) -> Option<i64> {
        match self.times.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(pos) => Some(self.times[pos].1),
            Err(_) => self.stored(index).map(|_| self.created_ms),
        }
    }

    /// The value of any property, computed ones included.
    pub fn value<'a>(&'a self, schema: &ObjectSchema, index: u16) -> Option<Cow<'a, str>> {
        match schema.def(index).computed {
            Some(Computed::ObjectId) => Some(Cow::Owned(self.id.to_string())),
            Some(Computed::CreatedAt) => Some(Cow::Owned(format_ms(self.created_ms))),
            Some(Computed::UpdatedAt) => Some(Cow::Owned(format_ms(self.updated_ms))),
            None => self.stored(index).map(Cow::Borrowed),
        }
    }

    pub fn value_by_name<'a>(&'a self, schema: &ObjectSchema, name: &str) -> Option<Cow<'a, str>> {
        schema
            .index_of(name)
            .and_then(|index| self.value(schema, index))
    }

    /// Every stored value, in schema order (cleared ones left out).
    pub fn stored_values(&self) -> impl Iterator<Item = (u16, &str)> {
        self.props
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(i, v)| (*i, &**v))
    }

    /// The record as HubSpot returns it. `properties` lists what to include; properties that
    /// exist but were never set come back as `null`, cleared ones as `""`, unknown names are
    /// skipped (as HubSpot does).
    /// The id and both timestamps are always included.
    pub fn to_json(&self, schema: &ObjectSchema, properties: &[&str]) -> Value {
        let mut props = Map::new();
        let kind = schema.kind;
        let always = [
            "hs_object_id",
            kind.created_property(),
            kind.modified_property(),
        ];
        for name in always.iter().chain(properties.iter()) {
            if props.contains_key(*name) {
                continue;
            }
            if let Some(index) = schema.index_of(name) {
                let value = match self.value(schema, index) {
                    Some(v) => Value::String(v.into_owned()),
                    None if self.cleared(index) => Value::String(String::new()),
                    None => Value::Null,
                };
                props.insert((*name).to_string(), value);
            }
        }
        let mut out = Map::new();
        out.insert("id".into(), Value::String(self.id.to_string()));
        out.insert("properties".into(), Value::Object(props));
        out.insert(
            "createdAt".into(),
            Value::String(format_ms(self.created_ms)),
        );
        out.insert(
            "updatedAt".into(),
            Value::String(format_ms(self.updated_ms)),
        );
        out.insert("archived".into(), Value::Bool(self.archived_at.is_some()));
        if let Some(at) = self.archived_at {
            out.insert("archivedAt".into(), Value::String(format_ms(at)));
        }
        Value::Object(out)
    }
}

impl Record {
    /// [`Record::to_json`] plus `propertiesWithHistory` for `history` (HubSpot's shape: per
    /// property, its versions newest first, each `{value, timestamp, sourceType, sourceId}`).
    /// The sandbox keeps one version per property: the current one. Computed and unknown
    /// properties are left out; one that never had a value has no versions.
    pub fn to_json_with_history(
        &self,
        schema: &ObjectSchema,
        properties: &[&str],
        history: &[&str],
    ) -> Value {
        let mut json = self.to_json(schema, properties);
        if history.is_empty() {
            return json;
        }
        let mut versions = Map::new();
        for name in history {
            let Some(index) = schema.index_of(name) else {
                continue;
            };
            if schema.def(index).computed.is_some() {
                continue;
            }
            let list: Vec<Value> = match self.property_time(index) {
                Some(at) => vec![serde_json::json!({
                    "value": self.stored(index).unwrap_or_default(),
                    "timestamp": format_ms(at),
                    "sourceType": "API",
                    "sourceId": "sandbox",
                })],
                None => Vec::new(),
            };
            versions.insert((*name).to_string(), Value::Array(list));
        }
        json["propertiesWithHistory"] = Value::Object(versions);
        json
    }
}

/// ISO-8601 UTC with milliseconds and `Z`, HubSpot's response format.
pub fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Reads a date or datetime value as HubSpot accepts it: epoch milliseconds, an ISO-8601
/// datetime, or a `YYYY-MM-DD` date (midnight UTC).
pub fn parse_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.timestamp_millis());
    }
    if let Ok(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(at.and_utc().timestamp_millis());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::super::schema::ObjectKind;
    use super::*;

    #[test]
    fn set_keeps_values_sorted_and_empty_clears() {
        let schema = ObjectKind::Contacts.schema();
        let phone = schema.index_of("phone").unwrap();
        let email = schema.index_of("email").unwrap();
        let mut record = Record::new(7, 0, 0);
        record.set(phone, "555");
        record.set(email, "a@b.c");
        assert_eq!(record.stored(phone), Some("555"));
        assert_eq!(record.stored(email), Some("a@b.c"));
        record.set(phone, "");
        assert_eq!(record.stored(phone), None);
        assert_eq!(record.stored_values().count(), 1);
        // Cleared reads back as "" (HubSpot's answer); never set stays null.
        let json = record.to_json(schema, &["phone", "firstname"]);
        assert_eq!(json["properties"]["phone"], "");
        assert_eq!(json["properties"]["firstname"], Value::Null);
        record.set(phone, "556");
        assert_eq!(record.stored(phone), Some("556"));
    }

    #[test]
    fn json_shape_has_strings_nulls_and_timestamps() {
        let schema = ObjectKind::Contacts.schema();
        let mut record = Record::new(101, 1_700_000_000_000, 1_700_000_000_123);
        record.set(schema.index_of("firstname").unwrap(), "Ada");
        let json = record.to_json(schema, &["firstname", "phone", "nonexistent"]);
        assert_eq!(json["id"], "101");
        assert_eq!(json["properties"]["hs_object_id"], "101");
        assert_eq!(json["properties"]["firstname"], "Ada");
        assert_eq!(json["properties"]["phone"], Value::Null);
        assert!(json["properties"].get("nonexistent").is_none());
        assert_eq!(json["updatedAt"], "2023-11-14T22:13:20.123Z");
        assert_eq!(json["properties"]["lastmodifieddate"], json["updatedAt"]);
        assert_eq!(json["archived"], false);
    }

    #[test]
    fn dates_parse_in_every_accepted_form() {
        assert_eq!(parse_ms("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(
            parse_ms("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_ms("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_ms("soon"), None);
    }
}
