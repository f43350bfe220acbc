//! The renderer-independent diagnostic: a code, a message, labelled spans and a help line.

use serde::Serialize;

use super::codes::Code;
use super::sources::Sources;
use crate::lang::syntax::ast::{FileId, Span};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The rule set does not compile.
    Error,
    /// The rule set compiles, but probably does not do what was meant.
    Warning,
}

/// A span with a message. The primary label says what is wrong; secondary labels give context
/// (e.g. where a duplicate was first declared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

/// One problem found in the rule files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// The primary label first (if any), then secondary labels.
    pub labels: Vec<Label>,
    /// What to do about it (one line, may contain "did you mean ...").
    pub help: Option<String>,
    /// Further context lines.
    pub notes: Vec<String>,
    /// The file a diagnostic without labels is about (unreadable, too large, ...).
    pub file: Option<FileId>,
}

impl Diagnostic {
    /// A diagnostic with `code`'s severity and no labels yet.
    pub fn new(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            notes: Vec::new(),
            file: None,
        }
    }

    /// Adds the primary label.
    pub fn primary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.insert(
            0,
            Label {
                span,
                message: message.into(),
                primary: true,
            },
        );
        self.file = Some(span.file);
        self
    }

    /// Adds a secondary label.
    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: false,
        });
        self
    }

    /// Sets the help line.
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Sets the help line when there is one.
    pub fn maybe_help(mut self, help: Option<String>) -> Diagnostic {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// Adds a note.
    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Names the file a label-less diagnostic is about.
    pub fn in_file(mut self, file: FileId) -> Diagnostic {
        self.file = Some(file);
        self
    }

    pub fn severity(&self) -> Severity {
        self.code.severity
    }

    pub fn is_error(&self) -> bool {
        self.code.severity == Severity::Error
    }

    /// The primary span, if the diagnostic points into a file.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|l| l.primary).map(|l| l.span)
    }
}

/// Diagnostics of one compile run together with the sources they point into, so they can be
/// rendered on their own.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    pub sources: Sources,
    /// Errors and warnings, ordered by file, then position (file-less ones first).
    pub list: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error_count(&self) -> usize {
        self.list.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.list.len() - self.error_count()
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Rendered like rustc (see [`super::render`]); `color` only for terminals.
    pub fn render(&self, color: bool) -> String {
        super::render::render_all(self, color)
    }

    /// Machine-readable form (see [`super::json`]).
    pub fn to_json(&self) -> serde_json::Value {
        super::json::to_json(self)
    }

    /// Sorts into a stable order: by file, then start offset, keeping insertion order for ties.
    pub fn sort(&mut self) {
        self.list.sort_by_key(|d| {
            let span = d.primary_span();
            (
                d.file.map(|f| f.0 as i64).unwrap_or(-1),
                span.map(|s| s.start).unwrap_or(0),
            )
        });
    }
}

impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Diagnostics {}
