//! Streaming a CRM records file in pages, so memory stays flat however large the file is.
//!
//! Accepted shapes: a JSON array of records; a Salesforce query result `{"records": [...]}`;
//! a HubSpot list/search response `{"results": [...]}` (other keys, such as `totalSize`,
//! `done`, `nextRecordsUrl` or `paging`, are ignored). Every record must be a JSON object.
//!
//! The file is read once, by [`stream`]; an error (malformed JSON, a record that is not an
//! object) stops it with serde_json's line and column, and `import` then aborts its store
//! transaction, so bad input anywhere in the file leaves the store unchanged.

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value as Json;

/// Records per page (the unit of parsing and of duplicate resolution; `import` applies them all
/// in one store transaction).
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
    let mut on_record = |record: Json| {
        page.push(record);
        count += 1;
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

type Sink<'s> = dyn FnMut(Json) -> Result<(), ()> + 's;

struct TopSeed<'s, 'f> {
    sink: &'s mut Sink<'f>,
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
        RecordsVisitor { sink: self.sink }.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if !found && (key == "records" || key == "results") {
                map.next_value_seed(RecordsSeed {
                    sink: &mut *self.sink,
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
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_seq(RecordsVisitor { sink: self.sink })
    }
}

struct RecordsVisitor<'s, 'f> {
    sink: &'s mut Sink<'f>,
}

impl<'de> Visitor<'de> for RecordsVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records (JSON objects)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let Some(record) = seq.next_element_seed(RecordSeed { index })? else {
                break;
            };
            (self.sink)(record).map_err(|()| de::Error::custom("import stopped"))?;
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
