//! Built-in functions of the rule language: one file per function, and this registry that the
//! checker (signatures) and the evaluator (implementations) both use.

use crate::lang::types::ExprType;

/// What the checker needs to know about a built-in function.
#[derive(Debug, Clone)]
pub struct Signature {
    pub name: &'static str,
    /// Parameter types; `ExprType::Any` accepts anything.
    pub params: &'static [ExprType],
    /// When true, the last parameter type repeats (e.g. `concat`, `coalesce`).
    pub variadic: bool,
    /// Minimum number of arguments.
    pub min_args: usize,
    pub returns: ExprType,
    /// One line for `--help`-style listings and "did you mean" help.
    pub summary: &'static str,
}

/// Every built-in function's signature, sorted by name.
pub fn signatures() -> &'static [Signature] {
    &[]
}

/// The signature of a built-in function, if one has that name.
pub fn signature(name: &str) -> Option<&'static Signature> {
    signatures().iter().find(|s| s.name == name)
}
