//! A sync's counts add up: every record read is counted exactly once, as created, updated,
//! unchanged, skipped, a duplicate or archived. Real HubSpot connector against the sandbox,
//! with every kind of record in one sync: new, edited, untouched, without a phone, with an id
//! of the wrong shape, sharing a phone (within a page and across pages, older and newer than
//! the record holding it), merged away and archived.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crmsync::connector::config::{RateLimitConfig, RetrySettings};
use crmsync::connector::report::InboundReport;
use crmsync::connector::sync::{sync_once, NoProgress, SyncOptions, SyncPlan};
use crmsync::connector::{AnyConnector, ConnectionSettings, ConnectorKind, Credentials};
use crmsync::engine::Engine;
use crmsync::sandbox::hubspot::{HubSpotSandbox, HubSpotSandboxConfig};
use crmsync::store::Store;
use serde_json::json;

fn assert_adds_up(i: &InboundReport, what: &str) {
    let counted =
        i.created + i.updated + i.unchanged + i.skipped.len() + i.duplicates.len() + i.archived;
    assert_eq!(i.accounted(), counted);
    assert_eq!(
        counted, i.read,
        "{what}: created {} + updated {} + unchanged {} + skipped {} + duplicates {} + archived {} != read {}\n{i:#?}",
        i.created, i.updated, i.unchanged, i.skipped.len(), i.duplicates.len(), i.archived, i.read
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_sync_counts_add_up_with_every_kind_of_record() {
    let hs = HubSpotSandbox::start(HubSpotSandboxConfig {
        contacts: 300,
        seed: 5,
        ..HubSpotSandboxConfig::default()
    })
    .await
    .unwrap();
    let mut settings = ConnectionSettings::new(
        "hubspot",
        ConnectorKind::Hubspot,
        hs.base_url(),
        Credentials::Bearer(hs.token().to_string()),
    );
    settings.rate_limit = RateLimitConfig {
        requests_per_second: 100_000.0,
        burst: 10_000,
    };
    settings.retry = RetrySettings {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let compiled = crmsync::lang::compile_dir(&rules).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store.redb")).unwrap();
    let engine = Arc::new(Engine::new(store, compiled, Some("hubspot")).unwrap());
    let plan = SyncPlan::from_rules(engine.ruleset().connection("hubspot").unwrap());
    let connector = Arc::new(AnyConnector::new(settings).unwrap());
    let sync = |full: bool| {
        let (connector, engine, plan) = (connector.clone(), engine.clone(), plan.clone());
        async move {
            sync_once(
                connector,
                &engine,
                &plan,
                SyncOptions { full },
                None,
                &NoProgress,
            )
            .await
            .unwrap()
            .inbound
        }
    };
    let id = |index: u32| HubSpotSandbox::contact_id(index);
    let phone_of = |rid: u64| hs.contact_property(rid, "phone").unwrap_or_default();
    // An id of the wrong shape, answered for one seeded record.
    hs.tamper().update(|t| {
        t.record_ids.insert(id(17).to_string(), json!("17x"));
    });

    // A first, full sync: new records, records without a usable phone, duplicates.
    let first = sync(true).await;
    assert_eq!(first.read, 300);
    assert!(first.created > 0 && !first.skipped.is_empty() && !first.duplicates.is_empty());
    assert_adds_up(&first, "first full sync");

    // The CRM changes: edits, a new contact, contacts sharing a phone with a record read in
    // the first page (one newer than it, one on a fresh phone), a merge and an archive.
    for index in [2, 150, 290] {
        hs.edit_contact(id(index), &[("firstname", "Edited")])
            .unwrap();
    }
    hs.create_contact(&[("firstname", "New"), ("phone", "+1 415 555 0199")])
        .unwrap();
    let shared = phone_of(id(5));
    hs.create_contact(&[("firstname", "Twin"), ("phone", shared.as_str())])
        .unwrap();
    hs.merge_contacts(id(20), id(21)).unwrap();
    hs.archive_contact(id(30)).unwrap();

    for (what, full) in [("second full sync", true), ("incremental sync", false)] {
        let report = sync(full).await;
        assert!(report.read > 0, "{what}");
        assert_adds_up(&report, what);
    }
}
