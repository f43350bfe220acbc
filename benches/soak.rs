//! Soak benchmark: the release `crmsync run` binary, connected to a sandbox CRM that throttles
//! or fails 10% of its API requests, under 200 signed Retell `call_analyzed` webhooks per
//! second for ten minutes. Correctness under load and faults, and memory over time:
//!
//! - every acknowledged conversation is applied in the store (checked by id after the daemon
//!   stopped): "acknowledged lost" must be 0;
//! - the CRM holds one activity per conversation: "duplicate activities" must be 0, and an
//!   acknowledged conversation without an activity must be a dead letter;
//! - after the load stops, the outbox drains (no pending field write or activity left; dead
//!   letters are counted separately), within a bounded wait, and how long it took;
//! - the daemon's resident memory (`/proc/PID/status`) sampled every few seconds: start, peak,
//!   end, and the slope over the run and over its second half (flat: a leak shows as a steady
//!   slope).
//!
//! The daemon runs as a separate process so that its memory is its own: the sandbox CRM, which
//! keeps every activity it receives, and the load generator live in this process.
//!
//! Baseline: the same load against a fault-free sandbox, first, on a fresh store and sandbox.
//!
//! `cargo bench --bench soak`. Settings (environment variables):
//! - `CRMSYNC_SOAK_SECS` — load duration of the fault run (default 600);
//! - `CRMSYNC_SOAK_BASELINE_SECS` — load duration of the fault-free baseline (default 60;
//!   0 skips it);
//! - `CRMSYNC_SOAK_RATE` — conversations per second (default 200);
//! - `CRMSYNC_SOAK_FAULTS` — fraction of CRM API requests refused, half throttled (Salesforce
//!   403 `REQUEST_LIMIT_EXCEEDED`, HubSpot 429), half 500/503 (default 0.10);
//! - `CRMSYNC_SOAK_CRM` — `salesforce` (default) or `hubspot`;
//! - `CRMSYNC_SOAK_SAMPLE_SECS` — memory sampling period (default 5);
//! - `CRMSYNC_SOAK_DRAIN_SECS` — longest wait for the outbox to drain (default 600).
//!
//! Exits 1 when an acknowledged conversation was lost, an activity was duplicated, or an
//! activity is missing without a dead letter once the outbox drained. Those are correctness
//! checks; no timing is asserted.

// The allocator of the `crmsync` binary (src/main.rs), for the load generator and sandbox.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crmsync::daemon::signature::{now_ms, sign};
use crmsync::sandbox::FaultConfig;
use crmsync::store::{DeadLetterKind, Store};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use support::daemon_process::{metric, DaemonProcess, RETELL_KEY};
use support::sandbox_crm::{Crm, SandboxCrm};

/// Contacts in the sandbox CRM, linked by the daemon's first sync; conversation `n` is with
/// contact `n % CONTACTS`, so each contact gets a conversation every `CONTACTS / rate` seconds.
const CONTACTS: u64 = 1_000;
/// Client tasks, each pacing its share of the rate with its own interval.
const CLIENTS: usize = 8;
/// Requests in flight at most: beyond it a tick is skipped (and counted), so a stalled daemon
/// cannot make the generator open thousands of sockets.
const MAX_IN_FLIGHT: usize = 2_000;

struct Settings {
    secs: u64,
    baseline_secs: u64,
    rate: f64,
    faults: f64,
    crm: Crm,
    sample_every: Duration,
    drain_limit: Duration,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a valid value")),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env() -> Settings {
        let crm = std::env::var("CRMSYNC_SOAK_CRM").unwrap_or_else(|_| "salesforce".into());
        let settings = Settings {
            secs: env_or("CRMSYNC_SOAK_SECS", 600),
            baseline_secs: env_or("CRMSYNC_SOAK_BASELINE_SECS", 60),
            rate: env_or("CRMSYNC_SOAK_RATE", 200.0),
            faults: env_or("CRMSYNC_SOAK_FAULTS", 0.10),
            crm: Crm::parse(&crm)
                .unwrap_or_else(|| panic!("CRMSYNC_SOAK_CRM={crm:?}: salesforce or hubspot")),
            sample_every: Duration::from_secs(env_or("CRMSYNC_SOAK_SAMPLE_SECS", 5).max(1)),
            drain_limit: Duration::from_secs(env_or("CRMSYNC_SOAK_DRAIN_SECS", 600)),
        };
        assert!(settings.rate > 0.0, "CRMSYNC_SOAK_RATE must be > 0");
        assert!(
            (0.0..=1.0).contains(&settings.faults),
            "CRMSYNC_SOAK_FAULTS must be within 0..=1"
        );
        settings
    }
}

