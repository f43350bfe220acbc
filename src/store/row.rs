//! The compact on-disk form of a contact row.
//!
//! Measured on the import path (BENCHMARKS.md): the derived serde form of `ContactRecord`
//! (tagged `{"t":"string","v":..}` values, a `{"source":{..},"at":"<RFC 3339>"}` object per
//! field) was ~1.2 KB a row and its encoding a large share of import time. This form keeps JSON
//! (debuggable, no new dependency) but: the phone is the key and is not repeated; strings,
//! numbers, booleans and null are plain JSON; dates, datetimes and enum variants are 2-element
//! arrays (`["d","2027-03-31"]`, `["t",<ns>]`, `["e","working"]`); each distinct provenance
//! source is stored once per row; times are nanoseconds since the epoch.
//!
//! Provenance is grouped: `"pv": [[source, at, 0, 1, 4], ...]` lists, per distinct (source,
//! time), the fields it wrote by their position in `f` (a field without a value would be
//! named instead). An import writes every field of a contact with one source at one time, so
//! this is one short group where the per-field map (`"p": {"email": [0, <ns>], ...}`, still
//! read) repeated every field name: rows are ~35% smaller, and the store's B-tree moves
//! proportionally fewer bytes per insert (BENCHMARKS.md, "Import"). `u` is left out when it
//! equals `c`.
//!
//! The row is written as MessagePack (`rmp-serde`, structs as maps with these short keys): the
//! same self-describing structure as JSON, a third smaller (times are 9 bytes, not 19 digits;
//! strings carry a length, not quotes), and the B-tree moves fewer bytes per insert. Rows written
//! as JSON, which start with `{` (a MessagePack map starts with a byte of 0x80 or more), are
//! still read. `crmsync contact get --json` shows a row's contents.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value as Json;

use super::contacts::{ContactRecord, OutOfStep, Provenance, Source};
use super::StoreError;
use crate::value::Value;

/// `t` as nanoseconds since the epoch, or why it cannot be stored. WHY an error and not the
/// nearest end of the range: a value bent on the way in is handed back (to the agent, to the
/// CRM) as a fact nobody gave. Coercion refuses such datetimes first
/// (`crate::value::coerce::storable_datetime`); this is the last line.
fn nanos(t: DateTime<Utc>, what: &dyn Fn() -> String) -> Result<i64, String> {
    t.timestamp_nanos_opt().ok_or_else(|| {
        format!(
            "{}: {} is outside the datetimes the store can hold ({})",
            what(),
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            crate::value::coerce::STORABLE_DATETIMES
        )
    })
}

fn time(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(n)
}

/// Per-connection times as nanoseconds, or why one cannot be stored.
fn stamps<'a>(
    map: &'a BTreeMap<String, DateTime<Utc>>,
    what: &str,
) -> Result<BTreeMap<&'a str, i64>, String> {
    map.iter()
        .map(|(k, v)| Ok((k.as_str(), nanos(*v, &|| format!("{what} `{k}`"))?)))
        .collect()
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
                let n = nanos(*t, &|| "a datetime value".to_string())
                    .map_err(serde::ser::Error::custom)?;
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element("t")?;
                seq.serialize_element(&n)?;
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
            if let Value::Datetime(t) = value {
                // Named here, where the field is known.
                nanos(*t, &|| format!("field `{name}`")).map_err(serde::ser::Error::custom)?;
            }
            map.serialize_entry(name, &Compact(value))?;
        }
        map.end()
    }
}

/// A field named in a provenance group: its position in `f`, or its name.
#[derive(Serialize)]
#[serde(untagged)]
enum FieldRef<'a> {
    Position(usize),
    Name(&'a str),
}

/// `[source index, at, field refs...]`.
struct Group<'a> {
    source: usize,
    at: i64,
    fields: Vec<FieldRef<'a>>,
}

