//! The store and the engine against a real redb file in a tempdir and real compiled rules.

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value as Json};

use crmsync::engine::retell::RetellEvent;
use crmsync::engine::{ConversationOutcome, Engine, EngineError, ImportReport};
use crmsync::event::ConversationEvent;
use crmsync::lang::Compiled;
use crmsync::merge::FallbackMerger;
use crmsync::store::{
    ActivityIntent, ActivityPayload, ActivityState, ConversationKind, Source, Store, StoreError,
    SyncCursor,
};
use crmsync::value::{Fields, Value};

/// The example rule set from `rules/` (the example of `docs/rule-language.md`, split into files).
const RULES: &str = concat!(
    include_str!("../rules/fields.rules"),
    "\n",
    include_str!("../rules/analysis.rules"),
    "\n",
    include_str!("../rules/salesforce.rules"),
    "\n",
    include_str!("../rules/hubspot.rules"),
);

fn compile(source: &str) -> Compiled {
    crmsync::lang::compile_sources(vec![("test.rules".to_string(), source.to_string())])
        .unwrap_or_else(|d| panic!("the test rules compile:\n{}", d.render(false)))
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    engine: Engine,
}

fn fixture(active: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = Store::open(&path).unwrap();
    let engine = Engine::new(store, compile(RULES), active).unwrap();
    Fixture {
        _dir: dir,
        path,
        engine,
    }
}

fn sf(id: &str, phone: Json, stamp: &str, extra: Json) -> Json {
    let mut record = json!({
        "attributes": {"type": "Contact"},
        "Id": id,
        "Phone": phone,
        "FirstName": "Ada",
        "LastName": "Lovelace",
        "Email": " Ada@Example.COM ",
        "DoNotCall": false,
        "Lead_Status__c": "Open - Not Contacted",
        "AnnualRevenue": 1000,
        "SystemModstamp": stamp,
    });
    if let (Some(r), Some(e)) = (record.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            r.insert(k.clone(), v.clone());
        }
    }
    record
}

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

fn en(text: &str) -> Value {
    Value::Enum(text.to_string())
}

fn event(value: Json) -> ConversationEvent {
    serde_json::from_value(value).unwrap()
}

fn call(id: &str, direction: &str, from: &str, to: &str, analysis: Json) -> ConversationEvent {
    event(json!({
        "id": id, "kind": "call", "direction": direction,
        "from_number": from, "to_number": to,
        "start_time": "2026-11-21T10:00:00Z", "end_time": "2026-11-21T10:03:00Z",
        "duration_ms": 180000, "summary": "A short call.", "successful": true,
        "disconnection_reason": "user_hangup", "analysis": analysis
    }))
}

fn apply(engine: &Engine, event: &ConversationEvent) -> crmsync::engine::ConversationReport {
    engine
        .apply_conversation_blocking(event, &FallbackMerger)
        .unwrap()
}

const ADA: &str = "+14155550101";
const GRACE: &str = "+14155550102";

mod store {
    use super::*;

    #[test]
    fn reopens_with_data_and_names_the_path_of_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store = Store::open(&path).unwrap();
            store
                .write(|tx| {
                    let mut c = crmsync::store::ContactRecord::new(ADA, Utc::now());
                    c.set_field("first_name", s("Ada"), Source::Manual, Utc::now());
                    tx.put_contact(&c)
                })
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.contact(ADA).unwrap().unwrap().fields["first_name"],
            s("Ada")
        );
        // A second open of a held file is refused with the path in the message.
        let err = Store::open(&path).err().expect("second open fails");
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("s.redb"), "{err}");

        let junk = dir.path().join("junk.redb");
        std::fs::write(
            &junk,
            b"this is not a redb file, just some text....................",
        )
        .unwrap();
        let err = Store::open(&junk).err().expect("junk is refused");
        assert!(err.to_string().contains("junk.redb"), "{err}");
    }

    #[test]
    fn a_failed_transaction_leaves_nothing_behind() {
        let f = fixture(Some("salesforce"));
        let store = f.engine.store();
        let result: Result<(), StoreError> = store.write(|tx| {
            tx.put_contact(&crmsync::store::ContactRecord::new(ADA, Utc::now()))?;
            tx.enqueue_write(
                "salesforce",
                "003A00000000000AAA",
                ADA,
                BTreeMap::from([("X".into(), json!(1))]),
                Utc::now(),
            )?;
            Err(StoreError::NoContact("abort".into()))
        });
        assert!(result.is_err());
        assert!(store.contact(ADA).unwrap().is_none());
        assert!(store.pending_writes(None).unwrap().is_empty());
    }

    #[test]
    fn cursors_only_move_forward() {
        let f = fixture(Some("salesforce"));
        let store = f.engine.store();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let c1 = SyncCursor {
            modstamp: t0,
            last_id: "003B00000000000AAA".into(),
        };
        let c0 = SyncCursor {
            modstamp: t0,
            last_id: "003A00000000000AAA".into(),
        };
        let c2 = SyncCursor {
            modstamp: t0 + Duration::seconds(1),
            last_id: "001".into(),
        };
        assert!(store.advance_cursor("salesforce", &c1).unwrap());
        assert!(!store.advance_cursor("salesforce", &c0).unwrap());
        assert!(!store.advance_cursor("salesforce", &c1).unwrap());
        assert_eq!(store.cursor("salesforce").unwrap(), Some(c1));
        assert!(store.advance_cursor("salesforce", &c2).unwrap());
        assert_eq!(store.cursor("salesforce").unwrap(), Some(c2));
        store.reset_cursor("salesforce").unwrap();
        assert_eq!(store.cursor("salesforce").unwrap(), None);
        assert_eq!(store.cursor("hubspot").unwrap(), None);
    }

    #[test]
    fn pending_writes_coalesce_and_the_dispatcher_drains_them() {
        let f = fixture(Some("salesforce"));
        let store = f.engine.store();
        let now = Utc::now();
        // A linked contact, so `last_pushed` has somewhere to go.
        f.engine
            .import_page(
                "salesforce",
                &[sf(
                    "003A00000000000AAA",
                    json!(ADA),
                    "2026-11-20T10:00:00Z",
                    json!({}),
                )],
                None,
            )
            .unwrap();
        store
            .write(|tx| {
                tx.enqueue_write(
                    "salesforce",
                    "003A00000000000AAA",
                    ADA,
                    BTreeMap::from([("A".into(), json!(1)), ("B".into(), json!("x"))]),
                    now,
                )?;
                tx.enqueue_write(
                    "salesforce",
                    "003A00000000000AAA",
                    ADA,
                    BTreeMap::from([("A".into(), json!(2))]),
                    now,
                )
            })
            .unwrap();
        let due = store.due_writes("salesforce", now, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(
            due[0].fields,
            BTreeMap::from([("A".into(), json!(2)), ("B".into(), json!("x"))])
        );
        assert!(store.due_writes("hubspot", now, 10).unwrap().is_empty());

        // A newer value arrives while A=2,B=x is in flight: only what was sent is removed.
        let sent = due[0].fields.clone();
        store
            .write(|tx| {
                tx.enqueue_write(
                    "salesforce",
                    "003A00000000000AAA",
                    ADA,
                    BTreeMap::from([("A".into(), json!(3))]),
                    now,
                )
            })
            .unwrap();
        store
            .mark_write_sent("salesforce", &[("003A00000000000AAA".into(), sent)], now)
            .unwrap();
        let left = store.pending_writes(Some("salesforce")).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].fields, BTreeMap::from([("A".into(), json!(3))]));
        let contact = store.contact(ADA).unwrap().unwrap();
        assert_eq!(contact.last_pushed["salesforce"]["A"], json!(2));
        assert_eq!(contact.last_pushed["salesforce"]["B"], json!("x"));

        // Failure → not due until the retry time; then dead-lettered with the CRM's message.
        let later = now + Duration::seconds(30);
        store
            .mark_write_failed("salesforce", "003A00000000000AAA", "HTTP 503", later)
            .unwrap();
        assert!(store.due_writes("salesforce", now, 10).unwrap().is_empty());
        let due = store.due_writes("salesforce", later, 10).unwrap();
        assert_eq!(due[0].attempts, 1);
        assert_eq!(due[0].last_error.as_deref(), Some("HTTP 503"));
        store
            .dead_letter_write(
                "salesforce",
                "003A00000000000AAA",
                "INVALID_FIELD: A",
                later,
            )
            .unwrap();
        assert!(store.pending_writes(None).unwrap().is_empty());
        let dead = store.dead_letters().unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].key, "003A00000000000AAA");
        assert_eq!(dead[0].message, "INVALID_FIELD: A");
        assert_eq!(dead[0].payload, json!({"A": 3}));
        assert_eq!(store.outbox_counts().unwrap().dead_letters, 1);
    }

    #[test]
    fn activities_are_never_duplicated_and_track_unknown_outcomes() {
        let f = fixture(Some("salesforce"));
        let engine = &f.engine;
        let store = engine.store();
        engine
            .import_page(
                "salesforce",
                &[sf(
                    "003A00000000000AAA",
                    json!(ADA),
                    "2026-11-20T10:00:00Z",
                    json!({}),
                )],
                None,
            )
            .unwrap();
        let ev = call("call_1", "inbound", ADA, "+18885550100", json!({}));
        apply(engine, &ev);
        apply(engine, &ev);
        let now = Utc::now() + Duration::seconds(1);
        let due = store.due_activities("salesforce", now, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].record_id, "003A00000000000AAA");
        assert_eq!(due[0].payload.duration_ms, Some(180000));
        assert_eq!(due[0].payload.direction, "inbound");
        assert_eq!(due[0].state, ActivityState::Pending);

        store
            .mark_activity_sending("salesforce", &["call_1".to_string()])
            .unwrap();
        let counts = store.outbox_counts().unwrap();
        assert_eq!(
            (counts.pending_activities, counts.sending_activities),
            (0, 1)
        );
        // A crash now: the intent is still due, in state Sending (look up before resending).
        let due = store.due_activities("salesforce", now, 10).unwrap();
        assert_eq!(due[0].state, ActivityState::Sending { attempt: 1 });

        store
            .mark_activity_unknown(
                "salesforce",
                "call_1",
                "timeout",
                now + Duration::seconds(5),
            )
            .unwrap();
        assert!(store
            .due_activities("salesforce", now, 10)
            .unwrap()
            .is_empty());
        let due = store
            .due_activities("salesforce", now + Duration::seconds(5), 10)
            .unwrap();
        assert_eq!(due[0].state, ActivityState::Sending { attempt: 1 });

        store
            .mark_activity_failed("salesforce", "call_1", "HTTP 429", now)
            .unwrap();
        assert_eq!(
            store.due_activities("salesforce", now, 10).unwrap()[0].state,
            ActivityState::Pending
        );

        store
            .mark_activity_done("salesforce", "call_1", "00TXX0000001")
            .unwrap();
        assert!(store
            .due_activities("salesforce", now, 10)
            .unwrap()
            .is_empty());
        let counts = store.outbox_counts().unwrap();
        assert_eq!(
            (
                counts.pending_activities,
                counts.sending_activities,
                counts.done_activities
            ),
            (0, 0, 1)
        );
        // Re-applying after done still creates nothing.
        apply(engine, &ev);
        assert_eq!(store.activities(None).unwrap().len(), 1);
    }

    #[test]
    fn activity_dead_letter() {
        let f = fixture(Some("salesforce"));
        let engine = &f.engine;
        engine
            .import_page(
                "salesforce",
                &[sf(
                    "003A00000000000AAA",
                    json!(ADA),
                    "2026-11-20T10:00:00Z",
                    json!({}),
                )],
                None,
            )
            .unwrap();
        apply(
            engine,
            &call("call_9", "inbound", ADA, "+18885550100", json!({})),
        );
        engine
            .store()
            .dead_letter_activity(
                "salesforce",
                "call_9",
                "INVALID_CROSS_REFERENCE_KEY",
                Utc::now(),
            )
            .unwrap();
        assert!(engine.store().activities(None).unwrap().is_empty());
        let dead = engine.store().dead_letters().unwrap();
        assert_eq!(dead[0].key, "call_9");
        assert_eq!(dead[0].payload["conversation_id"], json!("call_9"));
    }
}

