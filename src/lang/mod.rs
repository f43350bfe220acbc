//! The rule language: grammar (pest), AST, checker, diagnostics, compiled `Ruleset`, evaluator.

pub mod check;
pub mod compile;
pub mod diagnostics;
pub mod eval;
pub mod functions;
pub mod syntax;
pub mod types;
pub use compile::{compile_bytes, compile_dir, compile_paths, compile_sources, summary, Compiled};
pub use diagnostics::{Diagnostic, Diagnostics};
pub use eval::Ruleset;
