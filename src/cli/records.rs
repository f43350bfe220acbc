//! Streaming a CRM records file in pages, so memory stays flat however large the file is.
//!
//! Accepted shapes: a JSON array of records; a Salesforce query result `{"records": [...]}`;
//! a HubSpot list/search response `{"results": [...]}` (other keys, such as `totalSize`,
//! `done`, `nextRecordsUrl` or `paging`, are ignored). Every record must be a JSON object.
//!
//! The file is read twice: [`validate`] checks syntax and shape without building values (so bad
//! input is reported before anything is written), then [`stream`] hands out pages.

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value as Json;

/// Records per page (one store transaction each).
pub const PAGE_SIZE: usize = 1000;

/// Why a records file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Malformed JSON or a wrong shape; serde_json's message carries line and column.
    #[error("{path}: {message}")]
    Input { path: String, message: String },
}

/// The records sink failed (the error is the caller's).
pub enum StreamError<E> {
    Records(RecordsError),
    Sink(E),
}

const EXPECTED: &str = "a JSON array of records, a Salesforce query result {\"records\": [...]}, \
or a HubSpot response {\"results\": [...]}";

fn open(path: &Path) -> Result<BufReader<File>, RecordsError> {
    File::open(path)
        .map(|file| BufReader::with_capacity(1 << 20, file))
        .map_err(|source| RecordsError::Io {
            path: path.display().to_string(),
            source,
        })
}

/// Checks syntax and shape of the whole file; returns the number of records.
pub fn validate(path: &Path) -> Result<usize, RecordsError> {
    let reader = open(path)?;
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut count = 0usize;
    let mut on_record = |_: RecordSlot| {
        count += 1;
        Ok::<(), ()>(())
    };
    let result = TopSeed {
        sink: &mut on_record,
        build: false,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    result.map_err(|err| RecordsError::Input {
        path: path.display().to_string(),
        message: err.to_string(),
    })?;
    Ok(count)
}

/// Streams the records in pages of `page_size`, handing each page to `on_page`.
pub fn stream<E>(
    path: &Path,
    page_size: usize,
    mut on_page: impl FnMut(Vec<Json>) -> Result<(), E>,
) -> Result<usize, StreamError<E>> {
    let reader = open(path).map_err(StreamError::Records)?;
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut page: Vec<Json> = Vec::with_capacity(page_size);
    let mut failed: Option<E> = None;
    let mut count = 0usize;
    let mut on_record = |slot: RecordSlot| {
        if let RecordSlot::Value(record) = slot {
            page.push(record);
            count += 1;
        }
        if page.len() >= page_size {
            let full = std::mem::replace(&mut page, Vec::with_capacity(page_size));
            if let Err(err) = on_page(full) {
                failed = Some(err);
                return Err(());
            }
        }
        Ok(())
    };
    let result = TopSeed {
        sink: &mut on_record,
        build: true,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if let Err(err) = result {
        return Err(match failed.take() {
            Some(sink_err) => StreamError::Sink(sink_err),
            None => StreamError::Records(RecordsError::Input {
                path: path.display().to_string(),
                message: err.to_string(),
            }),
        });
    }
    if let Some(err) = failed {
        return Err(StreamError::Sink(err));
    }
    if !page.is_empty() {
        on_page(page).map_err(StreamError::Sink)?;
    }
    Ok(count)
}

/// One record as handed to the sink: the value, or just "one more" when validating.
enum RecordSlot {
    Value(Json),
    Checked,
}

type Sink<'s> = dyn FnMut(RecordSlot) -> Result<(), ()> + 's;

struct TopSeed<'s, 'f> {
    sink: &'s mut Sink<'f>,
    build: bool,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        RecordsVisitor {
            sink: self.sink,
            build: self.build,
        }
        .visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if !found && (key == "records" || key == "results") {
                map.next_value_seed(RecordsSeed {
                    sink: &mut *self.sink,
                    build: self.build,
                })?;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if found {
            Ok(())
        } else {
            Err(de::Error::custom(format!(
                "no `records` or `results` array in the object; expected {EXPECTED}"
            )))
        }
    }
}

struct RecordsSeed<'s, 'f> {
    sink: &'s mut Sink<'f>,
    build: bool,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_seq(RecordsVisitor {
            sink: self.sink,
            build: self.build,
        })
    }
}

struct RecordsVisitor<'s, 'f> {
    sink: &'s mut Sink<'f>,
    build: bool,
}

impl<'de> Visitor<'de> for RecordsVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records (JSON objects)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let slot = if self.build {
                match seq.next_element_seed(RecordSeed { index })? {
                    Some(record) => RecordSlot::Value(record),
                    None => break,
                }
            } else {
                match seq.next_element_seed(CheckSeed { index })? {
                    Some(()) => RecordSlot::Checked,
                    None => break,
                }
            };
            (self.sink)(slot).map_err(|()| de::Error::custom("import stopped"))?;
            index += 1;
        }
        Ok(())
    }
}

/// Builds one record, which must be an object.
struct RecordSeed {
    index: usize,
}

impl<'de> DeserializeSeed<'de> for RecordSeed {
    type Value = Json;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Json, D::Error> {
        let value = Json::deserialize(de)?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(de::Error::custom(format!(
                "record #{} is not a JSON object",
                self.index
            )))
        }
    }
}

/// Checks one record is an object without building it.
struct CheckSeed {
    index: usize,
}

impl<'de> DeserializeSeed<'de> for CheckSeed {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CheckSeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record #{} to be a JSON object", self.index)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}
