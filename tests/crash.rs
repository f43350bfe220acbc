//! Crash safety: the real `crmsync` binary imports a records file and analyzes conversation
//! events while being killed with SIGKILL at random moments. After every kill the store must
//! open, and its contents must be exactly a state that some prefix of whole events produces:
//! the import (one transaction for the whole file) fully present or fully absent, every conversation fully applied (marked
//! applied, fields written, activity and outbound intents recorded) or fully absent. Finishing
//! the run afterwards must give exactly the state of a run that was never killed.
//!
//! The last step re-imports the file with the lead status of the conversations' contacts
//! changed in the CRM while crmsync's writes of it are pending: conflicts. Half are stamped
//! after the local change (the CRM wins: the pending field is dropped), half before it
//! (crmsync wins). A kill between a decision and its commit must leave no decision, no outbox
//! change and no conflict row; the re-run must decide exactly as the clean run did.
//!
//! Seeded: set `CRMSYNC_CRASH_SEED` to replay a failure (the seed is printed).

#[path = "../benches/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crmsync::store::{
    ActivityIntent, Conflict, ConflictWinner, ContactRecord, DeadLetter, PendingWrite, Source,
    Store, StoreError, SyncCursor,
};
use crmsync::value::Value;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;

/// Records in the import file: 20 pages of `PAGE_SIZE` = 1000 records, all in one
/// transaction. Enough that applying them, not starting the process, is most of an import's
/// run, so the random kills land inside the transaction.
const RECORDS: u64 = 20_000;
/// Conversation events applied one `crmsync analyze` process each, after the import.
const EVENTS: u64 = 12;
/// Kill attempts during the import, and per conversation event. An attempt whose process
/// already finished counts as no kill.
const IMPORT_KILLS: usize = 14;
const KILLS_PER_EVENT: usize = 2;
/// Kill attempts during the conflicting re-import.
const CONFLICT_KILLS: usize = 6;
/// The lead status the CRM's users set on the conversations' contacts in the re-import (not a
/// value the outbound rules write, so it differs from every pending one).
const CRM_STATUS: &str = "Recycled";
/// The least number of kills that must hit a running process (of 14 + 2 × 12 attempts).
const KILLS_AT_LEAST: usize = 20;
const CONNECTION: &str = "salesforce";

/// One step of the workload: one process run.
#[derive(Debug, Clone)]
enum Step {
    Import(PathBuf),
    Analyze(PathBuf),
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
            steps.push(Step::Analyze(file));
        }
        let conflicts = root.join("records-conflicts.json");
        write_conflicting_file(&conflicts);
        steps.push(Step::Import(conflicts));
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
            Step::Analyze(file) => command.arg("analyze").arg(file),
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

/// The records file again, with the conversations' linked contacts edited in the CRM: their
/// lead status changed, stamped after the local changes (2099) for even events and before
/// them (but after the first import's stamps) for odd ones.
fn write_conflicting_file(path: &Path) {
    let edited: BTreeMap<u64, u64> = (0..EVENTS)
        .filter(|e| event_contact(*e) < RECORDS)
        .map(|e| (event_contact(e), e))
        .collect();
    let records: Vec<Json> = (0..RECORDS)
        .map(|index| {
            let mut record = support::salesforce_record(index);
            if let Some(event) = edited.get(&index) {
                let stamp = if event % 2 == 0 {
                    "2099-01-01T00:00:00.000+0000"
                } else {
                    "2024-06-01T00:00:00.000+0000"
                };
                record["Lead_Status__c"] = Json::from(CRM_STATUS);
                record["SystemModstamp"] = Json::from(stamp);
                record["LastModifiedDate"] = Json::from(stamp);
            }
            record
        })
        .collect();
    std::fs::write(path, serde_json::to_vec(&records).unwrap()).unwrap();
}

/// Everything durable in a store, with wall-clock stamps set to one fixed instant (they
/// differ between runs; everything else must not).
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    contacts: BTreeMap<String, ContactRecord>,
    pending: BTreeMap<(String, String), PendingWrite>,
    activities: BTreeMap<(String, String), ActivityIntent>,
    dead_letters: Vec<DeadLetter>,
    cursor: Option<SyncCursor>,
    applied: BTreeSet<u64>,
    conflicts: Vec<Conflict>,
}

fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// Opens the store (which must always succeed) and reads everything in one snapshot.
fn snapshot(path: &Path) -> Snapshot {
    let store =
        Store::open(path).unwrap_or_else(|err| panic!("the store must open after a crash: {err}"));
    let mut contacts = BTreeMap::new();
    let mut applied = BTreeSet::new();
    let mut cursor = None;
    store
        .read(|tx| {
            let mut after: Option<String> = None;
            loop {
                let page = tx.contacts(after.as_deref(), 1000)?;
                let Some(last) = page.last() else { break };
                after = Some(last.phone.clone());
                for mut contact in page {
                    for (connection, record_id) in &contact.links {
                        assert_eq!(
                            tx.phone_for_record(connection, record_id)?.as_deref(),
                            Some(contact.phone.as_str()),
                            "the record index must agree with the contact's link"
                        );
                    }
                    contact.created_at = epoch();
                    contact.updated_at = epoch();
                    contact.provenance.values_mut().for_each(|p| p.at = epoch());
                    contacts.insert(contact.phone.clone(), contact);
                }
            }
            for event in 0..EVENTS {
                if tx.conversation(&conversation_id(event))?.is_some() {
                    applied.insert(event);
                }
            }
            cursor = tx.cursor(CONNECTION)?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let pending = store
        .pending_writes(None)
        .unwrap()
        .into_iter()
        .map(|mut write| {
            write.next_attempt_at = epoch();
            write.enqueued_at = epoch();
            ((write.connection.clone(), write.record_id.clone()), write)
        })
        .collect();
    let activities = store
        .activities(None)
        .unwrap()
        .into_iter()
        .map(|mut intent| {
            intent.next_attempt_at = epoch();
            intent.created_at = epoch();
            (
                (intent.connection.clone(), intent.conversation_id.clone()),
                intent,
            )
        })
        .collect();
    let dead_letters = store
        .dead_letters()
        .unwrap()
        .into_iter()
        .map(|mut letter| {
            letter.at = epoch();
            letter
        })
        .collect();
    let conflicts = store
        .conflicts(None, 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|mut conflict| {
            conflict.local_at = epoch();
            conflict.decided_at = epoch();
            conflict
        })
        .collect();
    Snapshot {
        contacts,
        pending,
        activities,
        dead_letters,
        cursor,
        applied,
        conflicts,
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
                && matches!(
                    c.provenance.get("last_contacted_at").map(|p| &p.source),
                    Some(Source::Analysis { conversation_id, .. }) if *conversation_id == id
                )
        });
        let activity = snap
            .activities
            .contains_key(&(CONNECTION.to_string(), id.clone()));
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
    // Each conflict's decision and its outbox change are there together: the CRM's win
    // dropped the pending write and the contact took the CRM's value, crmsync's kept both.
    for conflict in &snap.conflicts {
        let pending = snap
            .pending
            .contains_key(&(CONNECTION.to_string(), conflict.record_id.clone()));
        let contact = &snap.contacts[&conflict.phone];
        let from_crm = contact.provenance.get("lead_status").map(|p| &p.source)
            == Some(&Source::Inbound {
                connection: CONNECTION.to_string(),
            });
        match conflict.winner {
            ConflictWinner::Crm => assert!(!pending && from_crm, "{conflict:?}"),
            ConflictWinner::Crmsync => assert!(pending && !from_crm, "{conflict:?}"),
        }
        assert_eq!(conflict.crm_value, Json::from(CRM_STATUS));
    }
    let mut actual = BTreeMap::new();
    for ((connection, record_id), write) in &snap.pending {
        assert_eq!(connection, CONNECTION);
        assert_eq!(write.fields.len(), 1, "{write:?}");
        actual.insert(record_id.clone(), write.fields["Lead_Status__c"].clone());
    }
    assert_eq!(
        actual, expected,
        "pending outbound writes vs. contact changes"
    );
}

/// Describes how two snapshots differ (for failure messages; never prints whole snapshots).
fn diff(actual: &Snapshot, expected: &Snapshot) -> String {
    fn keyed<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
        what: &str,
        actual: &BTreeMap<K, V>,
        expected: &BTreeMap<K, V>,
        out: &mut Vec<String>,
    ) {
        for (key, value) in actual {
            match expected.get(key) {
                None => out.push(format!("unexpected {what} {key:?}")),
                Some(other) if other != value => out.push(format!(
                    "{what} {key:?} differs:\n  {value:?}\n  vs {other:?}"
                )),
                _ => {}
            }
        }
        for key in expected.keys() {
            if !actual.contains_key(key) {
                out.push(format!("missing {what} {key:?}"));
            }
        }
    }
    let mut out = Vec::new();
    keyed("contact", &actual.contacts, &expected.contacts, &mut out);
    keyed(
        "pending write",
        &actual.pending,
        &expected.pending,
        &mut out,
    );
    keyed(
        "activity",
        &actual.activities,
        &expected.activities,
        &mut out,
    );
    if actual.conflicts != expected.conflicts {
        out.push(format!(
            "conflicts {:?}\n  vs {:?}",
            actual.conflicts, expected.conflicts
        ));
    }
    if actual.applied != expected.applied {
        out.push(format!(
            "applied conversations {:?} vs {:?}",
            actual.applied, expected.applied
        ));
    }
    if actual.dead_letters != expected.dead_letters {
        out.push(format!("dead letters {:?}", actual.dead_letters));
    }
    if actual.cursor != expected.cursor {
        out.push(format!(
            "cursor {:?} vs {:?}",
            actual.cursor, expected.cursor
        ));
    }
    let more = out.len().saturating_sub(5);
    out.truncate(5);
    if more > 0 {
        out.push(format!("... and {more} more differences"));
    }
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
    // The state before the import: an empty store.
    let empty = snapshot(&ws.root.join("empty.redb"));
    // Then a clean run of every step: the state after each.
    let clean_store = ws.root.join("clean.redb");
    let mut after_step = Vec::new();
    let mut durations = Vec::new();
    for step in &ws.steps {
        durations.push(ws.run(&clean_store, step));
        after_step.push(snapshot(&clean_store));
    }
    let clean = after_step.last().unwrap().clone();
    check_invariants(&clean);
    assert_eq!(
        clean.applied.len() as u64,
        EVENTS,
        "the clean run applies every event"
    );
    let before_conflicts = &after_step[after_step.len() - 2];
    assert!(
        !before_conflicts.pending.is_empty(),
        "the workload must produce outbound writes to check"
    );
    // Every pending write met a CRM edit: one conflict each, both winners among them.
    assert_eq!(clean.conflicts.len(), before_conflicts.pending.len());
    for winner in [ConflictWinner::Crm, ConflictWinner::Crmsync] {
        assert!(
            clean.conflicts.iter().any(|c| c.winner == winner),
            "no conflict won by {winner:?}: {:?}",
            clean.conflicts
        );
    }
    let imported = RECORDS - RECORDS / 100;
    let unknown = (0..EVENTS).filter(|e| event_contact(*e) >= RECORDS).count() as u64;
    assert_eq!(clean.contacts.len() as u64, imported + unknown);

    // The killed run: a supervisor that restarts the current step after each kill. Each step
    // gets a share of the kills; after its last one, it runs to completion.
    let store = ws.root.join("killed.redb");
    let mut kills = 0;
    let mut states_seen = BTreeSet::new();
    let last = ws.steps.len() - 1;
    for (step, work) in ws.steps.iter().enumerate() {
        let attempts = if step == 0 {
            IMPORT_KILLS
        } else if step == last {
            CONFLICT_KILLS
        } else {
            KILLS_PER_EVENT
        };
        // Up to 95% of the clean run's duration: most attempts are killed, some finish. WHY it
        // shrinks: on a shared machine the clean run may have been slowed by other load, so
        // its duration overstates a later run's; each attempt that finished before its kill
        // halves the window, so the kills keep landing while the step runs.
        let mut budget = durations[step].mul_f64(0.95).as_micros() as u64;
        for _ in 0..attempts {
            let delay = Duration::from_micros(rng.gen_range(0..=budget));
            let completed = ws.run_and_kill(&store, work, delay);
            if completed {
                budget /= 2;
            }
            let snap = snapshot(&store);
            check_invariants(&snap);
            let state = if step == 0 {
                // The whole file is one transaction: all of it or none of it.
                if snap == empty {
                    format!("import: absent (killed: {})", !completed)
                } else if snap == after_step[0] {
                    "import: applied".to_string()
                } else {
                    panic!(
                        "after a kill during import (delay {delay:?}) the store is neither \
                         empty nor the whole import; vs. the whole import:\n{}",
                        diff(&snap, &after_step[0])
                    )
                }
            } else if step == last {
                // The re-import with its conflicts is one transaction too.
                if snap == after_step[step] {
                    "conflicts: applied".to_string()
                } else if snap == after_step[step - 1] {
                    format!("conflicts: absent (killed: {})", !completed)
                } else {
                    panic!(
                        "after a kill during the conflicting re-import (delay {delay:?}) the \
                         store is neither before nor after it; vs. after:\n{}",
                        diff(&snap, &after_step[step])
                    )
                }
            } else if snap == after_step[step] {
                format!("event {}: applied", step - 1)
            } else if snap == after_step[step - 1] {
                format!("event {}: absent", step - 1)
            } else {
                panic!(
                    "after a kill during event {} (delay {delay:?}) the store is neither before \
                     nor after it; vs. after:\n{}",
                    step - 1,
                    diff(&snap, &after_step[step])
                );
            };
            if !completed {
                kills += 1;
                states_seen.insert(state);
            }
        }
        // The supervisor's last restart is not killed.
        ws.run(&store, work);
        let snap = snapshot(&store);
        assert!(
            snap == after_step[step],
            "finishing step {step} after the kills gives the clean state:\n{}",
            diff(&snap, &after_step[step])
        );
    }
    println!("{kills} kills; states seen after them: {states_seen:#?}");
    // The kills must have landed in the middle of things, not only before or after them.
    assert!(
        kills >= KILLS_AT_LEAST,
        "only {kills} kills hit a running process"
    );
    assert!(
        states_seen.contains("import: absent (killed: true)"),
        "no kill interrupted a running import: {states_seen:?}"
    );
    assert!(
        states_seen.contains("conflicts: absent (killed: true)"),
        "no kill interrupted the conflicting re-import: {states_seen:?}"
    );
    assert!(
        states_seen.iter().any(|s| s.ends_with(": applied")) || states_seen.len() >= 3,
        "kills hit too few distinct states: {states_seen:?}"
    );

    // The final state equals the clean run's (checked step by step above; once more for the
    // whole store, reopened).
    let finished = snapshot(&store);
    assert!(finished == clean, "{}", diff(&finished, &clean));
}
