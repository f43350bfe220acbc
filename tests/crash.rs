//! Crash safety: the real `crmsync` binary imports a records file and analyzes conversation
//! events while being killed with SIGKILL at random moments. After every kill the store must
//! open, and its contents must be exactly a state that some prefix of whole events produces:
//! every import page fully present or fully absent, every conversation fully applied (marked
//! applied, fields written, activity and outbound intents recorded) or fully absent. Finishing
//! the run afterwards must give exactly the state of a run that was never killed.
//!
//! Seeded: set `CRMSYNC_CRASH_SEED` to replay a failure (the seed is printed).

#[path = "../benches/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crmsync::store::{ContactRecord, Source, Store};
use crmsync::value::Value;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;

/// Records in the import file: four pages (the CLI commits 1000 records per transaction).
const RECORDS: u64 = 3500;
/// Conversation events applied one `crmsync analyze` process each, after the import.
const EVENTS: u64 = 12;
/// SIGKILLs delivered in total.
const KILLS: usize = 40;
const CONNECTION: &str = "salesforce";

/// One step of the workload: one process run.
#[derive(Debug, Clone)]
enum Step {
    Import(PathBuf),
    Analyze { event: u64, file: PathBuf },
}

/// The contact an event is about: imported contacts for most, an unknown number (which the
/// event creates, unlinked) for every fourth.
fn event_contact(event: u64) -> u64 {
    if event % 4 == 3 {
        RECORDS + event
    } else {
        event * 7 + 1
    }
}

fn conversation_id(event: u64) -> String {
    format!("conv-{event}")
}

struct Workspace {
    _dir: tempfile::TempDir,
    root: PathBuf,
    rules: PathBuf,
    steps: Vec<Step>,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let rules = root.join("rules");
        support::write_rules(&rules).unwrap();
        let records = root.join("records.json");
        support::write_salesforce_file(&records, RECORDS).unwrap();
        let mut steps = vec![Step::Import(records)];
        for event in 0..EVENTS {
            let file = root.join(format!("event-{event}.json"));
            let body = support::conversation_event(event, event_contact(event));
            std::fs::write(&file, serde_json::to_vec(&body).unwrap()).unwrap();
            steps.push(Step::Analyze { event, file });
        }
        Workspace {
            _dir: dir,
            root,
            rules,
            steps,
        }
    }

    /// The process for `step` against `store`. Runs in the workspace so no stray
    /// `./crmsync.yaml` is picked up.
    fn command(&self, store: &Path, step: &Step) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crmsync"));
        command
            .current_dir(&self.root)
            .arg("--rules")
            .arg(&self.rules)
            .arg("--store")
            .arg(store)
            .arg("--json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match step {
            Step::Import(file) => command
                .args(["import", "--connection", CONNECTION])
                .arg(file),
            Step::Analyze { file, .. } => command.arg("analyze").arg(file),
        };
        command
    }

    /// Runs `step` to completion; panics (with stderr) if it fails.
    fn run(&self, store: &Path, step: &Step) -> Duration {
        let started = Instant::now();
        let output = self.command(store, step).output().unwrap();
        assert!(
            output.status.success(),
            "{step:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        started.elapsed()
    }

    /// Starts `step`, sends SIGKILL after `delay`; returns whether it had already finished
    /// successfully (then the kill hit nothing).
    fn run_and_kill(&self, store: &Path, step: &Step, delay: Duration) -> bool {
        let mut child = self
            .command(store, step)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The random delay IS the test: it picks the moment of the crash.
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap();
        if finished.is_none() {
            // std's `kill` is SIGKILL on Unix: no destructor, no flush, no commit runs.
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        match finished {
            Some(status) => {
                assert!(status.success(), "{step:?} failed on its own: {status}");
                true
            }
            None => status.success(),
        }
    }
}

/// Everything durable in a store, with wall-clock stamps removed (they differ between runs).
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    rows: BTreeMap<String, Json>,
    contacts: BTreeMap<String, ContactRecord>,
    applied: BTreeSet<u64>,
}

const CLOCK_KEYS: [&str; 6] = [
    "at",
    "created_at",
    "updated_at",
    "enqueued_at",
    "next_attempt_at",
    "applied_at",
];

fn strip_clock(value: &mut Json) {
    match value {
        Json::Object(map) => {
            for key in CLOCK_KEYS {
                map.remove(key);
            }
            map.values_mut().for_each(strip_clock);
        }
        Json::Array(items) => items.iter_mut().for_each(strip_clock),
        _ => {}
    }
}

