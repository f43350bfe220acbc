//! End-to-end benchmark: conversation events applied durably to the contact store.
//!
//! `cargo bench --bench conversations` (add `-- N` for N events; default 3000).
//! Reports events/s, median and p99 latency, for the engine (`Engine::apply_conversation`, one
//! durable redb write transaction per event, no LLM: the events carry no `merge` input) and, in
//! the same run, for a raw redb baseline that commits the same rows per event (see
//! BENCHMARKS.md). The store holds 20,000 imported Salesforce contacts first, so events hit
//! linked contacts and write activity and outbound intents as in production.

// The allocator of the `crmsync` binary (src/main.rs), so the bench measures what it ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crmsync::daemon::writer::BatchPolicy;
use crmsync::engine::{ConversationInput, Engine};
use crmsync::event::ConversationEvent;
use crmsync::merge::FallbackMerger;
use crmsync::store::Store;
use redb::{Database, Durability, TableDefinition};

const CONTACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("contacts");
const CONVERSATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("conversations");
const ACTIVITIES: TableDefinition<&str, &[u8]> = TableDefinition::new("activities");

/// Latency summary of one series.
struct Summary {
    events: usize,
    total: Duration,
    median: Duration,
    p99: Duration,
    /// Durable commits the series made (events per commit shows how well group commit groups).
    commits: usize,
    /// On-CPU time of the thread that wrote (the group-commit writer, or the only thread).
    writer_cpu: Duration,
}

/// On-CPU time of the calling thread so far (Linux `/proc/thread-self/schedstat`, user and
/// kernel, fsync's included). Unlike events/s it does not move with the disk's fsync latency,
/// which on this shared machine swings 10x between runs, so it compares engine versions.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

impl Summary {
    fn of(
        mut latencies: Vec<Duration>,
        total: Duration,
        commits: usize,
        writer_cpu: Duration,
    ) -> Summary {
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
        Summary {
            events: latencies.len(),
            total,
            median: at(0.5),
            p99: at(0.99),
            commits,
            writer_cpu,
        }
    }
    fn per_second(&self) -> f64 {
        self.events as f64 / self.total.as_secs_f64()
    }
    fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {:.0} | {:.3} | {:.3} | {:.1} | {:.0} |",
            self.events,
            self.per_second(),
            self.median.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.events as f64 / self.commits.max(1) as f64,
            self.writer_cpu.as_secs_f64() * 1e6 / self.events.max(1) as f64
        )
    }
}

/// The raw-redb floor: per event, one durable write transaction that rewrites one contact row
/// and inserts one applied-conversation row and one activity row — the same writes the engine
/// makes, without rule evaluation or row decoding.
fn raw_redb(dir: &std::path::Path, events: u64, per_commit: u64) -> Summary {
    let db = Database::create(dir.join(format!("raw-{per_commit}.redb"))).unwrap();
    let contact_row = vec![b'x'; 700];
    let small_row = vec![b'y'; 300];
    let mut latencies = Vec::new();
    let started = Instant::now();
    let cpu = thread_cpu();
    let mut serial = 0;
    while serial < events {
        let t = Instant::now();
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate);
        {
            let mut contacts = txn.open_table(CONTACTS).unwrap();
            let mut conversations = txn.open_table(CONVERSATIONS).unwrap();
            let mut activities = txn.open_table(ACTIVITIES).unwrap();
            for _ in 0..per_commit.min(events - serial) {
                let phone = support::e164(serial % 1000);
                let id = format!("conv-{serial}");
                contacts
                    .insert(phone.as_str(), contact_row.as_slice())
                    .unwrap();
                conversations
                    .insert(id.as_str(), small_row.as_slice())
                    .unwrap();
                activities
                    .insert(id.as_str(), small_row.as_slice())
                    .unwrap();
                serial += 1;
            }
        }
        txn.commit().unwrap();
        let elapsed = t.elapsed();
        latencies.extend(std::iter::repeat_n(elapsed, per_commit as usize));
    }
    latencies.truncate(events as usize);
    let commits = events.div_ceil(per_commit) as usize;
    Summary::of(latencies, started.elapsed(), commits, thread_cpu() - cpu)
}

/// Contacts imported before the events are applied.
const CONTACTS_IMPORTED: u64 = 20_000;

/// The engine over a fresh store holding [`CONTACTS_IMPORTED`] Salesforce contacts.
fn engine(dir: &std::path::Path) -> Engine {
    let rules = dir.join("rules");
    support::write_rules(&rules).unwrap();
    let compiled =
        crmsync::lang::compile_dir(&rules).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let store = Store::open(dir.join("engine.redb")).unwrap();
    let engine = Engine::new(store, compiled, None).unwrap();
    let records: Vec<serde_json::Value> = (0..CONTACTS_IMPORTED)
        .map(support::salesforce_record)
        .collect();
    for page in records.chunks(1000) {
        engine.import_page("salesforce", page, None).unwrap();
    }
    engine
}

