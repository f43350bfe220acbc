//! The fast way through a records file: a small scanner finds where each record starts and
//! ends, and `serde_json::from_slice` parses it.
//!
//! WHY: parsing from an `io::Read` costs serde_json a call and an `io::Result` per byte; on a
//! 600 MB import that was a third of the thread that reads the file. Parsing a slice is about
//! twice as fast, and finding record boundaries only needs to track strings and nesting.
//!
//! The scanner knows only the accepted shapes (see the parent module). On anything else,
//! malformed or not, it answers [`Split::Unreadable`] and the caller runs the full parser over
//! the file to report the problem in serde_json's own words, with its line and column.

use std::io::{self, Read};

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value as Json;

use crate::engine::RecordKeys;

/// Bytes read from the file at a time.
const BLOCK: usize = 1 << 20;

/// Why the fast path stopped.
pub(super) enum Split<E> {
    /// The file is not in an accepted shape, or not valid JSON, here or further on.
    Unreadable,
    Io(io::Error),
    /// The record sink failed.
    Sink(E),
}

impl<E> From<io::Error> for Split<E> {
    fn from(err: io::Error) -> Self {
        Split::Io(err)
    }
}

/// Hands every record of the file to `on_record`, in file order; returns how many there were.
/// With `keep`, a record keeps only the top-level keys it names (the others are checked to be
/// JSON and skipped: building and freeing values nobody reads was a fifth of an import).
pub(super) fn records<R: Read, E>(
    reader: R,
    keep: Option<&RecordKeys>,
    mut on_record: impl FnMut(Json) -> Result<(), E>,
) -> Result<usize, Split<E>> {
    let mut input = Input {
        reader,
        buf: Vec::with_capacity(BLOCK),
        pos: 0,
        eof: false,
        keep,
    };
    let mut count = 0usize;
    let mut sink = |record: Json| {
        count += 1;
        on_record(record).map_err(Split::Sink)
    };
    match input.peek_token()? {
        Some(b'[') => input.records_array(&mut sink)?,
        Some(b'{') => input.response_object(&mut sink)?,
        _ => return Err(Split::Unreadable),
    }
    if input.peek_token()?.is_some() {
        return Err(Split::Unreadable);
    }
    Ok(count)
}

/// The file, read in blocks; `buf[pos..]` is not consumed yet.
struct Input<'k, R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    keep: Option<&'k RecordKeys>,
}

/// Where a value that starts at the beginning of a slice ends.
#[derive(Debug, PartialEq)]
enum Scan {
    /// Its length in bytes.
    End(usize),
    /// It goes past the slice.
    NeedMore,
    /// Not a value the scanner understands.
    Bad,
}