fn row(value: &impl serde::Serialize) -> Json {
    let mut json = serde_json::to_value(value).unwrap();
    strip_clock(&mut json);
    json
}

/// Opens the store (which must always succeed) and reads everything.
fn snapshot(path: &Path) -> Snapshot {
    let store =
        Store::open(path).unwrap_or_else(|err| panic!("the store must open after a crash: {err}"));
    let mut rows = BTreeMap::new();
    let mut contacts = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.contacts(after.as_deref(), 1000).unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.phone.clone());
        for contact in page {
            for (connection, record_id) in &contact.links {
                assert_eq!(
                    store
                        .phone_for_record(connection, record_id)
                        .unwrap()
                        .as_deref(),
                    Some(contact.phone.as_str()),
                    "the record index must agree with the contact's link"
                );
            }
            rows.insert(format!("contact {}", contact.phone), row(&contact));
            contacts.insert(contact.phone.clone(), contact);
        }
    }
    for write in store.pending_writes(None).unwrap() {
        rows.insert(
            format!("pending {} {}", write.connection, write.record_id),
            row(&write),
        );
    }
    for intent in store.activities(None).unwrap() {
        rows.insert(
            format!("activity {} {}", intent.connection, intent.conversation_id),
            row(&intent),
        );
    }
    for letter in store.dead_letters().unwrap() {
        rows.insert(format!("dead {}", letter.id), row(&letter));
    }
    if let Some(cursor) = store.cursor(CONNECTION).unwrap() {
        rows.insert("cursor".to_string(), row(&cursor));
    }
    let mut applied = BTreeSet::new();
    for event in 0..EVENTS {
        if store.conversation_applied(&conversation_id(event)).unwrap() {
            applied.insert(event);
            rows.insert(format!("applied {}", conversation_id(event)), Json::Null);
        }
    }
    Snapshot {
        rows,
        contacts,
        applied,
    }
}

/// The Salesforce picklist text the outbound rules map a `lead_status` variant to.
fn outbound_lead_status(variant: &str) -> &'static str {
    match variant {
        "new" => "Open - Not Contacted",
        "working" => "Working - Contacted",
        "qualified" => "Closed - Converted",
        _ => "Closed - Not Converted",
    }
}

/// The invariants that hold in every consistent state, checked directly (independently of
/// the reference run): a conversation is applied ⇔ its field changes are present ⇔ its
/// activity intent is present; outbound intents are exactly the analysis changes to mapped
/// fields of linked contacts.
fn check_invariants(snap: &Snapshot) {
    for event in 0..EVENTS {
        let id = conversation_id(event);
        let phone = support::e164(event_contact(event));
        let contact = snap.contacts.get(&phone);
        let fields_written = contact.is_some_and(|c| {
            c.fields.contains_key("last_contacted_at")
                && c.provenance.get("last_contacted_at").map(|p| &p.source)
                    == Some(&Source::Analysis {
                        conversation_id: id.clone(),
                    })
        });
        let activity = snap
            .rows
            .contains_key(&format!("activity {CONNECTION} {id}"));
        let applied = snap.applied.contains(&event);
        assert_eq!(applied, fields_written, "{id}: applied vs. field changes");
        if event_contact(event) < RECORDS {
            assert_eq!(applied, activity, "{id}: applied vs. activity intent");
        } else {
            assert!(!activity, "{id}: an unlinked contact gets no activity");
            assert_eq!(
                applied,
                contact.is_some(),
                "{id}: unknown number creates the contact"
            );
        }
    }
    // Outbound writes: exactly the linked contacts whose lead_status analysis changed.
    let mut expected = BTreeMap::new();
    for contact in snap.contacts.values() {
        let Some(record_id) = contact.links.get(CONNECTION) else {
            continue;
        };
        let by_analysis = matches!(
            contact.provenance.get("lead_status").map(|p| &p.source),
            Some(Source::Analysis { .. })
        );
        if let (true, Some(Value::Enum(variant))) = (by_analysis, contact.fields.get("lead_status"))
        {
            expected.insert(
                record_id.clone(),
                Json::String(outbound_lead_status(variant).to_string()),
            );
        }
    }
    let mut actual = BTreeMap::new();
    for (key, write) in &snap.rows {
        if let Some(record_id) = key.strip_prefix(&format!("pending {CONNECTION} ")) {
            assert_eq!(
                write["fields"].as_object().unwrap().len(),
                1,
                "{key}: {write}"
            );
            actual.insert(
                record_id.to_string(),
                write["fields"]["Lead_Status__c"].clone(),
            );
        }
    }
    assert_eq!(
        actual, expected,
        "pending outbound writes vs. contact changes"
    );
}

