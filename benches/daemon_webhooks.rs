//! End-to-end benchmark of the daemon's webhook path: signed Retell `call_analyzed` bodies
//! posted over loopback HTTP by concurrent clients, each verified, parsed and applied in its own
//! durable store transaction.
//!
//! `cargo bench --bench daemon_webhooks` (add `-- N` for N events; default 2000).
//!
//! Baseline, measured in the same run on the same kind of store: the same events applied by
//! calling `Engine::apply_conversation_blocking` directly from 8 threads (the daemon runs up to
//! 8 store calls at once), with no HTTP and no signature verification; the ratio is what the
//! HTTP layer costs. Also shown: the same calls one at a time, and the daemon without group
//! commit (its mode when an LLM is configured). The paths alternate over five rounds on fresh
//! stores; the median round of each is reported.

// The allocator of the `crmsync` binary (src/main.rs), so the bench measures what it ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crmsync::daemon::signature::{now_ms, sign};
use crmsync::daemon::{self, DaemonOptions};
use crmsync::engine::retell::{self, RetellEvent};
use crmsync::engine::Engine;
use crmsync::merge::FallbackMerger;
use crmsync::store::Store;
use crmsync::value::phone::PhoneNormalizer;

const KEY: &str = "key_bench";
const CLIENTS: usize = 16;

fn engine(dir: &std::path::Path, name: &str) -> Arc<Engine> {
    let compiled = match crmsync::lang::compile_dir(std::path::Path::new("rules")) {
        Ok(compiled) => compiled,
        Err(diagnostics) => panic!("rules/ does not compile: {diagnostics:?}"),
    };
    let store = Store::open(dir.join(name)).expect("store");
    Arc::new(Engine::new(store, compiled, Some("salesforce")).expect("engine"))
}

/// A Retell `call_analyzed` body for call `n` from one of 500 callers.
fn body(n: usize) -> String {
    let status = ["new", "working", "qualified"][n % 3];
    serde_json::json!({
        "event": "call_analyzed",
        "call": {
            "call_id": format!("call_bench_{n}"), "call_type": "phone_call",
            "direction": "inbound", "from_number": format!("+1415555{:04}", n % 500),
            "to_number": "+18885550100",
            "start_timestamp": 1763715600000_i64 + n as i64 * 1000,
            "end_timestamp": 1763715660000_i64 + n as i64 * 1000,
            "disconnection_reason": "user_hangup",
            "call_analysis": {
                "call_summary": "Asked about pricing.", "call_successful": true,
                "custom_analysis_data": {
                    "lead_qualification_status": status,
                    "email_address": format!("caller{}@example.com", n % 500),
                    "demo_requested": n.is_multiple_of(2)
                }
            }
        }
    })
    .to_string()
}

struct Summary {
    events: usize,
    total: Duration,
    median: Duration,
    p99: Duration,
}

impl Summary {
    fn of(mut latencies: Vec<Duration>, total: Duration) -> Summary {
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
        Summary {
            events: latencies.len(),
            total,
            median: at(0.5),
            p99: at(0.99),
        }
    }
    fn per_second(&self) -> f64 {
        self.events as f64 / self.total.as_secs_f64()
    }
    fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {:.0} | {:.2} | {:.2} |",
            self.events,
            self.per_second(),
            self.median.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3
        )
    }
}

fn direct(engine: &Engine, bodies: &[String]) -> Summary {
    let mut latencies = Vec::with_capacity(bodies.len());
    let started = Instant::now();
    for body in bodies {
        let t = Instant::now();
        let Some(RetellEvent::Call(event)) = retell::parse_webhook(body.as_bytes()).expect("body")
        else {
            panic!("not a call_analyzed body")
        };
        engine
            .apply_conversation_blocking(&event, &FallbackMerger)
            .expect("applied");
        latencies.push(t.elapsed());
    }
    Summary::of(latencies, started.elapsed())
}

