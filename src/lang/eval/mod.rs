//! The compiled `Ruleset` and pure evaluation (`docs/rule-language.md`, `docs/evaluation.md`).
//!
//! `Ruleset::build` turns a [`CheckedProgram`] into trees of resolved nodes once (paths split,
//! functions bound to function pointers, value maps and field types attached to each mapping);
//! evaluating a record then only walks them, borrowing from the record. No I/O, no clock, no
//! randomness: the same input gives the same output.
//!
//! Semantics in one place:
//! - a mapping whose source is **missing** writes nothing; a CRM **null** clears the field
//!   (inbound), an analysis null writes nothing;
//! - blank text is "no value" for non-string targets (HubSpot sends `""` for unset properties);
//! - `phone_number` is normalized to E.164 with the default region; when that fails (or the
//!   record has no phone) the output holds only that error and the engine skips the record;
//! - `overwrite` writes, `fill_if_empty` writes only over null/missing/blank, `merge` returns
//!   [`Change::Merge`] unless the stored value is empty; a value equal to the stored one (all
//!   empty values are equal) writes nothing;
//! - a guard that is false, null or missing skips the mapping;
//! - an error (coercion, function) is reported for that field; the other fields still apply.

mod expr;
mod mapping;
mod print;
mod text_copy;
mod value_map;

use crate::event::ConversationEvent;
use crate::lang::check::{CheckedProgram, FieldTable, OutboundMapping};
use crate::lang::functions::CallContext;
use crate::value::phone::{PhoneError, PhoneNormalizer};
use crate::value::vars::{format_date, format_number};
use crate::value::{DynValue, Fields, Value};

pub use crate::lang::check::{ConnectionKind, FieldDef};

use expr::{truth, Node, Root, Scope};
use mapping::{collect_contact_fields, CompiledMapping, Flow};
use value_map::CompiledValueMap;

/// One field change produced by evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change<'r> {
    /// Write `value` (possibly `Value::Null`: the CRM cleared the field).
    /// WHY a borrowed name: field names belong to the compiled rules; borrowing them makes a
    /// change cost no allocation (nor reference count) for its name, and a full sync produces
    /// millions of changes.
    Set { field: &'r str, value: Value },
    /// `merge` mode with a non-empty stored value: the runtime combines `old` and `new` through
    /// its `Merger`, with the field description as `instruction`.
    Merge {
        field: &'r str,
        old: String,
        new: String,
        instruction: String,
    },
}

impl Change<'_> {
    /// The contact field this change writes.
    pub fn field(&self) -> &str {
        match self {
            Change::Set { field, .. } | Change::Merge { field, .. } => field,
        }
    }
}

/// A field that could not be written, and why. Never silent: the engine reports these.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldError {
    /// The CRM record id (`Id` / `id`) or conversation id, when the input has one.
    pub record_id: Option<String>,
    /// The contact field (inbound/analysis) or CRM field (outbound) concerned.
    pub field: String,
    /// The mapping's source (or guard) as written: a CRM field name or expression text.
    pub source: String,
    /// The offending value.
    pub value: serde_json::Value,
    pub reason: String,
}

/// The result of evaluating one input.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct EvalOutput<'r> {
    /// In mapping order; at most one per field.
    pub changes: Vec<Change<'r>>,
    pub errors: Vec<FieldError>,
}

/// Outbound values for one CRM record, with the mappings that failed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OutboundOutput {
    /// CRM field → value, in mapping order, at most one per CRM field.
    pub values: Vec<(String, serde_json::Value)>,
    pub errors: Vec<FieldError>,
}

/// Error from [`Ruleset::set_default_region`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesetError {
    #[error(transparent)]
    Region(#[from] PhoneError),
}

/// One compiled outbound mapping.
#[derive(Debug, Clone)]
struct CompiledOutbound {
    target: String,
    /// Contact fields read: the mapping is due when one of them changed.
    reads: Vec<String>,
    source: Node,
    source_text: String,
    value_map: Option<CompiledValueMap>,
    guard: Option<Node>,
}

