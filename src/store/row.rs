//! The compact on-disk form of a contact row.
//!
//! Measured on the import path (BENCHMARKS.md): the derived serde form of `ContactRecord`
//! (tagged `{"t":"string","v":..}` values, a `{"source":{..},"at":"<RFC 3339>"}` object per
//! field) was ~1.2 KB a row and its encoding a large share of import time. This form keeps JSON
//! (debuggable, no new dependency) but: the phone is the key and is not repeated; strings,
//! numbers, booleans and null are plain JSON; dates, datetimes and enum variants are 2-element
//! arrays (`["d","2027-03-31"]`, `["t",<ns>]`, `["e","working"]`); each distinct provenance
//! source is stored once per row and fields point at it by index; times are nanoseconds since
//! the epoch.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value as Json;

use super::contacts::{ContactRecord, Provenance, Source};
use super::StoreError;
use crate::value::Value;

fn nanos(t: DateTime<Utc>) -> i64 {
    // Out of range only after the year 2262.
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn time(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(n)
}

/// Serializes one value in the compact form without building a JSON tree.
struct Compact<'a>(&'a Value);

impl Serialize for Compact<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::String(text) => s.serialize_str(text),
            Value::Number(n) => s.serialize_f64(*n),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Date(d) => {
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element("d")?;
                seq.serialize_element(&d.format("%Y-%m-%d").to_string())?;
                seq.end()
            }
            Value::Datetime(t) => {
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element("t")?;
                seq.serialize_element(&nanos(*t))?;
                seq.end()
            }
            Value::Enum(v) => {
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element("e")?;
                seq.serialize_element(v)?;
                seq.end()
            }
        }
    }
}

struct CompactFields<'a>(&'a BTreeMap<String, Value>);

impl Serialize for CompactFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, &Compact(value))?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct RowOut<'a> {
    f: CompactFields<'a>,
    s: Vec<&'a Source>,
    p: BTreeMap<&'a str, (usize, i64)>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    l: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    lp: &'a BTreeMap<String, BTreeMap<String, Json>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    im: BTreeMap<&'a str, i64>,
    c: i64,
    u: i64,
}

#[derive(Deserialize)]
struct RowIn {
    #[serde(default)]
    f: BTreeMap<String, Json>,
    #[serde(default)]
    s: Vec<Source>,
    #[serde(default)]
    p: BTreeMap<String, (usize, i64)>,
    #[serde(default)]
    l: BTreeMap<String, String>,
    #[serde(default)]
    lp: BTreeMap<String, BTreeMap<String, Json>>,
    #[serde(default)]
    im: BTreeMap<String, i64>,
    c: i64,
    u: i64,
}

pub(crate) fn encode(contact: &ContactRecord) -> Result<Vec<u8>, StoreError> {
    let mut sources: Vec<&Source> = Vec::new();
    let mut provenance = BTreeMap::new();
    for (field, p) in &contact.provenance {
        let index = match sources.iter().position(|s| **s == p.source) {
            Some(i) => i,
            None => {
                sources.push(&p.source);
                sources.len() - 1
            }
        };
        provenance.insert(field.as_str(), (index, nanos(p.at)));
    }
    let row = RowOut {
        f: CompactFields(&contact.fields),
        s: sources,
        p: provenance,
        l: &contact.links,
        lp: &contact.last_pushed,
        im: contact
            .inbound_modstamp
            .iter()
            .map(|(k, v)| (k.as_str(), nanos(*v)))
            .collect(),
        c: nanos(contact.created_at),
        u: nanos(contact.updated_at),
    };
    serde_json::to_vec(&row).map_err(StoreError::Encode)
}

pub(crate) fn decode(phone: &str, bytes: &[u8]) -> Result<ContactRecord, StoreError> {
    let corrupt = |source: serde_json::Error| StoreError::CorruptRow {
        table: "contacts",
        key: phone.to_string(),
        source,
    };
    let row: RowIn = serde_json::from_slice(bytes).map_err(corrupt)?;
    let mut fields = BTreeMap::new();
    for (name, json) in row.f {
        let value = value_of(json).ok_or_else(|| {
            corrupt(serde::de::Error::custom(format!(
                "field `{name}` has no valid stored value"
            )))
        })?;
        fields.insert(name, value);
    }
    let mut provenance = BTreeMap::new();
    for (name, (index, at)) in row.p {
        let source = row.s.get(index).cloned().ok_or_else(|| {
            corrupt(serde::de::Error::custom(format!(
                "field `{name}` points at a missing source"
            )))
        })?;
        provenance.insert(
            name,
            Provenance {
                source,
                at: time(at),
            },
        );
    }
    Ok(ContactRecord {
        phone: phone.to_string(),
        fields,
        provenance,
        links: row.l,
        last_pushed: row.lp,
        inbound_modstamp: row.im.into_iter().map(|(k, v)| (k, time(v))).collect(),
        created_at: time(row.c),
        updated_at: time(row.u),
    })
}

fn value_of(json: Json) -> Option<Value> {
    Some(match json {
        Json::Null => Value::Null,
        Json::String(s) => Value::String(s),
        Json::Number(n) => Value::Number(n.as_f64()?),
        Json::Bool(b) => Value::Bool(b),
        Json::Array(mut items) if items.len() == 2 => {
            let payload = items.pop()?;
            let tag = items.pop()?;
            match (tag.as_str()?, payload) {
                ("d", Json::String(d)) => {
                    Value::Date(NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()?)
                }
                ("t", Json::Number(n)) => Value::Datetime(time(n.as_i64()?)),
                ("e", Json::String(v)) => Value::Enum(v),
                _ => return None,
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_value_kind_round_trips() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 10, 3, 0).unwrap()
            + chrono::Duration::nanoseconds(123);
        let mut c = ContactRecord::new("+14155550101", at);
        let inbound = Source::Inbound {
            connection: "salesforce".into(),
        };
        c.fields.insert("a".into(), Value::Null);
        c.set_field(
            "b",
            Value::String(r#"["d","x"]"#.into()),
            inbound.clone(),
            at,
        );
        c.set_field("c", Value::Number(-0.5), inbound.clone(), at);
        c.set_field("d", Value::Bool(false), inbound, at);
        c.set_field(
            "e",
            Value::Date(NaiveDate::from_ymd_opt(2027, 3, 31).unwrap()),
            Source::Manual,
            at,
        );
        c.set_field(
            "f",
            Value::Datetime(at),
            Source::Analysis {
                conversation_id: "c1".into(),
            },
            at,
        );
        c.set_field("g", Value::Enum("working".into()), Source::Manual, at);
        c.links.insert("salesforce".into(), "003A".into());
        c.last_pushed
            .entry("salesforce".into())
            .or_default()
            .insert("Notes__c".into(), serde_json::json!("x"));
        c.inbound_modstamp.insert("salesforce".into(), at);
        let bytes = encode(&c).unwrap();
        assert_eq!(decode("+14155550101", &bytes).unwrap(), c);
    }

    #[test]
    fn a_bad_row_is_a_corrupt_row_error_naming_the_key() {
        let err = decode("+14155550101", br#"{"f":{"x":["q",1]},"c":0,"u":0}"#).unwrap_err();
        assert!(err.to_string().contains("+14155550101"), "{err}");
        assert!(err.to_string().contains("`x`"), "{err}");
    }
}