mod inbound {
    use super::*;

    /// Imports Ada as Salesforce record 003A, then sets her lead status by hand (an outbound
    /// write of `Lead_Status__c` is queued).
    fn import_ada_and_change_lead_status(e: &Engine) {
        e.import_page(
            "salesforce",
            &[sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T10:00:00Z",
                json!({}),
            )],
            None,
        )
        .unwrap();
        e.manual_set(ADA, Fields::from([("lead_status".into(), en("working"))]))
            .unwrap();
    }

    #[test]
    fn creates_contacts_with_mapped_fields_links_and_provenance() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        let report = e
            .import_page(
                "salesforce",
                &[
                    sf(
                        "003A00000000000AAA",
                        json!("(415) 555-0101"),
                        "2026-11-20T10:00:00.000+0000",
                        json!({"Renewal_Date__c": "2027-03-31"}),
                    ),
                    sf(
                        "003B00000000000AAA",
                        json!("+1 212 555 0102"),
                        "2026-11-20T10:00:00Z",
                        json!({"FirstName": "Grace", "Lead_Status__c": "Nurture"}),
                    ),
                ],
                None,
            )
            .unwrap();
        assert_eq!(
            (
                report.read,
                report.created,
                report.updated,
                report.unchanged
            ),
            (2, 2, 0, 0)
        );
        assert!(report.skipped.is_empty() && report.field_errors.is_empty());
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert_eq!(ada.fields["first_name"], s("Ada"));
        assert_eq!(ada.fields["email"], s("ada@example.com"));
        assert_eq!(ada.fields["lead_status"], en("new"));
        assert_eq!(ada.fields["deal_size"], Value::Number(1000.0));
        assert_eq!(
            ada.fields["renewal_date"],
            Value::Date(chrono::NaiveDate::from_ymd_opt(2027, 3, 31).unwrap())
        );
        assert_eq!(ada.links["salesforce"], "003A00000000000AAA");
        assert_eq!(
            ada.provenance["email"].source,
            Source::Inbound {
                connection: "salesforce".into()
            }
        );
        assert_eq!(
            e.store()
                .phone_for_record("salesforce", "003A00000000000AAA")
                .unwrap()
                .as_deref(),
            Some(ADA)
        );
        let grace = e.store().contact("+12125550102").unwrap().unwrap();
        assert_eq!(grace.fields["lead_status"], en("unqualified"));
        // Inbound changes never enqueue outbound writes.
        assert!(e.store().pending_writes(None).unwrap().is_empty());

        // The same page again changes nothing.
        let again = e
            .import_page(
                "salesforce",
                &[sf(
                    "003A00000000000AAA",
                    json!("(415) 555-0101"),
                    "2026-11-20T10:00:00.000+0000",
                    json!({"Renewal_Date__c": "2027-03-31"}),
                )],
                None,
            )
            .unwrap();
        assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 1));
    }

    #[test]
    fn records_without_a_usable_phone_are_skipped_and_reported() {
        let f = fixture(Some("salesforce"));
        let report = f
            .engine
            .import_page(
                "salesforce",
                &[
                    sf(
                        "003A00000000000AAA",
                        json!(null),
                        "2026-11-20T10:00:00Z",
                        json!({}),
                    ),
                    sf(
                        "003B00000000000AAA",
                        json!("555-01"),
                        "2026-11-20T10:00:00Z",
                        json!({}),
                    ),
                    sf(
                        "003C00000000000AAA",
                        json!(ADA),
                        "2026-11-20T10:00:00Z",
                        json!({}),
                    ),
                    json!({"Phone": "+12125550102"}),
                ],
                None,
            )
            .unwrap();
        assert_eq!(report.created, 1);
        let skipped: Vec<&str> = report
            .skipped
            .iter()
            .map(|s| s.record_id.as_str())
            .collect();
        assert_eq!(skipped, ["#3", "003A00000000000AAA", "003B00000000000AAA"]);
        assert!(
            report.skipped[1].reason.contains("no phone"),
            "{:?}",
            report.skipped
        );
        assert!(
            report.skipped[2].reason.contains("555-01"),
            "{:?}",
            report.skipped
        );
        assert_eq!(f.engine.store().contact_count().unwrap(), 1);
    }

    #[test]
    fn a_bad_field_value_is_reported_and_the_rest_applies() {
        let f = fixture(Some("salesforce"));
        let report = f
            .engine
            .import_page(
                "salesforce",
                &[sf(
                    "003A00000000000AAA",
                    json!(ADA),
                    "2026-11-20T10:00:00Z",
                    json!({"AnnualRevenue": "a lot", "Renewal_Date__c": "next spring"}),
                )],
                None,
            )
            .unwrap();
        assert_eq!(report.created, 1);
        let mut errors: Vec<(&str, &str, &Json)> = report
            .field_errors
            .iter()
            .map(|e| (e.record_id.as_str(), e.field.as_str(), &e.value))
            .collect();
        errors.sort_by(|a, b| a.1.cmp(b.1));
        assert_eq!(
            errors,
            [
                ("003A00000000000AAA", "deal_size", &json!("a lot")),
                ("003A00000000000AAA", "renewal_date", &json!("next spring"))
            ]
        );
        let ada = f.engine.store().contact(ADA).unwrap().unwrap();
        assert_eq!(ada.fields["first_name"], s("Ada"));
        assert!(!ada.fields.contains_key("deal_size"));
    }

    #[test]
    fn several_records_with_one_phone_the_most_recently_modified_wins() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        let report = e
            .import_page(
                "salesforce",
                &[
                    sf(
                        "003NEW000000000AAA",
                        json!(ADA),
                        "2026-11-20T12:00:00Z",
                        json!({"FirstName": "Newest"}),
                    ),
                    sf(
                        "003OLD000000000AAA",
                        json!("415-555-0101"),
                        "2026-11-20T08:00:00Z",
                        json!({"FirstName": "Oldest"}),
                    ),
                ],
                None,
            )
            .unwrap();
        assert_eq!(report.created, 1);
        assert_eq!(report.duplicates.len(), 1);
        assert_eq!(report.duplicates[0].record_id, "003OLD000000000AAA");
        assert_eq!(report.duplicates[0].kept_record_id, "003NEW000000000AAA");
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert_eq!(ada.fields["first_name"], s("Newest"));
        assert_eq!(ada.links["salesforce"], "003NEW000000000AAA");

        // Across pages: an older record loses, a newer one takes over the link.
        let older = e
            .import_page(
                "salesforce",
                &[sf(
                    "003OTHER0000000AAA",
                    json!(ADA),
                    "2026-11-19T00:00:00Z",
                    json!({"FirstName": "Older"}),
                )],
                None,
            )
            .unwrap();
        assert_eq!(older.duplicates[0].record_id, "003OTHER0000000AAA");
        assert_eq!(
            e.store().contact(ADA).unwrap().unwrap().fields["first_name"],
            s("Newest")
        );
        let newer = e
            .import_page(
                "salesforce",
                &[sf(
                    "003LATEST000000AAA",
                    json!(ADA),
                    "2026-11-21T00:00:00Z",
                    json!({"FirstName": "Latest"}),
                )],
                None,
            )
            .unwrap();
        assert!(newer.duplicates.is_empty(), "{newer:?}");
        assert_eq!(newer.updated, 1, "{newer:?}");
        assert_eq!(newer.displaced[0].record_id, "003NEW000000000AAA");
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert_eq!(ada.fields["first_name"], s("Latest"));
        assert_eq!(ada.links["salesforce"], "003LATEST000000AAA");
        assert_eq!(
            e.store()
                .phone_for_record("salesforce", "003NEW000000000AAA")
                .unwrap(),
            None
        );
    }

    #[test]
    fn an_activity_intent_is_recorded_once_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.redb")).unwrap();
        let now = Utc::now();
        let intent = |summary: &str| ActivityIntent {
            connection: "salesforce".into(),
            conversation_id: "call_1".into(),
            record_id: "003A00000000000AAA".into(),
            phone: ADA.into(),
            payload: ActivityPayload {
                conversation_id: "call_1".into(),
                kind: ConversationKind::Call,
                direction: "inbound".into(),
                from_number: Some(ADA.into()),
                to_number: None,
                start_time: None,
                end_time: None,
                duration_ms: None,
                summary: Some(summary.into()),
                disconnection_reason: None,
                agent_id: None,
                outcome: None,
            },
            state: ActivityState::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            deferred_since: None,
        };
        assert!(store
            .write(|tx| tx.enqueue_activity(&intent("first")))
            .unwrap());
        store
            .mark_activity_done("salesforce", "call_1", "00T1")
            .unwrap();
        // A second intent for the same conversation changes nothing: not the payload, not the
        // state, and it does not reopen the activity for the dispatcher.
        assert!(!store
            .write(|tx| tx.enqueue_activity(&intent("second")))
            .unwrap());
        let kept = &store.activities(Some("salesforce")).unwrap()[0];
        assert_eq!(kept.payload.summary.as_deref(), Some("first"));
        assert_eq!(
            kept.state,
            ActivityState::Done {
                crm_id: "00T1".into()
            }
        );
        assert!(store
            .due_activities("salesforce", now + Duration::hours(1), 10)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_record_whose_phone_changed_moves_to_the_new_contact() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        let store = e.store();
        // A local change queued for the record at its old phone.
        import_ada_and_change_lead_status(e);
        assert_eq!(store.pending_writes(Some("salesforce")).unwrap().len(), 1);

        e.import_page(
            "salesforce",
            &[sf(
                "003A00000000000AAA",
                json!(GRACE),
                "2026-11-20T11:00:00Z",
                json!({}),
            )],
            None,
        )
        .unwrap();
        let old = store.contact(ADA).unwrap().unwrap();
        assert!(old.links.is_empty(), "{:?}", old.links);
        assert!(old.inbound_modstamp.is_empty());
        // The old contact keeps its data.
        assert_eq!(old.fields["first_name"], s("Ada"));
        let new = store.contact(GRACE).unwrap().unwrap();
        assert_eq!(new.links["salesforce"], "003A00000000000AAA");
        assert_eq!(
            store
                .phone_for_record("salesforce", "003A00000000000AAA")
                .unwrap()
                .as_deref(),
            Some(GRACE)
        );
        // The write queued for the old contact's values is dropped, not sent over the record's
        // new values.
        assert!(store.pending_writes(None).unwrap().is_empty());
    }

    #[test]
    fn do_not_call_is_set_only() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        e.import_page(
            "salesforce",
            &[sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T10:00:00Z",
                json!({"DoNotCall": true, "AnnualRevenue": "lots"}),
            )],
            None,
        )
        .unwrap();
        assert_eq!(
            e.store().contact(ADA).unwrap().unwrap().fields["do_not_call"],
            Value::Bool(true)
        );
        e.import_page(
            "salesforce",
            &[sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T11:00:00Z",
                json!({"DoNotCall": false}),
            )],
            None,
        )
        .unwrap();
        assert_eq!(
            e.store().contact(ADA).unwrap().unwrap().fields["do_not_call"],
            Value::Bool(true)
        );
    }

    #[test]
    fn echoes_of_our_writes_do_not_flip_flop() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        let store = e.store();
        // Local change → pushed → acknowledged.
        import_ada_and_change_lead_status(e);
        let due = store.due_writes("salesforce", Utc::now(), 10).unwrap();
        assert_eq!(
            due[0].fields,
            BTreeMap::from([("Lead_Status__c".into(), json!("Working - Contacted"))])
        );
        store
            .mark_write_sent(
                "salesforce",
                &[("003A00000000000AAA".into(), due[0].fields.clone())],
                Utc::now(),
            )
            .unwrap();
        // Another local change, not pushed yet.
        e.manual_set(ADA, Fields::from([("lead_status".into(), en("qualified"))]))
            .unwrap();
        // The poll reads our earlier write back (an echo): the newer local value stays, and the
        // pending write is untouched.
        let echo = sf(
            "003A00000000000AAA",
            json!(ADA),
            "2026-11-20T10:05:00Z",
            json!({"Lead_Status__c": "Working - Contacted"}),
        );
        e.import_page("salesforce", std::slice::from_ref(&echo), None)
            .unwrap();
        assert_eq!(
            store.contact(ADA).unwrap().unwrap().fields["lead_status"],
            en("qualified")
        );
        let pending = store.pending_writes(None).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            pending[0].fields["Lead_Status__c"],
            json!("Closed - Converted")
        );
        // It is pushed; the poll then sees it: still an echo, nothing changes, nothing enqueued.
        store
            .mark_write_sent(
                "salesforce",
                &[("003A00000000000AAA".into(), pending[0].fields.clone())],
                Utc::now(),
            )
            .unwrap();
        let report = e
            .import_page(
                "salesforce",
                &[sf(
                    "003A00000000000AAA",
                    json!(ADA),
                    "2026-11-20T10:06:00Z",
                    json!({"Lead_Status__c": "Closed - Converted"}),
                )],
                None,
            )
            .unwrap();
        assert_eq!(report.unchanged, 1);
        assert!(store.pending_writes(None).unwrap().is_empty());
        // A genuine CRM change applies (and, being inbound, pushes nothing back).
        e.import_page(
            "salesforce",
            &[sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T11:00:00Z",
                json!({"Lead_Status__c": "Working - Contacted"}),
            )],
            None,
        )
        .unwrap();
        let ada = store.contact(ADA).unwrap().unwrap();
        assert_eq!(ada.fields["lead_status"], en("working"));
        assert!(!ada
            .last_pushed
            .get("salesforce")
            .is_some_and(|p| p.contains_key("Lead_Status__c")));
        assert!(store.pending_writes(None).unwrap().is_empty());
    }

    #[test]
    fn unlink_keeps_the_contact_and_stops_pushing() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        e.import_page(
            "salesforce",
            &[sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T10:00:00Z",
                json!({}),
            )],
            None,
        )
        .unwrap();
        assert_eq!(
            e.unlink(
                "salesforce",
                &["003A00000000000AAA".into(), "003UNKNOWN00000AAA".into()]
            )
            .unwrap(),
            1
        );
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert!(ada.links.is_empty());
        assert_eq!(ada.fields["first_name"], s("Ada"));
        assert_eq!(
            e.store()
                .phone_for_record("salesforce", "003A00000000000AAA")
                .unwrap(),
            None
        );
        let report = e
            .manual_set(ADA, Fields::from([("lead_status".into(), en("working"))]))
            .unwrap();
        assert!(report.outbound.is_empty());
        assert!(e.store().pending_writes(None).unwrap().is_empty());
    }

    #[test]
    fn the_cursor_advances_with_the_page_and_never_back() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
        let c1 = SyncCursor {
            modstamp: t,
            last_id: "003A00000000000AAA".into(),
        };
        e.import_page(
            "salesforce",
            &[sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T10:00:00Z",
                json!({}),
            )],
            Some(&c1),
        )
        .unwrap();
        assert_eq!(e.store().cursor("salesforce").unwrap(), Some(c1.clone()));
        let back = SyncCursor {
            modstamp: t - Duration::hours(1),
            last_id: "003Z00000000000AAA".into(),
        };
        e.import_page("salesforce", &[], Some(&back)).unwrap();
        assert_eq!(e.store().cursor("salesforce").unwrap(), Some(c1));
    }

    #[test]
    fn hubspot_objects_and_archived_records() {
        let f = fixture(Some("hubspot"));
        let e = &f.engine;
        let page = json!([
            {"id": "51", "properties": {"phone": "+14155550101", "firstname": "Ada", "email": "ada@example.com", "hs_lead_status": "IN_PROGRESS", "lastmodifieddate": "2026-11-20T09:15:00.000Z"}, "updatedAt": "2026-11-20T09:15:00.000Z", "archived": false},
            {"id": "52", "properties": {"phone": "", "firstname": "NoPhone"}, "updatedAt": "2026-11-20T09:15:00.000Z", "archived": false}
        ]);
        let report = e
            .import_page("hubspot", page.as_array().unwrap(), None)
            .unwrap();
        assert_eq!(report.created, 1);
        assert_eq!(report.skipped[0].record_id, "52");
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert_eq!(ada.fields["lead_status"], en("working"));
        assert_eq!(ada.links["hubspot"], "51");
        let archived =
            json!([{"id": "51", "properties": {"phone": "+14155550101"}, "archived": true}]);
        let report = e
            .import_page("hubspot", archived.as_array().unwrap(), None)
            .unwrap();
        assert_eq!(report.archived, 1);
        assert!(e.store().contact(ADA).unwrap().unwrap().links.is_empty());
    }

    #[test]
    fn a_page_prepared_on_another_thread_commits_like_import_page() {
        let page = vec![
            sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T10:00:00Z",
                json!({}),
            ),
            sf(
                "003B00000000000AAA",
                json!("415-555-0101"),
                "2026-11-20T09:00:00Z",
                json!({}),
            ),
            sf(
                "003C00000000000AAA",
                json!(null),
                "2026-11-20T10:00:00Z",
                json!({}),
            ),
        ];
        let direct = fixture(Some("salesforce"));
        let expected = direct
            .engine
            .import_page("salesforce", &page, None)
            .unwrap();
        let split = fixture(Some("salesforce"));
        let engine = &split.engine;
        let prepared = std::thread::scope(|scope| {
            scope
                .spawn(|| engine.prepare_page("salesforce", page.clone(), page.len()))
                .join()
                .unwrap()
        })
        .unwrap();
        assert_eq!(
            split.engine.store().contact_count().unwrap(),
            0,
            "preparing writes nothing"
        );
        let report = engine.commit_page(prepared, None, true).unwrap();
        assert_eq!(report, expected);
        assert_eq!(
            engine.store().contact(ADA).unwrap().unwrap().fields,
            direct.engine.store().contact(ADA).unwrap().unwrap().fields
        );
        assert!(engine.prepare_page("zoho", Vec::new(), 0).is_err());
    }

    /// What an import left in the store, without the clock.
    fn contents(engine: &Engine) -> Vec<(String, Json)> {
        let contacts = engine.store().contacts(None, 100).unwrap();
        contacts
            .into_iter()
            .map(|c| {
                let sources: Vec<_> = c.provenance.iter().map(|(f, p)| (f, &p.source)).collect();
                let summary = json!({
                    "fields": c.fields,
                    "sources": sources,
                    "links": c.links,
                    "modstamps": c.inbound_modstamp,
                });
                (c.phone, summary)
            })
            .collect()
    }

    #[test]
    fn records_built_ahead_commit_exactly_as_records_evaluated_at_commit() {
        // A new phone, a field error, a duplicate within the page, a record without a phone,
        // and phones already in the store (so a contact built ahead must be thrown away).
        let stored = vec![
            sf(
                "003S00000000000AAA",
                json!("415-555-0103"),
                "2026-11-19T10:00:00Z",
                json!({}),
            ),
            sf(
                "003T00000000000AAA",
                json!("415-555-0104"),
                "2026-11-19T10:00:00Z",
                json!({"FirstName": "Tess"}),
            ),
        ];
        let page = vec![
            sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T10:00:00Z",
                json!({"AnnualRevenue": "lots"}),
            ),
            sf(
                "003B00000000000AAA",
                json!("415-555-0103"),
                "2026-11-20T09:00:00Z",
                json!({"LastName": "Byron"}),
            ),
            sf(
                "003C00000000000AAA",
                json!(null),
                "2026-11-20T10:00:00Z",
                json!({}),
            ),
            sf(
                "003D00000000000AAA",
                json!(ADA),
                "2026-11-20T11:00:00Z",
                json!({"FirstName": "Augusta"}),
            ),
            sf(
                "003T00000000000AAA",
                json!("415-555-0105"),
                "2026-11-20T10:00:00Z",
                json!({}),
            ),
            sf(
                "003E00000000000AAA",
                json!("415-555-0106"),
                "2026-11-20T10:00:00Z",
                json!({"DoNotCall": true, "AnnualRevenue": "a lot"}),
            ),
        ];
        let run = |fresh: usize| {
            let f = fixture(Some("salesforce"));
            f.engine.import_page("salesforce", &stored, None).unwrap();
            let prepared = f
                .engine
                .prepare_page("salesforce", page.clone(), fresh)
                .unwrap();
            let report = f.engine.commit_page(prepared, None, true).unwrap();
            (report, contents(&f.engine), f)
        };
        let (expected_report, expected_contents, _f) = run(0);
        assert_eq!(expected_report.created, 3, "{expected_report:?}");
        assert_eq!(expected_report.updated, 1, "{expected_report:?}");
        assert_eq!(expected_report.field_errors.len(), 1);
        // One loses within the page; one record linked before is displaced by a newer one.
        assert_eq!(expected_report.duplicates.len(), 1, "{expected_report:?}");
        assert_eq!(expected_report.displaced.len(), 1, "{expected_report:?}");
        assert_eq!(expected_report.skipped.len(), 1);
        for fresh in 1..=page.len() + 1 {
            let (report, contents, f) = run(fresh);
            assert_eq!(report, expected_report, "{fresh} built ahead");
            assert_eq!(contents, expected_contents, "{fresh} built ahead");
            // The record that moved to a new phone let go of its old contact.
            let tess = f.engine.store().contact("+14155550104").unwrap().unwrap();
            assert!(tess.links.is_empty(), "{fresh} built ahead");
        }
    }

    #[test]
    fn a_batch_into_an_empty_store_commits_exactly_as_page_by_page() {
        // Page 2 repeats a phone of page 1 (newer and older records) and moves a record of
        // page 1 to a new phone: contacts built ahead meet phones the batch already wrote.
        let page1 = vec![
            sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T10:00:00Z",
                json!({}),
            ),
            sf(
                "003B00000000000AAA",
                json!(GRACE),
                "2026-11-20T10:00:00Z",
                json!({}),
            ),
            sf(
                "003C00000000000AAA",
                json!("415-555-0103"),
                "2026-11-20T10:00:00Z",
                json!({}),
            ),
        ];
        let page2 = vec![
            sf(
                "003D00000000000AAA",
                json!(ADA),
                "2026-11-20T11:00:00Z",
                json!({"FirstName": "Augusta"}),
            ),
            sf(
                "003E00000000000AAA",
                json!(GRACE),
                "2026-11-20T09:00:00Z",
                json!({}),
            ),
            sf(
                "003C00000000000AAA",
                json!("415-555-0104"),
                "2026-11-20T12:00:00Z",
                json!({}),
            ),
            sf(
                "003F00000000000AAA",
                json!("415-555-0105"),
                "2026-11-20T10:00:00Z",
                json!({"AnnualRevenue": "a lot"}),
            ),
        ];
        let expected = fixture(Some("salesforce"));
        let mut expected_report = expected
            .engine
            .import_page("salesforce", &page1, None)
            .unwrap();
        expected_report.absorb(
            expected
                .engine
                .import_page("salesforce", &page2, None)
                .unwrap(),
        );
        let batched = fixture(Some("salesforce"));
        let engine = &batched.engine;
        let report = engine
            .import_batch(true, |batch| {
                let mut report = ImportReport::default();
                for page in [&page1, &page2] {
                    let prepared = engine.prepare_page("salesforce", page.clone(), page.len())?;
                    report.absorb(batch.apply(prepared, None)?.0);
                }
                Ok::<_, EngineError>(report)
            })
            .unwrap();
        assert_eq!(report, expected_report);
        assert_eq!(report.created, 5, "{report:?}");
        assert_eq!(report.duplicates.len(), 1, "{report:?}");
        assert_eq!(report.displaced.len(), 1, "{report:?}");
        assert_eq!(contents(engine), contents(&expected.engine));
        assert_eq!(
            engine
                .store()
                .phone_for_record("salesforce", "003C00000000000AAA")
                .unwrap(),
            Some("+14155550104".to_string())
        );
    }

    #[test]
    fn an_import_reads_only_the_record_keys_it_names() {
        let f = fixture(Some("salesforce"));
        let keys = f.engine.record_keys("salesforce").unwrap();
        // Inbound sources, the guard's field, an outbound target, ids and stamps.
        for key in [
            "Phone",
            "Email",
            "DoNotCall",
            "Renewal_Date__c",
            "Notes__c",
            "Id",
            "SystemModstamp",
            "LastModifiedDate",
            "archived",
        ] {
            assert!(keys.contains(key), "{key}");
        }
        for key in ["attributes", "Title", "phone", "Notes"] {
            assert!(!keys.contains(key), "{key}");
        }
        // The same page with every other key removed imports to the same store.
        let full = vec![
            sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T10:00:00Z",
                json!({"Title": "CEO"}),
            ),
            sf(
                "003B00000000000AAA",
                json!(GRACE),
                "2026-11-20T10:00:00Z",
                json!({"AnnualRevenue": "lots"}),
            ),
        ];
        let trimmed: Vec<Json> = full
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.as_object_mut().unwrap().retain(|k, _| keys.contains(k));
                r
            })
            .collect();
        assert_ne!(full, trimmed);
        let g = fixture(Some("salesforce"));
        let expected = f.engine.import_page("salesforce", &full, None).unwrap();
        let report = g.engine.import_page("salesforce", &trimmed, None).unwrap();
        assert_eq!(report, expected);
        assert_eq!(contents(&g.engine), contents(&f.engine));
        assert!(f.engine.record_keys("zoho").is_err());
    }

    #[test]
    fn unknown_connection_is_an_error() {
        let f = fixture(Some("salesforce"));
        let err = f.engine.import_page("pipedrive", &[], None).unwrap_err();
        assert!(matches!(err, EngineError::UnknownConnection { .. }));
        assert!(err.to_string().contains("pipedrive"), "{err}");
    }
}