/// One run: a fresh sandbox, store and daemon under load for `secs`.
struct Phase {
    name: &'static str,
    secs: u64,
    faults: f64,
}

/// The conversation id of request `serial` in a phase.
fn conversation_id(phase: &str, serial: u64) -> String {
    format!("soak_{phase}_{serial}")
}

/// A Retell `call_analyzed` body for conversation `serial`, ended just now. Each visit to a
/// contact moves its lead status on, so most conversations also queue a CRM field write.
fn webhook_body(phase: &str, serial: u64) -> String {
    let contact = serial % CONTACTS;
    let status = ["new", "working", "qualified"][(serial / CONTACTS % 3) as usize];
    let end = now_ms();
    serde_json::json!({
        "event": "call_analyzed",
        "call": {
            "call_id": conversation_id(phase, serial), "call_type": "phone_call",
            "direction": "inbound", "from_number": support::e164(contact),
            "to_number": "+18885550100",
            "start_timestamp": end - 60_000, "end_timestamp": end,
            "disconnection_reason": "user_hangup",
            "call_analysis": {
                "call_summary": "Asked about pricing.", "call_successful": true,
                "custom_analysis_data": {
                    "lead_qualification_status": status,
                    "email_address": format!("caller{contact}@example.com"),
                    "demo_requested": serial.is_multiple_of(2)
                }
            }
        }
    })
    .to_string()
}

/// Live counts, read by the sampler.
#[derive(Default)]
struct Live {
    sent: AtomicU64,
    acked: AtomicU64,
}

/// What the load generator saw.
#[derive(Default)]
struct LoadOutcome {
    /// Serials answered 2xx.
    acked: Vec<u64>,
    /// Non-2xx answers by status.
    refused: BTreeMap<u16, u64>,
    /// Requests without an answer (connection error, timeout).
    errors: u64,
    first_error: Option<String>,
    /// Ticks skipped because [`MAX_IN_FLIGHT`] requests were outstanding.
    skipped: u64,
    latencies: Vec<Duration>,
}

impl LoadOutcome {
    fn sent(&self) -> u64 {
        self.acked.len() as u64 + self.refused.values().sum::<u64>() + self.errors
    }

    fn absorb(&mut self, other: LoadOutcome) {
        self.acked.extend(other.acked);
        for (status, n) in other.refused {
            *self.refused.entry(status).or_default() += n;
        }
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.skipped += other.skipped;
        self.latencies.extend(other.latencies);
    }

