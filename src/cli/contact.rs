//! `crmsync contact get PHONE | list | set PHONE FIELD=VALUE...`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};

use clap::{Args, Subcommand};
use serde::ser::{SerializeSeq, Serializer as _};
use serde_json::{json, Value as Json};

use super::open::{engine, engine_error, print_json};
use super::{CliError, CliResult, GlobalOpts};
use crate::engine::Engine;
use crate::store::{ContactRecord, StoreError};
use crate::value::{DynValue, Fields, Value};

#[derive(Debug, Args)]
pub struct ContactArgs {
    #[command(subcommand)]
    pub command: ContactCommand,
}

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Show one contact: fields, where each came from, CRM links.
    Get {
        /// The phone number (any common notation; normalized to E.164).
        phone: String,
    },
    /// List contacts in phone order, a page at a time (`--after` the page's last phone gives
    /// the next). Written as the store is read, so any `--limit` runs in flat memory.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Start after this phone (E.164), for paging.
        #[arg(long, value_name = "PHONE")]
        after: Option<String>,
    },
    /// Set fields (validated against their types); pushes to the CRM like any change.
    /// `FIELD=` with nothing after `=` clears the field.
    Set {
        phone: String,
        #[arg(value_name = "FIELD=VALUE", required = true)]
        assignments: Vec<String>,
    },
}

pub fn run(global: &GlobalOpts, args: ContactArgs) -> CliResult {
    let (engine, _config) = engine(global)?;
    match args.command {
        ContactCommand::Get { phone } => {
            let phone = engine.normalize_phone(&phone).map_err(engine_error)?;
            let contact = engine
                .store()
                .contact(&phone)
                .map_err(|err| CliError::runtime(err.to_string()))?
                .ok_or_else(|| CliError::input(format!("no contact with phone {phone}")))?;
            if global.json {
                print_json(&contact_json(&contact))
            } else {
                print!("{}", human_contact(&contact));
                Ok(())
            }
        }
        ContactCommand::List { limit, after } => {
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            let listed = if global.json {
                list_json(&engine, after.as_deref(), limit, &mut out)
            } else {
                engine
                    .store()
                    .visit_contacts(after.as_deref(), limit, |contact| {
                        written(writeln!(out, "{}", list_line(&contact)))
                    })
            };
            match listed.and_then(|()| written(out.flush())) {
                Ok(()) | Err(Stopped::ReaderGone) => Ok(()),
                Err(Stopped::Failed(err)) => Err(err),
            }
        }
        ContactCommand::Set { phone, assignments } => {
            let mut fields = Fields::new();
            for assignment in &assignments {
                let Some((name, text)) = assignment.split_once('=') else {
                    return Err(CliError::input(format!(
                        "`{assignment}`: expected FIELD=VALUE"
                    )));
                };
                let value = if text.is_empty() {
                    Value::Null
                } else {
                    engine
                        .parse_field_value(name.trim(), &Json::String(text.to_string()))
                        .map_err(engine_error)?
                };
                fields.insert(name.trim().to_string(), value);
            }
            let report = engine.manual_set(&phone, fields).map_err(engine_error)?;
            if global.json {
                return print_json(&report);
            }
            let verb = if report.created { "created" } else { "updated" };
            let changed = if report.changed.is_empty() {
                "nothing changed".to_string()
            } else {
                format!("changed {}", report.changed.join(", "))
            };
            println!("{verb} contact {}: {changed}", report.phone);
            if !report.outbound.is_empty() {
                println!("  queued CRM write: {}", report.outbound.join(", "));
            }
            for warning in &report.warnings {
                eprintln!("warning: {}", warning.message);
            }
            Ok(())
        }
    }
}

/// Why a listing stopped before its end.
enum Stopped {
    /// Whoever read stdout closed it (`crmsync contact list | head`): not an error.
    ReaderGone,
    Failed(CliError),
}

impl From<StoreError> for Stopped {
    fn from(err: StoreError) -> Self {
        Stopped::Failed(err.into())
    }
}

fn written<T>(result: io::Result<T>) -> Result<T, Stopped> {
    result.map_err(|err| match err.kind() {
        io::ErrorKind::BrokenPipe => Stopped::ReaderGone,
        _ => Stopped::Failed(CliError::runtime(format!(
            "cannot write the listing: {err}"
        ))),
    })
}