/// One connection's compiled rules.
#[derive(Debug, Clone)]
pub struct ConnectionRules {
    /// `salesforce` or `hubspot`.
    pub name: String,
    pub kind: ConnectionKind,
    /// `object NAME` (e.g. `Contact`), when given.
    pub object: Option<String>,
    pub log_calls: bool,
    pub log_chats: bool,
    /// The CRM field holding the phone (the source path of the `phone_number` mapping).
    pub phone_source: Option<String>,
    inbound: Vec<CompiledMapping>,
    outbound: Vec<CompiledOutbound>,
}

impl ConnectionRules {
    /// CRM fields the inbound rules read, in first-use order: Salesforce relationship paths
    /// dotted (`Account.Name`, valid in a SOQL `SELECT`), HubSpot property names.
    pub fn inbound_source_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for path in self.inbound.iter().flat_map(|m| m.reads.iter()) {
            let name = match self.kind {
                ConnectionKind::Salesforce => path.join("."),
                ConnectionKind::Hubspot => path.first().cloned().unwrap_or_default(),
            };
            if !name.is_empty() && !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    /// The record paths the inbound mappings that write contact field `field` read (none when
    /// no inbound mapping writes it).
    pub fn inbound_reads_of(&self, field: &str) -> Vec<&[String]> {
        self.inbound
            .iter()
            .filter(|m| m.target == field)
            .flat_map(|m| m.reads.iter().map(Vec::as_slice))
            .collect()
    }

    /// CRM fields the outbound rules write.
    pub fn outbound_target_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.outbound {
            if !out.contains(&m.target) {
                out.push(m.target.clone());
            }
        }
        out
    }

    /// Contact fields the outbound rules read.
    pub fn outbound_source_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in self.outbound.iter().flat_map(|m| m.reads.iter()) {
            if !out.contains(f) {
                out.push(f.clone());
            }
        }
        out
    }

    /// Contact fields written by inbound rules, in mapping order.
    pub fn inbound_target_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.inbound {
            if !out.contains(&m.target) {
                out.push(m.target.clone());
            }
        }
        out
    }

    /// Number of inbound and outbound mappings.
    pub fn mapping_counts(&self) -> (usize, usize) {
        (self.inbound.len(), self.outbound.len())
    }

    /// The record's id, for error reports.
    fn record_id(&self, record: &serde_json::Value) -> Option<String> {
        let key = match self.kind {
            ConnectionKind::Salesforce => "Id",
            ConnectionKind::Hubspot => "id",
        };
        match record.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn root<'a>(&self, record: &'a serde_json::Value) -> Root<'a> {
        let top = record.as_object();
        match self.kind {
            ConnectionKind::Salesforce => Root::Record {
                primary: top,
                secondary: None,
            },
            ConnectionKind::Hubspot => Root::Record {
                primary: record.get("properties").and_then(|p| p.as_object()),
                secondary: top,
            },
        }
    }
}

/// A compiled rule set: the contact schema, the analysis mappings and every connection.
#[derive(Debug, Clone)]
pub struct Ruleset {
    fields: Vec<FieldDef>,
    analysis: Vec<CompiledMapping>,
    connections: Vec<ConnectionRules>,
    phone: PhoneNormalizer,
}

