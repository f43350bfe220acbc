//! Delivery under faults, end to end: the Salesforce sandbox over loopback, the real connector,
//! a real redb store in a tempdir and the repository's rules.
//!
//! A transient error (throttling, 5xx, timeouts, connection errors) never becomes a dead
//! letter: the write and the Task stay in the outbox, deferred, and land once the CRM
//! recovers. Only a refusal of the record itself dead-letters, and a dead letter can be retried
//! or discarded. Faults are placed by request count; no test waits on a clock.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crmsync::connector::config::{RateLimitConfig, RetrySettings};
use crmsync::connector::dispatch::{dispatch_pass, DispatchReport, DispatchTarget};
use crmsync::connector::sync::{sync_once, NoProgress, SyncOptions, SyncPlan};
use crmsync::connector::{AnyConnector, ConnectionSettings, ConnectorKind, Credentials};
use crmsync::engine::Engine;
use crmsync::event::ConversationEvent;
use crmsync::merge::FallbackMerger;
use crmsync::sandbox::credentials::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
use crmsync::sandbox::salesforce::{SalesforceSandbox, SalesforceSandboxConfig};
use crmsync::store::{ContactRecord, DeadLetterKind, Store};
use serde_json::json;
use tempfile::TempDir;

async fn start() -> SalesforceSandbox {
    SalesforceSandbox::start(SalesforceSandboxConfig {
        contacts: 3,
        seed: 12,
        ..SalesforceSandboxConfig::default()
    })
    .await
    .unwrap()
}

/// No waits between attempts (a zero backoff base), two attempts per request: a pass meets the
/// fault at once and the next pass is due immediately, so passes are counted, not timed.
fn settings(sf: &SalesforceSandbox) -> ConnectionSettings {
    let mut s = ConnectionSettings::new(
        "salesforce",
        ConnectorKind::Salesforce,
        sf.login_url(),
        Credentials::ClientCredentials {
            client_id: SALESFORCE_CLIENT_ID.into(),
            client_secret: SALESFORCE_CLIENT_SECRET.into(),
        },
    );
    s.rate_limit = RateLimitConfig {
        requests_per_second: 100_000.0,
        burst: 10_000,
    };
    s.retry = RetrySettings {
        max_attempts: 2,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };
    s.timeout = Duration::from_secs(10);
    s
}

struct Env {
    _dir: TempDir,
    engine: Arc<Engine>,
    connector: Arc<AnyConnector>,
    plan: SyncPlan,
    target: DispatchTarget,
}

impl Env {
    fn new(settings: ConnectionSettings) -> Env {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let compiled = crmsync::lang::compile_dir(&rules).expect("rules/ compiles");
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store.redb")).unwrap();
        let engine = Arc::new(Engine::new(store, compiled, Some("salesforce")).unwrap());
        let plan = SyncPlan::from_rules(engine.ruleset().connection("salesforce").unwrap());
        let target = DispatchTarget {
            connection: "salesforce".into(),
            object: plan.object.clone(),
        };
        Env {
            _dir: dir,
            connector: Arc::new(AnyConnector::new(settings).unwrap()),
            engine,
            plan,
            target,
        }
    }

    async fn sync(&self) {
        sync_once(
            self.connector.clone(),
            &self.engine,
            &self.plan,
            SyncOptions { full: false },
            Some(&self.target),
            &NoProgress,
        )
        .await
        .unwrap();
    }

    async fn dispatch(&self) -> DispatchReport {
        dispatch_pass(self.connector.as_ref(), self.engine.store(), &self.target)
            .await
            .unwrap()
    }

    fn store(&self) -> &Store {
        self.engine.store()
    }

    fn first_linked(&self) -> (ContactRecord, String) {
        let contact = self
            .store()
            .contacts(None, 10)
            .unwrap()
            .into_iter()
            .find(|c| c.links.contains_key("salesforce"))
            .expect("a linked contact");
        let rid = contact.links["salesforce"].clone();
        (contact, rid)
    }