impl Serialize for Group<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(2 + self.fields.len()))?;
        seq.serialize_element(&self.source)?;
        seq.serialize_element(&self.at)?;
        for field in &self.fields {
            seq.serialize_element(field)?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct RowOut<'a> {
    f: CompactFields<'a>,
    s: Vec<&'a Source>,
    pv: Vec<Group<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    l: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    lp: &'a BTreeMap<String, BTreeMap<String, Json>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    im: BTreeMap<&'a str, i64>,
    /// Fields a later conversation confirmed (rare: written only when there are some).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    cf: BTreeMap<&'a str, i64>,
    /// Out-of-step CRM fields (rare: written only when there are some).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    os: &'a BTreeMap<String, BTreeMap<String, OutOfStep>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    cs: &'a BTreeMap<String, BTreeMap<String, u64>>,
    c: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    u: Option<i64>,
}

#[derive(Deserialize)]
struct RowIn {
    #[serde(default)]
    f: BTreeMap<String, Json>,
    #[serde(default)]
    s: Vec<Source>,
    /// The per-field form rows had before `pv`.
    #[serde(default)]
    p: BTreeMap<String, (usize, i64)>,
    #[serde(default)]
    pv: Vec<Vec<Json>>,
    #[serde(default)]
    l: BTreeMap<String, String>,
    #[serde(default)]
    lp: BTreeMap<String, BTreeMap<String, Json>>,
    #[serde(default)]
    im: BTreeMap<String, i64>,
    #[serde(default)]
    cf: BTreeMap<String, i64>,
    #[serde(default)]
    os: BTreeMap<String, BTreeMap<String, OutOfStep>>,
    #[serde(default)]
    cs: BTreeMap<String, BTreeMap<String, u64>>,
    c: i64,
    u: Option<i64>,
}

pub(crate) fn encode(contact: &ContactRecord) -> Result<Vec<u8>, StoreError> {
    let refuse = |message: String| {
        StoreError::Encode(serde::ser::Error::custom(format!(
            "contact {}: {message}",
            contact.phone
        )))
    };
    let mut sources: Vec<&Source> = Vec::new();
    let mut groups: Vec<Group<'_>> = Vec::new();
    // `fields` and `provenance` are both sorted by name, so one merge walk finds each
    // provenance entry's position in `f`.
    let mut positions = contact.fields.keys().enumerate().peekable();
    for (field, p) in &contact.provenance {
        while positions.next_if(|(_, name)| *name < field).is_some() {}
        let field_ref = match positions.peek() {
            Some((i, name)) if *name == field => FieldRef::Position(*i),
            _ => FieldRef::Name(field),
        };
        let source = match sources.iter().position(|s| **s == p.source) {
            Some(i) => i,
            None => {
                sources.push(&p.source);
                sources.len() - 1
            }
        };
        let at =
            nanos(p.at, &|| format!("the time field `{field}` was written")).map_err(refuse)?;
        match groups.iter_mut().find(|g| g.source == source && g.at == at) {
            Some(group) => group.fields.push(field_ref),
            None => groups.push(Group {
                source,
                at,
                fields: vec![field_ref],
            }),
        }
    }
    let created = nanos(contact.created_at, &|| "created_at".to_string()).map_err(refuse)?;
    let updated = nanos(contact.updated_at, &|| "updated_at".to_string()).map_err(refuse)?;
    let im = stamps(&contact.inbound_modstamp, "the CRM modification time of").map_err(refuse)?;
    let cf = stamps(&contact.confirmed_at, "the confirmation time of").map_err(refuse)?;
    let row = RowOut {
        f: CompactFields(&contact.fields),
        s: sources,
        pv: groups,
        l: &contact.links,
        lp: &contact.last_pushed,
        im,
        cf,
        os: &contact.out_of_step,
        cs: &contact.crm_seen,
        c: created,
        u: (updated != created).then_some(updated),
    };
    rmp_serde::to_vec_named(&row).map_err(|err| refuse(err.to_string()))
}

