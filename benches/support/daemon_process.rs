//! The `crmsync run` binary as a child process, for benches that measure the daemon alone: its
//! resident memory is then the daemon's, not mixed with the load generator's or the sandbox
//! CRM's (which keeps every activity it is sent).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary `cargo bench` built with this bench (the bench profile: release, optimized).
pub const BIN: &str = env!("CARGO_BIN_EXE_crmsync");
/// The `/v1` bearer token the child is given (through its environment, never its config).
pub const API_TOKEN: &str = "bench-api-token";
/// The Retell API key the child verifies webhook signatures with.
pub const RETELL_KEY: &str = "key_bench_retell";

/// A running `crmsync run`.
pub struct DaemonProcess {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub http: reqwest::Client,
}

impl DaemonProcess {
    /// Starts `crmsync --config CONFIG run` with `env` added to its environment, its log
    /// (stderr) appended to `log`; returns once it printed the address it listens on.
    pub async fn start(
        config: &Path,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Result<DaemonProcess, String> {
        let log_file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create the daemon log {}: {e}", log.display()))?;
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("CRMSYNC_API_TOKEN", API_TOKEN)
            .env("RETELL_API_KEY", RETELL_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {BIN}: {e}"))?;
        let pid = child.id().ok_or("the daemon exited at once")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .map_err(|_| {
                format!(
                    "the daemon printed no address in 60 s (log: {})",
                    log.display()
                )
            })?
            .map_err(|e| format!("cannot read the daemon's stdout: {e}"))?
            .ok_or_else(|| {
                format!(
                    "the daemon exited before listening (log: {})",
                    log.display()
                )
            })?;
        let url = first
            .strip_prefix("crmsync listening on ")
            .ok_or_else(|| format!("unexpected first line {first:?}"))?
            .to_string();
        // Keep reading, so a full pipe never blocks the daemon.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(DaemonProcess {
            child,
            pid,
            url,
            http: reqwest::Client::new(),
        })
    }

    /// Resident memory of the daemon now, in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// Its peak resident memory so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        status_kib(self.pid, "VmHWM:")
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> Result<String, String> {
        let response = self
            .http
            .get(format!("{}/metrics", self.url))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| format!("GET /metrics: {e}"))?;
        response
            .text()
            .await
            .map_err(|e| format!("GET /metrics: {e}"))
    }

    /// `GET /v1/sync` (the scheduler's status).
    pub async fn sync_status(&self) -> Result<serde_json::Value, String> {
        self.http
            .get(format!("{}/v1/sync", self.url))
            .bearer_auth(API_TOKEN)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| format!("GET /v1/sync: {e}"))?
            .json()
            .await
            .map_err(|e| format!("GET /v1/sync: {e}"))
    }

    /// SIGTERM, then waits up to `grace` for the exit; kills it after that. Returns the exit
    /// code (`None`: killed or ended by a signal) and whether it had to be killed.
    pub async fn terminate(mut self, grace: Duration) -> (Option<i32>, bool) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => (status.code(), false),
            _ => {
                let _ = self.child.kill().await;
                (None, true)
            }
        }
    }
}

/// `VmRSS` of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The value of one sample in Prometheus text, e.g. `crmsync_outbox_depth{kind="write"}`.
pub fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(sample)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}