    /// A call with this contact that ends with notes and a status: one field write (Notes__c,
    /// Lead_Status__c) and one Task queued.
    async fn call(&self, id: &str, phone: &str, notes: &str) {
        let event: ConversationEvent = serde_json::from_value(json!({
            "id": id, "kind": "call", "direction": "outbound",
            "from_number": "+14155550000", "to_number": phone,
            "start_time": "2026-01-02T10:00:00Z", "end_time": "2026-01-02T10:02:05Z",
            "duration_ms": 125000, "summary": format!("Summary of {id}"),
            "disconnection_reason": "user_hangup",
            "analysis": {"customer_notes": notes, "lead_qualification_status": "working"}
        }))
        .unwrap();
        self.engine
            .apply_conversation(&event, &FallbackMerger)
            .await
            .unwrap();
    }
}

fn notes(sf: &SalesforceSandbox, rid: &str) -> Option<String> {
    sf.contact(rid)
        .and_then(|c| c["Notes__c"].as_str().map(str::to_owned))
}

fn subjects(sf: &SalesforceSandbox, rid: &str) -> Vec<String> {
    sf.tasks_for(rid)
        .iter()
        .map(|t| t["Subject"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Salesforce answers `403 REQUEST_LIMIT_EXCEEDED` to the next 60 API requests: far more
/// dispatch passes fail than the delivery attempts of the old code allowed. Nothing is
/// dead-lettered; the write and the Task are deferred with the CRM's message and land once the
/// spell is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_spell_defers_and_then_delivers() {
    let sf = start().await;
    let env = Env::new(settings(&sf));
    env.sync().await;
    let (contact, rid) = env.first_linked();
    env.call("throttled-call", &contact.phone, "said hello")
        .await;
    let seen = sf.faults().requests_seen();
    let spell_end = seen + 60;
    sf.faults()
        .update(|f| f.throttle_window = Some((seen + 1, spell_end)));
    let mut passes = 0;
    // A pass sends at most four requests (two attempts of the write, two of the Task): stop
    // while each of this loop's passes still meets the spell throughout.
    while sf.faults().requests_seen() + 4 <= spell_end {
        let report = env.dispatch().await;
        passes += 1;
        assert!(report.dead_lettered.is_empty(), "pass {passes}: {report:?}");
        assert!(report.deferred >= 1, "pass {passes}: {report:?}");
        let counts = env.store().outbox_counts().unwrap();
        assert_eq!(counts.dead_letters, 0);
        assert_eq!(
            (counts.deferred_writes, counts.deferred_activities),
            (1, 1),
            "{counts:?}"
        );
        assert!(passes < 100, "the spell never ended");
    }
    assert!(passes > 5, "the spell outlasted the old attempt limit");
    let write = &env.store().pending_writes(None).unwrap()[0];
    let error = write.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("REQUEST_LIMIT_EXCEEDED"), "{error}");
    assert!(write.deferred_since.is_some(), "{write:?}");
    assert_ne!(notes(&sf, &rid).as_deref(), Some("said hello"));
    assert!(
        subjects(&sf, &rid).is_empty(),
        "nothing landed during the spell"
    );

    // The spell ends within the next passes.
    let mut total = DispatchReport::default();
    for _ in 0..4 {
        total.absorb(env.dispatch().await);
    }
    assert!(sf.faults().requests_seen() > spell_end);
    assert!(total.dead_lettered.is_empty(), "{total:?}");
    assert_eq!(
        (total.written, total.activities_logged),
        (1, 1),
        "{total:?}"
    );
    assert_eq!(notes(&sf, &rid).as_deref(), Some("said hello"));
    assert_eq!(subjects(&sf, &rid), ["Call throttled-call"]);
    let counts = env.store().outbox_counts().unwrap();
    assert_eq!(
        (
            counts.pending_writes,
            counts.deferred_writes,
            counts.deferred_activities,
            counts.dead_letters
        ),
        (0, 0, 0, 0),
        "{counts:?}"
    );
}

/// The CRM refuses connections for a while (both listeners stopped, then started again on
/// the same ports): the write and the Task wait in the outbox and land once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_crm_defers_and_then_delivers() {
    let mut sf = start().await;
    let env = Env::new(settings(&sf));
    env.sync().await;
    let (contact, rid) = env.first_linked();
    env.call("unreachable-call", &contact.phone, "call me back")
        .await;
    sf.refuse_connections().await;
    for pass in 1..=12 {
        let report = env.dispatch().await;
        assert!(report.dead_lettered.is_empty(), "pass {pass}: {report:?}");
        assert_eq!(report.deferred, 2, "pass {pass}: {report:?}");
    }
    let write = &env.store().pending_writes(None).unwrap()[0];
    assert!(write.attempts >= 12, "{write:?}");
    sf.accept_connections().await.unwrap();
    let report = env.dispatch().await;
    assert_eq!(
        (report.written, report.activities_logged),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(notes(&sf, &rid).as_deref(), Some("call me back"));
    assert_eq!(subjects(&sf, &rid), ["Call unreachable-call"]);
    assert_eq!(env.store().outbox_counts().unwrap().dead_letters, 0);
}

/// Deferral is bounded: past `give_up_after` of transient failures the entry is dead-lettered
/// with the last error, so it is listed and can be retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_horizon_a_transient_failure_dead_letters() {
    let sf = start().await;
    let mut s = settings(&sf);
    s.give_up_after = Duration::ZERO;
    let env = Env::new(s);
    env.sync().await;
    let (contact, _) = env.first_linked();
    env.call("horizon-call", &contact.phone, "too late").await;
    sf.faults().update(|f| f.throttle_fraction = 1.0);
    env.dispatch().await;
    // The first failure starts the clock; the next one is past a zero horizon.
    let report = env.dispatch().await;
    let kinds: Vec<&str> = report.dead_lettered.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, ["field_write", "activity"], "{report:?}");
    for d in &report.dead_lettered {
        assert!(d.message.contains("gave up after"), "{d:?}");
        assert!(d.message.contains("REQUEST_LIMIT_EXCEEDED"), "{d:?}");
    }
}

