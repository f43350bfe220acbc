//! The checker: name resolution, types and modes over the AST, producing a [`CheckedProgram`].
//!
//! One concern per file: `fields` (declarations → schema), `expr` (paths, calls, operators),
//! `value_map`, `mapping` (targets, modes, guards, fit), `connection` (kinds, sections, the
//! phone key), `fit` (literal and static type fitting), `suggest` ("did you mean").
//! Every problem is collected; nothing stops at the first error.

use std::collections::HashMap;

pub mod connection;
pub mod expr;
pub mod fields;
pub mod fit;
pub mod mapping;
pub mod program;
pub mod suggest;
pub mod value_map;

pub use program::*;

use crate::lang::diagnostics::Diagnostic;
use crate::lang::syntax::ast;

/// Checks parsed files (in file-name order). The program is complete only when no diagnostic
/// is an error; callers must not evaluate it otherwise.
pub fn check(files: Vec<ast::File>) -> (CheckedProgram, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let schema = fields::declare_fields(&files, &mut diags);
    let mut analysis = Vec::new();
    let mut connections = Vec::new();
    let mut seen = HashMap::new();
    for item in files.iter().flat_map(|f| &f.items) {
        match item {
            ast::Item::Field(_) => {}
            ast::Item::Analysis(block) => analysis.extend(mapping::field_mappings(
                expr::Scope::Analysis,
                &block.mappings,
                &schema,
                &mut diags,
            )),
            ast::Item::Connection(block) => {
                connections.extend(connection::check_connection(
                    block, &schema, &mut seen, &mut diags,
                ));
            }
        }
    }
    let program = CheckedProgram {
        fields: schema.table,
        analysis,
        connections,
        files,
    };
    (program, diags)
}
