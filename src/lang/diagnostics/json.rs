//! Diagnostics as JSON, for editors and CI (`crmsync check --json`).

use serde_json::{json, Value};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::sources::Sources;

/// `{"errors": N, "warnings": N, "diagnostics": [...]}`; each diagnostic has `severity`,
/// `code`, `message`, `file`, `line`, `column` (1-based, of the primary label), `labels`
/// (`file`, byte `start`/`end`, `line`, `column`, `message`, `primary`), `help` and `notes`.
pub fn to_json(diagnostics: &Diagnostics) -> Value {
    json!({
        "errors": diagnostics.error_count(),
        "warnings": diagnostics.warning_count(),
        "diagnostics": diagnostics
            .list
            .iter()
            .map(|d| diagnostic_json(&diagnostics.sources, d))
            .collect::<Vec<_>>(),
    })
}

/// One diagnostic as JSON.
pub fn diagnostic_json(sources: &Sources, d: &Diagnostic) -> Value {
    let (line, column) = match d.primary_span() {
        Some(span) => {
            let (l, c) = sources.line_col(span.file, span.start as usize);
            (Value::from(l), Value::from(c))
        }
        None => (Value::Null, Value::Null),
    };
    let labels: Vec<Value> = d
        .labels
        .iter()
        .map(|l| {
            let (line, column) = sources.line_col(l.span.file, l.span.start as usize);
            json!({
                "file": sources.name(l.span.file),
                "start": l.span.start,
                "end": l.span.end,
                "line": line,
                "column": column,
                "message": l.message,
                "primary": l.primary,
            })
        })
        .collect();
    json!({
        "severity": d.severity(),
        "code": d.code.id,
        "message": d.message,
        "file": d.file.map(|f| sources.name(f).to_string()),
        "line": line,
        "column": column,
        "labels": labels,
        "help": d.help,
        "notes": d.notes,
    })
}
