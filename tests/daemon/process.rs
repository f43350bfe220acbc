//! The real `crmsync run` binary: config errors stop it before it starts, and SIGTERM during a
//! sync stops it cleanly; a restart finishes the sync with nothing lost or duplicated.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crmsync::connector::config::{ConnectionSettings, Credentials};
use crmsync::connector::sync::{sync_inbound, NoProgress, SyncOptions, SyncPlan};
use crmsync::connector::{AnyConnector, ConnectorKind};
use crmsync::engine::Engine;
use crmsync::sandbox::credentials::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
use crmsync::sandbox::salesforce::{SalesforceSandbox, SalesforceSandboxConfig};
use crmsync::sandbox::FaultConfig;
use crmsync::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_crmsync");
const TOKEN: &str = "process-test-token";

fn rules_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("rules")
        .display()
        .to_string()
}

/// `crmsync run` with this config and the secrets set only in the child's environment.
fn daemon_command(config: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(config)
        .arg("run")
        .env("CRMSYNC_API_TOKEN", TOKEN)
        .env("RETELL_API_KEY", "key_process_test")
        .env("SF_TEST_SECRET", SALESFORCE_CLIENT_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn run_to_exit(mut command: Command) -> (Option<i32>, String) {
    let output = command.output().await.expect("run crmsync");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_errors_name_the_key_and_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmsync.yaml");
    let base = format!(
        "rules: {}\nstore: store.redb\nserver:\n  listen: 127.0.0.1:0\n",
        rules_dir()
    );

    // A value of the wrong shape.
    std::fs::write(&config, format!("{base}sync_interval: soon\n")).unwrap();
    let (code, stderr) = run_to_exit(daemon_command(&config)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("sync_interval"), "{stderr}");

    // A misspelt key.
    std::fs::write(&config, format!("{base}  body_limt: 5000\n")).unwrap();
    let (code, stderr) = run_to_exit(daemon_command(&config)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("server.body_limt: unknown field `body_limt`"),
        "{stderr}"
    );

    // A secret variable that is not set: named, and no secret value printed.
    std::fs::write(
        &config,
        format!("{base}  api_token_env: CRMSYNC_PROCESS_TEST_UNSET_VAR\n"),
    )
    .unwrap();
    let (code, stderr) = run_to_exit(daemon_command(&config)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("server.api_token_env"), "{stderr}");
    assert!(
        stderr.contains("CRMSYNC_PROCESS_TEST_UNSET_VAR"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN), "{stderr}");

    assert!(
        !dir.path().join("store.redb").exists(),
        "a failed start created the store"
    );

    // Rules with errors: the diagnostics are printed and the daemon does not start.
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("bad.rules"), "field email: strng\n").unwrap();
    std::fs::write(
        &config,
        "rules: rules\nstore: store.redb\nserver:\n  listen: 127.0.0.1:0\n",
    )
    .unwrap();
    let (code, stderr) = run_to_exit(daemon_command(&config)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("bad.rules"), "{stderr}");
    assert!(
        !dir.path().join("store.redb").exists(),
        "the store was created"
    );
}

/// A started daemon process and its base URL.
struct Daemon {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Daemon {
    async fn start(config: &Path) -> Daemon {
        let mut child = daemon_command(config).spawn().expect("spawn crmsync run");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("daemon prints its address")
            .expect("read stdout")
            .expect("a line");
        let url = line
            .strip_prefix("crmsync listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Daemon {
            child,
            url,
            http: reqwest::Client::new(),
        }
    }

    async fn sync_status(&self) -> Value {
        self.http
            .get(format!("{}/v1/sync", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn wait_for_sync(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.sync_status().await;
            if done(&status) {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: {status}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGTERM, then the exit code and stderr.
    async fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .expect("wait");
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut stderr).await;
        }
        (exit.code(), stderr)
    }
}

/// Phone → Salesforce record id of every contact in a store.
fn links(store: &Store) -> BTreeMap<String, Option<String>> {
    store
        .contacts(None, 1_000_000)
        .unwrap()
        .into_iter()
        .map(|c| (c.phone.clone(), c.links.get("salesforce").cloned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_sync_then_restart_loses_and_duplicates_nothing() {
    // 3,000 contacts in pages of 200, each request slowed down: the sync takes seconds.
    let sandbox = Arc::new(
        SalesforceSandbox::start(SalesforceSandboxConfig {
            contacts: 3_000,
            page_size: 200,
            faults: FaultConfig {
                latency: Duration::from_millis(150),
                ..FaultConfig::default()
            },
            ..SalesforceSandboxConfig::default()
        })
        .await
        .expect("sandbox"),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmsync.yaml");
    std::fs::write(
        &config,
        format!(
            "rules: {}\nstore: store.redb\nactive_connection: salesforce\nsync_interval: 1h\n\
             connections:\n  salesforce:\n    login_url: {}\n    client_id: {SALESFORCE_CLIENT_ID}\n\
             \x20   client_secret_env: SF_TEST_SECRET\n    page_size: 200\n\
             server:\n  listen: 127.0.0.1:0\n",
            rules_dir(),
            sandbox.login_url()
        ),
    )
    .unwrap();

    let first = Daemon::start(&config).await;
    // Conversations arrive while the sync runs.
    for n in 0..5 {
        let response = first
            .http
            .post(format!("{}/v1/conversations", first.url))
            .bearer_auth(TOKEN)
            .json(
                &json!({"id": format!("process-conv-{n}"), "kind": "call", "direction": "inbound",
                          "from_number": format!("+1646555{:04}", 2000 + n),
                          "analysis": {"customer_notes": format!("note {n}")}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let running = first
        .wait_for_sync("two pages committed", |s| {
            s["state"] == "running" && s["succeeded"].as_u64().unwrap_or(0) >= 400
        })
        .await;
    assert_eq!(running["full"], true);
    let (code, stderr) = first.terminate().await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("stopped cleanly"), "{stderr}");

    // Stopped part-way: some pages are in, the cursor stands at the last committed page.
    let partial = {
        let store = Store::open(dir.path().join("store.redb")).expect("the store opens");
        let partial = links(&store);
        assert!(store.cursor("salesforce").unwrap().is_some());
        partial
    };
    let imported = partial.values().filter(|l| l.is_some()).count();
    // Two pages of 200 read; a few records in them lack a usable phone.
    assert!((300..2_500).contains(&imported), "{imported} imported");

    // Restart: it catches up from the cursor and finishes.
    let second = Daemon::start(&config).await;
    let done = second
        .wait_for_sync("the sync after the restart", |s| {
            s["state"] == "idle" && s["runs"].as_u64() == Some(1)
        })
        .await;
    assert_eq!(done["last_error"], Value::Null, "{done}");
    let (code, stderr) = second.terminate().await;
    assert_eq!(code, Some(0), "{stderr}");

    // The same contacts and links as one uninterrupted import of the sandbox.
    sandbox.faults().clear();
    let expected = {
        let fresh = tempfile::tempdir().unwrap();
        let compiled = crate::harness::example_rules();
        let plan = SyncPlan::from_rules(compiled.ruleset.connection("salesforce").unwrap());
        let engine = Arc::new(
            Engine::new(
                Store::open(fresh.path().join("fresh.redb")).unwrap(),
                compiled,
                Some("salesforce"),
            )
            .unwrap(),
        );
        let settings = ConnectionSettings::new(
            "salesforce",
            ConnectorKind::Salesforce,
            sandbox.login_url(),
            Credentials::ClientCredentials {
                client_id: SALESFORCE_CLIENT_ID.to_string(),
                client_secret: SALESFORCE_CLIENT_SECRET.to_string(),
            },
        );
        let connector = Arc::new(AnyConnector::new(settings).unwrap());
        sync_inbound(
            connector,
            &engine,
            &plan,
            SyncOptions { full: true },
            &NoProgress,
        )
        .await
        .unwrap();
        links(engine.store())
    };
    let store = Store::open(dir.path().join("store.redb")).unwrap();
    let mut after = links(&store);
    // Besides the CRM's contacts, the five conversations' callers, each applied once.
    for n in 0..5 {
        let phone = format!("+1646555{:04}", 2000 + n);
        assert!(store
            .conversation_applied(&format!("process-conv-{n}"))
            .unwrap());
        let contact = store.contact(&phone).unwrap().expect("caller contact");
        assert_eq!(
            contact.fields.get("interaction_summary"),
            Some(&crmsync::value::Value::String(format!("note {n}")))
        );
        after.remove(&phone);
    }
    assert_eq!(after.len(), expected.len());
    assert_eq!(after, expected);
}

/// A chat's `chat_inbound` is recorded before it is answered: a daemon killed (SIGKILL) right
/// after still finds the chat's contact when `chat_analyzed` reaches the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_inbound_survives_a_killed_daemon() {
    const KEY: &str = "key_process_test";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmsync.yaml");
    std::fs::write(
        &config,
        format!(
            "rules: {}\nstore: store.redb\nserver:\n  listen: 127.0.0.1:0\n",
            rules_dir()
        ),
    )
    .unwrap();
    let signed = |daemon: &Daemon, path: &str, body: Value| {
        let body = body.to_string();
        let header = crmsync::daemon::signature::sign(
            KEY,
            body.as_bytes(),
            crmsync::daemon::signature::now_ms(),
        );
        daemon
            .http
            .post(format!("{}{path}", daemon.url))
            .header("content-type", "application/json")
            .header("x-retell-signature", header)
            .body(body)
    };

    let mut first = Daemon::start(&config).await;
    let inbound = json!({"event": "chat_inbound", "chat_inbound": {
        "agent_id": "agent_chat_4c1d", "chat_id": "chat_restart_1",
        "from_number": "+14155550177", "to_number": "+18885550100"}});
    let answered = signed(&first, "/webhooks/retell/inbound", inbound)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    first.child.kill().await.expect("SIGKILL");

    let second = Daemon::start(&config).await;
    let body = crate::retell_chats::chat_analyzed("chat_restart_1", json!({}), json!({}));
    let answer: Value = signed(&second, "/webhooks/retell", body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["report"]["outcome"], "applied", "{answer}");
    assert_eq!(answer["report"]["phone"], "+14155550177", "{answer}");
    let (code, stderr) = second.terminate().await;
    assert_eq!(code, Some(0), "{stderr}");
    let store = Store::open(dir.path().join("store.redb")).unwrap();
    let contact = store
        .contact("+14155550177")
        .unwrap()
        .expect("the sender's contact");
    assert_eq!(
        contact.fields.get("lead_status"),
        Some(&crmsync::value::Value::Enum("qualified".to_string()))
    );
}

/// SIGTERM while a client holds a half-sent request: the daemon stops at
/// `server.shutdown_timeout` (the request never answered), instead of waiting for the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_half_sent_request_held_open_exits_at_the_shutdown_timeout() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmsync.yaml");
    std::fs::write(
        &config,
        format!(
            "rules: {}\nstore: store.redb\nserver:\n  listen: 127.0.0.1:0\n\
             \x20 header_read_timeout: 10m\n  shutdown_timeout: 1s\n",
            rules_dir()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&config).await;
    let addr = daemon.url.strip_prefix("http://").expect("an http URL");
    // The connection's first request (after a served one, hyper counts a connection waiting
    // for its next head as idle, and a shutdown closes it at once).
    let mut held = tokio::net::TcpStream::connect(addr).await.unwrap();
    held.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A round trip on another connection, so the daemon has surely read the half-sent head.
    let health = daemon
        .http
        .get(format!("{}/healthz", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // `terminate` fails the test if the process is still running after 30 s.
    let (code, stderr) = daemon.terminate().await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "crmsync stopped at the shutdown timeout (1s): 1 connection(s) closed unanswered"
        ),
        "{stderr}"
    );
    assert_eq!(crate::harness::read_response(&mut held).await, None);
}