/// Describes how two snapshots differ (for failure messages).
fn diff(actual: &Snapshot, expected: &Snapshot) -> String {
    let mut out = Vec::new();
    for (key, value) in &actual.rows {
        match expected.rows.get(key) {
            None => out.push(format!("unexpected {key}")),
            Some(other) if other != value => out.push(format!("differs {key}: {value} vs {other}")),
            _ => {}
        }
    }
    for key in expected.rows.keys() {
        if !actual.rows.contains_key(key) {
            out.push(format!("missing {key}"));
        }
    }
    out.truncate(5);
    out.join("\n")
}

#[test]
fn sigkill_at_random_moments_leaves_only_whole_events() {
    let seed: u64 = std::env::var("CRMSYNC_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c4a5);
    println!("CRMSYNC_CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let ws = Workspace::new();
    let page = 1000;

    // Reference states. Import: the state after j whole pages is what importing the first
    // j pages alone gives.
    let mut after_pages = Vec::new();
    for pages in 0..=RECORDS.div_ceil(page) {
        let count = (pages * page).min(RECORDS);
        let store = ws.root.join(format!("pages-{pages}.redb"));
        if count > 0 {
            let file = ws.root.join(format!("records-{pages}.json"));
            support::write_salesforce_file(&file, count).unwrap();
            ws.run(&store, &Step::Import(file));
        }
        after_pages.push(snapshot(&store));
    }
    // Then a clean run of every step: the state after each.
    let clean_store = ws.root.join("clean.redb");
    let mut after_step = Vec::new();
    let mut durations = Vec::new();
    for step in &ws.steps {
        durations.push(ws.run(&clean_store, step));
        after_step.push(snapshot(&clean_store));
    }
    let clean = after_step.last().unwrap().clone();
    assert_eq!(after_step[0], *after_pages.last().unwrap());
    check_invariants(&clean);
    assert_eq!(
        clean.applied.len() as u64,
        EVENTS,
        "the clean run applies every event"
    );
    assert!(
        clean.rows.keys().any(|k| k.starts_with("pending ")),
        "the workload must produce outbound writes to check"
    );
    let imported = RECORDS - RECORDS / 100;
    let unknown = (0..EVENTS).filter(|e| event_contact(*e) >= RECORDS).count() as u64;
    assert_eq!(clean.contacts.len() as u64, imported + unknown);

    // The killed run: a supervisor that re-runs the current step until it completes.
    let store = ws.root.join("killed.redb");
    let mut step = 0;
    let mut kills = 0;
    let mut states_seen = BTreeSet::new();
    while kills < KILLS && step < ws.steps.len() {
        let budget = durations[step].mul_f64(1.1);
        let delay = Duration::from_micros(rng.gen_range(0..=budget.as_micros() as u64));
        let completed = ws.run_and_kill(&store, &ws.steps[step], delay);
        let snap = snapshot(&store);
        check_invariants(&snap);
        let state = if step == 0 {
            let pages = after_pages
                .iter()
                .position(|reference| *reference == snap)
                .unwrap_or_else(|| {
                    panic!(
                        "after a kill during import (delay {delay:?}) the store is no whole-page \
                         state; nearest difference:\n{}",
                        diff(&snap, &after_pages[snap.contacts.len() / page as usize])
                    )
                });
            format!("import: {pages} pages")
        } else {
            let before = &after_step[step - 1];
            let after = &after_step[step];
            if snap == *after {
                format!("event {}: applied", step - 1)
            } else if snap == *before {
                format!("event {}: absent", step - 1)
            } else {
                panic!(
                    "after a kill during event {} (delay {delay:?}) the store is neither \
                     before nor after it; vs. after:\n{}",
                    step - 1,
                    diff(&snap, after)
                );
            }
        };
        if completed {
            assert_eq!(
                snap, after_step[step],
                "a completed step gives the clean state"
            );
            step += 1;
        } else {
            kills += 1;
            states_seen.insert(state);
        }
    }
    println!("states seen after kills: {states_seen:#?}");
    // The kills must have landed in the middle of things, not only before or after them.
    assert!(kills == KILLS, "only {kills} kills happened");
    assert!(
        states_seen.len() >= 3,
        "kills hit too few distinct states: {states_seen:?}"
    );

    // Finish without kills: the same final state as the clean run.
    for rest in &ws.steps[step..] {
        ws.run(&store, rest);
    }
    let finished = snapshot(&store);
    assert!(finished == clean, "{}", diff(&finished, &clean));
}