    fn record(&mut self, done: (u64, Result<u16, String>, Duration), live: &Live) {
        let (serial, answer, latency) = done;
        match answer {
            Ok(status) if (200..300).contains(&status) => {
                self.acked.push(serial);
                self.latencies.push(latency);
                live.acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(status) => *self.refused.entry(status).or_default() += 1,
            Err(message) => {
                self.errors += 1;
                self.first_error.get_or_insert(message);
            }
        }
    }
}

/// Open-loop load: `CLIENTS` tasks, each ticking at `CLIENTS / rate` s (offset from each
/// other), each tick sending one webhook without waiting for earlier answers. A tick the
/// runtime could not serve on time is sent late, at once (tokio's `Burst`), so the offered
/// rate holds on average.
async fn drive(
    url: String,
    phase: &'static str,
    rate: f64,
    secs: u64,
    live: Arc<Live>,
) -> LoadOutcome {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let period = Duration::from_secs_f64(CLIENTS as f64 / rate);
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut clients = JoinSet::new();
    for client in 0..CLIENTS {
        let (http, url, live, in_flight) =
            (http.clone(), url.clone(), live.clone(), in_flight.clone());
        clients.spawn(async move {
            let mut outcome = LoadOutcome::default();
            let first = start + period.mul_f64(client as f64 / CLIENTS as f64);
            let mut ticks = tokio::time::interval_at(first, period);
            let mut requests = JoinSet::new();
            for round in 0u64.. {
                if ticks.tick().await >= end {
                    break;
                }
                let serial = round * CLIENTS as u64 + client as u64;
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    outcome.skipped += 1;
                    continue;
                };
                live.sent.fetch_add(1, Ordering::Relaxed);
                let (http, url) = (http.clone(), url.clone());
                requests.spawn(async move {
                    let _permit = permit;
                    let body = webhook_body(phase, serial);
                    let signature = sign(RETELL_KEY, body.as_bytes(), now_ms());
                    let sent = Instant::now();
                    let answer = match http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-retell-signature", signature)
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            // The answer counts once its body has arrived in full.
                            match response.bytes().await {
                                Ok(_) => Ok(status),
                                Err(e) => Err(e.to_string()),
                            }
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    (serial, answer, sent.elapsed())
                });
                while let Some(done) = requests.try_join_next() {
                    outcome.record(done.expect("request task"), &live);
                }
            }
            while let Some(done) = requests.join_next().await {
                outcome.record(done.expect("request task"), &live);
            }
            outcome
        });
    }
    let mut total = LoadOutcome::default();
    while let Some(outcome) = clients.join_next().await {
        total.absorb(outcome.expect("client task"));
    }
    total
}

/// One memory and outbox sample.
#[derive(Clone, Copy)]
struct Sample {
    /// Since the load started.
    at: Duration,
    rss_kib: u64,
    pending_writes: u64,
    pending_activities: u64,
}

/// Samples the daemon every `every` until `stop` turns true; prints each sample.
async fn sample(
    daemon: Arc<DaemonProcess>,
    live: Arc<Live>,
    start: Instant,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return samples,
        }
        let Some(rss_kib) = daemon.rss_kib() else {
            eprintln!("soak: the daemon is gone");
            return samples;
        };
        let metrics = daemon.metrics().await.unwrap_or_default();
        let depth = |kind: &str| {
            metric(
                &metrics,
                &format!("crmsync_outbox_depth{{kind=\"{kind}\"}}"),
            )
            .unwrap_or(-1.0)
        };
        let s = Sample {
            at: start.elapsed(),
            rss_kib,
            pending_writes: depth("write").max(0.0) as u64,
            pending_activities: depth("activity").max(0.0) as u64,
        };
        eprintln!(
            "soak: {:>6.0} s  sent {:>7}  acked {:>7}  rss {:>6.1} MiB  outbox writes {:>5} activities {:>6}  dead letters {}",
            s.at.as_secs_f64(),
            live.sent.load(Ordering::Relaxed),
            live.acked.load(Ordering::Relaxed),
            mib(s.rss_kib),
            s.pending_writes,
            s.pending_activities,
            metric(&metrics, "crmsync_dead_letters").unwrap_or(-1.0),
        );
        samples.push(s);
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Least-squares slope of resident memory, in MiB per minute.
fn slope_mib_per_min(samples: &[Sample]) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let n = samples.len() as f64;
    let xs: Vec<f64> = samples.iter().map(|s| s.at.as_secs_f64() / 60.0).collect();
    let ys: Vec<f64> = samples.iter().map(|s| mib(s.rss_kib)).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var
    }
}

/// Everything one phase measured.
struct PhaseReport {
    name: &'static str,
    secs: u64,
    faults: f64,
    load: LoadOutcome,
    lost: u64,
    activities: u64,
    duplicates: u64,
    /// Acknowledged conversations with no activity in the CRM and no activity dead letter.
    missing_activities: u64,
    dead_activities: u64,
    dead_writes: u64,
    dead_other: u64,
    drained_after: Option<Duration>,
    left_writes: u64,
    left_activities: u64,
    samples: Vec<Sample>,
    load_samples: usize,
    rss_after_drain_kib: u64,
    peak_kib: u64,
    crm_requests: BTreeMap<u16, u64>,
    exit: String,
}