impl<R: Read> Input<'_, R> {
    /// Reads the next block, keeping the unconsumed bytes; false at the end of the file.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
        let start = self.buf.len();
        self.buf.resize(start + BLOCK, 0);
        let mut filled = start;
        while filled < self.buf.len() {
            match self.reader.read(&mut self.buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        self.buf.truncate(filled);
        if filled == start {
            self.eof = true;
            return Ok(false);
        }
        Ok(true)
    }

    /// The next byte that is not JSON whitespace (not consumed), or `None` at the end.
    fn peek_token(&mut self) -> io::Result<Option<u8>> {
        loop {
            match self.buf[self.pos..]
                .iter()
                .position(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
            {
                Some(skip) => {
                    self.pos += skip;
                    return Ok(Some(self.buf[self.pos]));
                }
                None => {
                    self.pos = self.buf.len();
                    if !self.fill()? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Consumes `byte` after optional whitespace.
    fn expect<E>(&mut self, byte: u8) -> Result<(), Split<E>> {
        if self.peek_token()? != Some(byte) {
            return Err(Split::Unreadable);
        }
        self.pos += 1;
        Ok(())
    }

    /// The bytes of the value at `pos` (after whitespace), consumed.
    fn value<E>(&mut self) -> Result<&[u8], Split<E>> {
        if self.peek_token()?.is_none() {
            return Err(Split::Unreadable);
        }
        loop {
            // At the end of the file a number may end with it; anything else is cut short.
            match scan_value(&self.buf[self.pos..], self.eof) {
                Scan::End(len) => {
                    let start = self.pos;
                    self.pos += len;
                    return Ok(&self.buf[start..start + len]);
                }
                Scan::NeedMore if !self.eof => {
                    self.fill()?;
                }
                Scan::NeedMore | Scan::Bad => return Err(Split::Unreadable),
            }
        }
    }

    /// `[ record, ... ]`, every record an object.
    fn records_array<E>(
        &mut self,
        sink: &mut impl FnMut(Json) -> Result<(), Split<E>>,
    ) -> Result<(), Split<E>> {
        self.expect(b'[')?;
        if self.peek_token()? == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if self.peek_token()? != Some(b'{') {
                return Err(Split::Unreadable);
            }
            let keep = self.keep;
            let bytes = self.value()?;
            let record = match keep {
                Some(keep) => parse_kept(bytes, keep),
                None => serde_json::from_slice(bytes),
            }
            .map_err(|_| Split::Unreadable)?;
            sink(record)?;
            match self.peek_token()? {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Split::Unreadable),
            }
        }
    }

    /// `{ "records": [...], ... }` or `{ "results": [...], ... }`: the first such key holds the
    /// records; every other value is checked to be JSON and skipped.
    fn response_object<E>(
        &mut self,
        sink: &mut impl FnMut(Json) -> Result<(), Split<E>>,
    ) -> Result<(), Split<E>> {
        self.expect(b'{')?;
        let mut found = false;
        loop {
            if self.peek_token()? != Some(b'"') {
                return Err(Split::Unreadable);
            }
            let key: String =
                serde_json::from_slice(self.value()?).map_err(|_| Split::Unreadable)?;
            self.expect(b':')?;
            if !found && (key == "records" || key == "results") {
                self.records_array(sink)?;
                found = true;
            } else {
                serde_json::from_slice::<IgnoredAny>(self.value()?)
                    .map_err(|_| Split::Unreadable)?;
            }
            match self.peek_token()? {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(Split::Unreadable),
            }
        }
        if found {
            Ok(())
        } else {
            Err(Split::Unreadable)
        }
    }
}

/// A record object with only the top-level keys `keep` names.
fn parse_kept(bytes: &[u8], keep: &RecordKeys) -> serde_json::Result<Json> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let record = (&mut de).deserialize_map(Kept { keep })?;
    de.end()?;
    Ok(record)
}

struct Kept<'k> {
    keep: &'k RecordKeys,
}

impl<'de> Visitor<'de> for Kept<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut record = serde_json::Map::new();
        while let Some(key) = map.next_key_seed(KeptKey { keep: self.keep })? {
            match key {
                // A repeated key keeps its last value, as serde_json's own `Value` does.
                Some(key) => {
                    record.insert(key, map.next_value()?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Json::Object(record))
    }
}

/// A record key: `Some` (allocated) when kept, `None` (never allocated) when skipped.
struct KeptKey<'k> {
    keep: &'k RecordKeys,
}

impl<'de> DeserializeSeed<'de> for KeptKey<'_> {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeptKey<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.keep.contains(key).then(|| key.to_owned()))
    }
}

/// Where the JSON value at the start of `bytes` ends. Checks only what finding the end needs
/// (strings, nesting); the parser checks the rest.
fn scan_value(bytes: &[u8], at_eof: bool) -> Scan {
    match bytes.first() {
        None => Scan::NeedMore,
        Some(b'"') => scan_string(bytes),
        Some(b'{' | b'[') => scan_nested(bytes),
        Some(b'}' | b']' | b',' | b':') => Scan::Bad,
        Some(_) => {
            // A number, `true`, `false` or `null`: up to the next delimiter.
            match bytes
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
            {
                Some(len) => Scan::End(len),
                None if at_eof => Scan::End(bytes.len()),
                None => Scan::NeedMore,
            }
        }
    }
}

/// The length of the string at the start of `bytes`, quotes included.
fn scan_string(bytes: &[u8]) -> Scan {
    match string_end(bytes, 1) {
        Some(end) => Scan::End(end),
        None => Scan::NeedMore,
    }
}

/// The index just past the closing quote of a string whose contents start at `from`.
fn string_end(bytes: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', &bytes[from..])?;
        if bytes[at] == b'"' {
            return Some(at + 1);
        }
        // A backslash escapes the next byte (`\uXXXX` has no quote or backslash after it).
        from = at + 2;
        if from > bytes.len() {
            return None;
        }
    }
}

