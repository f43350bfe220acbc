//! Rule-file syntax: the AST (with byte spans) and the pest parser that builds it.

pub mod ast;
pub mod expected;
pub mod limits;
pub mod parser;

pub use parser::{parse_file, ParsedFile};
