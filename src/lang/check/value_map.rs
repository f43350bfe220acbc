//! Value maps: `{ "Open" => new  else => unqualified }` (inbound/analysis) and
//! `{ new => "Open" }` (outbound).
//!
//! Inbound results are coerced to the target field's type at compile time, so the evaluator
//! writes them as they are. Keys are checked against the source's static type when it has one.

use super::expr::unknown_variant;
use super::fit::{a, fit_value, literal_type, literal_value};
use super::program::CheckedValueMap;
use crate::lang::diagnostics::{codes, Diagnostic};
use crate::lang::syntax::ast::{MapKey, MapTerm, MapTermKind, Span, ValueMap};
use crate::lang::types::ExprType;
use crate::value::{FieldType, Value};

/// Checks an inbound/analysis value map. `target` is None when the target field's declaration
/// was broken (its type is unknown), in which case results are kept as written.
pub fn inbound(
    map: &ValueMap,
    source: &ExprType,
    target_name: &str,
    target: Option<&FieldType>,
    diags: &mut Vec<Diagnostic>,
) -> CheckedValueMap {
    build(map, diags, |term, is_key, diags| {
        if is_key {
            key_for_source(term, source, diags)
        } else {
            match target {
                Some(ty) => result_for_target(term, target_name, ty, diags),
                None => Some(term_value(term)),
            }
        }
    })
}

/// Checks an outbound value map: keys are values of the source (enum variants of an enum
/// field), results are sent to the CRM as written (a bare name is text).
pub fn outbound(map: &ValueMap, source: &ExprType, diags: &mut Vec<Diagnostic>) -> CheckedValueMap {
    build(map, diags, |term, is_key, diags| {
        if is_key {
            key_for_source(term, source, diags)
        } else {
            Some(term_value(term))
        }
    })
}

/// Walks the entries: `else` handling (E308), duplicate keys (E307), and `convert` for each
/// key (`true`) and value (`false`).
fn build(
    map: &ValueMap,
    diags: &mut Vec<Diagnostic>,
    mut convert: impl FnMut(&MapTerm, bool, &mut Vec<Diagnostic>) -> Option<Value>,
) -> CheckedValueMap {
    let mut entries: Vec<(Value, Value)> = Vec::new();
    let mut key_spans: Vec<Span> = Vec::new();
    let mut default: Option<Value> = None;
    let mut else_span: Option<Span> = None;
    let last = map.entries.len().saturating_sub(1);
    for (i, entry) in map.entries.iter().enumerate() {
        match &entry.key {
            MapKey::Else(span) => {
                if let Some(first) = else_span {
                    diags.push(
                        Diagnostic::new(codes::MISPLACED_ELSE, "value map has two `else` entries")
                            .primary(*span, "second `else`")
                            .secondary(first, "first `else`")
                            .help("keep one `else`, as the last entry"),
                    );
                    continue;
                }
                else_span = Some(*span);
                if i != last {
                    diags.push(
                        Diagnostic::new(codes::MISPLACED_ELSE, "`else` must be the last entry")
                            .primary(*span, "`else` before other entries")
                            .help("move the `else` entry to the end of the value map"),
                    );
                }
                default = convert(&entry.value, false, diags);
            }
            MapKey::Term(key_term) => {
                let key = convert(key_term, true, diags);
                let value = convert(&entry.value, false, diags);
                let (Some(key), Some(value)) = (key, value) else {
                    continue;
                };
                if let Some(pos) = entries.iter().position(|(k, _)| *k == key) {
                    diags.push(
                        Diagnostic::new(
                            codes::DUPLICATE_MAP_KEY,
                            format!("value-map key {} appears twice", show(&key)),
                        )
                        .primary(key_term.span, "repeated key")
                        .secondary(key_spans[pos], "first used here")
                        .help("each key maps to one value; remove one entry"),
                    );
                    continue;
                }
                entries.push((key, value));
                key_spans.push(key_term.span);
            }
        }
    }
    CheckedValueMap {
        entries,
        default,
        span: map.span,
    }
}

/// A term as a value: literals as written, bare names as text.
fn term_value(term: &MapTerm) -> Value {
    match &term.kind {
        MapTermKind::Literal(lit) => literal_value(lit),
        MapTermKind::Name(name) => Value::String(name.clone()),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Enum(s) => format!("`{s}`"),
        Value::Number(n) => format!("{n}"),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        other => format!("{other:?}"),
    }
}