impl Ruleset {
    /// Compile a checked program. Infallible: the checker has validated everything.
    pub fn build(program: &CheckedProgram) -> Ruleset {
        let table = &program.fields;
        let mut analysis: Vec<CompiledMapping> = program
            .analysis
            .iter()
            .map(|m| CompiledMapping::build(m, table))
            .collect();
        mark_repeated(&mut analysis);
        let connections = program
            .connections
            .iter()
            .map(|c| {
                let mut inbound: Vec<CompiledMapping> = c
                    .inbound
                    .iter()
                    .map(|m| CompiledMapping::build(m, table))
                    .collect();
                mark_repeated(&mut inbound);
                // The phone mapping runs first: without a phone the record is skipped anyway.
                inbound.sort_by_key(|m| !m.is_phone);
                let phone_source = inbound
                    .iter()
                    .find(|m| m.is_phone)
                    .and_then(|m| m.reads.first())
                    .map(|p| p.join("."));
                // Every CRM field the phone may come from (`mobilephone ?? phone` reads both).
                let phone_fields: Vec<String> = inbound
                    .iter()
                    .filter(|m| m.is_phone)
                    .flat_map(|m| m.reads.iter().map(|p| p.join(".")))
                    .collect();
                let outbound = c
                    .outbound
                    .iter()
                    .filter_map(|m| build_outbound(m, table, &phone_fields))
                    .collect();
                ConnectionRules {
                    name: c.kind.name().to_string(),
                    kind: c.kind,
                    object: c.object.clone(),
                    log_calls: c.activity.calls,
                    log_chats: c.activity.chats,
                    phone_source,
                    inbound,
                    outbound,
                }
            })
            .collect();
        Ruleset {
            fields: table.fields.clone(),
            analysis,
            connections,
            phone: PhoneNormalizer::default(),
        }
    }

    /// Default region for phone numbers without a country code (ISO 3166, default `US`).
    pub fn set_default_region(&mut self, region: &str) -> Result<(), RulesetError> {
        self.phone = PhoneNormalizer::new(region)?.with_memo_capacity(self.phone.memo_capacity());
        Ok(())
    }

    /// Memoize up to `capacity` phone normalizations (default 65,536; 0 disables the memo).
    pub fn set_phone_memo_capacity(&mut self, capacity: usize) {
        self.phone = self.phone.clone().with_memo_capacity(capacity);
    }

    /// The phone normalizer in use (default region applied).
    pub fn phone(&self) -> &PhoneNormalizer {
        &self.phone
    }

    /// Every contact field, built-ins first.
    pub fn fields(&self) -> &[FieldDef] {
        &self.fields
    }

    /// A contact field by name.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Every connection, in rule-file order.
    pub fn connections(&self) -> &[ConnectionRules] {
        &self.connections
    }

    /// A connection by name (`salesforce`, `hubspot`).
    pub fn connection(&self, name: &str) -> Option<&ConnectionRules> {
        self.connections.iter().find(|c| c.name == name)
    }

    /// Number of analysis mappings.
    pub fn analysis_mapping_count(&self) -> usize {
        self.analysis.len()
    }

