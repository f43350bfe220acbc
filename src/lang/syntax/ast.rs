//! The abstract syntax tree of rule files, exactly as written, with byte spans.
//!
//! The parser builds it; the checker (`lang::check`) resolves names and types on top of it and
//! produces a [`crate::lang::check::CheckedProgram`]. Nothing here is validated beyond syntax:
//! an unknown field or a misspelt mode keyword is still representable so that the checker can
//! report every problem of every file in one run.

use std::fmt;

/// Which rule file a span points into: an index into the list of sources of one compile run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileId(pub u32);

/// A byte range `start..end` in one rule file (UTF-8 byte offsets, as pest reports them).
/// Line/column numbers are only computed when a diagnostic is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// A span in `file` covering bytes `start..end`.
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        // Files are limited to 1 MiB, so offsets always fit in u32.
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The byte range, for slicing the source text or handing to the renderer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// The smallest span covering both `self` and `other` (same file assumed).
    pub fn to(&self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A name as written, with its span. `quoted` is true for backquoted names (`` `My Field` ``),
/// whose text may contain any character but a backquote or a newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub quoted: bool,
    pub span: Span,
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.quoted {
            write!(f, "`{}`", self.name)
        } else {
            f.write_str(&self.name)
        }
    }
}

/// One parsed rule file: its items in source order.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub id: FileId,
    pub items: Vec<Item>,
}

/// A top-level item of a rule file.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `field NAME: TYPE ["description"]`
    Field(FieldDecl),
    /// `analysis { mappings }`
    Analysis(AnalysisBlock),
    /// `connection KIND { sections }`
    Connection(ConnectionBlock),
}

/// `field NAME: TYPE ["description"]`: a custom contact field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    /// The optional description; also the instruction given to the LLM for `merge`.
    pub description: Option<StringLit>,
    /// The whole declaration.
    pub span: Span,
}

/// A field type as written.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub span: Span,
}

/// The six field types. Enum variants keep their spans for duplicate/empty checks.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeKind {
    String,
    Number,
    Boolean,
    Date,
    Datetime,
    /// `enum [a, b, c]` (possibly empty: the checker rejects that).
    Enum(Vec<Ident>),
    /// A type keyword the language does not know (`text`, `int`, ...): kept so the checker can
    /// report it with a suggestion instead of a bare syntax error.
    Unknown(Ident),
    /// The declaration had a syntax error (already reported). The field still exists, so its
    /// uses elsewhere are not reported as unknown fields too.
    Invalid,
}

/// A string literal: the unescaped text and the span of the literal including its quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringLit {
    pub value: String,
    pub span: Span,
}

/// `analysis { ... }`: conversation analysis → contact fields. Several blocks (in one or
/// several files) are allowed and read in file-name order, then source order.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisBlock {
    /// The `analysis` keyword.
    pub keyword_span: Span,
    pub mappings: Vec<Mapping>,
    /// The whole block.
    pub span: Span,
}

/// `connection KIND { ... }`: one CRM connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionBlock {
    /// `salesforce` or `hubspot` (anything else is a checker error with a suggestion).
    pub kind: Ident,
    /// Sections in source order; the checker rejects duplicates (two `inbound`, two `object`).
    pub sections: Vec<Section>,
    /// The whole block.
    pub span: Span,
}

/// One section inside a `connection` block.
#[derive(Debug, Clone, PartialEq)]
pub enum Section {
    /// `object NAME`: the CRM object synced (e.g. `Contact`). `span` covers the whole line.
    Object { name: Ident, span: Span },
    /// `inbound { mappings }`: CRM record → contact fields.
    Inbound(MappingBlock),
    /// `outbound { mappings }`: contact fields → CRM record.
    Outbound(MappingBlock),
    /// `activity { log calls  log chats }`.
    Activity(ActivityBlock),
}

