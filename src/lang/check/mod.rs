//! The checker: name resolution, types and modes over the AST, producing a [`CheckedProgram`].

pub mod program;
pub mod suggest;

pub use program::*;
