//! End-to-end benchmark: `crmsync import` of N Salesforce-shaped Contact records from a file
//! into a new store, run as the real release binary, with wall time and peak RSS.
//!
//! `cargo bench --bench store_import` (sizes default to 100000 300000 1000000; pass others as
//! arguments: `cargo bench --bench store_import -- 50000`).
//!
//! Baselines measured in the same run, on the same data:
//! - `parse only`: stream the same file record by record into `serde_json::Value` and drop it
//!   (the floor for any importer that builds JSON values);
//! - `raw redb`: the store writes of the import without the rules: per record, a lookup of its
//!   phone, a contact row (≈ the size crmsync stores) and a record-index row, with the same key
//!   types, in one transaction committed durably.

mod support;

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableTable, TableDefinition};
use serde::de::{Deserializer, SeqAccess, Visitor};

const CONTACTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("contacts");
const RECORD_INDEX: TableDefinition<(&[u8], &[u8]), &str> = TableDefinition::new("record_index");

/// Counts the elements of a JSON array, building each as a `serde_json::Value`.
struct CountValues;

impl<'de> Visitor<'de> for CountValues {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut count = 0;
        while let Some(value) = seq.next_element::<serde_json::Value>()? {
            std::hint::black_box(&value);
            count += 1;
        }
        Ok(count)
    }
}

fn parse_only(file: &Path) -> (Duration, u64) {
    let started = Instant::now();
    let reader = BufReader::with_capacity(1 << 20, File::open(file).unwrap());
    let mut de = serde_json::Deserializer::from_reader(reader);
    let count = (&mut de).deserialize_seq(CountValues).unwrap();
    (started.elapsed(), count)
}

fn raw_redb(store: &Path, count: u64) -> Duration {
    let started = Instant::now();
    let db = Database::builder()
        .set_cache_size(crmsync::store::DEFAULT_CACHE_BYTES)
        .create(store)
        .unwrap();
    // About the size of one encoded contact row with six fields, provenance and a link.
    let row = vec![b'x'; 270];
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::Immediate);
    {
        let mut contacts = txn.open_table(CONTACTS).unwrap();
        let mut ids = txn.open_table(RECORD_INDEX).unwrap();
        for i in 0..count {
            let phone = support::e164(i);
            let id = support::salesforce_id(i);
            assert!(contacts.get(phone.as_bytes()).unwrap().is_none());
            ids.insert((b"salesforce".as_slice(), id.as_bytes()), phone.as_str())
                .unwrap();
            contacts.insert(phone.as_bytes(), row.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    started.elapsed()
}

/// Runs the release binary; returns wall time and peak RSS in KiB (from `/usr/bin/time`, which
/// reads the kernel's `ru_maxrss` for the child).
fn crmsync_import(rules: &Path, store: &Path, file: &Path, out_dir: &Path) -> (Duration, u64) {
    let rss_file = out_dir.join("rss.txt");
    let started = Instant::now();
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(env!("CARGO_BIN_EXE_crmsync"))
        .arg("--rules")
        .arg(rules)
        .arg("--store")
        .arg(store)
        .arg("--json")
        .args(["import", "--connection", "salesforce"])
        .arg(file)
        .stdout(Stdio::null())
        .status()
        .expect("run /usr/bin/time (install the `time` package)");
    let elapsed = started.elapsed();
    assert!(status.success(), "crmsync import failed: {status}");
    let rss_kib = std::fs::read_to_string(&rss_file)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    (elapsed, rss_kib)
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn main() {
    let sizes: Vec<u64> = {
        let given: Vec<u64> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if given.is_empty() {
            vec![100_000, 300_000, 1_000_000]
        } else {
            given
        }
    };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let rules = dir.path().join("rules");
    support::write_rules(&rules).unwrap();

    println!("| records | file MB | crmsync import s | records/s | peak RSS MB | parse only s | raw redb s | import / parse | import / raw redb | contacts |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for count in sizes {
        let file = dir.path().join(format!("salesforce-{count}.json"));
        support::write_salesforce_file(&file, count).unwrap();
        let file_mb = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;

        let store = dir.path().join(format!("import-{count}.redb"));
        let (import, rss_kib) = crmsync_import(&rules, &store, &file, dir.path());
        let contacts = crmsync::store::Store::open(&store)
            .unwrap()
            .contact_count()
            .unwrap();
        // Every 100th record has no phone and is skipped.
        assert_eq!(contacts, count - count / 100, "contacts after import");

        let (parse, parsed) = parse_only(&file);
        assert_eq!(parsed, count);
        let raw = raw_redb(&dir.path().join(format!("raw-{count}.redb")), count);

        println!(
            "| {count} | {file_mb:.0} | {:.2} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {contacts} |",
            import.as_secs_f64(),
            rate(count, import),
            rss_kib as f64 / 1024.0,
            parse.as_secs_f64(),
            raw.as_secs_f64(),
            import.as_secs_f64() / parse.as_secs_f64(),
            import.as_secs_f64() / raw.as_secs_f64(),
        );
        for path in [&file, &store] {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_file(dir.path().join(format!("raw-{count}.redb")));
    }
}
