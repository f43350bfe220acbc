//! End-to-end sync against the in-process sandboxes, over real loopback HTTP, with the real
//! connectors, a real redb store in a tempdir and the repository's compiled `rules/`.
//!
//! The same scenarios run against both CRMs through the small [`Crm`] harness trait: it only
//! does what a CRM user would do in the CRM's UI (edit, delete) and reads the sandbox's state
//! and request counters.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crmsync::connector::config::{RateLimitConfig, RetrySettings};
use crmsync::connector::dispatch::{dispatch_pass, DispatchReport, DispatchTarget};
use crmsync::connector::report::SyncReport;
use crmsync::connector::sync::{sync_once, NoProgress, SyncError, SyncOptions, SyncPlan};
use crmsync::connector::{AnyConnector, ConnectionSettings, Connector, ConnectorKind, Credentials};
use crmsync::engine::Engine;
use crmsync::event::ConversationEvent;
use crmsync::merge::FallbackMerger;
use crmsync::store::{ConflictPolicy, ConflictWinner, ContactRecord, CrmTimeSource, Store};
use crmsync::value::Value;
use serde_json::json;
use tempfile::TempDir;

mod harness {
    use super::*;

    /// What the scenarios need from a sandbox.
    pub trait Crm {
        const CONNECTION: &'static str;
        /// The CRM field `interaction_summary` is pushed to.
        const NOTES_FIELD: &'static str;
        /// Write-request endpoint counted for field updates.
        const UPDATE_ENDPOINT: &'static str;
        const BATCH: usize;
        fn settings(&self) -> ConnectionSettings;
        fn rename(&self, record_id: &str, first_name: &str);
        fn delete(&self, record_id: &str);
        fn field(&self, record_id: &str, field: &str) -> Option<String>;
        /// Activities logged on the record, as their subject/title (or body for chats).
        fn activities(&self, record_id: &str) -> Vec<String>;
        fn requests(&self, endpoint: &str) -> u64;
        fn set_faults(&self, fraction_throttled: f64, fraction_5xx: f64);
        fn revoke_tokens_at(&self, request: u64);
        fn requests_seen(&self) -> u64;
        /// A CRM user sets the notes field (`None`: clears it, as the CRM's UI does).
        fn set_notes(&self, record_id: &str, notes: Option<&str>);
        /// A CRM user creates a contact with this phone and a name, nothing else.
        fn create(&self, phone: &str) -> String;
        /// Time passes on the CRM's clock (the real time plus this offset) without waiting.
        fn advance_clock(&self, by: Duration);
        /// A connection with two-way notes: `Notes -> interaction_summary` inbound and
        /// `interaction_summary -> Notes` outbound.
        const TWO_WAY_RULES: &'static str;
        /// Where the CRM's side of a conflict is timed from.
        const FIELD_TIMES: CrmTimeSource;
        /// Successful write results come back without their record id.
        fn omit_write_ids(&self, on: bool);
    }

    /// Fast retries: the backoff logic is the same, the waits are milliseconds.
    pub fn tune(mut s: ConnectionSettings) -> ConnectionSettings {
        s.rate_limit = RateLimitConfig {
            requests_per_second: 100_000.0,
            burst: 10_000,
        };
        s.retry = RetrySettings {
            max_attempts: 10,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
        };
        s.timeout = Duration::from_secs(10);
        s.max_delivery_attempts = 10;
        s
    }

    pub struct Env {
        pub _dir: TempDir,
        pub engine: Arc<Engine>,
        pub connector: Arc<AnyConnector>,
        pub plan: SyncPlan,
        pub target: DispatchTarget,
    }

