//! URLs and ids a CRM answers are not trusted: a `nextRecordsUrl` naming another host never
//! receives the bearer token, and a record whose id is not that CRM's shape is skipped and
//! reported rather than imported (or failing the sync). Real connectors against the sandboxes
//! over loopback HTTP, whose tamper knobs make them answer as a compromised CRM would; a
//! second loopback listener stands in for the foreign host and records what it was sent.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crmsync::connector::config::{RateLimitConfig, RetrySettings};
use crmsync::connector::report::SyncReport;
use crmsync::connector::sync::{sync_once, NoProgress, SyncError, SyncOptions, SyncPlan};
use crmsync::connector::{AnyConnector, ConnectionSettings, ConnectorKind, Credentials};
use crmsync::engine::Engine;
use crmsync::sandbox::credentials::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
use crmsync::sandbox::hubspot::seed_contacts::SeededContacts;
use crmsync::sandbox::hubspot::{HubSpotSandbox, HubSpotSandboxConfig};
use crmsync::sandbox::salesforce::{SalesforceSandbox, SalesforceSandboxConfig};
use crmsync::store::Store;
use serde_json::json;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn tune(mut s: ConnectionSettings) -> ConnectionSettings {
    s.rate_limit = RateLimitConfig {
        requests_per_second: 100_000.0,
        burst: 10_000,
    };
    s.retry = RetrySettings {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    s.timeout = Duration::from_secs(10);
    s
}

struct Env {
    _dir: TempDir,
    engine: Arc<Engine>,
    connector: Arc<AnyConnector>,
    plan: SyncPlan,
}

impl Env {
    fn new(connection: &str, settings: ConnectionSettings) -> Env {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let compiled = crmsync::lang::compile_dir(&rules).expect("rules/ compiles");
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store.redb")).unwrap();
        let engine = Arc::new(Engine::new(store, compiled, Some(connection)).unwrap());
        let plan = SyncPlan::from_rules(engine.ruleset().connection(connection).unwrap());
        Env {
            _dir: dir,
            connector: Arc::new(AnyConnector::new(settings).unwrap()),
            engine,
            plan,
        }
    }

    async fn sync(&self) -> Result<SyncReport, SyncError> {
        sync_once(
            self.connector.clone(),
            &self.engine,
            &self.plan,
            SyncOptions { full: true },
            None,
            &NoProgress,
        )
        .await
    }

    fn linked(&self, record_id: &str) -> bool {
        self.engine
            .store()
            .phone_for_record(&self.plan.connection, record_id)
            .unwrap()
            .is_some()
    }
}

async fn salesforce(contacts: u32) -> (SalesforceSandbox, Env) {
    let sf = SalesforceSandbox::start(SalesforceSandboxConfig {
        contacts,
        seed: 11,
        page_size: 200,
        ..SalesforceSandboxConfig::default()
    })
    .await
    .unwrap();
    let mut settings = tune(ConnectionSettings::new(
        "salesforce",
        ConnectorKind::Salesforce,
        sf.login_url(),
        Credentials::ClientCredentials {
            client_id: SALESFORCE_CLIENT_ID.into(),
            client_secret: SALESFORCE_CLIENT_SECRET.into(),
        },
    ));
    settings.page_size = 200;
    let env = Env::new("salesforce", settings);
    (sf, env)
}

/// A loopback listener standing in for a foreign host: it records the head of every request
/// it gets and answers with an empty, final Salesforce query page (so a client that follows it
/// believes the read finished).
struct ForeignHost {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ForeignHost {
    async fn start() -> ForeignHost {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let body = r#"{"totalSize":0,"done":true,"records":[]}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        ForeignHost { port, heads, task }
    }

    /// Requests that carried an `Authorization` header.
    fn got_a_token(&self) -> usize {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.to_ascii_lowercase().contains("\r\nauthorization:"))
            .count()
    }

    fn requests(&self) -> usize {
        self.heads.lock().unwrap().len()
    }
}

impl Drop for ForeignHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A `nextRecordsUrl` on another origin, or one that names another host once glued onto the
/// instance URL (`@host:port/...`), is refused: the foreign host never gets the token (nor any
/// request), the sync fails naming the URL, and the pages read before it stay imported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_next_records_url_never_receives_the_token() {
    for foreign_form in ["http://127.0.0.1:{port}", "@127.0.0.1:{port}"] {
        let foreign = ForeignHost::start().await;
        let (sf, env) = salesforce(450).await;
        let prefix = foreign_form.replace("{port}", &foreign.port.to_string());
        sf.tamper()
            .update(|t| t.next_records_url_prefix = Some(prefix.clone()));

        let err = env
            .sync()
            .await
            .expect_err("a foreign next page is refused");
        let message = err.to_string();
        assert_eq!(foreign.got_a_token(), 0, "{prefix}: {message}");
        assert_eq!(foreign.requests(), 0, "{prefix}: {message}");
        assert!(message.contains(&prefix), "{prefix}: {message}");
        assert!(
            message.contains("not followed") || message.contains("not a path"),
            "{message}"
        );
        // The first page (200 records) was read from the real instance and applied.
        assert!(
            env.engine.store().contact_count().unwrap() > 0,
            "{prefix}: the first page was imported"
        );

        // Honest again: the next sync reads everything.
        sf.tamper().clear();
        let report = env.sync().await.unwrap();
        assert_eq!(report.inbound.read, 450, "{prefix}");
    }
}

