//! Starting a daemon in-process for one test, and talking to it.

use std::sync::Arc;
use std::time::Duration;

use crmsync::daemon::{self, DaemonOptions, RunningDaemon};
use crmsync::store::Store;
use crmsync::value::phone::PhoneNormalizer;

pub const TOKEN: &str = "test-api-token";
pub const RETELL_KEY: &str = "key_test_retell_webhook";

/// A daemon on 127.0.0.1:0 with its own store, and a client.
pub struct TestDaemon {
    pub daemon: RunningDaemon,
    pub store: Arc<Store>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub struct Setup {
    pub body_limit: usize,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            body_limit: 64 * 1024,
        }
    }
}

impl TestDaemon {
    pub async fn start() -> TestDaemon {
        Self::start_with(Setup::default()).await
    }

    pub async fn start_with(setup: Setup) -> TestDaemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path().join("store.redb")).expect("open store"));
        let options = DaemonOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            api_token: TOKEN.to_string(),
            retell_api_key: RETELL_KEY.to_string(),
            body_limit: setup.body_limit,
            store: store.clone(),
            phone: PhoneNormalizer::default(),
            sync_interval: Duration::from_secs(3600),
            dispatch_interval: Duration::from_secs(3600),
        };
        let daemon = daemon::start(options).await.expect("daemon starts");
        TestDaemon {
            daemon,
            store,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.daemon.base_url(), path)
    }

    /// A request to a `/v1` route with the right bearer token.
    pub fn v1(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(TOKEN)
    }
}