/// Waits until the daemon's first scheduled sync finished, without error.
async fn first_sync(daemon: &DaemonProcess) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = daemon.sync_status().await?;
        if status["runs"].as_u64() >= Some(1) && status["state"] == "idle" {
            return match &status["last_error"] {
                serde_json::Value::Null => Ok(()),
                error => Err(format!("the first sync failed: {error}")),
            };
        }
        if Instant::now() >= deadline {
            return Err(format!("no first sync within 120 s: {status}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the outbox until no field write or activity is pending, at most `limit`; returns how
/// long it took, or `None` with what was left.
async fn drain(daemon: &DaemonProcess, limit: Duration) -> (Option<Duration>, u64, u64) {
    let start = Instant::now();
    loop {
        let metrics = daemon.metrics().await.unwrap_or_default();
        let writes = metric(&metrics, "crmsync_outbox_depth{kind=\"write\"}");
        let activities = metric(&metrics, "crmsync_outbox_depth{kind=\"activity\"}");
        if let (Some(w), Some(a)) = (writes, activities) {
            if w == 0.0 && a == 0.0 {
                return (Some(start.elapsed()), 0, 0);
            }
            if start.elapsed() >= limit {
                return (None, w as u64, a as u64);
            }
        } else if start.elapsed() >= limit {
            return (None, u64::MAX, u64::MAX);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn write_config(dir: &Path, crm: &SandboxCrm) -> std::path::PathBuf {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let config = format!(
        "rules: {rules}\nstore: store.redb\nactive_connection: {active}\n\
         sync_interval: 60s\ndispatch_interval: 1s\nconnections:\n{connection}\
         server:\n  listen: 127.0.0.1:0\n",
        rules = rules.display(),
        active = crm.crm().connection(),
        connection = crm.connection_yaml(),
    );
    let path = dir.join("crmsync.yaml");
    std::fs::write(&path, config).expect("write the config");
    path
}

async fn run_phase(settings: &Settings, phase: Phase) -> Result<PhaseReport, String> {
    eprintln!(
        "soak: phase {}: {} s at {}/s, {:.0}% CRM faults, {:?}",
        phase.name,
        phase.secs,
        settings.rate,
        phase.faults * 100.0,
        settings.crm
    );
    let crm = SandboxCrm::start(settings.crm, CONTACTS).await?;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).map_err(|e| e.to_string())?;
    let config = write_config(dir.path(), &crm);
    let log = dir.path().join("daemon.log");
    let daemon = Arc::new(DaemonProcess::start(&config, &log, &[crm.secret_env()]).await?);
    first_sync(&daemon).await?;
    let contacts = metric(&daemon.metrics().await?, "crmsync_contacts").unwrap_or(0.0);
    if contacts as u64 != CONTACTS {
        return Err(format!(
            "the first sync linked {contacts} contacts, not {CONTACTS}"
        ));
    }
    // Faults start once the contacts are linked: the load is about delivery, not the first sync.
    crm.set_faults(FaultConfig {
        throttle_fraction: phase.faults / 2.0,
        server_error_fraction: phase.faults / 2.0,
        seed: 12,
        ..FaultConfig::default()
    });

    let live = Arc::new(Live::default());
    let start = Instant::now();
    let (stop, stopped) = watch::channel(false);
    let sampler = tokio::spawn(sample(
        daemon.clone(),
        live.clone(),
        start,
        settings.sample_every,
        stopped,
    ));
    let url = format!("{}/webhooks/retell", daemon.url);
    let load = drive(url, phase.name, settings.rate, phase.secs, live).await;
    let load_end = start.elapsed();
    let (drained_after, left_writes, left_activities) = drain(&daemon, settings.drain_limit).await;
    let _ = stop.send(true);
    let samples = sampler.await.map_err(|e| e.to_string())?;
    let load_samples = samples.iter().take_while(|s| s.at <= load_end).count();
    let rss_after_drain_kib = daemon.rss_kib().unwrap_or(0);
    let peak_kib = daemon.peak_rss_kib().unwrap_or(0);
    let requests = crm.requests_by_status();

    let daemon = Arc::try_unwrap(daemon).map_err(|_| "the daemon is still shared")?;
    let (code, killed) = daemon.terminate(Duration::from_secs(60)).await;
    let exit = match (code, killed) {
        (_, true) => "killed after 60 s".to_string(),
        (Some(code), false) => format!("exit {code}"),
        (None, false) => "ended by a signal".to_string(),
    };

    // The store, read after the daemon stopped: every acknowledged conversation applied?
    let store = Store::open(dir.path().join("store.redb")).map_err(|e| e.to_string())?;
    let mut lost = 0;
    for serial in &load.acked {
        let id = conversation_id(phase.name, *serial);
        if !store.conversation_applied(&id).map_err(|e| e.to_string())? {
            lost += 1;
            if lost <= 5 {
                eprintln!("soak: acknowledged but not in the store: {id}");
            }
        }
    }
    let dead = store.dead_letters().map_err(|e| e.to_string())?;
    let dead_activity_ids: BTreeSet<&str> = dead
        .iter()
        .filter(|d| d.kind == DeadLetterKind::Activity)
        .map(|d| d.key.as_str())
        .collect();
    let count = |kind: DeadLetterKind| dead.iter().filter(|d| d.kind == kind).count() as u64;

    // The CRM: one activity per conversation.
    let activities = crm.activities_by_conversation();
    let duplicates = activities.values().map(|n| n.saturating_sub(1)).sum();
    let mut missing_activities = 0;
    for serial in &load.acked {
        let id = conversation_id(phase.name, *serial);
        if !activities.contains_key(&id) && !dead_activity_ids.contains(id.as_str()) {
            missing_activities += 1;
            if missing_activities <= 5 {
                eprintln!("soak: acknowledged, no activity in the CRM and no dead letter: {id}");
            }
        }
    }
    for d in dead.iter().take(3) {
        eprintln!("soak: dead letter ({:?} {}): {}", d.kind, d.key, d.message);
    }
    let report = PhaseReport {
        name: phase.name,
        secs: phase.secs,
        faults: phase.faults,
        load,
        lost,
        activities: activities.values().sum(),
        duplicates,
        missing_activities,
        dead_activities: count(DeadLetterKind::Activity),
        dead_writes: count(DeadLetterKind::FieldWrite),
        dead_other: count(DeadLetterKind::OutboundMapping),
        drained_after,
        left_writes,
        left_activities,
        samples,
        load_samples,
        rss_after_drain_kib,
        peak_kib,
        crm_requests: requests,
        exit,
    };
    crm.shutdown().await;
    Ok(report)
}

impl PhaseReport {
    fn failed(&self) -> bool {
        self.lost > 0
            || self.duplicates > 0
            || (self.drained_after.is_some() && self.missing_activities > 0)
    }

    /// (figure, value) rows of the summary table.
    fn rows(&self) -> Vec<(&'static str, String)> {
        let mut latencies = self.load.latencies.clone();
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .map_or("-".to_string(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
        };
        let load = &self.samples[..self.load_samples];
        let second_half = &load[load.len() / 2..];
        let rss = |s: Option<&Sample>| s.map_or("-".into(), |s| format!("{:.1}", mib(s.rss_kib)));
        let crm_total: u64 = self.crm_requests.values().sum();
        let crm_faults: u64 = self
            .crm_requests
            .iter()
            .filter(|(status, _)| matches!(status, 403 | 429 | 500..=599))
            .map(|(_, n)| n)
            .sum();
        let refused = if self.load.refused.is_empty() {
            "0".to_string()
        } else {
            format!("{:?}", self.load.refused)
        };
        vec![
            ("load duration, s", self.secs.to_string()),
            (
                "CRM faults injected",
                format!("{:.0}%", self.faults * 100.0),
            ),
            ("conversations sent", self.load.sent().to_string()),
            (
                "  offered rate achieved, /s",
                format!("{:.1}", self.load.sent() as f64 / self.secs as f64),
            ),
            ("  acknowledged (200)", self.load.acked.len().to_string()),
            ("  refused (non-2xx)", refused),
            ("  no answer (error, timeout)", self.load.errors.to_string()),
            ("  skipped (2,000 in flight)", self.load.skipped.to_string()),
            (
                "webhook latency p50 / p99, ms",
                format!("{} / {}", at(0.5), at(0.99)),
            ),
            ("acknowledged lost (target 0)", self.lost.to_string()),
            ("CRM activities", self.activities.to_string()),
            (
                "duplicate activities (target 0)",
                self.duplicates.to_string(),
            ),
            (
                "acknowledged without activity nor dead letter",
                self.missing_activities.to_string(),
            ),
            (
                "dead letters: activities / field writes / mappings",
                format!(
                    "{} / {} / {}",
                    self.dead_activities, self.dead_writes, self.dead_other
                ),
            ),
            (
                "outbox drained after load stopped, s",
                match self.drained_after {
                    Some(d) => format!("{:.1}", d.as_secs_f64()),
                    None => format!(
                        "NOT drained ({} writes, {} activities left)",
                        self.left_writes, self.left_activities
                    ),
                },
            ),
            (
                "CRM API requests / answered 403, 429, 5xx",
                format!("{crm_total} / {crm_faults}"),
            ),
            ("daemon RSS at start, MiB", rss(load.first())),
            ("daemon RSS at end of load, MiB", rss(load.last())),
            (
                "daemon RSS after drain, MiB",
                format!("{:.1}", mib(self.rss_after_drain_kib)),
            ),
            (
                "daemon RSS peak (VmHWM), MiB",
                format!("{:.1}", mib(self.peak_kib)),
            ),
            (
                "RSS slope, whole load, MiB/min",
                format!("{:+.2}", slope_mib_per_min(load)),
            ),
            (
                "RSS slope, 2nd half of load, MiB/min",
                format!("{:+.2}", slope_mib_per_min(second_half)),
            ),
            ("daemon stop (SIGTERM)", self.exit.clone()),
        ]
    }

    /// Resident memory at each whole minute of the load (the sample nearest to it).
    fn memory_by_minute(&self) -> Vec<(u64, f64)> {
        let load = &self.samples[..self.load_samples];
        (0..=self.secs / 60)
            .filter_map(|minute| {
                let target = Duration::from_secs(minute * 60);
                load.iter()
                    .min_by_key(|s| s.at.abs_diff(target))
                    .map(|s| (minute, mib(s.rss_kib)))
            })
            .collect()
    }
}

fn main() {
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut phases = Vec::new();
    if settings.baseline_secs > 0 {
        phases.push(Phase {
            name: "baseline",
            secs: settings.baseline_secs,
            faults: 0.0,
        });
    }
    phases.push(Phase {
        name: "faults",
        secs: settings.secs,
        faults: settings.faults,
    });
    let mut reports = Vec::new();
    for phase in phases {
        match runtime.block_on(run_phase(&settings, phase)) {
            Ok(report) => reports.push(report),
            Err(message) => {
                eprintln!("soak: {message}");
                std::process::exit(2);
            }
        }
    }

    println!(
        "\nsoak: {:?}, {} conversations/s, {CONTACTS} contacts, {CLIENTS} open-loop clients\n",
        settings.crm, settings.rate
    );
    let columns: Vec<Vec<(&str, String)>> = reports.iter().map(PhaseReport::rows).collect();
    let header: Vec<String> = reports
        .iter()
        .map(|r| match r.name {
            "baseline" => "baseline (no faults)".to_string(),
            _ => format!("{:.0}% CRM faults", r.faults * 100.0),
        })
        .collect();
    println!("| figure | {} |", header.join(" | "));
    println!("|---|{}", "---:|".repeat(reports.len()));
    for (row, (figure, _)) in columns[0].iter().enumerate() {
        let values: Vec<&str> = columns.iter().map(|c| c[row].1.as_str()).collect();
        println!("| {figure} | {} |", values.join(" | "));
    }
    for report in &reports {
        let minutes: Vec<String> = report
            .memory_by_minute()
            .iter()
            .map(|(m, rss)| format!("{m}′ {rss:.1}"))
            .collect();
        println!(
            "\ndaemon RSS by minute, {} (MiB): {}",
            report.name,
            minutes.join(", ")
        );
    }
    if reports.iter().any(PhaseReport::failed) {
        eprintln!("soak: FAILED: acknowledged conversations lost, duplicate or missing activities");
        std::process::exit(1);
    }
}