/// The length of the object or array at the start of `bytes`.
fn scan_nested(bytes: &[u8]) -> Scan {
    let mut depth = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Scan::End(at + 1);
                }
            }
            b'"' => match string_end(bytes, at + 1) {
                Some(end) => {
                    at = end;
                    continue;
                }
                None => return Scan::NeedMore,
            },
            _ => {}
        }
        at += 1;
    }
    Scan::NeedMore
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Result<Vec<Json>, &'static str> {
        let mut out = Vec::new();
        match records(text.as_bytes(), None, |r| {
            out.push(r);
            Ok::<_, ()>(())
        }) {
            Ok(n) => {
                assert_eq!(n, out.len());
                Ok(out)
            }
            Err(Split::Unreadable) => Err("unreadable"),
            Err(Split::Io(_)) => Err("io"),
            Err(Split::Sink(())) => Err("sink"),
        }
    }

    #[test]
    fn every_accepted_shape_gives_the_records_in_order() {
        let a = r#"{"Id":"1","x":"a \"quoted\" } ] { [ string\\"}"#;
        let b = r#"{"Id":"2","nested":{"list":[1,[2,{"k":null}]]},"n":-1.5e3}"#;
        let expected: Vec<Json> = vec![
            serde_json::from_str(a).unwrap(),
            serde_json::from_str(b).unwrap(),
        ];
        let shapes = [
            format!("[{a},{b}]"),
            format!(" \n[ {a} ,\n {b} ]\n "),
            format!(r#"{{"totalSize":2,"done":true,"records":[{a},{b}]}}"#),
            format!(r#"{{"records":[{a},{b}],"nextRecordsUrl":null,"x":{{"y":[1,2]}}}}"#),
            format!(r#"{{"results":[{a},{b}],"paging":{{"next":{{"after":"2"}}}}}}"#),
            format!(r#"{{"records":[{a},{b}],"results":[5]}}"#),
        ];
        for shape in shapes {
            assert_eq!(all(&shape), Ok(expected.clone()), "{shape}");
        }
        assert_eq!(all("[]"), Ok(vec![]));
        assert_eq!(all(r#"{"records":[]}"#), Ok(vec![]));
    }

    #[test]
    fn anything_else_is_left_to_the_full_parser() {
        for text in [
            "",
            "5",
            "[5]",
            "[{}",
            "[{},]",
            "[{} {}]",
            "[{\"a\":1}]x",
            "{\"other\":[{}]}",
            "{\"records\":5}",
            "{\"records\":[{\"a\":tru}]}",
            "{\"records\":[{}],\"x\":nul}",
            "[{\"a\":\"unterminated}]",
            "[{\"a\":1,}]",
        ] {
            assert_eq!(all(text), Err("unreadable"), "{text:?}");
        }
    }

    #[test]
    fn records_spanning_block_boundaries_are_whole() {
        // Long strings put record boundaries at many offsets relative to the 1 MiB blocks.
        let records: Vec<Json> = (0..300)
            .map(|i| serde_json::json!({"Id": i.to_string(), "pad": "x".repeat(7919 * (i % 7))}))
            .collect();
        let text = serde_json::to_string(&records).unwrap();
        assert!(text.len() > 3 * BLOCK);
        assert_eq!(all(&text), Ok(records));
    }

    #[test]
    fn records_keep_only_the_named_keys_and_skipped_values_must_still_be_json() {
        let keys = RecordKeys::from_iter(["Id", "Phone", "Account"]);
        let text = r#"[{"attributes":{"type":"Contact","url":"/x"},"Id":"1","Title":"CEO","Phone":"555","Account":{"Name":"A"},"Id":"2"}]"#;
        let mut out = Vec::new();
        let read = records(text.as_bytes(), Some(&keys), |r| {
            out.push(r);
            Ok::<_, ()>(())
        });
        assert!(matches!(read, Ok(1)));
        assert_eq!(
            out,
            [serde_json::json!({"Id": "2", "Phone": "555", "Account": {"Name": "A"}})]
        );
        for bad in [r#"[{"Id":"1","Title":tru}]"#, r#"[{"Id":"1","x":[1,}]"#] {
            let read = records(bad.as_bytes(), Some(&keys), |_| Ok::<_, ()>(()));
            assert!(matches!(read, Err(Split::Unreadable)), "{bad}");
        }
    }

    #[test]
    fn scalars_end_at_delimiters_or_the_end_of_the_file() {
        assert_eq!(scan_value(b"123,", false), Scan::End(3));
        assert_eq!(scan_value(b"123", false), Scan::NeedMore);
        assert_eq!(scan_value(b"123", true), Scan::End(3));
        assert_eq!(scan_value(br#""a\"b" "#, false), Scan::End(6));
        assert_eq!(scan_value(br#""a\"#, false), Scan::NeedMore);
        assert_eq!(scan_value(b"]", false), Scan::Bad);
    }
}
