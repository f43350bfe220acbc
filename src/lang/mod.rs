//! The rule language: grammar (pest), AST, checker, diagnostics, compiled `Ruleset`, evaluator.