    fn cx(&self) -> CallContext<'_> {
        CallContext { phone: &self.phone }
    }

    /// Apply a connection's inbound rules to one CRM record (as the CRM's API returns it)
    /// against the contact's stored fields.
    pub fn eval_inbound(
        &self,
        connection: &str,
        record: &serde_json::Value,
        current: &Fields,
    ) -> EvalOutput<'_> {
        self.eval_inbound_mappings(connection, record, current, true)
    }

    /// [`Ruleset::eval_inbound`] for a record whose phone the caller already resolved with
    /// [`Ruleset::inbound_phone`] (an import): the `phone_number` mapping is not evaluated
    /// again, so the output has no `phone_number` change.
    pub fn eval_inbound_known_phone(
        &self,
        connection: &str,
        record: &serde_json::Value,
        current: &Fields,
    ) -> EvalOutput<'_> {
        self.eval_inbound_mappings(connection, record, current, false)
    }

    fn eval_inbound_mappings(
        &self,
        connection: &str,
        record: &serde_json::Value,
        current: &Fields,
        with_phone: bool,
    ) -> EvalOutput<'_> {
        let Some(rules) = self.connection(connection) else {
            return failure(
                None,
                connection,
                format!("no connection named {connection:?}"),
            );
        };
        if !record.is_object() {
            return failure(None, "", "the record is not a JSON object".to_string());
        }
        let scope = Scope {
            root: rules.root(record),
            current,
            cx: self.cx(),
        };
        let record_id = || rules.record_id(record);
        let mut out = EvalOutput {
            changes: Vec::with_capacity(rules.inbound.len()),
            errors: Vec::new(),
        };
        for m in &rules.inbound {
            if m.is_phone && !with_phone {
                continue;
            }
            m.apply(&scope, Flow::Inbound, &record_id, &mut out);
            if m.is_phone && !out.errors.is_empty() {
                // No usable phone: nothing else matters, the record is skipped.
                out.changes.clear();
                return out;
            }
        }
        out
    }

    /// The record's phone number in E.164, or the error explaining why it has none; evaluates
    /// only the `phone_number` mapping.
    pub fn inbound_phone(
        &self,
        connection: &str,
        record: &serde_json::Value,
    ) -> Result<String, Box<FieldError>> {
        let empty = Fields::new();
        let Some(rules) = self.connection(connection) else {
            let mut out = failure(
                None,
                connection,
                format!("no connection named {connection:?}"),
            );
            return Err(Box::new(out.errors.remove(0)));
        };
        let scope = Scope {
            root: rules.root(record),
            current: &empty,
            cx: self.cx(),
        };
        let record_id = || rules.record_id(record);
        let mut out = EvalOutput::default();
        if let Some(m) = rules.inbound.iter().find(|m| m.is_phone) {
            m.apply(&scope, Flow::Inbound, &record_id, &mut out);
        }
        if let Some(e) = out.errors.pop() {
            return Err(Box::new(e));
        }
        match out.changes.pop() {
            Some(Change::Set {
                value: Value::String(p),
                ..
            }) => Ok(p),
            _ => Err(Box::new(FieldError {
                record_id: record_id(),
                field: "phone_number".to_string(),
                source: rules.phone_source.clone().unwrap_or_default(),
                value: serde_json::Value::Null,
                reason: "no phone number".to_string(),
            })),
        }
    }

    /// Apply the analysis rules to one conversation against the contact's stored fields.
    pub fn eval_analysis(&self, event: &ConversationEvent, current: &Fields) -> EvalOutput<'_> {
        let scope = Scope {
            root: Root::Conversation(event),
            current,
            cx: self.cx(),
        };
        let record_id = || Some(event.id.clone());
        let mut out = EvalOutput {
            changes: Vec::with_capacity(self.analysis.len()),
            errors: Vec::new(),
        };
        for m in &self.analysis {
            m.apply(&scope, Flow::Analysis, &record_id, &mut out);
        }
        out
    }

    /// Contact fields written by analysis mappings.
    pub fn analysis_target_fields(&self) -> impl Iterator<Item = &str> {
        self.analysis.iter().map(|m| m.target.as_str())
    }

    /// Whether any analysis mapping has mode `merge` (else no conversation needs a merge).
    pub fn analysis_has_merge(&self) -> bool {
        self.analysis.iter().any(|m| m.is_merge())
    }

    /// The [`Change::Merge`]s that [`Ruleset::eval_analysis`] would return, evaluating only the
    /// `merge` mappings when that gives the same answer (each mapping reads the stored fields,
    /// never another mapping's output; only a repeated target lets a later mapping drop a
    /// merge, and then every mapping is evaluated). Errors are dropped.
    pub fn eval_analysis_merges(
        &self,
        event: &ConversationEvent,
        current: &Fields,
    ) -> Vec<Change<'_>> {
        fn merges(changes: Vec<Change<'_>>) -> Vec<Change<'_>> {
            changes
                .into_iter()
                .filter(|c| matches!(c, Change::Merge { .. }))
                .collect()
        }
        if self.analysis.iter().any(|m| m.is_merge() && m.repeated) {
            return merges(self.eval_analysis(event, current).changes);
        }
        let scope = Scope {
            root: Root::Conversation(event),
            current,
            cx: self.cx(),
        };
        let record_id = || None;
        let mut out = EvalOutput {
            changes: Vec::new(),
            errors: Vec::new(),
        };
        for m in self.analysis.iter().filter(|m| m.is_merge()) {
            m.apply(&scope, Flow::Analysis, &record_id, &mut out);
        }
        merges(out.changes)
    }

    /// CRM field values for the contact fields in `changed` (only outbound mappings that read a
    /// changed field, never the phone), with the mappings that failed. There is deliberately
    /// no variant that drops the errors: a failed mapping must reach the caller's report.
    pub fn eval_outbound_report(&self, connection: &str, changed: &Fields) -> OutboundOutput {
        let mut out = OutboundOutput::default();
        let Some(rules) = self.connection(connection) else {
            return out;
        };
        let scope = Scope {
            root: Root::None,
            current: changed,
            cx: self.cx(),
        };
        for m in &rules.outbound {
            if !m.reads.iter().any(|f| changed.contains_key(f)) {
                continue;
            }
            match outbound_value(m, &scope) {
                Ok(Some(v)) => {
                    out.values.retain(|(t, _)| t != &m.target);
                    out.values.push((m.target.clone(), v));
                }
                Ok(None) => {}
                Err(e) => {
                    let e = *e;
                    out.errors.push(FieldError {
                        record_id: None,
                        field: m.target.clone(),
                        source: m.source_text.clone(),
                        value: e.value,
                        reason: e.reason,
                    })
                }
            }
        }
        out
    }
}