mod analysis {
    use super::*;

    fn linked(active: &str) -> Fixture {
        let f = fixture(Some(active));
        f.engine
            .import_page(
                "salesforce",
                &[sf(
                    "003A00000000000AAA",
                    json!(ADA),
                    "2026-11-20T10:00:00Z",
                    json!({"Email": "ada@old.example"}),
                )],
                None,
            )
            .unwrap();
        f
    }

    #[test]
    fn applies_modes_and_pushes_and_logs_for_a_linked_contact() {
        let f = linked("salesforce");
        let e = &f.engine;
        let report = apply(
            e,
            &call(
                "call_1",
                "inbound",
                ADA,
                "+18885550100",
                json!({
                    "lead_qualification_status": "qualified",
                    "email_address": "ada@new.example",
                    "customer_notes": "Wants a demo.",
                    "demo_requested": "yes"
                }),
            ),
        );
        let ConversationOutcome::Applied {
            phone,
            created,
            changed,
            outbound,
            activity,
        } = report.outcome
        else {
            panic!("not applied: {report:?}");
        };
        assert_eq!(phone, ADA);
        assert!(!created && activity);
        assert!(changed.contains(&"lead_status".to_string()));
        assert_eq!(outbound, ["Lead_Status__c", "Notes__c"]);
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert_eq!(ada.fields["lead_status"], en("qualified"));
        assert_eq!(
            ada.fields["email"],
            s("ada@old.example"),
            "fill_if_empty keeps the stored email"
        );
        assert_eq!(ada.fields["interaction_summary"], s("Wants a demo."));
        assert_eq!(ada.fields["demo_requested"], Value::Bool(true));
        assert_eq!(
            ada.fields["last_contacted_at"],
            Value::Datetime(Utc.with_ymd_and_hms(2026, 11, 21, 10, 3, 0).unwrap())
        );
        assert_eq!(
            ada.provenance["lead_status"].source,
            Source::Analysis {
                conversation_id: "call_1".into(),
                ended_at: Some(Utc.with_ymd_and_hms(2026, 11, 21, 10, 3, 0).unwrap()),
            }
        );

        // A second conversation merges notes (fallback: old, blank line, new) and coalesces the
        // pending write to the latest values.
        let report = apply(
            e,
            &call(
                "call_2",
                "inbound",
                ADA,
                "+18885550100",
                json!({"customer_notes": "Budget approved."}),
            ),
        );
        assert_eq!(report.merge_fallbacks.len(), 1);
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert_eq!(
            ada.fields["interaction_summary"],
            s("Wants a demo.\n\nBudget approved.")
        );
        let pending = e.store().pending_writes(None).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            pending[0].fields["Notes__c"],
            json!("Wants a demo.\n\nBudget approved.")
        );
        assert_eq!(
            pending[0].fields["Lead_Status__c"],
            json!("Closed - Converted")
        );
        assert_eq!(e.store().activities(None).unwrap().len(), 2);
    }

    /// An inbound call from Ada that writes a field.
    fn hello_call() -> ConversationEvent {
        call(
            "call_1",
            "inbound",
            ADA,
            "+1888",
            json!({"customer_notes": "Hello."}),
        )
    }

    #[test]
    fn reapplying_is_a_no_op() {
        let f = linked("salesforce");
        let e = &f.engine;
        let ev = hello_call();
        apply(e, &ev);
        let before = e.store().contact(ADA).unwrap().unwrap();
        let report = apply(e, &ev);
        assert_eq!(report.outcome, ConversationOutcome::AlreadyApplied);
        assert_eq!(e.store().contact(ADA).unwrap().unwrap(), before);
        assert_eq!(e.store().activities(None).unwrap().len(), 1);
        assert!(e.store().conversation_applied("call_1").unwrap());
    }

    #[test]
    fn open_activities_are_the_unlogged_ones_oldest_first() {
        let f = linked("salesforce");
        let e = &f.engine;
        for id in ["b_older", "a_newer"] {
            apply(e, &call(id, "inbound", ADA, "+1888", json!({})));
        }
        let ids = |intents: Vec<ActivityIntent>| {
            intents
                .into_iter()
                .map(|i| i.conversation_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(e.store().open_activities().unwrap()),
            ["b_older", "a_newer"]
        );
        assert_eq!(
            ids(e.store().activities(None).unwrap()),
            ["a_newer", "b_older"]
        );
        e.store()
            .mark_activity_done("salesforce", "b_older", "00T1")
            .unwrap();
        assert_eq!(ids(e.store().open_activities().unwrap()), ["a_newer"]);
        assert_eq!(e.store().activities(None).unwrap().len(), 2);
    }

    #[test]
    fn a_conversation_whose_activity_was_dead_lettered_stays_applied() {
        let f = linked("salesforce");
        let e = &f.engine;
        let ev = hello_call();
        let first = apply(e, &ev);
        assert!(
            matches!(
                first.outcome,
                ConversationOutcome::Applied { activity: true, .. }
            ),
            "{first:?}"
        );
        e.store()
            .dead_letter_activity("salesforce", "call_1", "INVALID_FIELD", Utc::now())
            .unwrap();
        assert!(e.store().activities(None).unwrap().is_empty());
        assert!(e.store().conversation_applied("call_1").unwrap());
        let before = e.store().contact(ADA).unwrap().unwrap();
        let again = apply(e, &ev);
        assert_eq!(again.outcome, ConversationOutcome::AlreadyApplied);
        assert_eq!(e.store().contact(ADA).unwrap().unwrap(), before);
        assert!(e.store().activities(None).unwrap().is_empty());
        assert_eq!(e.store().dead_letters().unwrap().len(), 1);
    }

    #[test]
    fn number_by_direction_and_unknown_numbers_create_contacts() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        let report = apply(
            e,
            &call(
                "c_out",
                "outbound",
                "+18885550100",
                "(646) 555-0144",
                json!({"lead_qualification_status": "working"}),
            ),
        );
        assert!(
            matches!(
                report.outcome,
                ConversationOutcome::Applied {
                    created: true,
                    activity: false,
                    ..
                }
            ),
            "{report:?}"
        );
        let contact = e.store().contact("+16465550144").unwrap().unwrap();
        assert_eq!(contact.fields["lead_status"], en("working"));
        // Not linked: nothing to push, no activity.
        assert!(e.store().pending_writes(None).unwrap().is_empty());
        assert!(e.store().activities(None).unwrap().is_empty());
        assert!(e.store().contact("+18885550100").unwrap().is_none());
    }

    #[test]
    fn guards_and_type_mismatches() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        let mut ev = call(
            "c1",
            "inbound",
            ADA,
            "+1888",
            json!({"demo_requested": true, "lead_qualification_status": "maybe"}),
        );
        ev.successful = Some(false);
        let report = apply(e, &ev);
        let contact = e.store().contact(ADA).unwrap().unwrap();
        assert!(
            !contact.fields.contains_key("demo_requested"),
            "guard was false"
        );
        assert!(!contact.fields.contains_key("lead_status"));
        assert_eq!(report.field_errors.len(), 1);
        assert_eq!(report.field_errors[0].field, "lead_status");
    }

    #[test]
    fn web_calls_without_a_number_do_nothing() {
        let f = fixture(Some("salesforce"));
        let body = std::fs::read("examples/events/web_call_analyzed.json").unwrap();
        let Some(RetellEvent::Call(ev)) = crmsync::engine::retell::parse_webhook(&body).unwrap()
        else {
            panic!("a call")
        };
        let report = apply(&f.engine, &ev);
        assert_eq!(
            report.outcome,
            ConversationOutcome::NoNumber {
                reason: "a web call has no phone number".into()
            }
        );
        assert_eq!(f.engine.store().contact_count().unwrap(), 0);
        assert!(!f.engine.store().conversation_applied(&ev.id).unwrap());
    }

    #[test]
    fn chats_log_only_where_the_connection_logs_chats() {
        // HubSpot logs calls only.
        let f = fixture(Some("hubspot"));
        let e = &f.engine;
        let page = json!([{"id": "51", "properties": {"phone": ADA}, "updatedAt": "2026-11-20T09:15:00Z"}]);
        e.import_page("hubspot", page.as_array().unwrap(), None)
            .unwrap();
        let chat = event(
            json!({"id": "chat_1", "kind": "chat", "direction": "inbound", "from_number": ADA, "analysis": {"customer_notes": "Hi"}}),
        );
        let report = apply(e, &chat);
        assert!(
            matches!(
                report.outcome,
                ConversationOutcome::Applied {
                    activity: false,
                    ..
                }
            ),
            "{report:?}"
        );
        let pending = e.store().pending_writes(Some("hubspot")).unwrap();
        assert_eq!(
            pending[0].fields,
            BTreeMap::from([("notes".into(), json!("Hi"))])
        );
        let report = apply(e, &call("call_1", "inbound", ADA, "+1888", json!({})));
        assert!(
            matches!(
                report.outcome,
                ConversationOutcome::Applied { activity: true, .. }
            ),
            "{report:?}"
        );
        // Salesforce-linked contacts get nothing while HubSpot is active.
        assert!(e.store().activities(Some("salesforce")).unwrap().is_empty());
    }

    #[test]
    fn retell_bodies_map_onto_the_generic_event() {
        let body = std::fs::read("examples/events/call_analyzed.json").unwrap();
        let Some(RetellEvent::Call(ev)) = crmsync::engine::retell::parse_webhook(&body).unwrap()
        else {
            panic!("a call")
        };
        assert_eq!(ev.id, "call_7a9c2f1e04b34d55a0e1");
        assert_eq!(ev.from_number.as_deref(), Some("+14155550101"));
        assert_eq!(
            ev.summary.as_deref(),
            Some("Ada asked for a demo of the analytics plan and confirmed her email.")
        );
        assert_eq!(ev.sentiment.as_deref(), Some("Positive"));
        assert_eq!((ev.successful, ev.in_voicemail), (Some(true), Some(false)));
        assert_eq!(ev.duration_ms, Some(195000));
        assert_eq!(
            ev.start_time.map(|t| t.timestamp_millis()),
            Some(1795251600000)
        );
        assert_eq!(ev.disconnection_reason.as_deref(), Some("user_hangup"));
        assert_eq!(ev.agent_id.as_deref(), Some("agent_3f1d0c9b8a7e"));
        assert_eq!(ev.connected, None);
        assert!(ev.connected());
        assert_eq!(ev.analysis["email_address"], json!("ada@example.com"));

        let body = std::fs::read("examples/events/chat_analyzed.json").unwrap();
        let Some(RetellEvent::Chat(chat)) = crmsync::engine::retell::parse_webhook(&body).unwrap()
        else {
            panic!("a chat")
        };
        // Retell's chat object has no numbers; the metadata the integrator set has one.
        assert_eq!(chat.chat_type.as_deref(), Some("sms_chat"));
        assert_eq!(chat.metadata["customer_phone"], json!("+16465550144"));
        assert_eq!(chat.dynamic_variables["first_name"], json!("Barbara"));
        let ev = chat.event;
        assert_eq!((ev.from_number, ev.to_number), (None, None));
        assert_eq!(ev.kind, crmsync::event::ConversationKind::Chat);
        assert_eq!(
            ev.summary.as_deref(),
            Some("Barbara is evaluating options and is not ready to buy.")
        );
        assert_eq!(ev.duration_ms, Some(300000));

        assert!(crmsync::engine::retell::parse_webhook(
            br#"{"event": "call_started", "call": {"call_id": "x"}}"#
        )
        .unwrap()
        .is_none());
        // Retell's call_status for a call that never connected.
        let Some(RetellEvent::Call(ev)) = crmsync::engine::retell::parse_webhook(
            br#"{"event": "call_analyzed", "call": {"call_id": "x", "call_type": "phone_call",
                 "call_status": "not_connected", "direction": "outbound",
                 "disconnection_reason": "dial_no_answer"}}"#,
        )
        .unwrap() else {
            panic!("a call")
        };
        assert_eq!(ev.connected, Some(false));
        assert_eq!(
            ev.call_outcome(),
            Some(crmsync::event::CallOutcome::NoAnswer)
        );
        let err = crmsync::engine::retell::parse_webhook(b"{\n  \"event\": ").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = crmsync::engine::retell::parse_webhook(
            br#"{"event": "call_analyzed", "call": {"direction": "inbound"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("call.call_id"), "{err}");
    }

    #[test]
    fn a_batch_is_one_transaction_with_per_event_outcomes() {
        let f = linked("salesforce");
        let e = &f.engine;
        let events = [
            call(
                "b1",
                "inbound",
                ADA,
                "+1888",
                json!({"customer_notes": "One."}),
            ),
            call(
                "b1",
                "inbound",
                ADA,
                "+1888",
                json!({"customer_notes": "Dup."}),
            ),
            call("b2", "inbound", "not a number", "+1888", json!({})),
            call(
                "b3",
                "outbound",
                "+1888",
                "+12125550102",
                json!({"customer_notes": "Three."}),
            ),
        ];
        let reports = e
            .apply_conversations_blocking(&events, &FallbackMerger)
            .unwrap();
        assert!(matches!(
            reports[0].as_ref().unwrap().outcome,
            ConversationOutcome::Applied { activity: true, .. }
        ));
        assert_eq!(
            reports[1].as_ref().unwrap().outcome,
            ConversationOutcome::AlreadyApplied
        );
        // An invalid number is not an error: recorded, answered `no_number` with the reason.
        assert!(matches!(
            &reports[2].as_ref().unwrap().outcome,
            ConversationOutcome::NoNumber { reason } if reason.contains("not a number")
        ));
        assert!(e.store().conversation_applied("b2").unwrap());
        assert!(matches!(
            reports[3].as_ref().unwrap().outcome,
            ConversationOutcome::Applied { created: true, .. }
        ));
        assert_eq!(
            e.store().contact(ADA).unwrap().unwrap().fields["interaction_summary"],
            s("One.")
        );
        assert_eq!(e.store().activities(None).unwrap().len(), 1);
        assert!(e.store().conversation_applied("b3").unwrap());
    }

    #[test]
    fn inputs_normalized_by_the_submitter_apply_in_order_and_merge_like_the_fallback() {
        let f = linked("salesforce");
        let e = &f.engine;
        e.manual_set(
            ADA,
            Fields::from([("interaction_summary".into(), s("Old note."))]),
        )
        .unwrap();
        let inputs: Vec<_> = [
            // A national-format number: normalized before the writer sees it.
            call(
                "i1",
                "inbound",
                "(415) 555-0101",
                "+1888",
                json!({"customer_notes": "First."}),
            ),
            call(
                "i2",
                "inbound",
                ADA,
                "+1888",
                json!({"customer_notes": "Second."}),
            ),
            call(
                "i1",
                "inbound",
                ADA,
                "+1888",
                json!({"customer_notes": "Dup."}),
            ),
            call("i3", "outbound", "+1888", "+12125550102", json!({})),
            // An invalid number is no error: it applies as `no_number`.
            call("i4", "inbound", "not a number", "+1888", json!({})),
        ]
        .into_iter()
        .map(|event| e.conversation_input(event).unwrap())
        .collect();
        assert_eq!(inputs[0].event().id, "i1");
        let reports = e.apply_inputs_blocking(&inputs, &FallbackMerger).unwrap();
        assert_eq!(reports.len(), 5);
        assert!(matches!(
            reports[4].outcome,
            ConversationOutcome::NoNumber { .. }
        ));
        // Each merge sees the text the events before it wrote, with no read before the
        // transaction (the fallback merger needs none), and is reported as a fallback.
        assert_eq!(reports[0].merge_fallbacks.len(), 1);
        assert_eq!(reports[1].merge_fallbacks.len(), 1);
        assert_eq!(reports[2].outcome, ConversationOutcome::AlreadyApplied);
        assert!(matches!(
            reports[3].outcome,
            ConversationOutcome::Applied { created: true, .. }
        ));
        assert_eq!(
            e.store().contact(ADA).unwrap().unwrap().fields["interaction_summary"],
            s("Old note.\n\nFirst.\n\nSecond.")
        );
        // Same result as the one-by-one path gives for the same events.
        let g = linked("salesforce");
        g.engine
            .manual_set(
                ADA,
                Fields::from([("interaction_summary".into(), s("Old note."))]),
            )
            .unwrap();
        for input in &inputs {
            apply(&g.engine, input.event());
        }
        assert_eq!(
            g.engine.store().contact(ADA).unwrap().unwrap().fields,
            e.store().contact(ADA).unwrap().unwrap().fields
        );
        assert_eq!(
            g.engine.store().activities(None).unwrap().len(),
            e.store().activities(None).unwrap().len()
        );
    }

    /// A call `ended` at this time (its start two minutes earlier).
    fn call_ended(id: &str, ended: &str, analysis: Json) -> ConversationEvent {
        let end = chrono::DateTime::parse_from_rfc3339(ended).unwrap();
        let mut ev = call(id, "inbound", ADA, "+1888", analysis);
        ev.end_time = Some(end.with_timezone(&Utc));
        ev.start_time = Some(end.with_timezone(&Utc) - Duration::minutes(2));
        ev
    }

    /// A webhook delivered late (retried for a day) must not roll back what a later call set,
    /// nor queue its old status for the CRM; its merge and its activity still apply.
    #[test]
    fn a_late_conversation_never_overwrites_newer_values() {
        let f = linked("salesforce");
        let e = &f.engine;
        let today = "2026-11-21T15:00:00Z";
        apply(
            e,
            &call_ended(
                "today",
                today,
                json!({"lead_qualification_status": "qualified", "customer_notes": "Today."}),
            ),
        );
        let late = apply(
            e,
            &call_ended(
                "yesterday",
                "2026-11-20T15:00:00Z",
                json!({"lead_qualification_status": "working", "customer_notes": "Yesterday."}),
            ),
        );
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert_eq!(ada.fields["lead_status"], en("qualified"));
        assert_eq!(
            ada.fields["last_contacted_at"],
            Value::Datetime(Utc.with_ymd_and_hms(2026, 11, 21, 15, 0, 0).unwrap())
        );
        // `merge` loses nothing by order: both notes are kept.
        assert_eq!(ada.fields["interaction_summary"], s("Today.\n\nYesterday."));
        let mut stale: Vec<(&str, String, String)> = late
            .stale
            .iter()
            .map(|st| {
                (
                    st.field.as_str(),
                    st.conversation_ended_at.to_rfc3339(),
                    st.field_written_at.to_rfc3339(),
                )
            })
            .collect();
        stale.sort();
        assert_eq!(
            stale,
            [
                (
                    "last_contacted_at",
                    "2026-11-20T15:00:00+00:00".to_string(),
                    "2026-11-21T15:00:00+00:00".to_string()
                ),
                (
                    "lead_status",
                    "2026-11-20T15:00:00+00:00".to_string(),
                    "2026-11-21T15:00:00+00:00".to_string()
                ),
            ]
        );
        assert!(late
            .stale
            .iter()
            .all(|st| st.written_by == "analysis:today"));
        let ConversationOutcome::Applied {
            outbound, activity, ..
        } = &late.outcome
        else {
            panic!("{late:?}");
        };
        assert_eq!(outbound, &["Notes__c"], "the old status is not queued");
        assert!(activity, "the late call is still logged");
        let pending = e.store().pending_writes(None).unwrap();
        assert_eq!(
            pending[0].fields["Lead_Status__c"],
            json!("Closed - Converted")
        );
        // The report says so in its JSON form.
        let json = serde_json::to_value(&late).unwrap();
        assert_eq!(json["stale"][0]["written_by"], "analysis:today");
    }

    /// An inbound value is from the CRM record's modification time: a call that ended before
    /// the CRM edit does not replace it, one that ended after it does.
    #[test]
    fn a_crm_edit_is_newer_than_a_call_that_ended_before_it() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        e.import_page(
            "salesforce",
            &[sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-21T12:00:00Z",
                json!({"Lead_Status__c": "Closed - Converted"}),
            )],
            None,
        )
        .unwrap();
        let before = apply(
            e,
            &call_ended(
                "before",
                "2026-11-21T11:00:00Z",
                json!({"lead_qualification_status": "working"}),
            ),
        );
        assert_eq!(before.stale.len(), 1, "{before:?}");
        assert_eq!(before.stale[0].written_by, "inbound:salesforce");
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert_eq!(ada.fields["lead_status"], en("qualified"));
        // An empty field is filled whatever the order: nothing newer is lost.
        assert!(ada.fields.contains_key("last_contacted_at"));
        let after = apply(
            e,
            &call_ended(
                "after",
                "2026-11-21T13:00:00Z",
                json!({"lead_qualification_status": "working"}),
            ),
        );
        assert!(after.stale.is_empty(), "{after:?}");
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert_eq!(ada.fields["lead_status"], en("working"));
    }

    /// A conversation that repeats the stored value makes it as recent as itself: an older
    /// conversation delivered after it cannot replace the value either.
    #[test]
    fn a_conversation_repeating_a_value_makes_it_that_recent() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        e.import_page(
            "salesforce",
            &[sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T10:00:00Z",
                json!({"Lead_Status__c": "Closed - Converted"}),
            )],
            None,
        )
        .unwrap();
        let same = json!({"lead_qualification_status": "qualified"});
        let confirm = apply(e, &call_ended("confirm", "2026-11-21T15:00:00Z", same));
        assert!(confirm.stale.is_empty());
        let ada = e.store().contact(ADA).unwrap().unwrap();
        // Still written by the sync; confirmed by the call.
        assert_eq!(
            ada.provenance["lead_status"].source.label(),
            "inbound:salesforce"
        );
        assert_eq!(
            ada.confirmed_at["lead_status"],
            Utc.with_ymd_and_hms(2026, 11, 21, 15, 0, 0).unwrap()
        );
        // Later than the CRM's edit, earlier than the confirming call.
        let late = apply(
            e,
            &call_ended(
                "late",
                "2026-11-21T11:00:00Z",
                json!({"lead_qualification_status": "working"}),
            ),
        );
        assert_eq!(late.stale.len(), 2, "{late:?}");
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert_eq!(ada.fields["lead_status"], en("qualified"));
        assert_eq!(e.store().pending_writes(None).unwrap(), vec![]);
    }

    /// Editing a field only inbound sync writes (and nothing sends back) is warned, naming
    /// the owner; a field an outbound mapping reads is not.
    #[test]
    fn a_manual_edit_of_a_crm_owned_field_is_warned() {
        let f = linked("salesforce");
        let e = &f.engine;
        let report = e
            .manual_set(
                ADA,
                Fields::from([
                    ("first_name".into(), s("Augusta")),
                    ("lead_status".into(), en("working")),
                ]),
            )
            .unwrap();
        assert_eq!(report.warnings.len(), 1, "{report:?}");
        assert_eq!(report.warnings[0].field, "first_name");
        assert_eq!(report.warnings[0].owners, ["salesforce", "hubspot"]);
        assert!(
            report.warnings[0]
                .message
                .contains("the next sync from salesforce or hubspot replaces this edit"),
            "{}",
            report.warnings[0].message
        );
        // The edit is kept (warned, not refused).
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert_eq!(ada.fields["first_name"], s("Augusta"));
    }

    /// A withheld caller is no error: the call is recorded once, answered `no_number`.
    #[test]
    fn a_withheld_caller_is_recorded_as_no_number() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        let ev = call("anon", "inbound", "anonymous", "+1888", json!({}));
        let report = apply(e, &ev);
        assert_eq!(
            report.outcome,
            ConversationOutcome::NoNumber {
                reason: "the caller's number is withheld (\"anonymous\")".into()
            }
        );
        assert!(e.store().conversation_applied("anon").unwrap());
        assert_eq!(apply(e, &ev).outcome, ConversationOutcome::AlreadyApplied);
        // An outbound call's contact is the dialed number: a withheld caller id changes nothing.
        let out = apply(e, &call("out", "outbound", "anonymous", ADA, json!({})));
        assert!(matches!(
            out.outcome,
            ConversationOutcome::Applied { created: true, .. }
        ));
    }

    #[test]
    fn a_merger_result_is_what_gets_written() {
        use crmsync::merge::{MergeFuture, MergeOutcome, MergeRequest, MergeVia, Merger};
        /// Joins with " | " so the test can tell its output from the fallback's.
        struct Joiner;
        impl Merger for Joiner {
            fn merge<'a>(&'a self, req: &'a MergeRequest) -> MergeFuture<'a> {
                Box::pin(async move {
                    assert!(req.instruction.starts_with("Running notes"));
                    MergeOutcome {
                        text: format!("{} | {}", req.old, req.new),
                        via: MergeVia::Llm,
                    }
                })
            }
        }
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        e.manual_set(
            ADA,
            Fields::from([("interaction_summary".into(), s("Old note."))]),
        )
        .unwrap();
        let report = e
            .apply_conversation_blocking(
                &call(
                    "c1",
                    "inbound",
                    ADA,
                    "+1888",
                    json!({"customer_notes": "New note."}),
                ),
                &Joiner,
            )
            .unwrap();
        assert!(report.merge_fallbacks.is_empty());
        assert_eq!(
            e.store().contact(ADA).unwrap().unwrap().fields["interaction_summary"],
            s("Old note. | New note.")
        );
    }

    #[test]
    fn a_batch_resolves_merges_through_the_merger_before_its_transaction() {
        use crmsync::merge::{MergeFuture, MergeOutcome, MergeRequest, MergeVia, Merger};
        /// Joins with " | " so the test can tell its output from the fallback's.
        struct Joiner;
        impl Merger for Joiner {
            fn merge<'a>(&'a self, req: &'a MergeRequest) -> MergeFuture<'a> {
                Box::pin(async move {
                    MergeOutcome {
                        text: format!("{} | {}", req.old, req.new),
                        via: MergeVia::Llm,
                    }
                })
            }
        }
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        e.manual_set(
            ADA,
            Fields::from([("interaction_summary".into(), s("Old note."))]),
        )
        .unwrap();
        let events = [
            call("m0", "inbound", "not a number", "+1888", json!({})),
            call(
                "m1",
                "inbound",
                ADA,
                "+1888",
                json!({"customer_notes": "New note."}),
            ),
            // Same contact in the same batch: merged against the text read before the
            // transaction, which the first event changed, so this one falls back.
            call(
                "m2",
                "inbound",
                ADA,
                "+1888",
                json!({"customer_notes": "Later note."}),
            ),
        ];
        let reports = e.apply_conversations_blocking(&events, &Joiner).unwrap();
        assert!(matches!(
            reports[0].as_ref().unwrap().outcome,
            ConversationOutcome::NoNumber { .. }
        ));
        assert!(reports[1].as_ref().unwrap().merge_fallbacks.is_empty());
        assert_eq!(reports[2].as_ref().unwrap().merge_fallbacks.len(), 1);
        assert_eq!(
            e.store().contact(ADA).unwrap().unwrap().fields["interaction_summary"],
            s("Old note. | New note.\n\nLater note.")
        );
    }
}