/// Salesforce ids of the wrong shape — a JSON number, a path, too short, 16 characters — are
/// each a skipped record with the reason, and the sync goes on with the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_records_with_bad_ids_are_skipped_and_reported_not_a_failed_sync() {
    let (sf, env) = salesforce(30).await;
    let bad = [
        (3, json!(12345)),
        (5, json!("003SB/../../x?y=")),
        (7, json!("003SB")),
        (9, json!("003SB00000000009")),
    ];
    sf.tamper().update(|t| {
        for (index, id) in &bad {
            t.record_ids
                .insert(SalesforceSandbox::contact_id(*index), id.clone());
        }
    });
    let report = env.sync().await.expect("bad ids do not fail the sync");
    let i = &report.inbound;
    assert_eq!(i.read, 30);
    for (index, id) in &bad {
        let shown = match id {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let skipped = i
            .skipped
            .iter()
            .find(|s| s.record_id == shown)
            .unwrap_or_else(|| panic!("record {index} ({id}) not reported: {:?}", i.skipped));
        assert!(skipped.reason.contains("not a record id"), "{skipped:?}");
        assert!(skipped.reason.contains("`Id`"), "{skipped:?}");
        assert!(!env.linked(&shown), "{shown} was linked");
        // Nor under its real id: the record was not imported at all.
        assert!(!env.linked(&SalesforceSandbox::contact_id(*index)));
    }
    assert!(i.created > 0, "{i:?}");
}

/// A HubSpot id that is a path (`../../v3/objects/contacts/1001?x=`) is not imported, so it
/// can never be put into a request path; a record whose id is a JSON number still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hubspot_record_whose_id_is_a_path_is_skipped_and_reported() {
    let hs = HubSpotSandbox::start(HubSpotSandboxConfig {
        contacts: 30,
        seed: 5,
        ..HubSpotSandboxConfig::default()
    })
    .await
    .unwrap();
    let env = Env::new(
        "hubspot",
        tune(ConnectionSettings::new(
            "hubspot",
            ConnectorKind::Hubspot,
            hs.base_url(),
            Credentials::Bearer(hs.token().to_string()),
        )),
    );
    let malicious = "../../v3/objects/contacts/1001?x=";
    // Seeded contacts whose phones are valid, so only the id can keep them out.
    let (path_id, numeric_id) = (SeededContacts::id_of(4), SeededContacts::id_of(6));
    hs.tamper().update(|t| {
        t.record_ids.insert(path_id.to_string(), json!(malicious));
        t.record_ids
            .insert(numeric_id.to_string(), json!(numeric_id));
        t.record_ids
            .insert(SeededContacts::id_of(8).to_string(), json!("12ab"));
    });
    let report = env.sync().await.expect("a bad id does not fail the sync");
    let i = &report.inbound;
    let reasons: Vec<(&str, &str)> = i
        .skipped
        .iter()
        .map(|s| (s.record_id.as_str(), s.reason.as_str()))
        .collect();
    for bad in [malicious, "12ab"] {
        let (_, reason) = reasons
            .iter()
            .find(|(id, _)| *id == bad)
            .unwrap_or_else(|| panic!("{bad} not reported: {reasons:?}"));
        assert!(reason.contains("not a record id"), "{reason}");
        assert!(!env.linked(bad), "{bad} was imported");
    }
    assert!(!env.linked(&path_id.to_string()));
    assert!(
        !reasons.iter().any(|(id, _)| *id == numeric_id.to_string()),
        "a numeric JSON id is a HubSpot id: {reasons:?}"
    );
}
