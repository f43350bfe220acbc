//! Order and partial refusals, end to end: the in-process sandboxes over loopback HTTP, the
//! real connectors and dispatcher, a real redb store in a tempdir.
//!
//! - A CRM that refuses one field of a write (Salesforce names it in the SaveResult's
//!   `fields`, HubSpot in the batch error's `context.propertyName`) gets the other fields
//!   again without it; the refused field is a dead letter naming it, and the contact is out of
//!   step for it until the next inbound sync reads the record back.
//! - A conversation delivered late never pushes an older value than the one already sent.

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
use crmsync::store::{ContactRecord, DeadLetterKind, Store};
use crmsync::value::{Fields, Value};
use serde_json::json;
use tempfile::TempDir;

/// Fast retries, no throttling: the waits are milliseconds.
fn tune(mut s: ConnectionSettings) -> ConnectionSettings {
    s.rate_limit = RateLimitConfig {
        requests_per_second: 100_000.0,
        burst: 10_000,
    };
    s.retry = RetrySettings {
        max_attempts: 5,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
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

/// The repository's field and analysis rules with `connection` as given.
fn env(connection_rules: &str, connection: &str, settings: ConnectionSettings) -> Env {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let read = |name: &str| std::fs::read_to_string(rules.join(name)).unwrap();
    let compiled = crmsync::lang::compile_sources(vec![
        ("fields.rules".into(), read("fields.rules")),
        ("analysis.rules".into(), read("analysis.rules")),
        ("connection.rules".into(), connection_rules.to_string()),
    ])
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store.redb")).unwrap();
    let engine = Arc::new(Engine::new(store, compiled, Some(connection)).unwrap());
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

    /// The first contact linked to a record, and the record's id.
    fn first_linked(&self) -> (ContactRecord, String) {
        let contact = self
            .engine
            .store()
            .contacts(None, 1000)
            .unwrap()
            .into_iter()
            .find(|c| c.links.contains_key(&self.target.connection))
            .expect("a linked contact");
        let id = contact.links[&self.target.connection].clone();
        (contact, id)
    }

    fn contact(&self, phone: &str) -> ContactRecord {
        self.engine.store().contact(phone).unwrap().unwrap()
    }

    fn edit(&self, phone: &str, fields: &[(&str, Value)]) {
        let fields: Fields = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.engine.manual_set(phone, fields).unwrap();
    }
}

/// What a partial refusal must do, whichever CRM: `crm_email` reads the record's email,
/// `crm_status` its status, `email_field` is the CRM's name for the email field.
async fn one_bad_field_does_not_sink_the_others(
    env: &Env,
    email_field: &str,
    expected_code: &str,
    crm_email: impl Fn(&str) -> Option<String>,
    crm_status: impl Fn(&str) -> Option<String>,
    statuses: [(&str, &str); 2],
) {
    env.sync().await;
    let (contact, rid) = env.first_linked();
    let crm_email_before = crm_email(&rid);
    // A status the record does not have yet, so the write carries both fields.
    let (status, expected_status) =
        if contact.fields.get("lead_status") == Some(&Value::Enum(statuses[0].0.into())) {
            statuses[1]
        } else {
            statuses[0]
        };
    env.edit(
        &contact.phone,
        &[
            ("email", Value::String("not-an-email".into())),
            ("lead_status", Value::Enum(status.into())),
        ],
    );
    let d = env.dispatch().await;

    // The valid status landed; the email did not.
    assert_eq!(crm_status(&rid).as_deref(), Some(expected_status), "{d:?}");
    assert_eq!(crm_email(&rid), crm_email_before);
    assert_eq!(d.written, 1, "{d:?}");
    assert_eq!(d.dead_lettered.len(), 1, "{d:?}");
    assert_eq!(d.dead_lettered[0].field.as_deref(), Some(email_field));
    assert!(
        d.dead_lettered[0].message.contains(expected_code),
        "{:?}",
        d.dead_lettered[0]
    );

    // The dead letter names the field and keeps the refused value and the CRM's message.
    let dead = env.engine.store().dead_letters().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].kind, DeadLetterKind::FieldWrite);
    assert_eq!(dead[0].field.as_deref(), Some(email_field));
    assert_eq!(dead[0].key, rid);
    assert_eq!(dead[0].payload, json!({ email_field: "not-an-email" }));
    assert!(dead[0].message.contains(expected_code), "{dead:?}");
    assert_eq!(env.engine.store().pending_writes(None).unwrap(), vec![]);

    // The contact says it is out of step with the CRM for that field.
    let marked = env.contact(&contact.phone);
    let step = &marked.out_of_step[&env.target.connection][email_field];
    assert_eq!(step.value, json!("not-an-email"));
    assert!(step.message.contains(expected_code), "{step:?}");
    // The agent is told not to trust it.
    let vars = env
        .engine
        .dynamic_variables(&contact.phone)
        .unwrap()
        .unwrap();
    assert_eq!(vars["crm_out_of_step"], "email");

    // The next inbound sync reads the record back: the CRM's value is the contact's again,
    // and the mark clears.
    env.sync().await;
    let read_back = env.contact(&contact.phone);
    assert!(read_back.out_of_step.is_empty(), "{read_back:?}");
    let vars = env
        .engine
        .dynamic_variables(&contact.phone)
        .unwrap()
        .unwrap();
    assert!(!vars.contains_key("crm_out_of_step"), "{vars:?}");
    assert_ne!(
        read_back.fields.get("email"),
        Some(&Value::String("not-an-email".into()))
    );
    assert_eq!(read_back.fields["lead_status"], Value::Enum(status.into()));
}

