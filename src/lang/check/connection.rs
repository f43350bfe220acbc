//! `connection` blocks: kind, sections, the `phone_number` key mapping, activity logging.

use std::collections::HashMap;

use super::expr::Scope;
use super::fields::Schema;
use super::mapping;
use super::program::{ActivityLogging, CheckedConnection, ConnectionKind, FieldTable};
use super::suggest::did_you_mean;
use crate::lang::diagnostics::{codes, Diagnostic};
use crate::lang::syntax::ast::{ConnectionBlock, Mapping, Section, Span};

/// Checks one connection block. `seen` holds the connections already checked (E502). Returns
/// None when the kind is unknown (its body is still checked, so its errors are reported).
pub fn check_connection(
    block: &ConnectionBlock,
    schema: &Schema,
    seen: &mut HashMap<ConnectionKind, Span>,
    diags: &mut Vec<Diagnostic>,
) -> Option<CheckedConnection> {
    let kind = ConnectionKind::from_name(&block.kind.name);
    match kind {
        None => {
            let names = ConnectionKind::ALL.map(ConnectionKind::name);
            let help = match did_you_mean(&block.kind.name, names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "crmsync connects to `salesforce` and `hubspot`".to_string(),
            };
            diags.push(
                Diagnostic::new(
                    codes::UNKNOWN_CONNECTION,
                    format!("unknown connection kind `{}`", block.kind.name),
                )
                .primary(block.kind.span, "not a supported CRM")
                .help(help),
            );
        }
        Some(k) => {
            if let Some(first) = seen.get(&k) {
                diags.push(
                    Diagnostic::new(
                        codes::DUPLICATE_CONNECTION,
                        format!("connection `{}` is defined twice", k.name()),
                    )
                    .primary(block.kind.span, "defined again here")
                    .secondary(*first, "first defined here")
                    .help("put all of a connection's sections in one block"),
                );
            } else {
                seen.insert(k, block.kind.span);
            }
        }
    }

    let mut object = None;
    let mut inbound = None;
    let mut outbound = None;
    let mut activity = ActivityLogging::default();
    let mut first_section: HashMap<&'static str, Span> = HashMap::new();
    let mut inbound_keyword = None;
    let mut inbound_ast: &[Mapping] = &[];

    for section in &block.sections {
        let (name, span) = match section {
            Section::Object { span, .. } => ("object", *span),
            Section::Inbound(b) => ("inbound", b.keyword_span),
            Section::Outbound(b) => ("outbound", b.keyword_span),
            Section::Activity(b) => ("activity", b.keyword_span),
        };
        if let Some(first) = first_section.get(name) {
            diags.push(
                Diagnostic::new(
                    codes::DUPLICATE_SECTION,
                    format!("`{name}` appears twice in this connection"),
                )
                .primary(span, "second one here")
                .secondary(*first, "first one here")
                .help(format!("merge the two `{name}` sections into one")),
            );
            continue;
        }
        first_section.insert(name, span);
        match section {
            Section::Object { name, .. } => object = Some(name.name.clone()),
            Section::Inbound(b) => {
                inbound_keyword = Some(b.keyword_span);
                inbound_ast = &b.mappings;
                inbound = Some(mapping::field_mappings(
                    Scope::Inbound,
                    &b.mappings,
                    schema,
                    diags,
                ));
            }
            Section::Outbound(b) => {
                outbound = Some(mapping::outbound_mappings(&b.mappings, schema, diags));
            }
            Section::Activity(b) => {
                let mut seen_logs: HashMap<&str, Span> = HashMap::new();
                for log in &b.logs {
                    let what = log.what.name.as_str();
                    if let Some(first) = seen_logs.get(what) {
                        diags.push(
                            Diagnostic::new(
                                codes::DUPLICATE_ACTIVITY,
                                format!("`log {what}` appears twice"),
                            )
                            .primary(log.span, "repeated")
                            .secondary(*first, "first here")
                            .help("remove the repeated line"),
                        );
                        continue;
                    }
                    seen_logs.insert(what, log.span);
                    match what {
                        "calls" => activity.calls = true,
                        "chats" => activity.chats = true,
                        _ => {
                            let help = match did_you_mean(what, ["calls", "chats"]) {
                                Some(s) => format!("did you mean `log {s}`?"),
                                None => "crmsync logs `calls` and `chats`".to_string(),
                            };
                            diags.push(
                                Diagnostic::new(
                                    codes::UNKNOWN_ACTIVITY,
                                    format!("unknown activity kind `{what}`"),
                                )
                                .primary(log.what.span, "not `calls` or `chats`")
                                .help(help),
                            );
                        }
                    }
                }
            }
        }
    }

    check_phone_mapping(block, inbound_keyword, inbound_ast, diags);

    Some(CheckedConnection {
        kind: kind?,
        object,
        inbound: inbound.unwrap_or_default(),
        outbound: outbound.unwrap_or_default(),
        activity,
        span: block.span,
    })
}

/// E503/E504: inbound must map `phone_number` exactly once (it is the contact's key).
fn check_phone_mapping(
    block: &ConnectionBlock,
    inbound_keyword: Option<Span>,
    mappings: &[Mapping],
    diags: &mut Vec<Diagnostic>,
) {
    let phone = FieldTable::BUILTINS[FieldTable::PHONE_NUMBER.0 as usize].0;
    let targets: Vec<&Mapping> = mappings.iter().filter(|m| m.target.name == phone).collect();
    match targets.as_slice() {
        [] => {
            let (span, label) = match inbound_keyword {
                Some(span) => (span, "no mapping to `phone_number` in here"),
                None => (block.kind.span, "this connection has no `inbound` section"),
            };
            diags.push(
                Diagnostic::new(
                    codes::MISSING_PHONE_MAPPING,
                    format!(
                        "connection `{}` does not map `phone_number`",
                        block.kind.name
                    ),
                )
                .primary(span, label)
                .help(
                    "contacts are keyed by phone number; add an inbound mapping such as \
                     `Phone -> phone_number`",
                ),
            );
        }
        [_] => {}
        [first, rest @ ..] => {
            for again in rest {
                diags.push(
                    Diagnostic::new(
                        codes::DUPLICATE_PHONE_MAPPING,
                        format!("connection `{}` maps `phone_number` twice", block.kind.name),
                    )
                    .primary(again.target.span, "mapped again here")
                    .secondary(first.target.span, "first mapped here")
                    .help(
                        "a record has one key; choose one source, or combine them with `??` \
                         (for example `MobilePhone ?? Phone -> phone_number`)",
                    ),
                );
            }
        }
    }
}