/// `contact list --json`: one JSON array, written a contact at a time as the store is read,
/// so listing a million contacts takes no more memory than listing one.
fn list_json(
    engine: &Engine,
    after: Option<&str>,
    limit: usize,
    out: &mut impl io::Write,
) -> Result<(), Stopped> {
    let mut json = serde_json::Serializer::pretty(&mut *out);
    let mut array = written(json.serialize_seq(None).map_err(io::Error::from))?;
    engine.store().visit_contacts(after, limit, |contact| {
        written(
            array
                .serialize_element(&contact_json(&contact))
                .map_err(io::Error::from),
        )
    })?;
    written(SerializeSeq::end(array).map_err(io::Error::from))?;
    written(writeln!(out))
}

/// A field value as plain JSON (integral numbers without `.0`).
pub fn plain(value: &Value) -> Json {
    if let Value::Number(n) = value {
        if n.fract() == 0.0 && n.abs() < 9.0e15 {
            return json!(*n as i64);
        }
    }
    DynValue::from_value(value).to_json()
}

/// The JSON view of a contact (`--json`).
pub fn contact_json(contact: &ContactRecord) -> Json {
    let fields: BTreeMap<&String, Json> = contact
        .fields
        .iter()
        .map(|(name, value)| (name, plain(value)))
        .collect();
    let provenance: BTreeMap<&String, Json> = contact
        .provenance
        .iter()
        .map(|(name, p)| (name, json!({ "source": p.source.label(), "at": p.at })))
        .collect();
    let mut out = json!({
        "phone_number": contact.phone,
        "fields": fields,
        "provenance": provenance,
        "links": contact.links,
        "last_pushed": contact.last_pushed,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    });
    if !contact.out_of_step.is_empty() {
        out["out_of_step"] = json!(contact.out_of_step);
    }
    out
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::String(s) => format!("{s:?}"),
        other => crate::value::vars::format_value(other).unwrap_or_default(),
    }
}

/// The human view of one contact (no clocks: stable across runs).
pub fn human_contact(contact: &ContactRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", contact.phone);
    if contact.links.is_empty() {
        let _ = writeln!(out, "  links: none");
    } else {
        let links: Vec<String> = contact
            .links
            .iter()
            .map(|(conn, id)| format!("{conn}={id}"))
            .collect();
        let _ = writeln!(out, "  links: {}", links.join(", "));
    }
    let width = contact.fields.keys().map(String::len).max().unwrap_or(0);
    for (name, value) in &contact.fields {
        let source = contact
            .provenance
            .get(name)
            .map(|p| p.source.label())
            .unwrap_or_default();
        let _ = writeln!(out, "  {name:<width$}  {}  [{source}]", text(value));
    }
    for (connection, fields) in &contact.out_of_step {
        for (field, step) in fields {
            let _ = writeln!(
                out,
                "  OUT OF STEP with {connection}: {field} = {} was refused ({}); the CRM keeps its own value until the next sync reads it back",
                step.value, step.message
            );
        }
    }
    out
}

fn list_line(contact: &ContactRecord) -> String {
    let name = ["first_name", "last_name"]
        .iter()
        .filter_map(|f| match contact.fields.get(*f) {
            Some(Value::String(s)) => Some(s.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ");
    let links: Vec<String> = contact
        .links
        .iter()
        .map(|(conn, id)| format!("{conn}={id}"))
        .collect();
    format!("{}\t{}\t{}", contact.phone, name, links.join(","))
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OutOfStep;
    use chrono::TimeZone;

    #[test]
    fn a_contact_out_of_step_says_so_in_both_views() {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 21, 10, 0, 0)
            .unwrap();
        let mut c = ContactRecord::new("+14155550101", at);
        c.links.insert("salesforce".into(), "003A".into());
        assert!(!human_contact(&c).contains("OUT OF STEP"));
        assert!(contact_json(&c).get("out_of_step").is_none());
        c.out_of_step
            .entry("salesforce".into())
            .or_default()
            .insert(
                "Email".into(),
                OutOfStep {
                    value: json!("not-an-email"),
                    message: "INVALID_EMAIL_ADDRESS: Email: invalid email address".into(),
                    since: at,
                },
            );
        assert_eq!(
            human_contact(&c),
            "+14155550101\n  links: salesforce=003A\n  OUT OF STEP with salesforce: Email = \"not-an-email\" was refused (INVALID_EMAIL_ADDRESS: Email: invalid email address); the CRM keeps its own value until the next sync reads it back\n"
        );
        assert_eq!(
            contact_json(&c)["out_of_step"]["salesforce"]["Email"]["value"],
            "not-an-email"
        );
    }
}
