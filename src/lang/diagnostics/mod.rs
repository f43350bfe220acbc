//! Rule-file diagnostics: the code registry, the diagnostic model, and its renderers
//! (rustc-style text through codespan-reporting, and JSON).

pub mod codes;
pub mod diagnostic;
pub mod json;
pub mod render;
pub mod sources;

pub use codes::Code;
pub use diagnostic::{Diagnostic, Diagnostics, Label, Severity};
pub use sources::Sources;