pub(crate) fn decode(phone: &str, bytes: &[u8]) -> Result<ContactRecord, StoreError> {
    let corrupt = |source: serde_json::Error| StoreError::CorruptRow {
        table: "contacts",
        key: phone.to_string(),
        source,
    };
    let row: RowIn = if bytes.first() == Some(&b'{') {
        serde_json::from_slice(bytes).map_err(corrupt)?
    } else {
        rmp_serde::from_slice(bytes).map_err(|err| corrupt(serde::de::Error::custom(err)))?
    };
    let mut fields = BTreeMap::new();
    for (name, json) in row.f {
        let value = value_of(json).ok_or_else(|| {
            corrupt(serde::de::Error::custom(format!(
                "field `{name}` has no valid stored value"
            )))
        })?;
        fields.insert(name, value);
    }
    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
    let source_at = |index: usize, name: &str| {
        row.s.get(index).cloned().ok_or_else(|| {
            corrupt(serde::de::Error::custom(format!(
                "field `{name}` points at a missing source"
            )))
        })
    };
    let mut provenance = BTreeMap::new();
    for (name, (index, at)) in &row.p {
        let source = source_at(*index, name)?;
        provenance.insert(
            name.clone(),
            Provenance {
                source,
                at: time(*at),
            },
        );
    }
    for group in &row.pv {
        let bad_group = || corrupt(serde::de::Error::custom("a malformed provenance group"));
        let (Some(index), Some(at)) = (
            group.first().and_then(Json::as_u64),
            group.get(1).and_then(Json::as_i64),
        ) else {
            return Err(bad_group());
        };
        for field_ref in &group[2..] {
            let name = match field_ref {
                Json::String(name) => name.as_str(),
                Json::Number(n) => n
                    .as_u64()
                    .and_then(|i| names.get(usize::try_from(i).ok()?).copied())
                    .ok_or_else(bad_group)?,
                _ => return Err(bad_group()),
            };
            let source = source_at(usize::try_from(index).unwrap_or(usize::MAX), name)?;
            provenance.insert(
                name.to_string(),
                Provenance {
                    source,
                    at: time(at),
                },
            );
        }
    }
    Ok(ContactRecord {
        phone: phone.to_string(),
        fields,
        provenance,
        links: row.l,
        last_pushed: row.lp,
        inbound_modstamp: row.im.into_iter().map(|(k, v)| (k, time(v))).collect(),
        confirmed_at: row.cf.into_iter().map(|(k, v)| (k, time(v))).collect(),
        out_of_step: row.os,
        crm_seen: row.cs,
        created_at: time(row.c),
        updated_at: time(row.u.unwrap_or(row.c)),
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
                ended_at: Some(at),
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
        c.out_of_step
            .entry("salesforce".into())
            .or_default()
            .insert(
                "Email".into(),
                super::super::contacts::OutOfStep {
                    value: serde_json::json!("not-an-email"),
                    message: "INVALID_EMAIL_ADDRESS: bad".into(),
                    since: at,
                },
            );
        c.crm_seen
            .entry("salesforce".into())
            .or_default()
            .insert("Notes__c".into(), u64::MAX - 7);
        // Provenance for a field that has no value is kept by name.
        c.provenance.insert(
            "gone".into(),
            Provenance {
                source: Source::Manual,
                at,
            },
        );
        let bytes = encode(&c).unwrap();
        assert_eq!(decode("+14155550101", &bytes).unwrap(), c);
    }

    #[test]
    fn provenance_is_one_group_per_source_and_time() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 10, 3, 0).unwrap();
        let mut c = ContactRecord::new("+14155550101", at);
        let inbound = Source::Inbound {
            connection: "salesforce".into(),
        };
        for name in ["email", "first_name", "last_name"] {
            c.set_field(name, Value::String("x".into()), inbound.clone(), at);
        }
        c.set_field("lead_status", Value::Enum("new".into()), Source::Manual, at);
        let bytes = encode(&c).unwrap();
        let row: Json = rmp_serde::from_slice(&bytes).unwrap();
        let ns = nanos(at, &String::new).unwrap();
        assert_eq!(row["pv"], serde_json::json!([[0, ns, 0, 1, 2], [1, ns, 3]]));
        // `updated_at` equals `created_at`: not stored.
        assert!(row.get("u").is_none(), "{row}");
        assert_eq!(decode("+14155550101", &bytes).unwrap(), c);
    }

    #[test]
    fn rows_written_with_the_per_field_provenance_map_still_read() {
        let row = br#"{"f":{"email":"a@b.c","lead_status":["e","new"]},"s":[{"kind":"inbound","connection":"salesforce"},{"kind":"manual"}],"p":{"email":[0,5],"lead_status":[1,7]},"c":1,"u":9}"#;
        let c = decode("+14155550101", row).unwrap();
        assert_eq!(c.provenance["email"].at, time(5));
        assert_eq!(c.provenance["lead_status"].source, Source::Manual);
        assert_eq!(c.updated_at, time(9));
        assert_eq!(c.fields["lead_status"], Value::Enum("new".into()));
    }

    #[test]
    fn a_provenance_group_pointing_past_the_fields_is_a_corrupt_row() {
        let row = br#"{"f":{"email":"a"},"s":[{"kind":"manual"}],"pv":[[0,5,3]],"c":1}"#;
        let err = decode("+14155550101", row).unwrap_err();
        assert!(err.to_string().contains("provenance"), "{err}");
    }

    #[test]
    fn rows_are_messagepack_and_rows_written_as_json_still_read() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 10, 3, 0).unwrap();
        let mut c = ContactRecord::new("+14155550101", at);
        let inbound = Source::Inbound {
            connection: "salesforce".into(),
        };
        c.set_field(
            "email",
            Value::String("ada@example.com".into()),
            inbound,
            at,
        );
        c.set_field("lead_status", Value::Enum("new".into()), Source::Manual, at);
        c.links.insert("salesforce".into(), "003A".into());
        let packed = encode(&c).unwrap();
        assert!(packed[0] >= 0x80, "a MessagePack map: {packed:?}");
        // The same row as JSON, as stores written before MessagePack hold it.
        let as_json = serde_json::to_vec(&rmp_serde::from_slice::<Json>(&packed).unwrap()).unwrap();
        assert_eq!(as_json[0], b'{');
        assert!(
            packed.len() * 4 < as_json.len() * 3,
            "{} vs {}",
            packed.len(),
            as_json.len()
        );
        assert_eq!(decode("+14155550101", &packed).unwrap(), c);
        assert_eq!(decode("+14155550101", &as_json).unwrap(), c);
        let err = decode("+14155550101", &[0x81, 0xa1]).unwrap_err();
        assert!(err.to_string().contains("+14155550101"), "{err}");
    }

    #[test]
    fn a_datetime_the_store_cannot_hold_is_an_error_not_bent() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 10, 3, 0).unwrap();
        let far = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
        let early = Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap();
        for t in [far, early] {
            let mut c = ContactRecord::new("+14155550101", at);
            c.set_field("next_call", Value::Datetime(t), Source::Manual, at);
            let err = encode(&c).unwrap_err().to_string();
            assert!(err.contains("+14155550101"), "{err}");
            assert!(err.contains("`next_call`"), "{err}");
            assert!(err.contains("outside the datetimes"), "{err}");

            let mut c = ContactRecord::new("+14155550101", at);
            c.inbound_modstamp.insert("hubspot".into(), t);
            let err = encode(&c).unwrap_err().to_string();
            assert!(err.contains("`hubspot`"), "{err}");

            let c = ContactRecord::new("+14155550101", t);
            let err = encode(&c).unwrap_err().to_string();
            assert!(err.contains("created_at"), "{err}");
        }
    }

    #[test]
    fn a_bad_row_is_a_corrupt_row_error_naming_the_key() {
        let err = decode("+14155550101", br#"{"f":{"x":["q",1]},"c":0,"u":0}"#).unwrap_err();
        assert!(err.to_string().contains("+14155550101"), "{err}");
        assert!(err.to_string().contains("`x`"), "{err}");
    }
}
