//! The rule language: grammar (pest), AST, checker, diagnostics, compiled `Ruleset`, evaluator.

pub mod check;
pub mod diagnostics;
pub mod eval;
pub mod functions;
pub mod syntax;
pub mod types;
pub use eval::Ruleset;