    pub fn rules_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
    }

    pub fn env(connection: &str, settings: ConnectionSettings) -> Env {
        let compiled = crmsync::lang::compile_dir(&rules_dir()).expect("rules/ compiles");
        env_with(connection, settings, compiled)
    }

    /// An env over the shared fields and analysis rules plus `connection_rules`, deciding
    /// conflicts by `policy`.
    pub fn two_way_env(
        connection: &str,
        settings: ConnectionSettings,
        connection_rules: &str,
        policy: ConflictPolicy,
    ) -> Env {
        let read = |name: &str| std::fs::read_to_string(rules_dir().join(name)).unwrap();
        let compiled = crmsync::lang::compile_sources(vec![
            ("fields.rules".into(), read("fields.rules")),
            ("analysis.rules".into(), read("analysis.rules")),
            ("two_way.rules".into(), connection_rules.to_string()),
        ])
        .expect("two-way rules compile");
        env_with_policy(connection, settings, compiled, policy)
    }

    /// The example rules with `edit` applied to the text of `rules/<file>`.
    pub fn example_rules_with(
        file: &str,
        edit: impl Fn(&str) -> String,
    ) -> crmsync::lang::Compiled {
        let mut files = Vec::new();
        for name in [
            "fields.rules",
            "analysis.rules",
            "salesforce.rules",
            "hubspot.rules",
        ] {
            let text = std::fs::read_to_string(rules_dir().join(name)).unwrap();
            let text = if name == file {
                let edited = edit(&text);
                assert_ne!(edited, text, "the example {name} changed: update this test");
                edited
            } else {
                text
            };
            files.push((name.to_string(), text));
        }
        crmsync::lang::compile_sources(files).expect("the edited rules compile")
    }

    pub fn env_with(
        connection: &str,
        settings: ConnectionSettings,
        compiled: crmsync::lang::Compiled,
    ) -> Env {
        env_with_policy(connection, settings, compiled, ConflictPolicy::default())
    }

    pub fn env_with_policy(
        connection: &str,
        settings: ConnectionSettings,
        compiled: crmsync::lang::Compiled,
        policy: ConflictPolicy,
    ) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store.redb")).unwrap();
        let engine = Arc::new(
            Engine::new(store, compiled, Some(connection))
                .unwrap()
                .with_conflict_policy(connection, policy)
                .unwrap(),
        );
        let plan = SyncPlan::from_rules(engine.ruleset().connection(connection).unwrap());
        let target = DispatchTarget {
            connection: connection.to_string(),
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

    impl Env {
        pub async fn sync(&self, full: bool) -> SyncReport {
            self.try_sync(full).await.unwrap()
        }

        pub async fn try_sync(&self, full: bool) -> Result<SyncReport, SyncError> {
            sync_once(
                self.connector.clone(),
                &self.engine,
                &self.plan,
                SyncOptions { full },
                Some(&self.target),
                &NoProgress,
            )
            .await
        }

        pub async fn dispatch(&self) -> DispatchReport {
            dispatch_pass(self.connector.as_ref(), self.engine.store(), &self.target)
                .await
                .unwrap()
        }

        /// Dispatch passes until nothing is pending (entries that failed are due again after
        /// a short backoff), with a deadline.
        pub async fn drain(&self) -> DispatchReport {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            let mut total = DispatchReport::default();
            loop {
                total.absorb(self.dispatch().await);
                let c = self.engine.store().outbox_counts().unwrap();
                if c.pending_writes == 0 && c.pending_activities == 0 && c.sending_activities == 0 {
                    return total;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "outbox not drained: {c:?}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }

        /// Linked contacts, in phone order.
        pub fn linked(&self) -> Vec<ContactRecord> {
            let store = self.engine.store();
            let mut out = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = store.contacts(after.as_deref(), 500).unwrap();
                if page.is_empty() {
                    return out;
                }
                after = page.last().map(|c| c.phone.clone());
                out.extend(
                    page.into_iter()
                        .filter(|c| c.links.contains_key(&self.target.connection)),
                );
            }
        }

        pub fn record_id(&self, c: &ContactRecord) -> String {
            c.links[&self.target.connection].clone()
        }

        pub fn contact(&self, phone: &str) -> ContactRecord {
            self.engine.store().contact(phone).unwrap().unwrap()
        }

        pub async fn converse(&self, id: &str, kind: &str, phone: &str, notes: &str) {
            let event: ConversationEvent = serde_json::from_value(json!({
                "id": id,
                "kind": kind,
                "direction": "outbound",
                "from_number": "+14155550000",
                "to_number": phone,
                "start_time": "2026-01-02T10:00:00Z",
                "end_time": "2026-01-02T10:02:05Z",
                "duration_ms": 125000,
                "summary": format!("Summary of {id}"),
                "successful": true,
                "disconnection_reason": "user_hangup",
                "analysis": {"customer_notes": notes}
            }))
            .unwrap();
            self.engine
                .apply_conversation(&event, &FallbackMerger)
                .await
                .unwrap();
        }

        /// A manual edit of the contact's notes (queued for the CRM).
        pub fn edit_notes(&self, phone: &str, notes: &str) {
            let mut fields = crmsync::value::Fields::new();
            fields.insert("interaction_summary".into(), Value::String(notes.into()));
            let report = self.engine.manual_set(phone, fields).unwrap();
            assert_eq!(report.changed, vec!["interaction_summary".to_string()]);
        }

        pub fn summary_of(&self, phone: &str) -> String {
            match self.contact(phone).fields.get("interaction_summary") {
                Some(Value::String(s)) => s.clone(),
                other => panic!("interaction_summary of {phone}: {other:?}"),
            }
        }
    }
}

use harness::{env, env_with, example_rules_with, tune, Crm};

/// A CRM "success" that names no record is not taken for a confirmed write: the field write
/// stays pending with the reason and is retried (dead-lettered after its attempts), and the
/// activity, which the CRM did create, is looked up before it is sent again — never doubled.
async fn success_without_id<C: Crm>(crm: &C) {
    let mut settings = crm.settings();
    settings.max_delivery_attempts = 2;
    let env = env(C::CONNECTION, settings);
    env.sync(false).await;
    let who = env.linked()[0].clone();
    let rid = env.record_id(&who);
    let store = env.engine.store();
    env.converse("conv-no-id", "call", &who.phone, "no id")
        .await;
    crm.omit_write_ids(true);
    let first = env.dispatch().await;
    assert_eq!(first.written, 0, "{first:?}");
    assert_eq!(first.activities_logged, 0, "{first:?}");
    assert!(first.dead_lettered.is_empty(), "{first:?}");
    let pending = store.pending_writes(None).unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let reason = pending[0].last_error.clone().unwrap_or_default();
    assert!(reason.contains("success without a record id"), "{reason}");
    let open = store.open_activities().unwrap();
    assert_eq!(open.len(), 1);
    assert!(
        matches!(open[0].state, crmsync::store::ActivityState::Sending { .. }),
        "{open:?}"
    );
    assert_eq!(open[0].last_error.as_deref(), Some(reason.as_str()));

    // The CRM answers properly again: the write goes, the activity is found, not resent.
    crm.omit_write_ids(false);
    let d = env.drain().await;
    assert_eq!(d.written, 1, "{d:?}");
    assert_eq!(d.activities_found, 1, "{d:?}");
    assert_eq!(d.activities_logged, 0, "{d:?}");
    let logged = crm.activities(&rid);
    assert_eq!(
        logged.iter().filter(|a| a.contains("conv-no-id")).count(),
        1,
        "{logged:?}"
    );
    assert_eq!(crm.field(&rid, C::NOTES_FIELD).as_deref(), Some("no id"));

    // An answer that never names the record: dead-lettered after its attempts, with why.
    env.converse("conv-no-id-2", "call", &who.phone, "still no id")
        .await;
    crm.omit_write_ids(true);
    let d = env.drain().await;
    assert_eq!(d.written, 0, "{d:?}");
    assert_eq!(d.dead_lettered.len(), 1, "{d:?}");
    assert_eq!(d.dead_lettered[0].kind, "field_write");
    let dead = store.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key, rid);
    assert!(
        dead[0].message.contains("success without a record id"),
        "{dead:?}"
    );
    crm.omit_write_ids(false);
}

/// Full, then incremental; a CRM edit arrives; a conversation's change is pushed once and its
/// echo does not bounce; the activity is logged once on the right record; a delete unlinks.
async fn lifecycle<C: Crm>(crm: &C, population: u64) {
    let env = env(C::CONNECTION, crm.settings());

    let full = env.sync(false).await;
    assert_eq!(full.inbound.mode, "full");
    assert_eq!(full.inbound.read as u64, population);
    // A record that takes a phone over from one read earlier in the sync is `updated` (the
    // contact exists); the one it displaced was counted `created` when it was read.
    assert_eq!(
        full.inbound.created
            + full.inbound.updated
            + full.inbound.skipped.len()
            + full.inbound.duplicates.len(),
        population as usize,
        "every record is created, or skipped/duplicate with a reason: {:?}",
        full.inbound.skipped
    );
    assert_eq!(full.inbound.accounted(), full.inbound.read);
    assert!(full.inbound.created > 0);
    assert!(full.inbound.cursor.is_some());
    let linked = env.linked();
    assert_eq!(linked.len(), full.inbound.created);

    // Nothing changed: the incremental read only re-reads the overlap window.
    let quiet = env.sync(false).await;
    assert_eq!(quiet.inbound.mode, "incremental");
    assert_eq!(quiet.inbound.created, 0);
    assert_eq!(quiet.inbound.updated, 0);

    // A CRM user renames a contact: the next incremental sync brings it in.
    let who = &linked[0];
    let rid = env.record_id(who);
    crm.rename(&rid, "Zebedee");
    let inc = env.sync(false).await;
    assert_eq!(inc.inbound.updated, 1, "{:?}", inc.inbound);
    assert_eq!(
        env.contact(&who.phone).fields.get("first_name"),
        Some(&Value::String("Zebedee".into()))
    );

    // A conversation changes the contact: one write request, the CRM has the value, and the
    // activity is logged on this record.
    env.converse(
        "conv-e2e-1",
        "call",
        &who.phone,
        "Wants the enterprise plan",
    )
    .await;
    let expected = env.summary_of(&who.phone);
    let writes_before = crm.requests(C::UPDATE_ENDPOINT);
    let d = env.dispatch().await;
    assert_eq!(d.written, 1, "{d:?}");
    assert_eq!(d.activities_logged, 1, "{d:?}");
    assert_eq!(crm.requests(C::UPDATE_ENDPOINT) - writes_before, 1);
    assert_eq!(
        crm.field(&rid, C::NOTES_FIELD).as_deref(),
        Some(expected.as_str())
    );
    let acts = crm.activities(&rid);
    assert_eq!(
        acts.iter().filter(|a| a.contains("conv-e2e-1")).count(),
        1,
        "{acts:?}"
    );

    // The write comes back on the next read: an echo, so no new write.
    let echo = env.sync(false).await;
    assert!(echo.inbound.read >= 1);
    assert_eq!(env.engine.store().pending_writes(None).unwrap(), vec![]);
    let again = env.dispatch().await;
    assert_eq!(again.write_requests, 0, "the echo bounced: {again:?}");
    assert_eq!(crm.requests(C::UPDATE_ENDPOINT) - writes_before, 1);
    assert_eq!(env.summary_of(&who.phone), expected);

    // The same conversation again changes nothing and logs nothing.
    env.converse(
        "conv-e2e-1",
        "call",
        &who.phone,
        "Wants the enterprise plan",
    )
    .await;
    let d = env.dispatch().await;
    assert_eq!((d.written, d.activities_logged), (0, 0));
    assert_eq!(
        crm.activities(&rid)
            .iter()
            .filter(|a| a.contains("conv-e2e-1"))
            .count(),
        1
    );

    // Deleting the CRM record unlinks it; the contact and its data stay.
    crm.delete(&rid);
    let del = env.sync(false).await;
    assert!(del.inbound.unlinked >= 1, "{:?}", del.inbound);
    let after = env.contact(&who.phone);
    assert!(!after.links.contains_key(C::CONNECTION));
    assert_eq!(
        after.fields.get("first_name"),
        Some(&Value::String("Zebedee".into()))
    );
}

/// With a fifth of requests throttled or failing and the token revoked mid-run, every change
/// and activity still lands exactly once and the store matches the CRM.
async fn chaos<C: Crm>(crm: &C) {
    let env = env(C::CONNECTION, crm.settings());
    crm.set_faults(0.1, 0.1);
    crm.revoke_tokens_at(crm.requests_seen() + 3);
    let full = env.sync(false).await;
    assert!(full.inbound.created > 0);
    assert!(full.api.token_refreshes >= 1, "{:?}", full.api);
    // Re-reading changes nothing, however often requests fail on the way.
    for _ in 0..3 {
        let again = env.sync(true).await;
        assert_eq!((again.inbound.created, again.inbound.updated), (0, 0));
    }

    let linked = env.linked();
    let chosen: Vec<&ContactRecord> = linked.iter().take(60).collect();
    for (i, c) in chosen.iter().enumerate() {
        env.converse(
            &format!("chaos-{i}"),
            "call",
            &c.phone,
            &format!("note {i}"),
        )
        .await;
    }
    crm.revoke_tokens_at(crm.requests_seen() + 2);
    let d = env.drain().await;
    assert_eq!(d.dead_lettered, vec![]);
    assert_eq!(d.written, chosen.len() as u64, "{d:?}");
    assert_eq!(
        d.activities_logged + d.activities_found,
        chosen.len() as u64
    );
    crm.set_faults(0.0, 0.0);

    for (i, c) in chosen.iter().enumerate() {
        let rid = env.record_id(c);
        assert_eq!(
            crm.field(&rid, C::NOTES_FIELD),
            Some(env.summary_of(&c.phone)),
            "record {rid}"
        );
        let tag = format!("chaos-{i}");
        let n = crm
            .activities(&rid)
            .iter()
            .filter(|a| a.ends_with(&tag) || a.contains(&format!("{tag}\n")))
            .count();
        assert_eq!(n, 1, "activity {tag} on {rid}");
    }
    let counts = env.engine.store().outbox_counts().unwrap();
    assert_eq!(counts.done_activities, chosen.len() as u64);
    assert_eq!(counts.dead_letters, 0);
    let m = env.connector.metrics();
    assert!(
        m.retries > 0 && m.throttled > 0,
        "faults were injected and survived: {m:?}"
    );
    assert!(m.token_refreshes >= 2, "{m:?}");
}

/// N pending changes cost ⌈N / batch⌉ write requests.
async fn batching<C: Crm>(crm: &C) {
    let env = env(C::CONNECTION, crm.settings());
    env.sync(false).await;
    let linked = env.linked();
    let n = (C::BATCH * 2 + 17).min(linked.len());
    assert!(n > C::BATCH, "population too small for the batching test");
    for (i, c) in linked.iter().take(n).enumerate() {
        let mut fields = crmsync::value::Fields::new();
        fields.insert(
            "interaction_summary".into(),
            Value::String(format!("batched {i}")),
        );
        env.engine.manual_set(&c.phone, fields).unwrap();
    }
    let before = crm.requests(C::UPDATE_ENDPOINT);
    let d = env.dispatch().await;
    assert_eq!(d.written, n as u64);
    let expected_requests = n.div_ceil(C::BATCH) as u64;
    assert_eq!(d.write_requests, expected_requests);
    assert_eq!(crm.requests(C::UPDATE_ENDPOINT) - before, expected_requests);
    let rid = env.record_id(&linked[n - 1]);
    assert_eq!(
        crm.field(&rid, C::NOTES_FIELD).as_deref(),
        Some(format!("batched {}", n - 1).as_str())
    );
}

/// A CRM user edits the notes of a record while crmsync's write of them is pending, on two
/// records: after the local change on one (the CRM wins), before it on the other (crmsync
/// wins). Each side's later value is the one both end with; both conflicts are reported and
/// recorded; reading the records again decides nothing more.
async fn conflicts_latest_wins<C: Crm>(crm: &C) {
    let env = harness::two_way_env(
        C::CONNECTION,
        crm.settings(),
        C::TWO_WAY_RULES,
        ConflictPolicy::LatestWins,
    );
    env.sync(false).await;
    let linked = env.linked();
    let (a, b) = (&linked[0], &linked[1]);
    let (ra, rb) = (env.record_id(a), env.record_id(b));

    // b: the CRM user's edit first, then the local change.
    crm.set_notes(&rb, Some("CRM edit, earlier"));
    env.edit_notes(&b.phone, "local edit, later");
    // a: the local change first, then the CRM user's edit a minute later.
    env.edit_notes(&a.phone, "local edit, earlier");
    crm.advance_clock(Duration::from_secs(60));
    crm.set_notes(&ra, Some("CRM edit, later"));

    let report = env.sync(false).await;
    let conflicts = &report.inbound.conflicts;
    assert_eq!(conflicts.len(), 2, "{conflicts:#?}");
    let of = |rid: &str| conflicts.iter().find(|c| c.record_id == rid).unwrap();
    let (ca, cb) = (of(&ra), of(&rb));
    assert_eq!(ca.winner, ConflictWinner::Crm, "{ca:#?}");
    assert_eq!(
        (ca.local_value.as_str(), ca.crm_value.as_str()),
        (Some("local edit, earlier"), Some("CRM edit, later"))
    );
    assert!(ca.crm_at.unwrap() > ca.local_at, "{ca:#?}");
    assert_eq!(cb.winner, ConflictWinner::Crmsync, "{cb:#?}");
    assert!(cb.crm_at.unwrap() < cb.local_at, "{cb:#?}");
    for c in [ca, cb] {
        assert_eq!(c.policy, ConflictPolicy::LatestWins);
        assert_eq!(c.crm_at_source, C::FIELD_TIMES);
        assert_eq!(c.crm_field, C::NOTES_FIELD);
        assert_eq!(c.fields, vec!["interaction_summary".to_string()]);
    }
    assert_eq!(
        (ca.phone.as_str(), cb.phone.as_str()),
        (a.phone.as_str(), b.phone.as_str())
    );

    // Never both sides written: each record and contact ends with the later value.
    assert_eq!(
        crm.field(&ra, C::NOTES_FIELD).as_deref(),
        Some("CRM edit, later")
    );
    assert_eq!(env.summary_of(&a.phone), "CRM edit, later");
    assert_eq!(
        crm.field(&rb, C::NOTES_FIELD).as_deref(),
        Some("local edit, later")
    );
    assert_eq!(env.summary_of(&b.phone), "local edit, later");
    assert_eq!(report.dispatch.as_ref().unwrap().written, 1);

    // Reported, and recorded in the store with the same ids.
    let text = report.render();
    assert!(
        text.contains("conflicts 2  (CRM won 1, crmsync won 1)"),
        "{text}"
    );
    assert!(text.contains(&format!("record {ra} ")), "{text}");
    let stored = env.engine.store().conflicts(None, 0, 10).unwrap();
    assert_eq!(&stored, conflicts);

    // Reading the same records again decides nothing more.
    let again = env.sync(false).await;
    assert_eq!(again.inbound.conflicts, vec![], "{:?}", again.inbound);
    assert_eq!(env.engine.store().conflict_count().unwrap(), 2);
    assert_eq!(env.summary_of(&a.phone), "CRM edit, later");
    assert_eq!(env.summary_of(&b.phone), "local edit, later");
}

/// `crm_wins` and `crmsync_wins` decide against the times: the CRM's earlier edit wins under
/// `crm_wins`, crmsync's earlier change under `crmsync_wins`.
async fn conflicts_by_policy<C: Crm>(crm: &C) {
    for policy in [ConflictPolicy::CrmWins, ConflictPolicy::CrmsyncWins] {
        let env = harness::two_way_env(C::CONNECTION, crm.settings(), C::TWO_WAY_RULES, policy);
        env.sync(false).await;
        let who = env.linked()[usize::from(policy == ConflictPolicy::CrmsyncWins)].clone();
        let rid = env.record_id(&who);
        let (winner, kept) = match policy {
            ConflictPolicy::CrmWins => {
                // The local change is the later one; the CRM wins all the same.
                crm.set_notes(&rid, Some("CRM value"));
                env.edit_notes(&who.phone, "local value");
                (ConflictWinner::Crm, "CRM value")
            }
            _ => {
                // The CRM's edit is the later one; crmsync wins all the same.
                env.edit_notes(&who.phone, "local value");
                crm.advance_clock(Duration::from_secs(60));
                crm.set_notes(&rid, Some("CRM value"));
                (ConflictWinner::Crmsync, "local value")
            }
        };
        let report = env.sync(false).await;
        let conflicts = &report.inbound.conflicts;
        assert_eq!(conflicts.len(), 1, "{policy:?}: {conflicts:#?}");
        assert_eq!((conflicts[0].winner, conflicts[0].policy), (winner, policy));
        assert_eq!(crm.field(&rid, C::NOTES_FIELD).as_deref(), Some(kept));
        assert_eq!(env.summary_of(&who.phone), kept);
        assert_eq!(env.engine.store().pending_writes(None).unwrap(), vec![]);
    }
}

/// A call from an unknown number creates a contact; later a CRM record with that phone and
/// nothing else appears. The first link keeps what the call captured and pushes the notes.
async fn first_link<C: Crm>(crm: &C) {
    let env = env(C::CONNECTION, crm.settings());
    env.sync(false).await;
    let phone = "+13125550187";
    assert!(env.engine.store().contact(phone).unwrap().is_none());
    let event: ConversationEvent = serde_json::from_value(json!({
        "id": "first-link-call",
        "kind": "call",
        "direction": "inbound",
        "from_number": phone,
        "to_number": "+14155550000",
        "start_time": "2026-01-02T10:00:00Z",
        "end_time": "2026-01-02T10:02:05Z",
        "duration_ms": 125000,
        "summary": "Asked for a demo",
        "successful": true,
        "analysis": {
            "customer_notes": "Wants a demo next week",
            "email_address": "caller@example.com",
            "lead_qualification_status": "qualified",
            "demo_requested": true
        }
    }))
    .unwrap();
    env.engine
        .apply_conversation(&event, &FallbackMerger)
        .await
        .unwrap();
    let before = env.contact(phone);
    assert!(before.links.is_empty());
    assert_eq!(
        before.fields.get("email"),
        Some(&Value::String("caller@example.com".into()))
    );

    let rid = crm.create(phone);
    let report = env.sync(false).await;
    let link = report
        .inbound
        .first_links
        .iter()
        .find(|f| f.phone == phone)
        .unwrap_or_else(|| panic!("{:#?}", report.inbound.first_links));
    assert_eq!(link.record_id, rid);
    // The record has no email and no status: the rules' `else => unqualified` of an empty
    // status is no reason to drop what the call found either.
    for field in ["email", "lead_status"] {
        assert!(link.kept.contains(&field.to_string()), "{link:?}");
    }
    assert!(
        link.pushed.contains(&C::NOTES_FIELD.to_string()),
        "{link:?}"
    );
    let text = report.render();
    assert!(text.contains("first links 1"), "{text}");

    let after = env.contact(phone);
    assert_eq!(after.links.get(C::CONNECTION), Some(&rid));
    for field in [
        "email",
        "interaction_summary",
        "demo_requested",
        "last_contacted_at",
    ] {
        assert_eq!(after.fields.get(field), before.fields.get(field), "{field}");
    }
    // The dispatch that ends the sync pushed the call's notes to the new record.
    assert_eq!(
        crm.field(&rid, C::NOTES_FIELD),
        Some(env.summary_of(phone)),
        "{:?}",
        report.dispatch
    );
    // The next read of the record is no first link, and nothing is pushed again.
    // The record was re-read (crmsync's write moved it): its still-empty values clear nothing
    // a conversation captured either.
    let again = env.sync(false).await;
    assert_eq!(again.inbound.first_links, vec![]);
    assert!(again.inbound.read >= 1, "{:?}", again.inbound);
    assert_eq!(again.dispatch.unwrap().write_requests, 0);
    let later = env.contact(phone);
    for field in [
        "email",
        "interaction_summary",
        "demo_requested",
        "last_contacted_at",
    ] {
        assert_eq!(later.fields.get(field), before.fields.get(field), "{field}");
    }
}

mod salesforce {
    use super::*;
    use crmsync::sandbox::credentials::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
    use crmsync::sandbox::salesforce::{SalesforceSandbox, SalesforceSandboxConfig};
    use crmsync::sandbox::FaultConfig;

    pub struct Sf(pub SalesforceSandbox);

    pub async fn start(contacts: u32) -> Sf {
        Sf(SalesforceSandbox::start(SalesforceSandboxConfig {
            contacts,
            seed: 11,
            page_size: 2000,
            faults: FaultConfig::default(),
            login_port: 0,
            instance_port: 0,
        })
        .await
        .unwrap())
    }

    impl Crm for Sf {
        const CONNECTION: &'static str = "salesforce";
        const NOTES_FIELD: &'static str = "Notes__c";
        const UPDATE_ENDPOINT: &'static str = "sf.collections_update";
        const BATCH: usize = 200;

        fn settings(&self) -> ConnectionSettings {
            let mut s = tune(ConnectionSettings::new(
                "salesforce",
                ConnectorKind::Salesforce,
                self.0.login_url(),
                Credentials::ClientCredentials {
                    client_id: SALESFORCE_CLIENT_ID.into(),
                    client_secret: SALESFORCE_CLIENT_SECRET.into(),
                },
            ));
            s.page_size = 200;
            s
        }
        fn rename(&self, id: &str, first_name: &str) {
            self.0
                .edit_contact(id, json!({ "FirstName": first_name }))
                .unwrap();
        }
        fn delete(&self, id: &str) {
            self.0.delete_contact(id).unwrap();
        }
        fn field(&self, id: &str, field: &str) -> Option<String> {
            self.0
                .contact(id)
                .and_then(|c| c.get(field).and_then(|v| v.as_str()).map(str::to_owned))
        }
        fn activities(&self, id: &str) -> Vec<String> {
            self.0
                .tasks_for(id)
                .iter()
                .map(|t| t["Subject"].as_str().unwrap_or_default().to_string())
                .collect()
        }
        fn requests(&self, endpoint: &str) -> u64 {
            self.0.counters().get(endpoint)
        }
        fn set_faults(&self, throttled: f64, errors: f64) {
            self.0.faults().update(|f| {
                f.throttle_fraction = throttled;
                f.server_error_fraction = errors;
            });
        }
        fn revoke_tokens_at(&self, request: u64) {
            self.0
                .faults()
                .update(|f| f.revoke_tokens_at_request = Some(request));
        }
        fn requests_seen(&self) -> u64 {
            self.0.faults().requests_seen()
        }
        fn set_notes(&self, id: &str, notes: Option<&str>) {
            self.0
                .edit_contact(id, json!({ "Notes__c": notes }))
                .unwrap();
        }
        fn create(&self, phone: &str) -> String {
            self.0
                .create_contact(json!({"LastName": "Caller", "Phone": phone}))
                .unwrap()
        }
        fn advance_clock(&self, by: Duration) {
            self.0.advance_clock(by);
        }
        // Salesforce has no per-field times: the record's SystemModstamp.
        const FIELD_TIMES: CrmTimeSource = CrmTimeSource::Record;
        const TWO_WAY_RULES: &'static str = "connection salesforce {\n  object Contact\n  inbound {\n    Phone -> phone_number\n    FirstName -> first_name\n    Notes__c -> interaction_summary\n  }\n  outbound {\n    interaction_summary -> Notes__c\n  }\n}\n";
        fn omit_write_ids(&self, on: bool) {
            self.0.faults().update(|f| f.omit_write_ids = on);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conflicts_latest_wins_both_ways() {
        let sf = start(60).await;
        super::conflicts_latest_wins(&sf).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conflicts_follow_the_configured_policy() {
        let sf = start(60).await;
        super::conflicts_by_policy(&sf).await;
    }

    /// Salesforce gives a record's time only: a user renaming the contact a minute after a
    /// local change of its notes makes the record later, but the notes did not change in the
    /// CRM, so there is no conflict and the local notes are sent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_edit_of_another_field_is_no_conflict() {
        let sf = start(60).await;
        let env = harness::two_way_env(
            "salesforce",
            sf.settings(),
            Sf::TWO_WAY_RULES,
            ConflictPolicy::LatestWins,
        );
        env.sync(false).await;
        let who = env.linked()[0].clone();
        let rid = env.record_id(&who);
        env.edit_notes(&who.phone, "local notes");
        sf.advance_clock(Duration::from_secs(60));
        sf.rename(&rid, "Renamed");
        let report = env.sync(false).await;
        assert_eq!(report.inbound.conflicts, vec![], "{:?}", report.inbound);
        assert_eq!(report.inbound.updated, 1);
        assert_eq!(sf.field(&rid, "Notes__c").as_deref(), Some("local notes"));
        let after = env.contact(&who.phone);
        assert_eq!(
            after.fields.get("first_name"),
            Some(&Value::String("Renamed".into()))
        );
        assert_eq!(env.summary_of(&who.phone), "local notes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_first_link_keeps_and_pushes_what_a_call_captured() {
        let sf = start(60).await;
        super::first_link(&sf).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_success_without_a_record_id_is_not_a_confirmed_write() {
        let sf = start(5).await;
        super::success_without_id(&sf).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lifecycle() {
        let sf = start(450).await;
        super::lifecycle(&sf, 450).await;
        // The schema is read at the start of each of the five syncs.
        assert_eq!(sf.requests("sf.describe"), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_read_costs_one_request_per_page() {
        let sf = start(1000).await;
        let env = env("salesforce", sf.settings());
        let r = env.sync(false).await;
        assert_eq!(r.inbound.read, 1000);
        assert_eq!(r.inbound.pages, 5);
        assert_eq!(sf.requests("sf.query") + sf.requests("sf.query_more"), 5);
        assert_eq!(r.api.calls("oauth_token"), 1);
        assert_eq!(r.api.calls("describe"), 1);
        assert_eq!(r.api.total_calls(), 7, "{:?}", r.api);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chaos() {
        let sf = start(300).await;
        super::chaos(&sf).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batching() {
        let sf = start(700).await;
        super::batching(&sf).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_mapping_to_a_missing_crm_field_fails_the_sync_by_name() {
        let sf = start(10).await;
        let dir = tempfile::tempdir().unwrap();
        let rules = std::fs::read_to_string(harness::rules_dir().join("fields.rules")).unwrap();
        let conn = "connection salesforce {\n  object Contact\n  inbound {\n    Phone -> phone_number\n    Emial -> email\n  }\n}\n";
        let compiled = crmsync::lang::compile_sources(vec![
            ("fields.rules".into(), rules),
            ("sf.rules".into(), conn.into()),
        ])
        .unwrap();
        let store = Store::open(dir.path().join("s.redb")).unwrap();
        let engine = Arc::new(Engine::new(store, compiled, None).unwrap());
        let plan = SyncPlan::from_rules(engine.ruleset().connection("salesforce").unwrap());
        let connector = Arc::new(AnyConnector::new(sf.settings()).unwrap());
        let err = sync_once(
            connector,
            &engine,
            &plan,
            SyncOptions::default(),
            None,
            &NoProgress,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection `salesforce`: the inbound rules name CRM field `Emial`, which Contact does not have (did you mean `Email`?)"
        );
        assert_eq!(
            sf.requests("sf.query"),
            0,
            "nothing is read before the schema check"
        );
    }

    /// A create whose response never arrives (held past the client timeout after the server
    /// processed it) is looked up before it is sent again: one Task, not two.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_activity_with_unknown_outcome_is_found_not_duplicated() {
        let sf = start(20).await;
        let mut settings = sf.settings();
        settings.timeout = Duration::from_millis(500);
        let env = env("salesforce", settings);
        env.sync(false).await;
        let who = env.linked()[0].clone();
        let rid = env.record_id(&who);
        env.converse("conv-held", "call", &who.phone, "held").await;
        // Push the field write first so that the next request is the Task create.
        let first = env.dispatch().await;
        assert_eq!(first.written, 1);
        assert_eq!(first.activities_logged, 1);
        // Second conversation: its create is held after processing.
        env.converse("conv-held-2", "call", &who.phone, "held again")
            .await;
        let pending_writes = env.engine.store().pending_writes(None).unwrap().len() as u64;
        let create_at = sf.requests_seen() + 1 + pending_writes;
        sf.0.faults().update(|f| {
            f.hold_requests
                .insert(create_at, crmsync::sandbox::HoldWhen::AfterProcessing);
            f.hold_duration = Duration::from_secs(3);
        });
        let d = env.drain().await;
        assert_eq!(d.activities_found, 1, "{d:?}");
        assert_eq!(d.activities_logged, 0, "{d:?}");
        let tasks = sf.activities(&rid);
        assert_eq!(
            tasks.iter().filter(|s| *s == "Call conv-held-2").count(),
            1,
            "{tasks:?}"
        );
        assert!(sf.requests("sf.query") >= 2, "the Task was looked up");
    }
}

mod hubspot {
    use super::*;
    use crmsync::sandbox::hubspot::{HubSpotSandbox, HubSpotSandboxConfig};

    pub struct Hs(pub HubSpotSandbox);

    pub async fn start(contacts: u32) -> Hs {
        Hs(HubSpotSandbox::start(HubSpotSandboxConfig {
            contacts,
            seed: 5,
            ..HubSpotSandboxConfig::default()
        })
        .await
        .unwrap())
    }

    fn id(record_id: &str) -> u64 {
        record_id.parse().unwrap()
    }

    impl Crm for Hs {
        const CONNECTION: &'static str = "hubspot";
        const NOTES_FIELD: &'static str = "notes";
        const UPDATE_ENDPOINT: &'static str = "hs.contacts.batch_update";
        const BATCH: usize = 100;

        fn settings(&self) -> ConnectionSettings {
            tune(ConnectionSettings::new(
                "hubspot",
                ConnectorKind::Hubspot,
                self.0.base_url(),
                Credentials::Bearer(self.0.token().to_string()),
            ))
        }
        fn rename(&self, rid: &str, first_name: &str) {
            self.0
                .edit_contact(id(rid), &[("firstname", first_name)])
                .unwrap();
        }
        fn delete(&self, rid: &str) {
            self.0.archive_contact(id(rid)).unwrap();
        }
        fn field(&self, rid: &str, field: &str) -> Option<String> {
            self.0.contact_property(id(rid), field)
        }
        fn activities(&self, rid: &str) -> Vec<String> {
            let calls = self.0.calls().into_iter().map(|a| (a, "hs_call_title"));
            let chats = self
                .0
                .communications()
                .into_iter()
                .map(|a| (a, "hs_communication_body"));
            calls
                .chain(chats)
                .filter(|(a, _)| a.contact_ids.contains(&id(rid)) && !a.archived)
                .map(|(a, p)| a.properties.get(p).cloned().unwrap_or_default())
                .collect()
        }
        fn requests(&self, endpoint: &str) -> u64 {
            self.0.counters().get(endpoint)
        }
        fn set_faults(&self, throttled: f64, errors: f64) {
            self.0.faults().update(|f| {
                f.throttle_fraction = throttled;
                f.server_error_fraction = errors;
            });
        }
        fn revoke_tokens_at(&self, request: u64) {
            self.0
                .faults()
                .update(|f| f.revoke_tokens_at_request = Some(request));
        }
        fn requests_seen(&self) -> u64 {
            self.0.faults().requests_seen()
        }
        fn set_notes(&self, rid: &str, notes: Option<&str>) {
            // HubSpot's UI clears a property to "".
            self.0
                .edit_contact(id(rid), &[("notes", notes.unwrap_or(""))])
                .unwrap();
        }
        fn create(&self, phone: &str) -> String {
            self.0
                .create_contact(&[("phone", phone), ("lastname", "Caller")])
                .unwrap()
                .to_string()
        }
        fn advance_clock(&self, by: Duration) {
            self.0.advance_clock(by);
        }
        // Read through `propertiesWithHistory` for records with a pending write.
        const FIELD_TIMES: CrmTimeSource = CrmTimeSource::Property;
        const TWO_WAY_RULES: &'static str = "connection hubspot {\n  inbound {\n    phone -> phone_number\n    firstname -> first_name\n    notes -> interaction_summary\n  }\n  outbound {\n    interaction_summary -> notes\n  }\n}\n";
        fn omit_write_ids(&self, on: bool) {
            self.0.faults().update(|f| f.omit_write_ids = on);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conflicts_latest_wins_both_ways() {
        let hs = start(60).await;
        super::conflicts_latest_wins(&hs).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conflicts_follow_the_configured_policy() {
        let hs = start(60).await;
        super::conflicts_by_policy(&hs).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_first_link_keeps_and_pushes_what_a_call_captured() {
        let hs = start(60).await;
        super::first_link(&hs).await;
    }

    /// The notes were edited in HubSpot before the local change, another property of the
    /// record a minute after it: the record's `updatedAt` is later than the local change, the
    /// notes' own timestamp is not, and the notes' timestamp decides.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_conflict_is_timed_by_the_property_not_the_record() {
        let hs = start(60).await;
        let env = harness::two_way_env(
            "hubspot",
            hs.settings(),
            Hs::TWO_WAY_RULES,
            ConflictPolicy::LatestWins,
        );
        env.sync(false).await;
        let who = env.linked()[0].clone();
        let rid = env.record_id(&who);
        hs.set_notes(&rid, Some("CRM notes, earlier"));
        env.edit_notes(&who.phone, "local notes, later");
        hs.advance_clock(Duration::from_secs(60));
        hs.rename(&rid, "Renamed");
        let report = env.sync(false).await;
        let conflicts = &report.inbound.conflicts;
        assert_eq!(conflicts.len(), 1, "{conflicts:#?}");
        let c = &conflicts[0];
        assert_eq!(c.crm_at_source, CrmTimeSource::Property);
        assert!(c.crm_at.unwrap() < c.local_at, "{c:#?}");
        assert_eq!(c.winner, ConflictWinner::Crmsync);
        assert!(
            hs.requests("hs.contacts.batch_read") >= 1,
            "the history was read"
        );
        assert_eq!(
            hs.field(&rid, "notes").as_deref(),
            Some("local notes, later")
        );
        assert_eq!(
            env.contact(&who.phone).fields.get("first_name"),
            Some(&Value::String("Renamed".into()))
        );
    }

    /// A HubSpot user clears the notes (to "", as HubSpot's UI does) a minute after a local
    /// change that is still pending: the CRM's later, empty value wins and the contact's notes
    /// are cleared, not pushed back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_later_clear_in_the_crm_wins_over_a_pending_write() {
        let hs = start(60).await;
        let env = harness::two_way_env(
            "hubspot",
            hs.settings(),
            Hs::TWO_WAY_RULES,
            ConflictPolicy::LatestWins,
        );
        env.sync(false).await;
        let who = env.linked()[0].clone();
        let rid = env.record_id(&who);
        hs.set_notes(&rid, Some("to be cleared"));
        env.sync(false).await;
        env.edit_notes(&who.phone, "local notes");
        hs.advance_clock(Duration::from_secs(60));
        hs.set_notes(&rid, None);
        assert_eq!(hs.field(&rid, "notes").as_deref(), Some(""));
        let report = env.sync(false).await;
        let c = &report.inbound.conflicts[0];
        assert_eq!(
            (c.winner, c.crm_value.as_str()),
            (ConflictWinner::Crm, Some(""))
        );
        assert_eq!(hs.field(&rid, "notes").as_deref(), Some(""));
        assert_ne!(env.summary_of(&who.phone), "local notes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_success_without_a_record_id_is_not_a_confirmed_write() {
        let hs = start(5).await;
        super::success_without_id(&hs).await;
    }

    /// HubSpot answers `""` for a property that was set and then cleared: `mobilephone ?? phone`
    /// must fall back to `phone` as if `mobilephone` had never been set, and a `phone_number`
    /// mapping also falls back past text that is no phone number.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cleared_mobilephone_falls_back_to_phone() {
        let hs = start(0).await;
        let cleared =
            hs.0.create_contact(&[
                ("mobilephone", "+1 415 555 0199"),
                ("phone", "+1 (415) 555-0132"),
                ("firstname", "Ada"),
            ])
            .unwrap();
        hs.0.edit_contact(cleared, &[("mobilephone", "")]).unwrap();
        assert_eq!(
            hs.field(&cleared.to_string(), "mobilephone").as_deref(),
            Some(""),
            "the sandbox answers a cleared property as HubSpot does"
        );
        let not_a_number =
            hs.0.create_contact(&[
                ("mobilephone", "n/a"),
                ("phone", "+1 (415) 555-0133"),
                ("firstname", "Grace"),
            ])
            .unwrap();
        let rules = example_rules_with("hubspot.rules", |text| {
            text.replace(
                "phone          -> phone_number",
                "mobilephone ?? phone -> phone_number",
            )
        });
        let env = env_with("hubspot", hs.settings(), rules);
        let report = env.sync(true).await;
        assert!(
            report.inbound.skipped.is_empty(),
            "{:?}",
            report.inbound.skipped
        );
        assert_eq!(report.inbound.created, 2, "{report:?}");
        let ada = env.contact("+14155550132");
        assert_eq!(env.record_id(&ada), cleared.to_string());
        assert_eq!(
            ada.fields.get("first_name"),
            Some(&Value::String("Ada".into()))
        );
        let grace = env.contact("+14155550133");
        assert_eq!(env.record_id(&grace), not_a_number.to_string());
        assert_eq!(env.linked().len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lifecycle() {
        let hs = start(450).await;
        super::lifecycle(&hs, 450).await;
        assert_eq!(hs.requests("hs.properties.contacts"), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_read_costs_one_request_per_page() {
        let hs = start(1000).await;
        let env = env("hubspot", hs.settings());
        let r = env.sync(false).await;
        assert_eq!(r.inbound.read, 1000);
        assert_eq!(r.inbound.pages, 10);
        assert_eq!(hs.requests("hs.contacts.list"), 10);
        assert_eq!(r.api.calls("contacts_properties"), 1);
        assert_eq!(r.api.total_calls(), 11, "{:?}", r.api);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chaos() {
        let hs = start(300).await;
        super::chaos(&hs).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batching() {
        let hs = start(400).await;
        super::batching(&hs).await;
    }

    /// More than 10,000 changed records: the search restarts from the newest timestamp read
    /// instead of paging past the cap (which HubSpot refuses with a 400).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn incremental_past_the_search_cap() {
        let hs = start(11_200).await;
        let env = env("hubspot", hs.settings());
        env.sync(false).await;
        let linked = env.linked();
        let n = linked.len().min(10_300);
        assert!(n > 10_100, "only {n} linked contacts");
        for (i, c) in linked.iter().take(n).enumerate() {
            hs.rename(&env.record_id(c), &format!("Renamed{i}"));
        }
        let r = env.sync(false).await;
        assert_eq!(r.inbound.mode, "incremental");
        assert_eq!(r.inbound.updated, n, "{:?}", r.api);
        assert!(
            r.api.calls("contacts_search") > 51,
            "a second query started: {:?}",
            r.api
        );
        assert_eq!(hs.0.counters().get_status("hs.contacts.search", 400), 0);
        let last = &linked[n - 1];
        assert_eq!(
            env.contact(&last.phone).fields.get("first_name"),
            Some(&Value::String(format!("Renamed{}", n - 1)))
        );
    }

    /// OAuth (public app): access tokens from the refresh token, renewed when they expire
    /// mid-sync (401 `EXPIRED_AUTHENTICATION`) and when revoked; the sync and dispatch finish.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oauth_tokens_are_renewed_when_they_expire() {
        use crmsync::sandbox::credentials::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
        use crmsync::sandbox::hubspot::auth::HUBSPOT_REFRESH_TOKEN;
        let hs = start(600).await;
        hs.0.faults()
            .update(|f| f.token_lifetime = Some(Duration::from_millis(150)));
        let mut settings = hs.settings();
        settings.credentials = Credentials::RefreshToken {
            client_id: SALESFORCE_CLIENT_ID.into(),
            client_secret: SALESFORCE_CLIENT_SECRET.into(),
            refresh_token: HUBSPOT_REFRESH_TOKEN.into(),
        };
        // Slow the client so the short-lived tokens expire during the read.
        settings.rate_limit = RateLimitConfig {
            requests_per_second: 40.0,
            burst: 1,
        };
        let env = env("hubspot", settings);
        let r = env.sync(false).await;
        assert_eq!(r.inbound.read, 600);
        assert!(hs.requests("hs.oauth.token") >= 2, "tokens were renewed");
        let who = env.linked()[0].clone();
        env.converse("oauth-1", "call", &who.phone, "renewed").await;
        hs.revoke_tokens_at(hs.requests_seen() + 1);
        let d = env.drain().await;
        assert_eq!((d.written, d.activities_logged), (1, 1), "{d:?}");
        assert!(env.connector.metrics().token_refreshes >= 2);
    }

    /// A call create whose response never arrives (held after processing, past the client
    /// timeout) is found through the contact's associations: one call, not two.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_activity_with_unknown_outcome_is_found_not_duplicated() {
        let hs = start(20).await;
        let mut settings = hs.settings();
        settings.timeout = Duration::from_millis(500);
        let env = env("hubspot", settings);
        env.sync(false).await;
        let who = env.linked()[0].clone();
        let rid = env.record_id(&who);
        env.converse("hs-held", "call", &who.phone, "first").await;
        let first = env.dispatch().await;
        assert_eq!((first.written, first.activities_logged), (1, 1));
        env.converse("hs-held-2", "call", &who.phone, "second")
            .await;
        let pending_writes = env.engine.store().pending_writes(None).unwrap().len() as u64;
        let create_at = hs.requests_seen() + 1 + pending_writes;
        hs.0.faults().update(|f| {
            f.hold_requests
                .insert(create_at, crmsync::sandbox::HoldWhen::AfterProcessing);
            f.hold_duration = Duration::from_secs(3);
        });
        let d = env.drain().await;
        assert_eq!((d.activities_found, d.activities_logged), (1, 0), "{d:?}");
        let calls = hs.activities(&rid);
        assert_eq!(
            calls.iter().filter(|t| *t == "Call hs-held-2").count(),
            1,
            "{calls:?}"
        );
        assert!(hs.requests("hs.associations.read") >= 1, "looked up");
    }

    /// Merging a contact away in HubSpot unlinks the loser's record.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_merged_away_contact_is_unlinked() {
        let hs = start(50).await;
        let env = env("hubspot", hs.settings());
        env.sync(false).await;
        let linked = env.linked();
        let (primary, loser) = (env.record_id(&linked[0]), env.record_id(&linked[1]));
        hs.0.merge_contacts(id(&primary), id(&loser)).unwrap();
        let r = env.sync(false).await;
        assert!(r.inbound.unlinked >= 1, "{:?}", r.inbound);
        assert!(!env.contact(&linked[1].phone).links.contains_key("hubspot"));
        assert_eq!(env.contact(&linked[0].phone).links["hubspot"], primary);
    }
}

/// `crmsync sync` as a process, configured by a YAML file, against an in-process sandbox.
mod cli {
    use std::process::Command;

    use super::*;

    fn config(dir: &Path, login_url: &str) -> std::path::PathBuf {
        config_with(dir, login_url, "")
    }

    /// The config with `extra` lines added to the `salesforce` connection.
    fn config_with(dir: &Path, login_url: &str, extra: &str) -> std::path::PathBuf {
        let path = dir.join("crmsync.yaml");
        let text = format!(
            "store: store.redb\nrules: {}\nactive_connection: salesforce\nconnections:\n  salesforce:\n    login_url: {login_url}\n    client_id: sandbox-client\n    client_secret_env: CRMSYNC_E2E_SF_SECRET\n    page_size: 200\n{extra}",
            harness::rules_dir().display()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn crmsync(args: Vec<String>, secret: Option<&'static str>) -> std::process::Output {
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_crmsync"));
            cmd.args(&args).env_remove("CRMSYNC_E2E_SF_SECRET");
            if let Some(s) = secret {
                cmd.env("CRMSYNC_E2E_SF_SECRET", s);
            }
            cmd.output().unwrap()
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sync_command_full_then_incremental_with_a_json_report() {
        let sf = salesforce::start(300).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &sf.0.login_url());
        let args = vec![
            "--config".to_string(),
            cfg.display().to_string(),
            "--json".into(),
            "sync".into(),
        ];
        let out = crmsync(args.clone(), Some("sandbox-secret")).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "no progress bar when not a terminal");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["inbound"]["mode"], "full");
        assert_eq!(report["inbound"]["read"], 300);
        assert_eq!(report["api"]["calls_by_endpoint"]["query"], 1);
        assert_eq!(report["api"]["calls_by_endpoint"]["query_more"], 1);
        assert_eq!(report["dispatch"]["write_requests"], 0);

        let out = crmsync(args, Some("sandbox-secret")).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["inbound"]["mode"], "incremental");
        assert_eq!(report["inbound"]["created"], 0);

        // The human summary.
        let out = crmsync(
            vec![
                "--config".into(),
                cfg.display().to_string(),
                "sync".into(),
                "--full".into(),
            ],
            Some("sandbox-secret"),
        )
        .await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("full sync of `salesforce` (salesforce)"),
            "{text}"
        );
        assert!(text.contains("read 300"), "{text}");
    }

    /// `conflicts: crmsync_wins` in the config decides a conflict for crmsync although the
    /// Salesforce edit is later; `crmsync sync`, `crmsync conflicts` and `crmsync outbox` show
    /// it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_configured_policy_decides_and_the_commands_show_the_conflict() {
        let sf = salesforce::start(40).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config_with(
            dir.path(),
            &sf.0.login_url(),
            "    conflicts: crmsync_wins\n",
        );
        let run = |args: &[&str]| {
            let mut all = vec!["--config".to_string(), cfg.display().to_string()];
            all.extend(args.iter().map(|a| a.to_string()));
            crmsync(all, Some("sandbox-secret"))
        };
        let out = run(&["sync"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(&["--json", "contact", "list"]).await;
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let who = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["links"]["salesforce"].is_string())
            .unwrap()
            .clone();
        let (phone, rid) = (
            who["phone_number"].as_str().unwrap().to_string(),
            who["links"]["salesforce"].as_str().unwrap().to_string(),
        );
        let out = run(&["contact", "set", &phone, "lead_status=working"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        sf.0.advance_clock(Duration::from_secs(60));
        sf.0.edit_contact(&rid, json!({"Lead_Status__c": "Closed - Converted"}))
            .unwrap();

        let out = run(&["sync"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("conflicts 1  (CRM won 0, crmsync won 1)"),
            "{text}"
        );
        // crmsync's value was sent although the CRM's edit was later.
        assert_eq!(
            sf.field(&rid, "Lead_Status__c").as_deref(),
            Some("Working - Contacted")
        );

        let out = run(&["--json", "conflicts"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(listed["total"], 1);
        let c = &listed["conflicts"][0];
        assert_eq!(
            (&c["winner"], &c["policy"], &c["phone"]),
            (&json!("crmsync"), &json!("crmsync_wins"), &json!(phone))
        );
        let out = run(&["conflicts"]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("conflicts: 1\n  #1 salesforce record "),
            "{text}"
        );
        assert!(text.contains("crmsync wins (crmsync_wins)"), "{text}");
        let out = run(&["outbox"]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("conflicts decided: 1"), "{text}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_secret_names_the_variable_and_exits_1() {
        let sf = salesforce::start(10).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &sf.0.login_url());
        let out = crmsync(
            vec!["--config".into(), cfg.display().to_string(), "sync".into()],
            None,
        )
        .await;
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("CRMSYNC_E2E_SF_SECRET") && err.contains("salesforce"),
            "{err}"
        );
        assert_eq!(sf.requests("sf.query"), 0);
    }
}