fn outbound_value(
    m: &CompiledOutbound,
    s: &Scope<'_>,
) -> Result<Option<serde_json::Value>, expr::Fail> {
    if let Some(g) = &m.guard {
        if truth(g.eval(s)?)? != Some(true) {
            return Ok(None);
        }
    }
    let mut v = m.source.eval(s)?;
    if matches!(v, DynValue::Missing) {
        return Ok(None);
    }
    if let Some(map) = &m.value_map {
        v = map.apply(v);
    }
    Ok(Some(crm_json(&v)))
}

/// A value as CRM JSON: text stays text, numbers and booleans native, dates `YYYY-MM-DD`,
/// datetimes RFC 3339 UTC with milliseconds (accepted by both CRMs), null clears the field.
fn crm_json(v: &DynValue<'_>) -> serde_json::Value {
    match v {
        DynValue::Date(d) => serde_json::Value::String(format_date(*d)),
        DynValue::Datetime(d) => {
            serde_json::Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        DynValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            serde_json::Value::Number((*n as i64).into())
        }
        DynValue::Number(n) => serde_json::Number::from_f64(*n).map_or_else(
            || serde_json::Value::String(format_number(*n)),
            serde_json::Value::Number,
        ),
        other => other.to_json(),
    }
}

fn build_outbound(
    m: &OutboundMapping,
    table: &FieldTable,
    phone_fields: &[String],
) -> Option<CompiledOutbound> {
    let name = |id: u16| table.fields[id as usize].name.clone();
    let mut ids = m.reads.iter().map(|f| f.0).collect::<Vec<_>>();
    collect_contact_fields(&m.source, &mut ids);
    // The phone number is the contact's key and never written back, whatever the rules say.
    if ids.contains(&FieldTable::PHONE_NUMBER.0) || phone_fields.contains(&m.target) {
        return None;
    }
    if let Some(g) = &m.guard {
        collect_contact_fields(g, &mut ids);
    }
    Some(CompiledOutbound {
        target: m.target.clone(),
        reads: ids.into_iter().map(name).collect(),
        source: Node::build(&m.source, &name),
        source_text: print::print(&m.source, &name),
        value_map: m.value_map.as_ref().map(CompiledValueMap::build),
        guard: m.guard.as_ref().map(|g| Node::build(g, &name)),
    })
}

fn mark_repeated(mappings: &mut [CompiledMapping]) {
    for i in 0..mappings.len() {
        let repeated = mappings
            .iter()
            .enumerate()
            .any(|(j, m)| j != i && m.target == mappings[i].target);
        mappings[i].repeated = repeated;
    }
}

fn failure(record_id: Option<String>, field: &str, reason: String) -> EvalOutput<'static> {
    EvalOutput {
        changes: Vec::new(),
        errors: vec![FieldError {
            record_id,
            field: field.to_string(),
            source: String::new(),
            value: serde_json::Value::Null,
            reason,
        }],
    }
}
