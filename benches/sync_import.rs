//! Sync benchmarks against the sandboxes (real loopback HTTP, real connectors, real redb store,
//! the repository's `rules/`). The sandbox runs as a separate `crmsync sandbox` process, so the
//! peak memory measured is that of the syncing process alone.
//!
//! ```text
//! cargo bench --bench sync_import                  # 1,000,000 Salesforce + 100,000 HubSpot
//! SYNC_BENCH_SF=100000 SYNC_BENCH_HS=10000 SYNC_BENCH_RUNS=3 cargo bench --bench sync_import
//! ```
//!
//! Per CRM, each run uses a new sandbox and a new store:
//! - baseline: every page fetched and decoded by the connector, nothing applied;
//! - full import: the same read through `sync_inbound` into an empty store;
//! - incremental: 1% of the records edited in the CRM (through its API, by another client),
//!   then an incremental sync.
//!
//! Prints medians, the ratio of each to the baseline, request counts against
//! ⌈N / page size⌉ + auth + describe, and the peak resident memory of this process (VmHWM).

// The allocator of the `crmsync` binary (src/main.rs), so the bench measures what it ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crmsync::connector::config::RateLimitConfig;
use crmsync::connector::sync::{sync_inbound, NoProgress, SyncOptions, SyncPlan};
use crmsync::connector::RecordUpdate;
use crmsync::connector::{
    AnyConnector, ConnectionSettings, Connector, ConnectorKind, Credentials, ReadPosition,
};
use crmsync::engine::Engine;
use crmsync::sandbox::credentials::{
    HUBSPOT_TOKEN, SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET,
};
use crmsync::sandbox::hubspot::HubSpotSandbox;
use crmsync::sandbox::salesforce::SalesforceSandbox;
use crmsync::store::Store;

/// A `crmsync sandbox` child process, killed on drop.
struct SandboxProcess {
    child: std::process::Child,
    banner: serde_json::Value,
}

