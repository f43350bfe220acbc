//! The rule language: grammar (pest), AST, checker, diagnostics, compiled `Ruleset`, evaluator.

pub mod check;
pub mod functions;
pub mod syntax;
pub mod types;
