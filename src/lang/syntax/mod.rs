//! Rule-file syntax: the AST (with byte spans) and the pest parser that builds it.

pub mod ast;
