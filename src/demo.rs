//! `crmsync demo`: the whole data path, end to end, on loopback sandboxes and a temporary store.
//!
//! For each CRM in turn (Salesforce, then HubSpot), with that connection active:
//! 1. the sandbox holds seeded contacts plus the sample records of `examples/records/`
//!    (messy phones, a shared phone, a missing one, as a real CRM has);
//! 2. a full inbound sync imports them through the connection's `inbound` rules;
//! 3. the sample conversation events of `examples/events/` (Retell `call_analyzed` /
//!    `chat_analyzed` bodies and a generic event) go through the `analysis` rules;
//! 4. one dispatch pass pushes the outbound writes and activities to the CRM;
//! 5. the CRM is read back, so the report shows what actually arrived there.
//!
//! It uses the same engine, connectors and dispatcher as `crmsync sync` and the daemon; only
//! the CRMs are sandboxes. `merge` uses the fallback (old text, a blank line, new text), so the
//! run needs no network and no API key.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value as Json;

use crate::config::RetellSettings;
use crate::connector::config::{ConnectionSettings, Credentials};
use crate::connector::dispatch::{dispatch_pass, DispatchReport, DispatchTarget};
use crate::connector::report::InboundReport;
use crate::connector::sync::{sync_inbound, NoProgress, SyncOptions, SyncPlan};
use crate::connector::{AnyConnector, Connector, ConnectorKind};
use crate::engine::retell::{self, RetellEvent};
use crate::engine::{ConversationOutcome, ConversationReport, Engine, ResolvedEvent};
use crate::event::ConversationEvent;
use crate::lang::Compiled;
use crate::merge::FallbackMerger;
use crate::sandbox::credentials::{HUBSPOT_TOKEN, SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
use crate::sandbox::{Sandboxes, SandboxesConfig};
use crate::store::Store;
use crate::value::dynamic::DynValue;

/// What to run the demo with.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Directory of the rule files (the example set is `rules/`).
    pub rules: PathBuf,
    /// Directory holding `records/` and `events/` (the repository's `examples/`).
    pub examples: PathBuf,
    /// Seeded contacts in each sandbox, besides the sample records.
    pub contacts: u32,
    pub seed: u64,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the rules in {dir} do not compile:\n{rendered}")]
    Rules { dir: PathBuf, rendered: String },
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("{0}")]
    Runtime(String),
}

/// The whole report: one section per CRM.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    pub sections: Vec<CrmSection>,
}

/// What happened with one CRM as the active connection.
#[derive(Debug, Clone, Serialize)]
pub struct CrmSection {
    pub connection: String,
    /// Sample records added to the sandbox, as (record id, name).
    pub sample_records: Vec<(String, String)>,
    pub sync: InboundReport,
    pub conversations: Vec<ConversationLine>,
    pub dispatch: DispatchReport,
    /// CRM records that received a write-back, as the CRM shows them now.
    pub written_back: Vec<CrmRecordView>,
    /// Activities the CRM holds now.
    pub activities: Vec<Json>,
    /// Requests sent to the CRM, by endpoint.
    pub api_calls: std::collections::BTreeMap<String, u64>,
}

/// One sample event and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationLine {
    pub file: String,
    pub report: ConversationReport,
    /// Changed contact fields with their new values.
    pub changed_values: Vec<(String, Json)>,
}

/// A CRM record's written fields, read back from the CRM.
#[derive(Debug, Clone, Serialize)]
pub struct CrmRecordView {
    pub record_id: String,
    pub phone: String,
    pub fields: Vec<(String, Json)>,
}

