//! Reading rule files and running parse → check → build, collecting every diagnostic.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::check::{self, CheckedProgram};
use super::diagnostics::{codes, Diagnostic, Diagnostics, Sources};
use super::eval::Ruleset;
use super::syntax::ast::{FileId, Span};
use super::syntax::limits::MAX_FILE_BYTES;
use super::syntax::parser::{file_too_large, parse_file};

/// A rule set that compiled without errors.
#[derive(Debug)]
pub struct Compiled {
    /// The checked program (schema, mappings with resolved names and types).
    pub program: CheckedProgram,
    /// The evaluator, built once from `program`.
    pub ruleset: Ruleset,
    /// Warnings (never errors), with the sources they point into.
    pub warnings: Diagnostics,
}

impl Compiled {
    /// `11 fields, analysis 5 mappings, salesforce 8 inbound / 2 outbound, ...`.
    pub fn summary(&self) -> String {
        summary(&self.program)
    }
}

/// One line describing a checked program: field count (built-ins included), analysis
/// mappings, and inbound/outbound mappings per connection.
pub fn summary(program: &CheckedProgram) -> String {
    let mut parts = vec![
        format!("{} fields", program.fields.len()),
        format!(
            "analysis {} mapping{}",
            program.analysis.len(),
            if program.analysis.len() == 1 { "" } else { "s" }
        ),
    ];
    for c in &program.connections {
        parts.push(format!(
            "{} {} inbound / {} outbound",
            c.kind.name(),
            c.inbound.len(),
            c.outbound.len()
        ));
    }
    parts.join(", ")
}

/// Compiles every `*.rules` file in `dir` (sorted by name).
pub fn compile_dir(dir: &Path) -> Result<Compiled, Diagnostics> {
    compile_paths(&[dir.to_path_buf()])
}

/// Compiles rule files and directories (each directory contributes its `*.rules` files, sorted
/// by name). Paths appear in diagnostics exactly as given.
pub fn compile_paths(paths: &[PathBuf]) -> Result<Compiled, Diagnostics> {
    let mut sources = Sources::new();
    let mut texts: Vec<(FileId, bool)> = Vec::new();
    let mut diags = Vec::new();
    for path in paths {
        match fs::metadata(path) {
            Err(err) => diags.push(Diagnostic::new(
                codes::UNREADABLE,
                format!("cannot read `{}`: {err}", path.display()),
            )),
            Ok(meta) if meta.is_dir() => {
                let files = match rule_files_in(path) {
                    Ok(files) => files,
                    Err(err) => {
                        diags.push(Diagnostic::new(
                            codes::UNREADABLE,
                            format!("cannot read directory `{}`: {err}", path.display()),
                        ));
                        continue;
                    }
                };
                if files.is_empty() {
                    diags.push(
                        Diagnostic::new(
                            codes::NO_RULE_FILES,
                            format!("no `*.rules` files in `{}`", path.display()),
                        )
                        .help("rule files end in `.rules`; pass another directory or the files themselves"),
                    );
                }
                for file in files {
                    texts.push(read_source(&file, &mut sources, &mut diags));
                }
            }
            Ok(_) => texts.push(read_source(path, &mut sources, &mut diags)),
        }
    }
    if paths.is_empty() {
        diags.push(Diagnostic::new(codes::NO_RULE_FILES, "no rule files given"));
    }
    finish(sources, texts, diags)
}

/// Compiles in-memory sources: `(name, text)` pairs, in the order given.
pub fn compile_sources(sources: Vec<(String, String)>) -> Result<Compiled, Diagnostics> {
    let mut table = Sources::new();
    let mut texts = Vec::new();
    let mut diags = Vec::new();
    if sources.is_empty() {
        diags.push(Diagnostic::new(codes::NO_RULE_FILES, "no rule files given"));
    }
    for (name, text) in sources {
        let id = table.add(name, text);
        texts.push((id, true));
    }
    finish(table, texts, diags)
}

