//! Streaming a CRM records file in pages, so memory stays flat however large the file is.
//!
//! Accepted shapes: a JSON array of records; a Salesforce query result `{"records": [...]}`;
//! a HubSpot list/search response `{"results": [...]}` (other keys, such as `totalSize`,
//! `done`, `nextRecordsUrl` or `paging`, are ignored). Every record must be a JSON object.
//!
//! The file is read once, by [`stream`], the fast way ([`split`]); an error (malformed JSON, a
//! record that is not an object) stops it, and `import` then aborts its store transaction, so
//! bad input anywhere in the file leaves the store unchanged. The error is then found again by
//! serde_json's streaming parser (this module's visitors), which names it with line and column.

mod split;

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value as Json;

use crate::engine::RecordKeys;

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

fn open(path: &Path) -> Result<File, RecordsError> {
    File::open(path).map_err(|source| io_error(path, source))
}

fn io_error(path: &Path, source: std::io::Error) -> RecordsError {
    RecordsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Streams the records in pages of `page_size`, handing each page to `on_page`. With `keep`,
/// records keep only the top-level keys it names.
pub fn stream<E>(
    path: &Path,
    page_size: usize,
    keep: Option<&RecordKeys>,
    mut on_page: impl FnMut(Vec<Json>) -> Result<(), E>,
) -> Result<usize, StreamError<E>> {
    let file = open(path).map_err(StreamError::Records)?;
    let mut page: Vec<Json> = Vec::with_capacity(page_size);
    let read = split::records(file, keep, |record| {
        page.push(record);
        if page.len() >= page_size {
            on_page(std::mem::replace(&mut page, Vec::with_capacity(page_size)))?;
        }
        Ok(())
    });
    match read {
        Ok(count) => {
            if !page.is_empty() {
                on_page(page).map_err(StreamError::Sink)?;
            }
            Ok(count)
        }
        Err(split::Split::Sink(err)) => Err(StreamError::Sink(err)),
        Err(split::Split::Io(source)) => Err(StreamError::Records(io_error(path, source))),
        Err(split::Split::Unreadable) => Err(StreamError::Records(explain(path))),
    }
}

/// Why the fast path could not read the file, in serde_json's words (the file is read again
/// by its streaming parser, which stops at the first problem with its line and column).
fn explain(path: &Path) -> RecordsError {
    let reread = open(path).map_err(StreamError::Records).and_then(|file| {
        stream_with_serde(path, BufReader::with_capacity(1 << 20, file), 1024, |_| {
            Ok::<_, ()>(())
        })
    });
    match reread {
        Err(StreamError::Records(err)) => err,
        // serde_json read what the scanner could not: a scanner bug, not the file's fault.
        Ok(_) | Err(StreamError::Sink(())) => RecordsError::Input {
            path: path.display().to_string(),
            message: "crmsync's records scanner could not split this file into records, although \
                      it is valid JSON (please report this as a bug)"
                .to_string(),
        },
    }
}

/// [`stream`] through serde_json's streaming parser.
fn stream_with_serde<E>(
    path: &Path,
    reader: impl Read,
    page_size: usize,
    mut on_page: impl FnMut(Vec<Json>) -> Result<(), E>,
) -> Result<usize, StreamError<E>> {
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