mod salesforce {
    use super::*;
    use crmsync::sandbox::credentials::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
    use crmsync::sandbox::salesforce::{SalesforceSandbox, SalesforceSandboxConfig};
    use crmsync::sandbox::FaultConfig;

    const RULES: &str = r#"
connection salesforce {
  object Contact
  inbound {
    Phone              -> phone_number
    lower(trim(Email)) -> email
    Lead_Status__c     -> lead_status {
      "Open - Not Contacted" => new
      "Working - Contacted"  => working
      "Closed - Converted"   => qualified
      else                   => unqualified
    }
  }
  outbound {
    email       -> Email
    lead_status -> Lead_Status__c {
      new => "Open - Not Contacted"
      working => "Working - Contacted"
      qualified => "Closed - Converted"
      unqualified => "Closed - Not Converted"
    }
  }
  activity { log calls }
}
"#;

    async fn start() -> SalesforceSandbox {
        SalesforceSandbox::start(SalesforceSandboxConfig {
            contacts: 5,
            seed: 11,
            page_size: 2000,
            faults: FaultConfig::default(),
            login_port: 0,
            instance_port: 0,
        })
        .await
        .unwrap()
    }

    fn settings(sf: &SalesforceSandbox) -> ConnectionSettings {
        tune(ConnectionSettings::new(
            "salesforce",
            ConnectorKind::Salesforce,
            sf.login_url(),
            Credentials::ClientCredentials {
                client_id: SALESFORCE_CLIENT_ID.into(),
                client_secret: SALESFORCE_CLIENT_SECRET.into(),
            },
        ))
    }

    fn field(sf: &SalesforceSandbox, id: &str, name: &str) -> Option<String> {
        sf.contact(id)
            .and_then(|c| c.get(name).and_then(|v| v.as_str()).map(str::to_owned))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_email_is_dead_lettered_alone_and_the_status_lands() {
        let sf = start().await;
        let env = env(RULES, "salesforce", settings(&sf));
        one_bad_field_does_not_sink_the_others(
            &env,
            "Email",
            "INVALID_EMAIL_ADDRESS",
            |id| field(&sf, id, "Email"),
            |id| field(&sf, id, "Lead_Status__c"),
            [
                ("working", "Working - Contacted"),
                ("qualified", "Closed - Converted"),
            ],
        )
        .await;
    }

    /// A call that ended yesterday, delivered after today's call, pushes nothing old: the
    /// CRM keeps today's status (repository rules: `lead_status` is an `overwrite`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_late_webhook_does_not_push_an_old_status() {
        let sf = start().await;
        let rules = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/salesforce.rules"),
        )
        .unwrap();
        let env = env(&rules, "salesforce", settings(&sf));
        env.sync().await;
        let (contact, rid) = env.first_linked();
        let call = |id: &str, ended: &str, status: &str| -> ConversationEvent {
            serde_json::from_value(json!({
                "id": id, "kind": "call", "direction": "outbound",
                "from_number": "+14155550000", "to_number": contact.phone,
                "end_time": ended,
                "analysis": {"lead_qualification_status": status}
            }))
            .unwrap()
        };
        let today = call("today", "2026-11-21T15:00:00Z", "qualified");
        env.engine
            .apply_conversation(&today, &FallbackMerger)
            .await
            .unwrap();
        env.dispatch().await;
        assert_eq!(
            field(&sf, &rid, "Lead_Status__c").as_deref(),
            Some("Closed - Converted")
        );
        let late = call("yesterday", "2026-11-20T15:00:00Z", "working");
        let report = env
            .engine
            .apply_conversation(&late, &FallbackMerger)
            .await
            .unwrap();
        assert_eq!(report.stale.len(), 2, "{report:?}");
        let d = env.dispatch().await;
        assert_eq!(d.written, 0, "nothing old is pushed: {d:?}");
        assert_eq!(
            field(&sf, &rid, "Lead_Status__c").as_deref(),
            Some("Closed - Converted")
        );
        let after = env.contact(&contact.phone);
        assert_eq!(after.fields["lead_status"], Value::Enum("qualified".into()));
        assert_eq!(
            after.fields["last_contacted_at"],
            Value::Datetime("2026-11-21T15:00:00Z".parse().unwrap())
        );
    }
}

mod hubspot {
    use super::*;
    use crmsync::sandbox::hubspot::{HubSpotSandbox, HubSpotSandboxConfig};

    const RULES: &str = r#"
connection hubspot {
  inbound {
    phone          -> phone_number
    email          -> email
    hs_lead_status -> lead_status {
      "NEW" => new
      "IN_PROGRESS" => working
      "QUALIFIED" => qualified
      else => unqualified
    }
  }
  outbound {
    email       -> email
    lead_status -> hs_lead_status {
      new => "NEW"
      working => "IN_PROGRESS"
      qualified => "QUALIFIED"
      unqualified => "UNQUALIFIED"
    }
  }
}
"#;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_email_is_dead_lettered_alone_and_the_status_lands() {
        let hs = HubSpotSandbox::start(HubSpotSandboxConfig {
            contacts: 5,
            seed: 5,
            ..HubSpotSandboxConfig::default()
        })
        .await
        .unwrap();
        let settings = tune(ConnectionSettings::new(
            "hubspot",
            ConnectorKind::Hubspot,
            hs.base_url(),
            Credentials::Bearer(hs.token().to_string()),
        ));
        let env = env(RULES, "hubspot", settings);
        let property = |id: &str, name: &str| hs.contact_property(id.parse().unwrap(), name);
        one_bad_field_does_not_sink_the_others(
            &env,
            "email",
            "INVALID_EMAIL",
            |id| property(id, "email"),
            |id| property(id, "hs_lead_status"),
            [("working", "IN_PROGRESS"), ("qualified", "QUALIFIED")],
        )
        .await;
    }
}
