//! A full disk does not break the daemon for good: with the store on a small tmpfs that the test
//! fills, the write that meets "No space left on device" is refused with 503 (nothing is
//! acknowledged that was not kept), reads keep working, `/healthz` says the store cannot be
//! written, and once space is back the daemon writes again without a restart.
//!
//! Needs to mount a tmpfs (root, or CAP_SYS_ADMIN). Where mounting is not permitted the test
//! says so on stderr and passes without running; under CI (`CI=true`) the message is loud.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crmsync::daemon::{self, DaemonOptions};
use crmsync::engine::Engine;
use crmsync::merge::FallbackMerger;
use crmsync::store::Store;
use crmsync::value::phone::PhoneNormalizer;

const TOKEN: &str = "test-api-token";

/// A tmpfs mounted on a temporary directory for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` reads it), or says why it cannot.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|err| format!("cannot run mount: {err}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a daemon still holding the store (a failed assertion) must not leave it mounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The tmpfs, or `None` after saying why the test does not run here.
fn tmpfs_or_skip(size: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(size) {
        Ok(tmpfs) => Some(tmpfs),
        Err(reason) => {
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                eprintln!(
                    "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                     !!! THE FULL-DISK TEST DID NOT RUN: this machine refuses to mount a tmpfs\n\
                     !!! ({reason}). Run CI as root or with CAP_SYS_ADMIN to cover it.\n\
                     !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                );
            } else {
                eprintln!(
                    "skipped: the full-disk test needs to mount a tmpfs, which is not permitted \
                     here ({reason})"
                );
            }
            None
        }
    }
}

/// Writes a file until the filesystem is full.
fn fill(path: &Path) -> PathBuf {
    let filler = path.join("filler");
    let mut file = std::fs::File::create(&filler).expect("filler file");
    let chunk = vec![0x5a; 4096];
    loop {
        match file.write_all(&chunk).and_then(|()| file.sync_data()) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(28) => break,
            Err(err) => panic!("filling the tmpfs failed with {err}, not ENOSPC"),
        }
    }
    filler
}

fn event(n: usize) -> Value {
    json!({
        "id": format!("conv-{n}"),
        "kind": "call",
        "direction": "inbound",
        "from_number": format!("+1415555{:04}", 1000 + n),
        "to_number": "+18885550100",
        "end_time": "2026-11-21T10:00:00Z",
        "successful": true,
        "analysis": {"customer_notes": format!("note {n} {}", "x".repeat(2000)), "demo_requested": true}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_503_keeps_reads_and_recovers_when_space_is_back() {
    let Some(tmpfs) = tmpfs_or_skip("4m") else {
        return;
    };
    let store = Store::open(tmpfs.path().join("store.redb")).expect("open store");
    let rules = crmsync::lang::compile_dir(Path::new("rules")).expect("example rules");
    let engine = Arc::new(Engine::new(store, rules, Some("salesforce")).expect("engine"));
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
    .expect("daemon starts");
    let base = running.base_url();
    let http = reqwest::Client::new();
    let post = |n: usize| {
        http.post(format!("{base}/v1/conversations"))
            .bearer_auth(TOKEN)
            .json(&event(n))
            .send()
    };
    let healthz = || http.get(format!("{base}/healthz")).send();

    // Some events while there is room.
    for n in 0..3 {
        assert_eq!(post(n).await.unwrap().status(), StatusCode::OK);
    }
    let filler = fill(tmpfs.path());

    // Events until one is refused: free pages inside the store file may take a few first.
    let mut acknowledged: Vec<usize> = (0..3).collect();
    let mut refused = None;
    for n in 3..503 {
        let response = post(n).await.unwrap();
        let status = response.status();
        if status == StatusCode::OK {
            acknowledged.push(n);
            continue;
        }
        let body: Value = response.json().await.unwrap();
        refused = Some((n, status, body));
        break;
    }
    let (failed, status, body) = refused.expect("a write fails on a full disk");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("No space left on device"), "{message}");
    assert!(message.contains("store.redb"), "{message}");

    // Reads still work, and every acknowledged event is there.
    let phone = "+14155551000";
    let contact = http
        .get(format!("{base}/v1/contacts/{phone}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(contact.status(), StatusCode::OK);
    // The health check says the store cannot be written, with the reason.
    let health = healthz().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "unwritable", "{health}");
    assert!(
        health["error"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{health}"
    );
    // Meanwhile a write is refused, or tried again (at most once a second) and then either
    // refused or kept: never a 500, never acknowledged and lost.
    let again = post(failed).await.unwrap().status();
    assert!(
        [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE].contains(&again),
        "{again}"
    );

    // Space is back: the health check's write succeeds, and so do events.
    std::fs::remove_file(&filler).unwrap();
    let health = healthz().await.unwrap();
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "{}",
        health.text().await.unwrap()
    );
    let response = post(failed).await.unwrap();
    // 200 whether it was kept just now or by the retry above ("already applied").
    assert_eq!(response.status(), StatusCode::OK);
    acknowledged.push(failed);
    let response = post(failed + 1).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    acknowledged.push(failed + 1);

    running.shutdown().await.unwrap();
    // Nothing acknowledged was lost: every event is applied.
    let store = engine.store();
    for n in &acknowledged {
        assert!(
            store.conversation_applied(&format!("conv-{n}")).unwrap(),
            "conv-{n} was acknowledged but is not in the store"
        );
    }
    assert_eq!(store.contact_count().unwrap(), acknowledged.len() as u64);
}