mod manual_and_vars {
    use super::*;

    #[test]
    fn manual_edits_are_validated_and_push_when_linked() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        e.import_page(
            "salesforce",
            &[sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T10:00:00Z",
                json!({}),
            )],
            None,
        )
        .unwrap();
        let report = e
            .manual_set(
                "(415) 555-0101",
                Fields::from([
                    ("lead_status".into(), en("qualified")),
                    ("first_name".into(), s("Augusta")),
                ]),
            )
            .unwrap();
        assert_eq!(report.changed, ["first_name", "lead_status"]);
        assert_eq!(report.outbound, ["Lead_Status__c"]);
        let ada = e.store().contact(ADA).unwrap().unwrap();
        assert_eq!(ada.provenance["first_name"].source, Source::Manual);

        let before = e.store().contact(ADA).unwrap();
        let err = e
            .manual_set(
                ADA,
                Fields::from([("emial".into(), s("x")), ("first_name".into(), s("Z"))]),
            )
            .unwrap_err();
        assert!(err.to_string().contains("did you mean `email`"), "{err}");
        let err = e
            .manual_set(ADA, Fields::from([("deal_size".into(), s("lots"))]))
            .unwrap_err();
        assert!(matches!(err, EngineError::WrongType { .. }), "{err}");
        let err = e
            .manual_set(ADA, Fields::from([("lead_status".into(), en("hot"))]))
            .unwrap_err();
        assert!(err.to_string().contains("lead_status"), "{err}");
        let err = e
            .manual_set(ADA, Fields::from([("phone_number".into(), s("+1"))]))
            .unwrap_err();
        assert!(matches!(err, EngineError::ReadOnlyField { .. }), "{err}");
        let err = e.manual_set("not a phone", Fields::new()).unwrap_err();
        assert!(matches!(err, EngineError::InvalidPhone { .. }), "{err}");
        assert_eq!(
            e.store().contact(ADA).unwrap(),
            before,
            "errors write nothing"
        );

        assert_eq!(
            e.parse_field_value("deal_size", &json!("42.5")).unwrap(),
            Value::Number(42.5)
        );
        assert_eq!(
            e.parse_field_value("demo_requested", &json!("yes"))
                .unwrap(),
            Value::Bool(true)
        );
        assert!(e.parse_field_value("renewal_date", &json!("soon")).is_err());
    }

    #[test]
    fn dynamic_variables_are_strings() {
        let f = fixture(Some("salesforce"));
        let e = &f.engine;
        e.manual_set(
            ADA,
            Fields::from([
                ("first_name".into(), s("Ada")),
                ("deal_size".into(), Value::Number(120000.0)),
                ("do_not_call".into(), Value::Bool(false)),
                (
                    "renewal_date".into(),
                    Value::Date(chrono::NaiveDate::from_ymd_opt(2027, 3, 31).unwrap()),
                ),
                (
                    "last_contacted_at".into(),
                    Value::Datetime(Utc.with_ymd_and_hms(2026, 11, 21, 10, 3, 0).unwrap()),
                ),
                ("lead_status".into(), en("working")),
                ("email".into(), Value::Null),
            ]),
        )
        .unwrap();
        let vars = e.dynamic_variables("415-555-0101").unwrap().unwrap();
        let expected: BTreeMap<String, String> = [
            ("deal_size", "120000"),
            ("do_not_call", "false"),
            ("first_name", "Ada"),
            ("last_contacted_at", "2026-11-21T10:03:00Z"),
            ("lead_status", "working"),
            ("phone_number", ADA),
            ("renewal_date", "2027-03-31"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(vars, expected);
        assert_eq!(e.dynamic_variables("+12125550199").unwrap(), None);
    }

    #[test]
    fn the_single_connection_is_active_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let only_hubspot = RULES.split("connection salesforce").next().unwrap().to_string()
            + "connection hubspot {\n inbound {\n phone -> phone_number\n }\n outbound {\n interaction_summary -> notes\n }\n}\n";
        let engine = Engine::new(
            Store::open(dir.path().join("s.redb")).unwrap(),
            compile(&only_hubspot),
            None,
        )
        .unwrap();
        assert_eq!(engine.active_connection(), Some("hubspot"));
        let both = Engine::new(
            Store::open(dir.path().join("t.redb")).unwrap(),
            compile(RULES),
            None,
        )
        .unwrap();
        assert_eq!(both.active_connection(), None);
        let err = Engine::new(
            Store::open(dir.path().join("u.redb")).unwrap(),
            compile(RULES),
            Some("zoho"),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("zoho"));
    }
}