/// The body of an `inbound` or `outbound` section.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingBlock {
    /// The `inbound`/`outbound` keyword.
    pub keyword_span: Span,
    pub mappings: Vec<Mapping>,
    /// The whole section.
    pub span: Span,
}

/// `activity { log calls  log chats }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityBlock {
    pub keyword_span: Span,
    pub logs: Vec<ActivityLog>,
    pub span: Span,
}

/// `log WHAT`: `what` is `calls` or `chats` (anything else is a checker error).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityLog {
    pub what: Ident,
    pub span: Span,
}

/// `SOURCE -> TARGET [value-map] [mode] [when GUARD]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// Expression over the input record (inbound), analysis payload (analysis) or contact
    /// (outbound).
    pub source: Expr,
    /// A contact field (inbound, analysis) or a CRM field name (outbound).
    pub target: Ident,
    pub value_map: Option<ValueMap>,
    pub mode: Option<ModeSpec>,
    /// `when GUARD`: the mapping applies only when the guard is `true`.
    pub guard: Option<Expr>,
    /// The whole mapping.
    pub span: Span,
}

/// The update mode keyword as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeSpec {
    pub mode: Mode,
    pub span: Span,
}

/// How a mapping writes its target field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Always write (the default).
    #[default]
    Overwrite,
    /// Write only when the field is null, missing or blank.
    FillIfEmpty,
    /// Combine old and new text through the configured LLM (string fields, analysis only).
    Merge,
}

impl Mode {
    /// The keyword used in rule files.
    pub fn keyword(self) -> &'static str {
        match self {
            Mode::Overwrite => "overwrite",
            Mode::FillIfEmpty => "fill_if_empty",
            Mode::Merge => "merge",
        }
    }
}

/// `{ KEY => VALUE ... else => VALUE }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueMap {
    /// Entries in source order, `else` included (the checker rejects a second `else` and an
    /// `else` that is not last).
    pub entries: Vec<ValueMapEntry>,
    /// From `{` to `}`.
    pub span: Span,
}

/// One `KEY => VALUE` line of a value map.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueMapEntry {
    pub key: MapKey,
    pub value: MapTerm,
    pub span: Span,
}

/// The left side of a value-map entry.
#[derive(Debug, Clone, PartialEq)]
pub enum MapKey {
    /// `else => ...`: the value for anything not matched.
    Else(Span),
    Term(MapTerm),
}

/// A literal or a bare name in a value map (`"Open"`, `42`, `true`, `null`, `qualified`).
#[derive(Debug, Clone, PartialEq)]
pub struct MapTerm {
    pub kind: MapTermKind,
    pub span: Span,
}

/// What a value-map term is.
#[derive(Debug, Clone, PartialEq)]
pub enum MapTermKind {
    Literal(Literal),
    /// A bare name: an enum variant (inbound/analysis values, outbound keys).
    Name(String),
}

/// A literal value in an expression or value map.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
}

/// An expression with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// The expression forms. No loops, no user functions: cost is linear in the expression size.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// `Email`, `Account.Name`, `` `My Field`.x ``, `conversation.end_time`.
    Path(Vec<Ident>),
    Literal(Literal),
    /// `name(arg, ...)`: a built-in function.
    Call {
        name: Ident,
        args: Vec<Expr>,
    },
    /// `not x`.
    Not(Box<Expr>),
    /// `lhs OP rhs`.
    Binary {
        op: BinaryOp,
        /// The operator token, for labels.
        op_span: Span,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
}

/// Binary operators, loosest first: `??` < `or` < `and` < (`not`) < comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a ?? b`: `b` when `a` is null or missing (never when `false`, `0` or `""`).
    Coalesce,
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Coalesce => "??",
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
        }
    }

    /// True for `== != < <= > >=`.
    pub fn is_comparison(self) -> bool {
        !matches!(self, BinaryOp::Coalesce | BinaryOp::Or | BinaryOp::And)
    }
}
