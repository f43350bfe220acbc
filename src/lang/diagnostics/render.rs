//! Rendering diagnostics like rustc, through codespan-reporting.
//!
//! Colour is used only when asked for (the CLI asks when stderr is a terminal); tests and pipes
//! get plain text. Trailing whitespace is trimmed from every line so snapshots stay stable even
//! when an editor strips line ends (VRL does the same).

use codespan_reporting::diagnostic as cs;
use codespan_reporting::term::termcolor::{Ansi, NoColor, WriteColor};
use codespan_reporting::term::{self, Config};

use super::diagnostic::{Diagnostic, Diagnostics, Severity};
use super::sources::Sources;

/// Renders every diagnostic, separated by blank lines, followed by nothing else.
pub fn render_all(diagnostics: &Diagnostics, color: bool) -> String {
    let mut out = String::new();
    for d in &diagnostics.list {
        out.push_str(&render_one(&diagnostics.sources, d, color));
    }
    out
}

/// Renders one diagnostic (ends with a blank line, as codespan does).
pub fn render_one(sources: &Sources, diagnostic: &Diagnostic, color: bool) -> String {
    let mut cs_diag = to_codespan(diagnostic);
    // Without a label, name the file in the message so the reader knows where to look.
    if let (true, Some(file)) = (diagnostic.labels.is_empty(), diagnostic.file) {
        cs_diag.message = format!("{}: {}", sources.name(file), cs_diag.message);
    }
    let config = Config::default();
    let bytes = if color {
        let mut writer = Ansi::new(Vec::new());
        emit(&mut writer, &config, sources, &cs_diag, diagnostic);
        writer.into_inner()
    } else {
        let mut writer = NoColor::new(Vec::new());
        emit(&mut writer, &config, sources, &cs_diag, diagnostic);
        writer.into_inner()
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn emit(
    writer: &mut dyn WriteColor,
    config: &Config,
    sources: &Sources,
    cs_diag: &cs::Diagnostic<usize>,
    diagnostic: &Diagnostic,
) {
    if term::emit(writer, config, sources.files(), cs_diag).is_err() {
        // A span outside its file would be a checker bug; still tell the user what is wrong.
        let _ = writeln!(
            writer,
            "{}[{}]: {}\n",
            severity_word(diagnostic.severity()),
            diagnostic.code.id,
            diagnostic.message
        );
    }
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn to_codespan(d: &Diagnostic) -> cs::Diagnostic<usize> {
    let severity = match d.severity() {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
    };
    let labels = d
        .labels
        .iter()
        .map(|l| {
            let file = l.span.file.0 as usize;
            let label = if l.primary {
                cs::Label::primary(file, l.span.range())
            } else {
                cs::Label::secondary(file, l.span.range())
            };
            label.with_message(l.message.clone())
        })
        .collect();
    let mut notes = Vec::new();
    if let Some(help) = &d.help {
        notes.push(format!("help: {help}"));
    }
    notes.extend(d.notes.iter().map(|n| format!("note: {n}")));
    cs::Diagnostic::new(severity)
        .with_code(d.code.id)
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(notes)
}