#[test]
fn a_guarded_outbound_mapping_is_pushed_when_its_guard_holds() {
    // The guard is false for every sample value a prober would try (it wants one exact text),
    // so only the compiled `reads` link `Notes__c` to `interaction_summary`.
    let rules = RULES.replace(
        "interaction_summary -> Notes__c",
        "interaction_summary -> Notes__c when interaction_summary == \"ready to send\"",
    );
    assert_ne!(rules, RULES, "the example rules changed: update this test");
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        Store::open(dir.path().join("s.redb")).unwrap(),
        compile(&rules),
        Some("salesforce"),
    )
    .unwrap();
    engine
        .import_page(
            "salesforce",
            &[sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T10:00:00Z",
                json!({}),
            )],
            None,
        )
        .unwrap();
    let held = engine
        .manual_set(
            ADA,
            Fields::from([("interaction_summary".into(), s("draft"))]),
        )
        .unwrap();
    assert!(held.outbound.is_empty(), "{held:?}");
    let report = engine
        .manual_set(
            ADA,
            Fields::from([("interaction_summary".into(), s("ready to send"))]),
        )
        .unwrap();
    assert_eq!(report.outbound, ["Notes__c"]);
    let pending = engine.store().pending_writes(None).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].fields["Notes__c"], json!("ready to send"));
}