/// A refusal of the record itself still dead-letters at once, even in the middle of other
/// entries being deferred.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validation_error_still_dead_letters() {
    let sf = start().await;
    let env = Env::new(settings(&sf));
    env.sync().await;
    let (contact, rid) = env.first_linked();
    // Over the 32 768 characters of the `Notes__c` long text area.
    env.call("long-notes", &contact.phone, &"x".repeat(140_000))
        .await;
    let report = env.dispatch().await;
    let dead = env.store().dead_letters().unwrap();
    assert_eq!(dead.len(), 1, "{report:?}");
    assert_eq!(dead[0].kind, DeadLetterKind::FieldWrite);
    assert_eq!(dead[0].field.as_deref(), Some("Notes__c"));
    assert!(dead[0].message.contains("STRING_TOO_LONG"), "{dead:?}");
    assert_eq!(subjects(&sf, &rid), ["Call long-notes"]);
}

/// A conversation id long enough that `Call <id>` is over the Task `Subject` limit (255, which
/// the sandbox enforces as Salesforce does): the Task is logged with a truncated subject, and
/// found again by it when its outcome was unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_conversation_id_logs_a_task_with_a_truncated_subject() {
    let sf = start().await;
    let env = Env::new(settings(&sf));
    env.sync().await;
    let (contact, rid) = env.first_linked();
    let id = format!("conv-{}", "9".repeat(300));
    env.call(&id, &contact.phone, "long id").await;
    let report = env.dispatch().await;
    assert!(report.dead_lettered.is_empty(), "{report:?}");
    assert_eq!(report.activities_logged, 1, "{report:?}");
    let subjects = subjects(&sf, &rid);
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].chars().count(), 255);
    assert!(format!("Call {id}").starts_with(&subjects[0]));

    // The answer to the next create names no record: the Task is looked up by its cut subject
    // and found, not sent again.
    let id2 = format!("conv-{}", "8".repeat(300));
    env.call(&id2, &contact.phone, "long id again").await;
    sf.faults().update(|f| f.omit_write_ids = true);
    let report = env.dispatch().await;
    assert_eq!(report.activities_logged, 0, "{report:?}");
    sf.faults().update(|f| f.omit_write_ids = false);
    let report = env.dispatch().await;
    assert_eq!(report.activities_found, 1, "{report:?}");
    assert_eq!(report.activities_logged, 0, "{report:?}");
    assert_eq!(sf.tasks_for(&rid).len(), 2);
}