/// The same, from `threads` threads at once (the daemon runs up to 8 store calls at a time).
fn direct_concurrent(engine: &Engine, bodies: &[String], threads: usize) -> Summary {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut latencies = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else {
                            break;
                        };
                        let t = Instant::now();
                        let Some(RetellEvent::Call(event)) =
                            retell::parse_webhook(body.as_bytes()).expect("body")
                        else {
                            panic!("not a call_analyzed body")
                        };
                        engine
                            .apply_conversation_blocking(&event, &FallbackMerger)
                            .expect("applied");
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    Summary::of(latencies, started.elapsed())
}

async fn over_http(engine: Arc<Engine>, bodies: Vec<String>, group_commit: bool) -> Summary {
    let running = daemon::start(DaemonOptions {
        listen: "127.0.0.1:0".parse().expect("addr"),
        api_token: "bench".to_string(),
        retell_api_key: KEY.to_string(),
        body_limit: 1 << 20,
        engine,
        merger: Arc::new(FallbackMerger),
        backend: None,
        phone: PhoneNormalizer::default(),
        group_commit,
        sync_interval: Duration::from_secs(3600),
        dispatch_interval: Duration::from_secs(3600),
        chat_number_keys: Vec::new(),
        limits: Default::default(),
    })
    .await
    .expect("daemon");
    let url = format!("{}/webhooks/retell", running.base_url());
    let client = reqwest::Client::new();
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (client, url, queue) = (client.clone(), url.clone(), queue.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some(body) = queue.lock().expect("queue").pop() else {
                    break;
                };
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .header("x-retell-signature", sign(KEY, body.as_bytes(), now_ms()))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("post");
                assert!(response.status().is_success(), "{}", response.status());
                let _ = response.bytes().await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let total = started.elapsed();
    running.shutdown().await.expect("shutdown");
    Summary::of(latencies, total)
}

fn main() {
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // The store's durable commits dominate both paths, and the disk is shared with whatever
    // else runs: the two paths alternate over several rounds, each on a fresh store, and the
    // round with the median throughput of each path is shown.
    const ROUNDS: usize = 5;
    let mut direct_runs = Vec::new();
    let mut concurrent_runs = Vec::new();
    let mut http_runs = Vec::new();
    let mut single_runs = Vec::new();
    for round in 0..ROUNDS {
        let bodies: Vec<String> = (0..events).map(body).collect();
        // Alternate which path goes first, so neither always meets the disk in the same state.
        let run_direct = |runs: &mut Vec<Summary>| {
            runs.push(direct(
                &engine(dir.path(), &format!("direct{round}.redb")),
                &bodies,
            ))
        };
        if round % 2 == 1 {
            run_direct(&mut direct_runs);
        }
        concurrent_runs.push(direct_concurrent(
            &engine(dir.path(), &format!("concurrent{round}.redb")),
            &bodies,
            8,
        ));
        http_runs.push(runtime.block_on(over_http(
            engine(dir.path(), &format!("daemon{round}.redb")),
            bodies.clone(),
            true,
        )));
        single_runs.push(runtime.block_on(over_http(
            engine(dir.path(), &format!("single{round}.redb")),
            bodies.clone(),
            false,
        )));
        if round % 2 == 0 {
            run_direct(&mut direct_runs);
        }
    }
    let ratios: Vec<String> = concurrent_runs
        .iter()
        .zip(&http_runs)
        .map(|(d, h)| format!("{:.2}", h.per_second() / d.per_second()))
        .collect();
    let median = |runs: &mut Vec<Summary>| {
        runs.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
        runs.remove(runs.len() / 2)
    };
    let sequential = median(&mut direct_runs);
    let baseline = median(&mut concurrent_runs);
    let http = median(&mut http_runs);
    let single = median(&mut single_runs);

    println!("| path | events | events/s | median ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|");
    println!("{}", sequential.row("engine, direct, one at a time"));
    println!("{}", baseline.row("engine, direct, 8 threads (baseline)"));
    println!(
        "{}",
        single.row(&format!(
            "daemon, {CLIENTS} clients, one transaction per request (with an LLM)"
        ))
    );
    println!(
        "{}",
        http.row(&format!(
            "daemon, {CLIENTS} clients, group commit (without an LLM, the default)"
        ))
    );
    println!(
        "\nmedian-round throughput ratio daemon with group commit / direct 8 threads: {:.2}; per round: {}",
        http.per_second() / baseline.per_second(),
        ratios.join(", ")
    );
}
