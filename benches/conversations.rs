//! End-to-end benchmark: conversation events applied durably to the contact store.
//!
//! `cargo bench --bench conversations` (add `-- N` for N events; default 3000).
//! Reports events/s, median and p99 latency, for the engine and, in the same run, for a raw
//! redb baseline that commits the same number of rows per event (see BENCHMARKS.md).

mod support;

use std::time::{Duration, Instant};

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
            "| {name} | {} | {:.0} | {:.3} | {:.3} |",
            self.events,
            self.per_second(),
            self.median.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3
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
        latencies.extend(std::iter::repeat(elapsed).take(per_commit as usize));
    }
    latencies.truncate(events as usize);
    Summary::of(latencies, started.elapsed())
}

fn main() {
    let events: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3000);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    println!("| series | events | events/s | median ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "{}",
        raw_redb(dir.path(), events, 1).row("raw redb, 1 event per commit")
    );
    println!(
        "{}",
        raw_redb(dir.path(), events, 32).row("raw redb, 32 events per commit")
    );
}
