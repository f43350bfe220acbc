//! Data-driven evaluation tests: every file under `tests/cases/eval/` is one case.
//!
//! A case is a rule snippet preceded by `#` header lines (VRL style):
//!
//! ```text
//! # region: GB                           optional default region (default US)
//! # contact: {"email": "a@b.c"}          stored contact fields (coerced to their types)
//! # input: {...}                         a CRM record for the rules' connection (repeatable)
//! # connection: hubspot                  which connection `input` goes through (default: the only one)
//! # event: {...}                         a conversation event for the analysis rules (repeatable)
//! # changed: {...}                       changed contact fields for the outbound rules (repeatable)
//! # vars: {...}                          a contact whose dynamic variables are printed (repeatable)
//! <rule text>
//! ```
//!
//! The snapshot shows, per input, the changes and errors (or CRM values, or variables).

use std::fmt::Write as _;
use std::path::Path;

use crmsync::event::ConversationEvent;
use crmsync::lang::eval::{Change, EvalOutput, FieldError};
use crmsync::lang::Ruleset;
use crmsync::value::coerce::coerce_json;
use crmsync::value::vars::{dynamic_variables, format_value};
use crmsync::value::{Fields, Value};

/// Compile one rule file.
fn compile(name: &str, text: &str) -> Result<Ruleset, String> {
    crmsync::lang::compile_sources(vec![(name.to_string(), text.to_string())])
        .map(|c| c.ruleset)
        .map_err(|d| format!("{d:?}"))
}

struct Case {
    region: Option<String>,
    connection: Option<String>,
    contact: serde_json::Value,
    steps: Vec<(String, serde_json::Value)>,
    rules: String,
}

fn parse_case(text: &str) -> Case {
    let mut case = Case {
        region: None,
        connection: None,
        contact: serde_json::json!({}),
        steps: Vec::new(),
        rules: String::new(),
    };
    let mut in_header = true;
    for line in text.lines() {
        if in_header {
            if let Some(rest) = line.strip_prefix("# ") {
                if let Some((key, value)) = rest.split_once(": ") {
                    let json = || {
                        serde_json::from_str::<serde_json::Value>(value)
                            .unwrap_or_else(|e| panic!("bad JSON in `# {key}:`: {e}"))
                    };
                    match key {
                        "region" => case.region = Some(value.trim().to_string()),
                        "connection" => case.connection = Some(value.trim().to_string()),
                        "contact" => case.contact = json(),
                        "input" | "event" | "changed" | "vars" => {
                            case.steps.push((key.to_string(), json()))
                        }
                        _ => {}
                    }
                    continue;
                }
            }
            in_header = false;
        }
        case.rules.push_str(line);
        case.rules.push('\n');
    }
    case
}

/// Contact JSON → typed fields, using the rule set's field types.
fn fields(ruleset: &Ruleset, json: &serde_json::Value) -> Fields {
    let mut out = Fields::new();
    for (name, value) in json.as_object().into_iter().flatten() {
        let def = ruleset
            .field(name)
            .unwrap_or_else(|| panic!("case names unknown field {name}"));
        let v = coerce_json(value, &def.ty).unwrap_or_else(|e| panic!("contact {name}: {e}"));
        out.insert(name.clone(), v);
    }
    out
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Enum(e) => format!("enum {e}"),
        Value::Number(_) => format!("number {}", format_value(v).unwrap_or_default()),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Date(_) => format!("date {}", format_value(v).unwrap_or_default()),
        Value::Datetime(_) => format!("datetime {}", format_value(v).unwrap_or_default()),
    }
}

fn show_error(out: &mut String, e: &FieldError) {
    let _ = writeln!(
        out,
        "  error: record {} field {} from `{}` value {}: {}",
        e.record_id.as_deref().unwrap_or("-"),
        e.field,
        e.source,
        e.value,
        e.reason
    );
}

fn show_output(out: &mut String, o: &EvalOutput) {
    if o.changes.is_empty() && o.errors.is_empty() {
        out.push_str("  (no change)\n");
    }
    for c in &o.changes {
        match c {
            Change::Set { field, value } => {
                let _ = writeln!(out, "  set {field} = {}", show_value(value));
            }
            Change::Merge {
                field,
                old,
                new,
                instruction,
            } => {
                let _ = writeln!(
                    out,
                    "  merge {field}: old {old:?} new {new:?} instruction {instruction:?}"
                );
            }
        }
    }
    for e in &o.errors {
        show_error(out, e);
    }
}

fn run_case(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("case file is readable");
    let case = parse_case(&text);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("case");
    let mut ruleset = match compile(name, &case.rules) {
        Ok(r) => r,
        Err(e) => panic!("{}: rules do not compile: {e}", path.display()),
    };
    if let Some(region) = &case.region {
        ruleset.set_default_region(region).expect("known region");
    }
    let contact = fields(&ruleset, &case.contact);
    let connection = case.connection.clone().unwrap_or_else(|| {
        ruleset
            .connections()
            .first()
            .map(|c| c.name.clone())
            .unwrap_or_default()
    });
    let mut out = String::new();
    if !contact.is_empty() {
        let _ = writeln!(out, "contact: {}", case.contact);
    }
    for (kind, json) in &case.steps {
        let _ = writeln!(out, "{kind}: {json}");
        match kind.as_str() {
            "input" => show_output(&mut out, &ruleset.eval_inbound(&connection, json, &contact)),
            "event" => {
                let event: ConversationEvent =
                    serde_json::from_value(json.clone()).expect("a valid conversation event");
                show_output(&mut out, &ruleset.eval_analysis(&event, &contact));
            }
            "changed" => {
                let changed = fields(&ruleset, json);
                let report = ruleset.eval_outbound_report(&connection, &changed);
                if report.values.is_empty() && report.errors.is_empty() {
                    out.push_str("  (nothing to write)\n");
                }
                for (field, value) in &report.values {
                    let _ = writeln!(out, "  write {field} = {value}");
                }
                for e in &report.errors {
                    show_error(&mut out, e);
                }
            }
            "vars" => {
                for (k, v) in dynamic_variables(&fields(&ruleset, json)) {
                    let _ = writeln!(out, "  {k} = {v:?}");
                }
            }
            _ => unreachable!(),
        }
    }
    out
}

#[test]
fn eval_cases() {
    insta::glob!("cases/eval/**/*.rules", |path| {
        insta::assert_snapshot!(run_case(path));
    });
}
