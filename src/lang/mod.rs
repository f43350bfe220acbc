//! The rule language: grammar (pest), AST, checker, diagnostics, compiled `Ruleset`, evaluator.

pub mod functions;
pub mod types;