/// Events `first..first + count`, spread over the imported contacts (every 10th to an unknown
/// number, which creates a contact).
fn events(first: u64, count: u64) -> Vec<ConversationEvent> {
    (first..first + count)
        .map(|serial| {
            let contact = if serial % 10 == 9 {
                CONTACTS_IMPORTED + serial
            } else {
                serial * 7 % CONTACTS_IMPORTED
            };
            serde_json::from_value(support::conversation_event(serial, contact)).unwrap()
        })
        .collect()
}

/// Applies the events one after another, each awaited to its commit.
fn engine_sequential(engine: &Engine, parsed: Vec<ConversationEvent>) -> Summary {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut latencies = Vec::with_capacity(parsed.len());
    let started = Instant::now();
    let cpu = thread_cpu();
    runtime.block_on(async {
        for event in &parsed {
            let t = Instant::now();
            let report = engine
                .apply_conversation(event, &FallbackMerger)
                .await
                .unwrap();
            latencies.push(t.elapsed());
            std::hint::black_box(report);
        }
    });
    let commits = latencies.len();
    Summary::of(latencies, started.elapsed(), commits, thread_cpu() - cpu)
}

/// One queued event: the event, when it was submitted, and where to report its latency.
type Submission = (ConversationInput, Instant, mpsc::Sender<Duration>);

/// Group commit, as the daemon runs it (`src/daemon/writer.rs`): `clients` threads each
/// normalize one event's number (`Engine::conversation_input`, as the daemon's request task
/// does), submit it and wait until it is durable; one writer thread takes the batch the
/// daemon's `BatchPolicy` picks (everything queued, up to 256 events; up to 200 µs more when
/// fewer than the previous commit's) and applies it with `Engine::apply_inputs_blocking` in
/// ONE durable transaction. Latency is from submission (before the normalization) to the commit that made
/// the event durable, so it includes waiting for the batch in flight.
fn engine_group_commit(engine: &Engine, events: Vec<ConversationEvent>, clients: usize) -> Summary {
    let started = Instant::now();
    let (queue, queued) = mpsc::channel::<Submission>();
    let latencies = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let cpu = thread_cpu();
            let mut commits = 0;
            let mut policy = BatchPolicy::default();
            while let Ok(first) = queued.recv() {
                let batch = policy.fill(first, || queued.try_recv().ok());
                let (events, waiters): (Vec<_>, Vec<_>) = batch
                    .into_iter()
                    .map(|(event, submitted, reply)| (event, (submitted, reply)))
                    .unzip();
                let reports = engine
                    .apply_inputs_blocking(&events, &FallbackMerger)
                    .unwrap();
                std::hint::black_box(reports);
                commits += 1;
                for (submitted, reply) in waiters {
                    let _ = reply.send(submitted.elapsed());
                }
            }
            (commits, thread_cpu() - cpu)
        });
        let per_client = events.len().div_ceil(clients);
        let mut events = events.into_iter();
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let mine: Vec<ConversationEvent> = events.by_ref().take(per_client).collect();
                let queue = queue.clone();
                scope.spawn(move || {
                    let (reply, done) = mpsc::channel();
                    let mut latencies = Vec::with_capacity(mine.len());
                    for event in mine {
                        let submitted = Instant::now();
                        let input = engine.conversation_input(event).unwrap();
                        queue.send((input, submitted, reply.clone())).unwrap();
                        latencies.push(done.recv().unwrap());
                    }
                    latencies
                })
            })
            .collect();
        drop(queue);
        let latencies = handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect::<Vec<_>>();
        (latencies, writer.join().unwrap())
    });
    let (latencies, (commits, writer_cpu)) = latencies;
    Summary::of(latencies, started.elapsed(), commits, writer_cpu)
}

fn main() {
    let count: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3000);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    println!(
        "| series | events | events/s | median ms | p99 ms | events per commit | writer CPU µs per event |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let engine = engine(dir.path());
    println!(
        "{}",
        engine_sequential(&engine, events(0, count)).row("crmsync engine, 1 event per commit")
    );
    for clients in [8, 12, 16, 24, 32, 64] {
        let name = format!("crmsync engine, group commit, {clients} concurrent clients");
        let first = count * clients as u64;
        println!(
            "{}",
            engine_group_commit(&engine, events(first, count * 2), clients).row(&name)
        );
    }
    println!(
        "{}",
        raw_redb(dir.path(), count, 1).row("raw redb, 1 event per commit")
    );
    println!(
        "{}",
        raw_redb(dir.path(), count * 2, 32).row("raw redb, 32 events per commit")
    );
}