/// The `*.rules` files directly in `dir`, sorted by file name.
fn rule_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "rules") && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Reads one file into `sources`. Returns its id and whether it should be parsed (false when it
/// is too large, unreadable or not UTF-8; the diagnostic is already pushed).
fn read_source(path: &Path, sources: &mut Sources, diags: &mut Vec<Diagnostic>) -> (FileId, bool) {
    let name = path.display().to_string();
    let mut bytes = Vec::new();
    // Read at most one byte over the limit: a 50 MB file is refused without loading it.
    let read = fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes));
    if let Err(err) = read {
        let id = sources.add(name.clone(), String::new());
        diags.push(Diagnostic::new(
            codes::UNREADABLE,
            format!("cannot read `{name}`: {err}"),
        ));
        return (id, false);
    }
    let size = if bytes.len() > MAX_FILE_BYTES {
        fs::metadata(path)
            .map(|m| m.len() as usize)
            .unwrap_or(bytes.len())
    } else {
        bytes.len()
    };
    add_bytes(name, bytes, size, sources, diags)
}

/// Compiles in-memory files given as raw bytes (`(name, bytes)`), applying the same size and
/// UTF-8 checks as files read from disk.
pub fn compile_bytes(files: Vec<(String, Vec<u8>)>) -> Result<Compiled, Diagnostics> {
    let mut sources = Sources::new();
    let mut texts = Vec::new();
    let mut diags = Vec::new();
    if files.is_empty() {
        diags.push(Diagnostic::new(codes::NO_RULE_FILES, "no rule files given"));
    }
    for (name, bytes) in files {
        let size = bytes.len();
        texts.push(add_bytes(name, bytes, size, &mut sources, &mut diags));
    }
    finish(sources, texts, diags)
}

/// Adds a file's bytes to `sources`, refusing (with a diagnostic) files over the size limit or
/// not in UTF-8. Returns the id and whether to parse it.
fn add_bytes(
    name: String,
    bytes: Vec<u8>,
    size: usize,
    sources: &mut Sources,
    diags: &mut Vec<Diagnostic>,
) -> (FileId, bool) {
    if size > MAX_FILE_BYTES {
        let id = sources.add(name, String::new());
        diags.push(file_too_large(id, size));
        return (id, false);
    }
    match String::from_utf8(bytes) {
        Ok(text) => (sources.add(name, text), true),
        Err(err) => {
            let at = err.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(err.as_bytes()).into_owned();
            // The lossy text equals the original up to `at`, where U+FFFD replaces the bad byte.
            let end = (at + '\u{FFFD}'.len_utf8()).min(text.len());
            let id = sources.add(name.clone(), text);
            diags.push(
                Diagnostic::new(
                    codes::NOT_UTF8,
                    format!("`{name}` is not valid UTF-8 (byte {at})"),
                )
                .primary(Span::new(id, at, end), "invalid UTF-8 here")
                .help("save the rule file as UTF-8"),
            );
            (id, false)
        }
    }
}

fn finish(
    sources: Sources,
    texts: Vec<(FileId, bool)>,
    mut diags: Vec<Diagnostic>,
) -> Result<Compiled, Diagnostics> {
    let mut files = Vec::new();
    for (id, parse) in texts {
        if parse {
            let parsed = parse_file(id, sources.text(id));
            diags.extend(parsed.diagnostics);
            files.push(parsed.file);
        } else {
            files.push(super::syntax::ast::File {
                id,
                items: Vec::new(),
            });
        }
    }
    let (program, check_diags) = check::check(files);
    diags.extend(check_diags);
    let mut all = Diagnostics {
        sources,
        list: diags,
    };
    all.sort();
    if all.has_errors() {
        return Err(all);
    }
    let ruleset = Ruleset::build(&program);
    Ok(Compiled {
        program,
        ruleset,
        warnings: all,
    })
}