/// A key, checked against the source's static type (E306/E311).
fn key_for_source(term: &MapTerm, source: &ExprType, diags: &mut Vec<Diagnostic>) -> Option<Value> {
    let text = match &term.kind {
        MapTermKind::Name(n) => Some(n.as_str()),
        MapTermKind::Literal(crate::lang::syntax::ast::Literal::String(s)) => Some(s.as_str()),
        _ => None,
    };
    if let ExprType::Enum(variants) = source {
        if let Some(text) = text {
            if variants.iter().any(|v| v == text) {
                return Some(Value::Enum(text.to_string()));
            }
            diags.push(unknown_variant(text, variants, term.span));
            return None;
        }
    }
    let value = term_value(term);
    let field_type = match source {
        ExprType::Any | ExprType::Null => return Some(value),
        ExprType::String => return Some(value),
        ExprType::Number => FieldType::Number,
        ExprType::Boolean => FieldType::Boolean,
        ExprType::Date => FieldType::Date,
        ExprType::Datetime => FieldType::Datetime,
        ExprType::Enum(v) => FieldType::Enum(v.clone()),
    };
    if value == Value::Null {
        return Some(value);
    }
    let bare_name = matches!(term.kind, MapTermKind::Name(_));
    match fit_value(&value, &field_type) {
        Ok(v) if !bare_name => Some(v),
        result => {
            let reason = match result {
                Err(reason) => reason,
                Ok(_) => "a bare name is an enum variant; quote text".to_string(),
            };
            let found = match &term.kind {
                MapTermKind::Name(_) => "a name".to_string(),
                MapTermKind::Literal(lit) => a(literal_type(lit).describe()),
            };
            diags.push(
                Diagnostic::new(
                    codes::VALUE_MAP_KEY_TYPE,
                    format!(
                        "value-map key is {found}, but the source is {}",
                        a(source.describe())
                    ),
                )
                .primary(term.span, reason)
                .help(format!(
                    "keys are compared with the source's value; write {} keys",
                    source.describe()
                )),
            );
            None
        }
    }
}

/// An inbound result, coerced to the target type (E305/E306).
fn result_for_target(
    term: &MapTerm,
    target_name: &str,
    target: &FieldType,
    diags: &mut Vec<Diagnostic>,
) -> Option<Value> {
    if let FieldType::Enum(variants) = target {
        let text = match &term.kind {
            MapTermKind::Name(n) => Some(n.as_str()),
            MapTermKind::Literal(crate::lang::syntax::ast::Literal::String(s)) => Some(s.as_str()),
            MapTermKind::Literal(crate::lang::syntax::ast::Literal::Null) => {
                return Some(Value::Null)
            }
            _ => None,
        };
        return match text {
            Some(text) if variants.iter().any(|v| v == text) => Some(Value::Enum(text.to_string())),
            Some(text) => {
                diags.push(unknown_variant(text, variants, term.span));
                None
            }
            None => {
                diags.push(result_mismatch(
                    term,
                    target_name,
                    target,
                    "an enum field takes one of its variants".to_string(),
                ));
                None
            }
        };
    }
    match &term.kind {
        MapTermKind::Name(name) => {
            diags.push(
                result_mismatch(
                    term,
                    target_name,
                    target,
                    "a bare name is an enum variant".to_string(),
                )
                .help(format!("write text in quotes: \"{name}\"")),
            );
            None
        }
        MapTermKind::Literal(lit) => match fit_value(&literal_value(lit), target) {
            Ok(v) => Some(v),
            Err(reason) => {
                diags.push(result_mismatch(term, target_name, target, reason));
                None
            }
        },
    }
}

fn result_mismatch(
    term: &MapTerm,
    target_name: &str,
    target: &FieldType,
    reason: String,
) -> Diagnostic {
    Diagnostic::new(
        codes::VALUE_MAP_RESULT_TYPE,
        format!(
            "value does not fit `{target_name}`, which is {} field",
            a(target.keyword())
        ),
    )
    .primary(term.span, reason)
    .help(format!(
        "value-map values are written to `{target_name}`; give {} value",
        a(target.keyword())
    ))
}