impl SandboxProcess {
    fn start(contacts: u32) -> SandboxProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_crmsync"))
            .args(["--json", "sandbox", "--seed", "42", "--contacts"])
            .arg(contacts.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("crmsync sandbox starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("banner");
        let banner = serde_json::from_str(&line).expect("JSON banner");
        SandboxProcess { child, banner }
    }

    fn url(&self, crm: &str, key: &str) -> String {
        self.banner[crm][key].as_str().expect("url").to_string()
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Edit records through the CRM's API, as another client would.
async fn edit(editor: &AnyConnector, object: &str, field: &str, ids: Vec<String>, tag: &str) {
    let limit = editor.settings().kind.write_batch_limit();
    let updates: Vec<RecordUpdate> = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| RecordUpdate {
            record_id: id,
            fields: [(field.to_string(), serde_json::json!(format!("{tag}{i}")))]
                .into_iter()
                .collect(),
        })
        .collect();
    for chunk in updates.chunks(limit) {
        editor.update_records(object, chunk).await.expect("edit");
    }
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Reset the peak RSS counter to the current RSS (Linux: `echo 5 > /proc/self/clear_refs`).
/// Returns whether the kernel allowed it; if not, the peak is that of the whole bench so far.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn engine(dir: &tempfile::TempDir, connection: &str) -> Arc<Engine> {
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let compiled = crmsync::lang::compile_dir(&rules).expect("rules/ compiles");
    let store = Store::open(dir.path().join("bench.redb")).expect("store opens");
    Arc::new(Engine::new(store, compiled, Some(connection)).expect("engine"))
}

fn fast(mut s: ConnectionSettings) -> ConnectionSettings {
    // The sandbox has no rate limit worth modelling here; the client's own limiter would only
    // measure itself.
    s.rate_limit = RateLimitConfig {
        requests_per_second: 1_000_000.0,
        burst: 100_000,
    };
    s
}

/// Fetch and decode every page, apply nothing.
async fn fetch_all(connector: &AnyConnector, plan: &SyncPlan) -> u64 {
    let mut pos = ReadPosition::default();
    let mut n = 0;
    loop {
        let page = connector
            .read_page(&plan.object, &plan.source_fields, &pos)
            .await
            .expect("page");
        n += page.records.len() as u64;
        match page.next {
            Some(next) => pos = next,
            None => return n,
        }
    }
}

struct Figures {
    crm: &'static str,
    n: u32,
    page: u32,
    baseline: Vec<Duration>,
    import: Vec<Duration>,
    incremental: Vec<Duration>,
    changed: u32,
    import_reads: u64,
    import_other: u64,
    incremental_reads: u64,
    peak_mib: Vec<f64>,
    peak_reset: bool,
}

impl Figures {
    fn print(&self) {
        let b = median(self.baseline.clone());
        let i = median(self.import.clone());
        let inc = median(self.incremental.clone());
        let expected_reads = u64::from(self.n).div_ceil(u64::from(self.page));
        let peak = self.peak_mib.iter().cloned().fold(0.0, f64::max);
        println!(
            "\n## {} — {} contacts, page size {}",
            self.crm, self.n, self.page
        );
        println!("| measurement | median | runs | vs baseline |");
        println!("| --- | --- | --- | --- |");
        println!(
            "| baseline: fetch + decode all pages | {:.2} s | {} | 1.00 |",
            b.as_secs_f64(),
            self.baseline.len()
        );
        println!(
            "| full import into a new store | {:.2} s | {} | {:.2} |",
            i.as_secs_f64(),
            self.import.len(),
            i.as_secs_f64() / b.as_secs_f64()
        );
        println!(
            "| incremental sync, {} changed ({:.1}%) | {:.3} s | {} | {:.3} |",
            self.changed,
            100.0 * f64::from(self.changed) / f64::from(self.n),
            inc.as_secs_f64(),
            self.incremental.len(),
            inc.as_secs_f64() / b.as_secs_f64()
        );
        println!(
            "\nimport throughput {:.0} records/s; incremental/full time ratio {:.4}",
            f64::from(self.n) / i.as_secs_f64(),
            inc.as_secs_f64() / i.as_secs_f64()
        );
        println!(
            "read requests: full {} (expected ⌈{}/{}⌉ = {}) + {} auth/describe; incremental {} read requests for {} changes",
            self.import_reads, self.n, self.page, expected_reads, self.import_other, self.incremental_reads, self.changed
        );
        println!(
            "peak RSS of the syncing process (sandbox in its own process): {peak:.0} MiB{}",
            if self.peak_reset {
                " (peak reset before each import)"
            } else {
                " (whole bench so far)"
            }
        );
    }
}

async fn salesforce(n: u32, runs: usize) -> Figures {
    let page = 2000;
    let mut f = Figures {
        crm: "Salesforce",
        n,
        page,
        baseline: vec![],
        import: vec![],
        incremental: vec![],
        changed: n / 100,
        import_reads: 0,
        import_other: 0,
        incremental_reads: 0,
        peak_mib: vec![],
        peak_reset: false,
    };
    for run in 0..runs {
        let sb = SandboxProcess::start(n);
        let login = sb.url("salesforce", "login_url");
        let settings = || {
            let mut s = fast(ConnectionSettings::new(
                "salesforce",
                ConnectorKind::Salesforce,
                login.clone(),
                Credentials::ClientCredentials {
                    client_id: SALESFORCE_CLIENT_ID.into(),
                    client_secret: SALESFORCE_CLIENT_SECRET.into(),
                },
            ));
            s.page_size = page;
            s
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine(&dir, "salesforce");
        let plan = SyncPlan::from_rules(engine.ruleset().connection("salesforce").expect("rules"));

        let baseline_connector = AnyConnector::new(settings()).expect("connector");
        let t = Instant::now();
        let fetched = fetch_all(&baseline_connector, &plan).await;
        f.baseline.push(t.elapsed());
        assert_eq!(fetched, u64::from(n));

        let connector = Arc::new(AnyConnector::new(settings()).expect("connector"));
        f.peak_reset = reset_peak_rss();
        let t = Instant::now();
        let r = sync_inbound(
            connector.clone(),
            &engine,
            &plan,
            SyncOptions::default(),
            &NoProgress,
        )
        .await
        .expect("full import");
        f.import.push(t.elapsed());
        if let Some(p) = peak_rss_mib() {
            f.peak_mib.push(p);
        }
        assert_eq!(r.read as u64, u64::from(n));
        let m = connector.metrics();
        f.import_reads = m.calls("query") + m.calls("query_more");
        f.import_other = m.total_calls() - f.import_reads;

        // 1% changed in the CRM.
        let ids = (0..f.changed)
            .map(|i| SalesforceSandbox::contact_id(i * 100))
            .collect();
        let editor = AnyConnector::new(settings()).expect("connector");
        edit(
            &editor,
            "Contact",
            "FirstName",
            ids,
            &format!("Changed{run}x"),
        )
        .await;
        let before = connector.metrics();
        let t = Instant::now();
        let r = sync_inbound(
            connector.clone(),
            &engine,
            &plan,
            SyncOptions::default(),
            &NoProgress,
        )
        .await
        .expect("incremental");
        f.incremental.push(t.elapsed());
        assert!(
            r.updated as u32 >= f.changed * 9 / 10,
            "updated {}",
            r.updated
        );
        let d = connector.metrics().since(&before);
        f.incremental_reads = d.calls("query") + d.calls("query_more");
        drop(engine);
        drop(sb);
    }
    f
}

async fn hubspot(n: u32, runs: usize) -> Figures {
    let page = 100;
    let mut f = Figures {
        crm: "HubSpot",
        n,
        page,
        baseline: vec![],
        import: vec![],
        incremental: vec![],
        changed: n / 100,
        import_reads: 0,
        import_other: 0,
        incremental_reads: 0,
        peak_mib: vec![],
        peak_reset: false,
    };
    for run in 0..runs {
        let sb = SandboxProcess::start(n);
        let base = sb.url("hubspot", "base_url");
        let settings = || {
            fast(ConnectionSettings::new(
                "hubspot",
                ConnectorKind::Hubspot,
                base.clone(),
                Credentials::Bearer(HUBSPOT_TOKEN.to_string()),
            ))
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine(&dir, "hubspot");
        let plan = SyncPlan::from_rules(engine.ruleset().connection("hubspot").expect("rules"));

        let baseline_connector = AnyConnector::new(settings()).expect("connector");
        let t = Instant::now();
        let fetched = fetch_all(&baseline_connector, &plan).await;
        f.baseline.push(t.elapsed());
        assert_eq!(fetched, u64::from(n));

        let connector = Arc::new(AnyConnector::new(settings()).expect("connector"));
        f.peak_reset = reset_peak_rss();
        let t = Instant::now();
        let r = sync_inbound(
            connector.clone(),
            &engine,
            &plan,
            SyncOptions::default(),
            &NoProgress,
        )
        .await
        .expect("full import");
        f.import.push(t.elapsed());
        if let Some(p) = peak_rss_mib() {
            f.peak_mib.push(p);
        }
        assert_eq!(r.read as u64, u64::from(n));
        let m = connector.metrics();
        f.import_reads = m.calls("contacts_list");
        f.import_other = m.total_calls() - f.import_reads;

        let ids = (0..f.changed)
            .map(|i| HubSpotSandbox::contact_id(i * 100).to_string())
            .collect();
        let editor = AnyConnector::new(settings()).expect("connector");
        edit(
            &editor,
            "contacts",
            "firstname",
            ids,
            &format!("Changed{run}x"),
        )
        .await;
        let before = connector.metrics();
        let t = Instant::now();
        let r = sync_inbound(
            connector.clone(),
            &engine,
            &plan,
            SyncOptions::default(),
            &NoProgress,
        )
        .await
        .expect("incremental");
        f.incremental.push(t.elapsed());
        assert!(
            r.updated as u32 >= f.changed * 9 / 10,
            "updated {}",
            r.updated
        );
        let d = connector.metrics().since(&before);
        f.incremental_reads = d.calls("contacts_search");
        drop(engine);
        drop(sb);
    }
    f
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let sf_n = env_u32("SYNC_BENCH_SF", 1_000_000);
    let hs_n = env_u32("SYNC_BENCH_HS", 100_000);
    let runs = env_u32("SYNC_BENCH_RUNS", 3).max(1) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if sf_n > 0 {
        let f = rt.block_on(salesforce(sf_n, runs));
        f.print();
    }
    if hs_n > 0 {
        let f = rt.block_on(hubspot(hs_n, runs));
        f.print();
    }
}
