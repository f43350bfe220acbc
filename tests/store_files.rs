//! The store file, through the real `crmsync` binary: a damaged store is an error (exit 3, the
//! file named, what to do), never a panic, and is left as it was; `crmsync store check` walks a
//! store; `crmsync store backup` copies it, also while a daemon holds it; a store written by a
//! newer crmsync (a higher format version) is refused, not misread.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde_json::json;

use crmsync::daemon::{self, DaemonOptions};
use crmsync::engine::Engine;
use crmsync::merge::FallbackMerger;
use crmsync::store::{Store, StoreError, FORMAT_VERSION};
use crmsync::value::phone::PhoneNormalizer;

const TOKEN: &str = "test-api-token";

fn crmsync(dir: &Path, args: &[&str]) -> Output {
    let root = env!("CARGO_MANIFEST_DIR");
    Command::new(env!("CARGO_BIN_EXE_crmsync"))
        .current_dir(dir)
        .arg("--rules")
        .arg(Path::new(root).join("rules"))
        .args(args)
        .env("CRMSYNC_API_TOKEN", TOKEN)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("crmsync runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A store with imported contacts, a conversation and its outbox rows, made by the binary.
fn real_store(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let store = dir.join("store.redb");
    let records = root.join("examples/records/salesforce_contacts.json");
    let import = crmsync(
        dir,
        &[
            "--store",
            "store.redb",
            "import",
            "--connection",
            "salesforce",
            records.to_str().unwrap(),
        ],
    );
    assert!(import.status.success(), "{}", stderr(&import));
    let event = root.join("examples/events/call_analyzed.json");
    let analyze = crmsync(
        dir,
        &["--store", "store.redb", "analyze", event.to_str().unwrap()],
    );
    assert!(analyze.status.success(), "{}", stderr(&analyze));
    store
}

/// Each damage: truncated by one byte, 4 KiB of (seeded) garbage at offset 512 or 4096.
fn damaged_copies(store: &Path, dir: &Path) -> Vec<(String, PathBuf)> {
    let bytes = std::fs::read(store).unwrap();
    let mut garbage = vec![0u8; 4096];
    StdRng::seed_from_u64(12).fill_bytes(&mut garbage);
    let mut out = Vec::new();
    let mut save = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(format!("{name}.redb"));
        std::fs::write(&path, bytes).unwrap();
        out.push((name.to_string(), path));
    };
    save("truncated", bytes[..bytes.len() - 1].to_vec());
    for offset in [512, 4096] {
        let mut copy = bytes.clone();
        copy[offset..offset + 4096].copy_from_slice(&garbage);
        save(&format!("garbage-at-{offset}"), copy);
    }
    out
}

#[test]
fn a_damaged_store_is_exit_3_naming_the_file_and_what_to_do_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let store = real_store(dir.path());
    for (damage, path) in damaged_copies(&store, dir.path()) {
        let before = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        for command in [
            &["contact", "list"][..],
            &["outbox"][..],
            &["store", "check"][..],
        ] {
            let mut args = vec!["--store", name];
            args.extend_from_slice(command);
            let output = crmsync(dir.path(), &args);
            let err = stderr(&output);
            assert_eq!(
                output.status.code(),
                Some(3),
                "{damage}, {command:?}: {err}"
            );
            assert!(
                err.contains(&format!("the store {name} is damaged")),
                "{damage}, {command:?}: {err}"
            );
            assert!(err.contains("restore it from a backup"), "{err}");
            assert!(err.contains("store check"), "{err}");
            // No uncontained panic (the default hook's "thread ... panicked").
            assert!(!err.contains("thread '"), "{damage}, {command:?}: {err}");
        }
        assert!(
            std::fs::read(&path).unwrap() == before,
            "{damage}: the damaged file was changed"
        );
    }
}

