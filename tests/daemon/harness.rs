//! Starting a daemon in-process for one test, and talking to it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crmsync::config::RetellSettings;
use crmsync::daemon::scheduler::SyncBackend;
use crmsync::daemon::{self, DaemonOptions, RunningDaemon};
use crmsync::engine::Engine;
use crmsync::merge::FallbackMerger;
use crmsync::store::Store;
use crmsync::value::phone::PhoneNormalizer;

pub const TOKEN: &str = "test-api-token";
pub const RETELL_KEY: &str = "key_test_retell_webhook";

/// A daemon on 127.0.0.1:0 with its own store, and a client.
pub struct TestDaemon {
    pub daemon: RunningDaemon,
    pub engine: Arc<Engine>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Builds the sync backend from the engine (a real connector against a sandbox).
pub type BackendFactory = Box<dyn FnOnce(Arc<Engine>) -> Arc<dyn SyncBackend>>;

pub struct Setup {
    pub body_limit: usize,
    /// The active connection (the example rules define `salesforce` and `hubspot`).
    pub active: Option<&'static str>,
    pub backend: Option<BackendFactory>,
    pub sync_interval: Duration,
    pub dispatch_interval: Duration,
    /// Conversations through the group-commit writer (else one transaction per request).
    pub group_commit: bool,
    /// The rules (default: the example rules of `rules/`).
    pub rules: Option<crmsync::lang::Compiled>,
    /// `retell.chat_number_keys`.
    pub chat_number_keys: Vec<String>,
    /// Read deadlines, connection cap, shutdown deadline.
    pub limits: crmsync::daemon::serve::Limits,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            body_limit: 64 * 1024,
            active: Some("salesforce"),
            backend: None,
            sync_interval: Duration::from_secs(3600),
            dispatch_interval: Duration::from_secs(3600),
            group_commit: true,
            rules: None,
            chat_number_keys: RetellSettings::default().chat_number_keys,
            limits: Default::default(),
        }
    }
}

/// The rule files of `rules/`, as (name, text), in name order.
pub fn example_rule_files() -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir("rules")
        .expect("rules/")
        .map(|entry| entry.expect("rules/ entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("rule file");
            (path.display().to_string(), text)
        })
        .collect()
}

/// The example rule set of `rules/`.
pub fn example_rules() -> crmsync::lang::Compiled {
    match crmsync::lang::compile_dir(Path::new("rules")) {
        Ok(compiled) => compiled,
        Err(diagnostics) => panic!("rules/ does not compile: {diagnostics:?}"),
    }
}

impl TestDaemon {
    pub async fn start() -> TestDaemon {
        Self::start_with(Setup::default()).await
    }

    pub async fn start_with(setup: Setup) -> TestDaemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("store.redb")).expect("open store");
        let engine = Arc::new(
            Engine::new(
                store,
                setup.rules.unwrap_or_else(example_rules),
                setup.active,
            )
            .expect("engine"),
        );
        let backend = setup.backend.map(|build| build(engine.clone()));
        let options = DaemonOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            api_token: TOKEN.to_string(),
            retell_api_key: RETELL_KEY.to_string(),
            body_limit: setup.body_limit,
            engine: engine.clone(),
            merger: Arc::new(FallbackMerger),
            backend,
            phone: PhoneNormalizer::default(),
            group_commit: setup.group_commit,
            sync_interval: setup.sync_interval,
            dispatch_interval: setup.dispatch_interval,
            chat_number_keys: setup.chat_number_keys,
            limits: setup.limits,
        };
        let daemon = daemon::start(options).await.expect("daemon starts");
        TestDaemon {
            daemon,
            engine,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// `/metrics` as text (no token needed).
    pub async fn metrics(&self) -> String {
        let response = self.http.get(self.url("/metrics")).send().await;
        response
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.daemon.base_url(), path)
    }

    /// A request to a `/v1` route with the right bearer token.
    pub fn v1(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(TOKEN)
    }

    /// POSTs a Retell webhook body signed now with the test key.
    pub fn signed(&self, path: &str, body: &str) -> reqwest::RequestBuilder {
        let header = crmsync::daemon::signature::sign(
            RETELL_KEY,
            body.as_bytes(),
            crmsync::daemon::signature::now_ms(),
        );
        self.http
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("x-retell-signature", header)
            .body(body.to_string())
    }
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads one HTTP/1.1 response (head and a `Content-Length` body) from a raw connection: its
/// status and body. `None` when the server closed the connection first.
pub async fn read_response(stream: &mut tokio::net::TcpStream) -> Option<(u16, String)> {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buffer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                let status = head.split_whitespace().nth(1)?.parse().ok()?;
                return Some((status, body[..length].to_string()));
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Waits until the server closes `stream` (end of file or a reset), discarding anything it
/// sends first; panics after `bound` (a failure timeout, not a synchronisation).
pub async fn closed_by_server(stream: &mut tokio::net::TcpStream, bound: Duration) {
    use tokio::io::AsyncReadExt;
    let mut sink = [0u8; 1024];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closes the connection");
}