/// A refused field, retried after the contact changed, queues the field's CURRENT value, which
/// lands; the dead letter is then resolved and a second retry is refused (never queued twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_refused_field_queues_its_current_value() {
    let sf = start().await;
    let env = Env::new(settings(&sf));
    env.sync().await;
    let (contact, rid) = env.first_linked();
    env.call("too-long", &contact.phone, &"x".repeat(40_000))
        .await;
    env.dispatch().await;
    let dead = env.store().dead_letters().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let id = dead[0].id;
    assert!(!env
        .store()
        .contact(&contact.phone)
        .unwrap()
        .unwrap()
        .out_of_step
        .is_empty());

    // The notes are edited down to something the CRM takes, then the dead letter is retried.
    let mut fields = crmsync::value::Fields::new();
    fields.insert(
        "interaction_summary".into(),
        crmsync::value::Value::String("short now".into()),
    );
    env.engine.manual_set(&contact.phone, fields).unwrap();
    env.dispatch().await;
    let retried = env.engine.retry_dead_letter(id).unwrap();
    assert_eq!(retried.queued, ["Notes__c"]);
    assert_eq!(retried.record_id, rid);
    assert!(env.store().dead_letters().unwrap().is_empty());
    let report = env.dispatch().await;
    assert_eq!(report.written, 1, "{report:?}");
    assert_eq!(notes(&sf, &rid).as_deref(), Some("short now"));
    assert!(env
        .store()
        .contact(&contact.phone)
        .unwrap()
        .unwrap()
        .out_of_step
        .is_empty());

    let again = env.engine.retry_dead_letter(id).unwrap_err().to_string();
    assert!(again.contains("already retried"), "{again}");
    let history = env.store().dead_letter_history().unwrap();
    assert!(
        matches!(
            history[0].resolution,
            Some(crmsync::store::Resolution::Retried { .. })
        ),
        "{history:?}"
    );
}

/// An activity given up on while its outcome was unknown (the CRM's answers named no record)
/// is looked up when retried, and found: one Task, never two. A dead letter discarded with a
/// reason leaves the open list and keeps the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_activity_with_unknown_outcome_is_found_not_duplicated() {
    let sf = start().await;
    let mut s = settings(&sf);
    s.give_up_after = Duration::ZERO;
    let env = Env::new(s);
    env.sync().await;
    let (contact, rid) = env.first_linked();
    env.call("unknown-outcome", &contact.phone, "hello").await;
    sf.faults().update(|f| f.omit_write_ids = true);
    env.dispatch().await;
    let report = env.dispatch().await;
    assert_eq!(report.dead_lettered.len(), 2, "{report:?}");
    assert_eq!(sf.tasks_for(&rid).len(), 1, "the CRM did create the Task");
    sf.faults().update(|f| f.omit_write_ids = false);
    let dead = env.store().dead_letters().unwrap();
    let activity = dead
        .iter()
        .find(|d| d.kind == DeadLetterKind::Activity)
        .unwrap();
    assert!(activity.outcome_unknown, "{activity:?}");
    let write = dead
        .iter()
        .find(|d| d.kind == DeadLetterKind::FieldWrite)
        .unwrap();

    env.engine.retry_dead_letter(activity.id).unwrap();
    let report = env.dispatch().await;
    assert_eq!(
        (report.activities_found, report.activities_logged),
        (1, 0),
        "{report:?}"
    );
    assert_eq!(sf.tasks_for(&rid).len(), 1);

    let discarded = env
        .store()
        .discard_dead_letter(write.id, "  ", chrono::Utc::now())
        .unwrap_err()
        .to_string();
    assert!(discarded.contains("needs a reason"), "{discarded}");
    env.store()
        .discard_dead_letter(
            write.id,
            "notes fixed by hand in Salesforce",
            chrono::Utc::now(),
        )
        .unwrap();
    assert!(env.store().dead_letters().unwrap().is_empty());
    assert_eq!(env.store().outbox_counts().unwrap().dead_letters, 0);
    let history = env.store().dead_letter_history().unwrap();
    assert!(
        format!("{:?}", history).contains("notes fixed by hand in Salesforce"),
        "{history:?}"
    );
}