#[test]
fn store_check_lists_the_rows_of_every_table_of_a_sound_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = real_store(dir.path());
    let output = crmsync(
        dir.path(),
        &["--store", "store.redb", "--json", "store", "check"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["format_version"], json!(FORMAT_VERSION));
    assert_eq!(report["problems"], json!([]));
    let rows = |table: &str| {
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry[0] == table)
            .unwrap_or_else(|| panic!("{table} in {report}"))[1]
            .as_u64()
            .unwrap()
    };
    let opened = Store::open(&store).unwrap();
    assert_eq!(rows("contacts_v2"), opened.contact_count().unwrap());
    assert!(rows("contacts_v2") >= 3);
    // The one conversation applied: an activity intent, or an applied row when it owes none.
    assert_eq!(rows("activities_v2") + rows("applied_conversations"), 1);
    assert_eq!(rows("meta"), 1);
    drop(opened);
    // Without --json: one line per table.
    let output = crmsync(dir.path(), &["--store", "store.redb", "store", "check"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("format version 1"), "{text}");
    assert!(text.contains("contacts_v2"), "{text}");
    // A missing store is an error, and nothing is created.
    let output = crmsync(dir.path(), &["--store", "none.redb", "store", "check"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("there is no store at none.redb"));
    assert!(!dir.path().join("none.redb").exists());
}

/// Every contact, as the store holds them.
fn contacts(path: &Path) -> Vec<crmsync::store::ContactRecord> {
    Store::open(path)
        .unwrap()
        .contacts(None, usize::MAX)
        .unwrap()
}

#[test]
fn store_backup_copies_every_table_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let store = real_store(dir.path());
    let output = crmsync(
        dir.path(),
        &["--store", "store.redb", "store", "backup", "copy.redb"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let copy = dir.path().join("copy.redb");
    assert_eq!(contacts(&copy), contacts(&store));
    let (a, b) = (
        Store::open(&copy).unwrap().check().unwrap(),
        Store::open(&store).unwrap().check().unwrap(),
    );
    assert_eq!(a, b);
    // The destination exists now: refused, and left alone.
    let before = std::fs::read(&copy).unwrap();
    let output = crmsync(
        dir.path(),
        &["--store", "store.redb", "store", "backup", "copy.redb"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("exists already"));
    assert!(std::fs::read(&copy).unwrap() == before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_backup_goes_through_the_daemon_that_holds_the_store_while_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let path = real_store(dir.path());
    let rules = crmsync::lang::compile_dir(Path::new("rules")).unwrap();
    let engine =
        Arc::new(Engine::new(Store::open(&path).unwrap(), rules, Some("salesforce")).unwrap());
    let running = daemon::start(DaemonOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_token: TOKEN.to_string(),
        retell_api_key: "key_test".to_string(),
        body_limit: 64 * 1024,
        engine: engine.clone(),
        merger: Arc::new(FallbackMerger),
        backend: None,
        phone: PhoneNormalizer::default(),
        group_commit: true,
        sync_interval: Duration::from_secs(3600),
        dispatch_interval: Duration::from_secs(3600),
        chat_number_keys: Vec::new(),
        limits: Default::default(),
    })
    .await
    .unwrap();
    let base = running.base_url();
    // Without the token: refused.
    let anonymous = reqwest::get(format!("{base}/v1/store/backup"))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);

    let before = engine.store().contacts(None, usize::MAX).unwrap();
    let cli_dir = dir.path().to_path_buf();
    let cli_base = base.clone();
    let backup = tokio::task::spawn_blocking(move || {
        crmsync(
            &cli_dir,
            &[
                "--store",
                "store.redb",
                "store",
                "backup",
                "live.redb",
                "--daemon",
                &cli_base,
            ],
        )
    });
    // The daemon keeps taking events meanwhile.
    let http = reqwest::Client::new();
    for n in 0..5 {
        let response = http
            .post(format!("{base}/v1/conversations"))
            .bearer_auth(TOKEN)
            .json(
                &json!({"id": format!("live-{n}"), "kind": "call", "direction": "inbound",
                          "from_number": format!("+1415555{:04}", 2000 + n),
                          "analysis": {"demo_requested": true}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
    }
    let output = backup.await.unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    running.shutdown().await.unwrap();

    // A consistent snapshot: every contact from before, plus some prefix of the new ones.
    let copy = contacts(&dir.path().join("live.redb"));
    assert!(copy.len() >= before.len() && copy.len() <= before.len() + 5);
    for contact in &before {
        assert!(copy.contains(contact), "{} missing", contact.phone);
    }
    let report = Store::open(dir.path().join("live.redb"))
        .unwrap()
        .check()
        .unwrap();
    assert_eq!(report.problems, Vec::<String>::new());
}

/// Writes `version` into the store's format version, as a newer crmsync would.
fn set_format_version(path: &Path, version: u64) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut meta = txn
            .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap();
        meta.insert("format_version", version).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_store_from_a_newer_crmsync_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = real_store(dir.path());
    set_format_version(&store, FORMAT_VERSION + 1);
    let before = std::fs::read(&store).unwrap();
    for command in [&["contact", "list"][..], &["store", "check"][..]] {
        let mut args = vec!["--store", "store.redb"];
        args.extend_from_slice(command);
        let output = crmsync(dir.path(), &args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{command:?}: {err}");
        assert!(
            err.contains(&format!(
                "the store store.redb has format version {}",
                FORMAT_VERSION + 1
            )),
            "{err}"
        );
        assert!(err.contains("written by a newer crmsync"), "{err}");
        assert!(err.contains("restore the backup"), "{err}");
    }
    assert!(
        std::fs::read(&store).unwrap() == before,
        "the store was changed"
    );
    match Store::open(&store) {
        Err(StoreError::TooNew {
            found, supported, ..
        }) => assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION)),
        other => panic!("expected TooNew, got {:?}", other.map(|_| ())),
    }
    // The version this crmsync writes opens.
    set_format_version(&store, FORMAT_VERSION);
    assert!(Store::open(&store).is_ok());
}