fn input(path: &Path, message: impl Into<String>) -> DemoError {
    DemoError::Input {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn runtime(message: impl std::fmt::Display) -> DemoError {
    DemoError::Runtime(message.to_string())
}

/// Compiles the rules (their diagnostics rendered into the error on failure).
fn compile(dir: &Path) -> Result<Compiled, DemoError> {
    crate::lang::compile_dir(dir).map_err(|diagnostics| DemoError::Rules {
        dir: dir.to_path_buf(),
        rendered: crate::lang::diagnostics::render::render_all(&diagnostics, false),
    })
}

/// A sample event file: a Retell webhook body, or the generic event.
enum SampleEvent {
    Retell(RetellEvent),
    Generic(ConversationEvent),
}

/// The sample events, by file name, in name order.
fn sample_events(examples: &Path) -> Result<Vec<(String, SampleEvent)>, DemoError> {
    let dir = examples.join("events");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|err| input(&dir, err.to_string()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut events = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).map_err(|err| input(&path, err.to_string()))?;
        let json: Json =
            serde_json::from_slice(&bytes).map_err(|err| input(&path, err.to_string()))?;
        let event = if retell::is_webhook(&json) {
            match retell::parse_webhook(&bytes).map_err(|err| input(&path, err.to_string()))? {
                Some(event) => SampleEvent::Retell(event),
                None => continue,
            }
        } else {
            SampleEvent::Generic(
                serde_json::from_value(json).map_err(|err| input(&path, err.to_string()))?,
            )
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        events.push((name, event));
    }
    Ok(events)
}

/// The sample CRM records of `examples/records/<file>`.
fn sample_records(examples: &Path, file: &str) -> Result<Vec<Json>, DemoError> {
    let path = examples.join("records").join(file);
    let text = std::fs::read_to_string(&path).map_err(|err| input(&path, err.to_string()))?;
    let json: Json = serde_json::from_str(&text).map_err(|err| input(&path, err.to_string()))?;
    let records = json
        .get("records")
        .or_else(|| json.get("results"))
        .or(Some(&json))
        .and_then(Json::as_array)
        .cloned()
        .ok_or_else(|| {
            input(
                &path,
                "expected a JSON array of records, or `records`/`results`",
            )
        })?;
    Ok(records)
}

/// Fields the CRM sets itself, which a create must not send.
const SYSTEM_FIELDS: [&str; 8] = [
    "attributes",
    "Id",
    "SystemModstamp",
    "LastModifiedDate",
    "CreatedDate",
    "createdate",
    "lastmodifieddate",
    "hs_object_id",
];

fn display_name(fields: &serde_json::Map<String, Json>) -> String {
    let part = |a: &str, b: &str| {
        fields
            .get(a)
            .or_else(|| fields.get(b))
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string()
    };
    format!(
        "{} {}",
        part("FirstName", "firstname"),
        part("LastName", "lastname")
    )
    .trim()
    .to_string()
}

/// A sample conversation as if it ended now. The samples carry fixed past times, and the
/// records the demo just created in the sandboxes are stamped with the real time: replayed with
/// its own times, a sample would be older than the CRM's data, and a late conversation never
/// overwrites newer values (docs/sync-semantics.md).
fn just_ended(mut event: crate::event::ConversationEvent) -> crate::event::ConversationEvent {
    let now = chrono::Utc::now();
    let length = match (event.start_time, event.end_time) {
        (Some(start), Some(end)) => end - start,
        _ => chrono::Duration::zero(),
    };
    event.start_time = event.start_time.map(|_| now - length);
    event.end_time = event.end_time.map(|_| now);
    event
}

/// Runs the demo and returns its report.
pub async fn run(options: &DemoOptions) -> Result<DemoReport, DemoError> {
    let events = sample_events(&options.examples)?;
    // Compile once up front so a rule error is reported before anything starts.
    compile(&options.rules)?;
    let sandboxes = Sandboxes::start_both(SandboxesConfig {
        contacts: options.contacts,
        seed: options.seed,
        ..SandboxesConfig::default()
    })
    .await
    .map_err(runtime)?;
    let store_dir = tempfile::tempdir().map_err(runtime)?;

    let mut sections = Vec::new();
    for kind in [ConnectorKind::Salesforce, ConnectorKind::Hubspot] {
        let section = run_one(options, &sandboxes, kind, &events, store_dir.path()).await;
        match section {
            Ok(section) => sections.push(section),
            Err(err) => {
                sandboxes.shutdown().await;
                return Err(err);
            }
        }
    }
    sandboxes.shutdown().await;
    Ok(DemoReport { sections })
}

async fn run_one(
    options: &DemoOptions,
    sandboxes: &Sandboxes,
    kind: ConnectorKind,
    events: &[(String, SampleEvent)],
    store_dir: &Path,
) -> Result<CrmSection, DemoError> {
    let name = kind.as_str().to_string();
    let compiled = compile(&options.rules)?;
    let rules = compiled.ruleset.connection(&name).ok_or_else(|| {
        runtime(format!(
            "the rules in {} define no `{name}` connection",
            options.rules.display()
        ))
    })?;
    let plan = SyncPlan::from_rules(rules);

    // 1. The sample records go into the sandbox, as a CRM user would create them.
    let mut sample_records = Vec::new();
    let file = match kind {
        ConnectorKind::Salesforce => "salesforce_contacts.json",
        ConnectorKind::Hubspot => "hubspot_contacts.json",
    };
    for record in sample_records_of(&options.examples, file)? {
        // Values are trimmed: like the real CRMs, the sandboxes validate e-mail addresses on
        // create, and the samples keep stray spaces for `import` to show `trim` at work.
        let fields: serde_json::Map<String, Json> = record
            .into_iter()
            .filter(|(k, v)| !SYSTEM_FIELDS.contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| match v {
                Json::String(text) => (k, Json::String(text.trim().to_string())),
                other => (k, other),
            })
            .collect();
        let label = display_name(&fields);
        // The samples also hold values a real CRM would refuse (text in a number field, an
        // unknown picklist value), there for `crmsync import` to report. The sandbox refuses
        // them the same way; the record is then created without the refused fields.
        let create = |fields: &serde_json::Map<String, Json>| -> Result<String, String> {
            match kind {
                ConnectorKind::Salesforce => sandboxes
                    .salesforce
                    .create_contact(Json::Object(fields.clone()))
                    .map_err(|err| err.to_string()),
                ConnectorKind::Hubspot => {
                    let pairs: Vec<(String, String)> = fields
                        .iter()
                        .map(|(k, v)| {
                            let text = v
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string());
                            (k.clone(), text)
                        })
                        .collect();
                    let refs: Vec<(&str, &str)> = pairs
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    sandboxes
                        .hubspot
                        .create_contact(&refs)
                        .map(|id| id.to_string())
                        .map_err(|err| err.to_string())
                }
            }
        };
        let (id, label) = match create(&fields) {
            Ok(id) => (id, label),
            Err(message) => {
                let refused: Vec<String> = fields
                    .keys()
                    .filter(|k| message.contains(k.as_str()))
                    .cloned()
                    .collect();
                let kept: serde_json::Map<String, Json> = fields
                    .iter()
                    .filter(|(k, _)| !refused.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let id = create(&kept).map_err(runtime)?;
                (
                    id,
                    format!("{label} [the CRM refused {}]", refused.join(", ")),
                )
            }
        };
        sample_records.push((id, label));
    }

    // 2. A temporary store, this connection active, and a full sync.
    let store = Store::open(store_dir.join(format!("{name}.redb"))).map_err(runtime)?;
    let engine = std::sync::Arc::new(Engine::new(store, compiled, Some(&name)).map_err(runtime)?);
    let (base_url, credentials) = match kind {
        ConnectorKind::Salesforce => (
            sandboxes.salesforce.login_url(),
            Credentials::ClientCredentials {
                client_id: SALESFORCE_CLIENT_ID.to_string(),
                client_secret: SALESFORCE_CLIENT_SECRET.to_string(),
            },
        ),
        ConnectorKind::Hubspot => (
            sandboxes.hubspot.base_url(),
            Credentials::Bearer(HUBSPOT_TOKEN.to_string()),
        ),
    };
    let settings = ConnectionSettings::new(name.clone(), kind, base_url, credentials);
    let connector = Arc::new(AnyConnector::new(settings).map_err(runtime)?);
    let sync = sync_inbound(
        connector.clone(),
        &engine,
        &plan,
        SyncOptions { full: true },
        &NoProgress,
    )
    .await
    .map_err(runtime)?;

    // 3. The sample conversations.
    let mut conversations = Vec::new();
    for (file, sample) in events {
        let event = match sample {
            SampleEvent::Generic(event) => Ok(event.clone()),
            // A chat's number comes from its metadata (the demo has no chat_inbound).
            SampleEvent::Retell(event) => match engine
                .resolve_retell(event.clone(), &RetellSettings::default().chat_number_keys)
                .map_err(|err| runtime(format!("{file}: {err}")))?
            {
                ResolvedEvent::Ready(event) => Ok(event),
                ResolvedEvent::NoNumber(report) => Err(report),
            },
        };
        let report = match event.map(just_ended) {
            Ok(event) => engine
                .apply_conversation(&event, &FallbackMerger)
                .await
                .map_err(|err| runtime(format!("{file}: {err}")))?,
            Err(report) => report,
        };
        let changed_values = match &report.outcome {
            ConversationOutcome::Applied { phone, changed, .. } => {
                let contact = engine.store().contact(phone).map_err(runtime)?;
                changed
                    .iter()
                    .map(|field| {
                        let value = contact
                            .as_ref()
                            .and_then(|c| c.fields.get(field))
                            .map(|v| DynValue::from_value(v).to_json())
                            .unwrap_or(Json::Null);
                        (field.clone(), value)
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        conversations.push(ConversationLine {
            file: file.clone(),
            report,
            changed_values,
        });
    }

    // 4. One dispatch pass.
    let target = DispatchTarget {
        connection: name.clone(),
        object: plan.object.clone(),
    };
    let dispatch = dispatch_pass(connector.as_ref(), engine.store(), &target)
        .await
        .map_err(runtime)?;

    // 5. Read the CRM back.
    let mut written_back = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for line in &conversations {
        let ConversationOutcome::Applied {
            phone, outbound, ..
        } = &line.report.outcome
        else {
            continue;
        };
        if outbound.is_empty() || !seen.insert(phone.clone()) {
            continue;
        }
        let Some(contact) = engine.store().contact(phone).map_err(runtime)? else {
            continue;
        };
        let Some(record_id) = contact.links.get(&name) else {
            continue;
        };
        let crm_fields = rules_outbound_targets(&engine, &name);
        let record = match kind {
            ConnectorKind::Salesforce => sandboxes.salesforce.contact(record_id),
            ConnectorKind::Hubspot => record_id
                .parse::<u64>()
                .ok()
                .and_then(|id| sandboxes.hubspot.contact(id))
                .and_then(|c| c.get("properties").cloned()),
        };
        let fields = crm_fields
            .iter()
            .map(|f| {
                let value = record
                    .as_ref()
                    .and_then(|r| r.get(f))
                    .cloned()
                    .unwrap_or(Json::Null);
                (f.clone(), value)
            })
            .collect();
        written_back.push(CrmRecordView {
            record_id: record_id.clone(),
            phone: phone.clone(),
            fields,
        });
    }
    let activities = match kind {
        ConnectorKind::Salesforce => sandboxes.salesforce.tasks(),
        ConnectorKind::Hubspot => sandboxes
            .hubspot
            .calls()
            .into_iter()
            .chain(sandboxes.hubspot.communications())
            .map(|a| {
                serde_json::json!({
                    "type": format!("{:?}", a.kind),
                    "id": a.id,
                    "contact_ids": a.contact_ids,
                    "properties": a.properties,
                })
            })
            .collect(),
    };
    Ok(CrmSection {
        connection: name,
        sample_records,
        sync,
        conversations,
        dispatch,
        written_back,
        activities,
        api_calls: connector.metrics().calls_by_endpoint,
    })
}

fn sample_records_of(
    examples: &Path,
    file: &str,
) -> Result<Vec<serde_json::Map<String, Json>>, DemoError> {
    sample_records(examples, file)?
        .into_iter()
        .map(|record| {
            // HubSpot records keep their values under `properties`.
            let fields = record.get("properties").cloned().unwrap_or(record);
            match fields {
                Json::Object(map) => Ok(map),
                _ => Err(input(
                    &examples.join("records").join(file),
                    "a record is not a JSON object",
                )),
            }
        })
        .collect()
}

/// The CRM fields the connection's outbound rules write.
fn rules_outbound_targets(engine: &Engine, connection: &str) -> Vec<String> {
    engine
        .ruleset()
        .connection(connection)
        .map(|c| c.outbound_target_fields())
        .unwrap_or_default()
}

/// The human-readable report.
pub fn render(report: &DemoReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "crmsync demo: example rules, Salesforce and HubSpot sandboxes on 127.0.0.1, a temporary store\n"
    );
    for section in &report.sections {
        render_section(&mut out, section);
    }
    let _ = writeln!(
        out,
        "Everything above ran through the same engine, connectors and dispatcher as `crmsync sync`\n\
         and `crmsync run`; only the CRMs were sandboxes. Nothing was kept: the store was temporary."
    );
    out
}

fn render_section(out: &mut String, s: &CrmSection) {
    let title = match s.connection.as_str() {
        "salesforce" => "Salesforce",
        "hubspot" => "HubSpot",
        other => other,
    };
    let _ = writeln!(out, "== {title} (active connection `{}`) ==", s.connection);
    let _ = writeln!(
        out,
        "CRM: seeded contacts plus {} sample records from examples/records/ ({})",
        s.sample_records.len(),
        s.sample_records
            .iter()
            .map(|(id, name)| format!("{name} {id}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let i = &s.sync;
    let _ = writeln!(
        out,
        "\n1. Full sync: read {} records in {} page(s): {} contacts created, {} updated, {} unchanged",
        i.read, i.pages, i.created, i.updated, i.unchanged
    );
    if !i.skipped.is_empty() {
        let _ = writeln!(
            out,
            "   skipped {} (never stops the sync):",
            i.skipped.len()
        );
        for skipped in &i.skipped {
            let _ = writeln!(out, "     {}: {}", skipped.record_id, skipped.reason);
        }
    }
    if !i.duplicates.is_empty() {
        let _ = writeln!(
            out,
            "   {} record(s) share a phone with a more recently modified one (that one wins):",
            i.duplicates.len()
        );
        for d in &i.duplicates {
            let _ = writeln!(
                out,
                "     {}: {} kept, {} reported",
                d.phone, d.kept_record_id, d.record_id
            );
        }
    }
    for e in &i.field_errors {
        let _ = writeln!(out, "   field not written: {e:?}");
    }

    let _ = writeln!(
        out,
        "\n2. Conversations from examples/events/ (analysis rules):"
    );
    for line in &s.conversations {
        let r = &line.report;
        match &r.outcome {
            ConversationOutcome::Applied {
                phone,
                created,
                outbound,
                activity,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "   {} ({}) -> {} contact {phone}",
                    line.file,
                    r.conversation_id,
                    if *created { "new" } else { "existing" }
                );
                for (field, value) in &line.changed_values {
                    let _ = writeln!(out, "       {field} = {}", short(value));
                }
                if line.changed_values.is_empty() {
                    let _ = writeln!(out, "       no field changed");
                }
                for problem in &r.field_errors {
                    let _ = writeln!(
                        out,
                        "       not written: {} = {} ({})",
                        problem.field, problem.value, problem.reason
                    );
                }
                for fallback in &r.merge_fallbacks {
                    let _ = writeln!(
                        out,
                        "       {}: merged by keeping both texts ({})",
                        fallback.field, fallback.reason
                    );
                }
                let push = if outbound.is_empty() {
                    "nothing to push (contact not imported from this CRM, or no outbound mapping changed)".to_string()
                } else {
                    format!("queued for {title}: {}", outbound.join(", "))
                };
                let _ = writeln!(out, "       {push}");
                let _ = writeln!(
                    out,
                    "       activity: {}",
                    if *activity {
                        "queued"
                    } else {
                        "none (contact not imported from this CRM, or this kind is not logged)"
                    }
                );
            }
            ConversationOutcome::AlreadyApplied => {
                let _ = writeln!(out, "   {}: already applied, nothing changed", line.file);
            }
            ConversationOutcome::NoNumber { .. } => {
                let _ = writeln!(
                    out,
                    "   {} ({}): no phone number (web call or API chat), nothing to do",
                    line.file, r.conversation_id
                );
            }
        }
    }

    let d = &s.dispatch;
    let _ = writeln!(
        out,
        "\n3. Dispatch: {} record(s) written in {} request(s), {} activit{} logged, {} deferred, {} dead letter(s)",
        d.written,
        d.write_requests,
        d.activities_logged,
        if d.activities_logged == 1 { "y" } else { "ies" },
        d.deferred,
        d.dead_lettered.len()
    );
    for dead in &d.dead_lettered {
        let _ = writeln!(
            out,
            "   dead letter {} {}: {}",
            dead.kind, dead.key, dead.message
        );
    }

    let _ = writeln!(out, "\n4. {title} now shows:");
    for record in &s.written_back {
        let _ = writeln!(out, "   record {} ({}):", record.record_id, record.phone);
        for (field, value) in &record.fields {
            let _ = writeln!(out, "       {field} = {}", short(value));
        }
    }
    for activity in &s.activities {
        let _ = writeln!(out, "   activity {}", describe_activity(activity));
    }
    if s.written_back.is_empty() && s.activities.is_empty() {
        let _ = writeln!(out, "   (nothing was written back)");
    }

    let total: u64 = s.api_calls.values().sum();
    let _ = writeln!(
        out,
        "\n5. API calls to {title}: {total} ({})\n",
        s.api_calls
            .iter()
            .map(|(endpoint, n)| format!("{endpoint} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// A value on one line, long texts cut.
fn short(value: &Json) -> String {
    let text = match value {
        Json::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if text.chars().count() > 110 {
        let cut: String = text.chars().take(107).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn describe_activity(activity: &Json) -> String {
    // Salesforce Task.
    if let Some(subject) = activity.get("Subject").and_then(Json::as_str) {
        let field = |name: &str| {
            activity
                .get(name)
                .map(|v| match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
        };
        return format!(
            "Task {}: {subject:?}, WhoId {}, Status {}, TaskSubtype {}, CallDurationInSeconds {}",
            field("Id"),
            field("WhoId"),
            field("Status"),
            field("TaskSubtype"),
            field("CallDurationInSeconds")
        );
    }
    // HubSpot call or communication: the properties that say what it is.
    let props = &activity["properties"];
    let details: Vec<String> = [
        ("hs_call_status", "status"),
        ("hs_call_direction", "direction"),
        ("hs_call_duration", "duration ms"),
        ("hs_communication_channel_type", "channel"),
        ("hs_call_title", "title"),
    ]
    .iter()
    .filter_map(|(name, label)| {
        props
            .get(*name)
            .and_then(Json::as_str)
            .filter(|v| !v.is_empty())
            .map(|v| format!("{label} {v}"))
    })
    .collect();
    format!(
        "{} {} on contact(s) {}: {}",
        activity["type"].as_str().unwrap_or("activity"),
        activity["id"],
        activity["contact_ids"],
        details.join(", ")
    )
}