#[test]
fn an_outbound_mapping_that_fails_to_evaluate_is_a_dead_letter_not_silence() {
    // `Score__c` cannot be computed from a summary that is no number; `Notes__c` still goes.
    let rules = RULES.replace(
        "interaction_summary -> Notes__c",
        "interaction_summary -> Notes__c\n    to_number(interaction_summary) -> Score__c",
    );
    assert_ne!(rules, RULES, "the example rules changed: update this test");
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        Store::open(dir.path().join("s.redb")).unwrap(),
        compile(&rules),
        Some("salesforce"),
    )
    .unwrap();
    engine
        .import_page(
            "salesforce",
            &[sf(
                "003A00000000000AAA",
                json!(ADA),
                "2026-11-20T10:00:00Z",
                json!({}),
            )],
            None,
        )
        .unwrap();
    let report = engine
        .manual_set(
            ADA,
            Fields::from([("interaction_summary".into(), s("Called twice."))]),
        )
        .unwrap();
    assert_eq!(report.outbound, ["Notes__c"]);
    let store = engine.store();
    let dead = store.dead_letters().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        dead[0].kind,
        crmsync::store::DeadLetterKind::OutboundMapping
    );
    assert_eq!(dead[0].connection, "salesforce");
    assert_eq!(dead[0].key, "003A00000000000AAA");
    assert_eq!(dead[0].phone.as_deref(), Some(ADA));
    assert_eq!(
        dead[0].payload,
        json!({"field": "Score__c", "source": "to_number(interaction_summary)", "value": "Called twice."})
    );
    assert!(dead[0].message.contains("Score__c"), "{}", dead[0].message);
    assert!(
        dead[0].message.contains("not a number"),
        "{}",
        dead[0].message
    );
    assert_eq!(store.outbox_counts().unwrap().dead_letters, 1);
    let pending = store.pending_writes(None).unwrap();
    assert_eq!(pending[0].fields.keys().collect::<Vec<_>>(), ["Notes__c"]);

    // A conversation's change takes the same path.
    let ev = call(
        "call_1",
        "inbound",
        ADA,
        "+18885550100",
        json!({"customer_notes": "Wants a demo."}),
    );
    apply(&engine, &ev);
    let dead = store.dead_letters().unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(
        dead[1].kind,
        crmsync::store::DeadLetterKind::OutboundMapping
    );
    // A value that converts is pushed, and adds no dead letter.
    engine
        .manual_set(ADA, Fields::from([("interaction_summary".into(), s("42"))]))
        .unwrap();
    assert_eq!(store.dead_letters().unwrap().len(), 2);
    let pending = store.pending_writes(None).unwrap();
    assert_eq!(pending[0].fields["Score__c"], json!(42));
}

#[test]
fn store_path_is_kept() {
    let f = fixture(None);
    assert_eq!(f.engine.store().path(), f.path.as_path());
}
