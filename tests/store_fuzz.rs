//! Seeded mutation fuzz of store files: a real store (contacts imported and a conversation
//! applied by the `crmsync` binary) has bits flipped, is truncated, or has byte ranges
//! overwritten at seeded positions; each mutant is opened, checked and listed in-process. No
//! case may panic (a redb panic must be contained as [`StoreError::Damaged`]), and an error
//! from opening or checking must name the file.
//!
//! `CRMSYNC_STORE_FUZZ_CASES` sets the number of cases (default 200, about 15 s in a debug build);
//! `CRMSYNC_STORE_FUZZ_SEED` replays one case (its seed is printed when it fails).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use crmsync::store::Store;

const DEFAULT_CASES: u64 = 200;
/// The seed of the first case (case n has seed BASE_SEED + n).
const BASE_SEED: u64 = 0x5eed_0000;

fn crmsync(dir: &Path, args: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_crmsync"))
        .current_dir(dir)
        .arg("--rules")
        .arg(root.join("rules"))
        .args(args)
        .output()
        .expect("crmsync runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn real_store(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let records = root.join("examples/records/salesforce_contacts.json");
    let event = root.join("examples/events/call_analyzed.json");
    crmsync(
        dir,
        &[
            "--store",
            "base.redb",
            "import",
            "--connection",
            "salesforce",
            records.to_str().unwrap(),
        ],
    );
    crmsync(
        dir,
        &["--store", "base.redb", "analyze", event.to_str().unwrap()],
    );
    dir.join("base.redb")
}

/// The mutant of `bytes` for one seed, and what was done (for the failure message).
fn mutate(bytes: &[u8], seed: u64) -> (Vec<u8>, String) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = bytes.to_vec();
    let len = out.len();
    let what = match rng.gen_range(0..4) {
        0 => {
            let flips = rng.gen_range(1..=8);
            let mut at = Vec::new();
            for _ in 0..flips {
                let pos = rng.gen_range(0..len);
                out[pos] ^= 1 << rng.gen_range(0..8);
                at.push(pos);
            }
            format!("bits flipped at {at:?}")
        }
        1 => {
            let keep = rng.gen_range(0..len);
            out.truncate(keep);
            format!("truncated to {keep} bytes")
        }
        kind => {
            let start = rng.gen_range(0..len);
            let end = (start + rng.gen_range(1..=8192)).min(len);
            if kind == 2 {
                rng.fill_bytes(&mut out[start..end]);
                format!("random bytes over {start}..{end}")
            } else {
                out[start..end].fill(0);
                format!("zeros over {start}..{end}")
            }
        }
    };
    (out, what)
}

/// Opens, checks and lists the store at `path`; returns the first error that does not name
/// the file.
fn exercise(path: &Path) -> Result<(), String> {
    let name = path.display().to_string();
    let names_file = |err: &dyn std::fmt::Display| {
        let text = err.to_string();
        if text.contains(&name) {
            Ok(())
        } else {
            Err(format!("an error that does not name the file: {text}"))
        }
    };
    let store = match Store::open(path) {
        Ok(store) => store,
        Err(err) => return names_file(&err),
    };
    if let Err(err) = store.check() {
        names_file(&err)?;
    }
    // Listings may fail (a row that does not decode names its table and key); never panic.
    let _ = store.contacts(None, usize::MAX);
    let _ = store.outbox_counts();
    let _ = store.activities(None);
    let _ = store.dead_letters();
    let _ = store.pending_writes(None);
    Ok(())
}

#[test]
fn mutated_store_files_are_errors_naming_the_file_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read(real_store(dir.path())).unwrap();
    let seeds: Vec<u64> = match std::env::var("CRMSYNC_STORE_FUZZ_SEED") {
        Ok(seed) => vec![seed.parse().expect("CRMSYNC_STORE_FUZZ_SEED is a number")],
        Err(_) => {
            let cases = std::env::var("CRMSYNC_STORE_FUZZ_CASES")
                .map(|n| n.parse().expect("CRMSYNC_STORE_FUZZ_CASES is a number"))
                .unwrap_or(DEFAULT_CASES);
            (0..cases).map(|n| BASE_SEED + n).collect()
        }
    };
    let mut opened = 0;
    for seed in seeds {
        let (bytes, what) = mutate(&base, seed);
        let path = dir.path().join(format!("mutant-{seed}.redb"));
        std::fs::write(&path, &bytes).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(&path)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(problem)) => panic!(
                "case {what}: {problem}\nreplay: CRMSYNC_STORE_FUZZ_SEED={seed} cargo test --test store_fuzz"
            ),
            Err(_) => panic!(
                "case {what} panicked\nreplay: CRMSYNC_STORE_FUZZ_SEED={seed} cargo test --test store_fuzz"
            ),
        }
        if Store::open(&path).is_ok() {
            opened += 1;
        }
        let _ = std::fs::remove_file(&path);
    }
    eprintln!("store fuzz: {opened} mutant(s) still opened");
}
