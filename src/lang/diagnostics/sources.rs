//! The rule files of one compile run, by [`FileId`], for rendering and line/column lookup.

use codespan_reporting::files::{Files, SimpleFiles};

use crate::lang::syntax::ast::FileId;

/// Every rule file read in one run. The name is the path as the user gave it (never
/// absolutized), so diagnostics show `rules/fields.rules:3:7`.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: SimpleFiles<String, String>,
    count: u32,
}

impl Sources {
    pub fn new() -> Sources {
        Sources::default()
    }

    /// Adds a file and returns its id (ids are handed out in order from 0).
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let id = self.files.add(name.into(), text.into());
        debug_assert_eq!(id, self.count as usize);
        self.count += 1;
        FileId(id as u32)
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The file's name as given by the user.
    pub fn name(&self, id: FileId) -> &str {
        self.files
            .get(id.0 as usize)
            .map(|f| f.name().as_str())
            .unwrap_or("<unknown>")
    }

    /// The file's text (lossily decoded when it was not valid UTF-8).
    pub fn text(&self, id: FileId) -> &str {
        self.files
            .get(id.0 as usize)
            .map(|f| f.source().as_str())
            .unwrap_or("")
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, id: FileId, offset: usize) -> (usize, usize) {
        let file = id.0 as usize;
        match self.files.location(file, offset) {
            Ok(loc) => (loc.line_number, loc.column_number),
            Err(_) => (1, 1),
        }
    }

    /// The codespan file database.
    pub(crate) fn files(&self) -> &SimpleFiles<String, String> {
        &self.files
    }

    /// Ids of all files, in order.
    pub fn ids(&self) -> impl Iterator<Item = FileId> {
        (0..self.count).map(FileId)
    }
}
