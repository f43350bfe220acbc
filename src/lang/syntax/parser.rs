//! pest parser → AST, with friendly syntax errors and resumption after an error.
//!
//! pest reports failures as sets of grammar rules that were expected; [`super::expected`]
//! turns those into plain words. A file is parsed one top-level item at a time so that after a
//! syntax error the parser can resume at the next line that starts an item and report the
//! errors of the rest of the file too.

use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::sync::{Once, OnceLock};

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;
use pest_derive::Parser;

use super::ast::*;
use super::expected;
use super::limits::{
    find_excessive_nesting, MAX_EXPRESSION_PARTS, MAX_FILE_BYTES, MAX_NESTING, PEST_CALL_LIMIT,
};
use crate::lang::diagnostics::{codes, Diagnostic};

/// The pest parser generated from `grammar/rules.pest`.
#[derive(Parser)]
#[grammar = "../grammar/rules.pest"]
pub struct RulesParser;

/// A parsed file and the syntax errors found in it. Items that had errors are left out.
#[derive(Debug)]
pub struct ParsedFile {
    pub file: File,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses one rule file. Never panics and never recurses deeper than the limits allow.
pub fn parse_file(id: FileId, text: &str) -> ParsedFile {
    let mut diagnostics = Vec::new();
    let mut items = Vec::new();
    if text.len() > MAX_FILE_BYTES {
        diagnostics.push(file_too_large(id, text.len()));
        return ParsedFile {
            file: File { id, items },
            diagnostics,
        };
    }
    if let Some(at) = find_excessive_nesting(text) {
        diagnostics.push(
            Diagnostic::new(
                codes::NESTING_TOO_DEEP,
                format!("brackets nested more than {MAX_NESTING} deep"),
            )
            .primary(
                Span::new(id, at, at + 1),
                format!("this is level {}", MAX_NESTING + 1),
            )
            .help("split the expression; the file was not parsed further"),
        );
        return ParsedFile {
            file: File { id, items },
            diagnostics,
        };
    }
    install_call_limit();

    let mut pos = 0;
    loop {
        let rest = &text[pos..];
        match RulesParser::parse(Rule::next_item, rest) {
            Ok(mut pairs) => {
                let Some(item) = pairs.next().and_then(|p| p.into_inner().next()) else {
                    break;
                };
                if item.as_rule() == Rule::EOI {
                    break;
                }
                let end = pos + item.as_span().end();
                let builder = Builder {
                    file: id,
                    offset: pos,
                    errors: RefCell::new(Vec::new()),
                };
                let built = builder.item(item);
                let errors = builder.errors.into_inner();
                if errors.is_empty() {
                    items.extend(built);
                }
                diagnostics.extend(errors);
                if end <= pos {
                    break; // cannot happen (an item is never empty); guards against a loop
                }
                pos = end;
            }
            Err(err) => {
                let (diagnostic, at) = expected::syntax_error(id, text, pos, &err);
                diagnostics.push(diagnostic);
                items.extend(recover_field(id, text, skip_trivia(text, pos)).map(Item::Field));
                match resume_point(text, pos, at) {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    ParsedFile {
        file: File { id, items },
        diagnostics,
    }
}

/// The E101 diagnostic for a file over [`MAX_FILE_BYTES`].
pub fn file_too_large(id: FileId, len: usize) -> Diagnostic {
    Diagnostic::new(
        codes::FILE_TOO_LARGE,
        format!(
            "rule file is {} bytes; the limit is {} bytes (1 MiB)",
            len, MAX_FILE_BYTES
        ),
    )
    .in_file(id)
    .help("split the rules into several files in the same directory")
}

fn install_call_limit() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| pest::set_call_limit(NonZeroUsize::new(PEST_CALL_LIMIT)));
}

/// Where to resume after a syntax error at `error_at` in an item that starts at or after
/// `pos`: the first line at or after the error's line that starts with `field`, `analysis` or
/// `connection`, strictly after the failed item's first token (so parsing always advances).
fn resume_point(text: &str, pos: usize, error_at: usize) -> Option<usize> {
    let item_start = skip_trivia(text, pos);
    let error_at = error_at.min(text.len());
    let mut line_start = text[..error_at].rfind('\n').map(|i| i + 1).unwrap_or(0);
    loop {
        let token = line_start
            + text[line_start..]
                .bytes()
                .take_while(|b| *b == b' ' || *b == b'\t' || *b == b'\r')
                .count();
        if token > item_start && starts_item(&text[token..]) {
            return Some(token);
        }
        let newline = text[line_start..].find('\n')?;
        line_start += newline + 1;
    }
}

/// After a syntax error in an item that starts `field NAME`, a declaration of NAME with an
/// invalid type, so the rest of the rule set does not also report NAME as unknown.
fn recover_field(id: FileId, text: &str, start: usize) -> Option<FieldDecl> {
    let rest = text[start..].strip_prefix("field")?;
    let after_kw = start + "field".len();
    let name_at = after_kw + rest.len() - rest.trim_start_matches([' ', '\t']).len();
    if name_at == after_kw {
        return None;
    }
    let name_len = text[name_at..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len() - name_at);
    if name_len == 0 || !text[name_at..].starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let span = Span::new(id, name_at, name_at + name_len);
    Some(FieldDecl {
        name: Ident {
            name: text[name_at..name_at + name_len].to_string(),
            quoted: false,
            span,
        },
        ty: TypeExpr {
            kind: TypeKind::Invalid,
            span,
        },
        description: None,
        span,
    })
}

fn starts_item(rest: &str) -> bool {
    ["field", "analysis", "connection"].iter().any(|kw| {
        rest.strip_prefix(kw).is_some_and(|after| {
            !after
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
    })
}

/// Skips whitespace and comments from `pos`.
fn skip_trivia(text: &str, mut pos: usize) -> usize {
    let bytes = text.as_bytes();
    while pos < bytes.len() {
        match bytes[pos] {
            b' ' | b'\t' | b'\r' | b'\n' => pos += 1,
            b'#' => {
                while pos < bytes.len() && bytes[pos] != b'\n' {
                    pos += 1;
                }
            }
            _ => {
                if text[pos..].starts_with('\u{FEFF}') {
                    pos += '\u{FEFF}'.len_utf8();
                } else {
                    break;
                }
            }
        }
    }
    pos
}

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    // Loosest first: `??` < `or` < `and` < `not` < comparisons.
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::op_coalesce, Assoc::Left))
            .op(Op::infix(Rule::op_or, Assoc::Left))
            .op(Op::infix(Rule::op_and, Assoc::Left))
            .op(Op::prefix(Rule::op_not))
            .op(Op::infix(Rule::op_eq, Assoc::Left)
                | Op::infix(Rule::op_ne, Assoc::Left)
                | Op::infix(Rule::op_lt, Assoc::Left)
                | Op::infix(Rule::op_le, Assoc::Left)
                | Op::infix(Rule::op_gt, Assoc::Left)
                | Op::infix(Rule::op_ge, Assoc::Left))
    })
}

/// Builds AST nodes from the pairs of one item. Problems found while building (an expression
/// over the size limit, a number out of range) are collected in `errors`.
struct Builder {
    file: FileId,
    /// Byte offset of the parsed slice within the file.
    offset: usize,
    errors: RefCell<Vec<Diagnostic>>,
}

impl Builder {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, self.offset + s.start(), self.offset + s.end())
    }

    fn error(&self, diagnostic: Diagnostic) {
        self.errors.borrow_mut().push(diagnostic);
    }

    /// Reports a pair the grammar should never produce here (a bug, not a user error).
    fn unexpected(&self, pair: &Pair<'_, Rule>) {
        self.error(
            Diagnostic::new(
                codes::SYNTAX,
                format!("unexpected {:?} (this is a bug in crmsync)", pair.as_rule()),
            )
            .primary(self.span(pair), "here"),
        );
    }

    fn item(&self, pair: Pair<'_, Rule>) -> Option<Item> {
        match pair.as_rule() {
            Rule::field_decl => self.field_decl(pair).map(Item::Field),
            Rule::analysis_block => Some(Item::Analysis(self.analysis(pair))),
            Rule::connection_block => self.connection(pair).map(Item::Connection),
            _ => {
                self.unexpected(&pair);
                None
            }
        }
    }

    fn ident(&self, pair: &Pair<'_, Rule>) -> Ident {
        let text = pair.as_str();
        let span = self.span(pair);
        if pair.as_rule() == Rule::quoted {
            Ident {
                name: text
                    .strip_prefix('`')
                    .and_then(|t| t.strip_suffix('`'))
                    .unwrap_or(text)
                    .to_string(),
                quoted: true,
                span,
            }
        } else {
            Ident {
                name: text.to_string(),
                quoted: false,
                span,
            }
        }
    }

    fn field_decl(&self, pair: Pair<'_, Rule>) -> Option<FieldDecl> {
        let span = self.span(&pair);
        let mut name = None;
        let mut ty = None;
        let mut description = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident | Rule::quoted => name = Some(self.ident(&p)),
                Rule::type_expr => ty = Some(self.type_expr(p)),
                Rule::string => description = Some(self.string(p)),
                _ => {}
            }
        }
        Some(FieldDecl {
            name: name?,
            ty: ty?,
            description,
            span,
        })
    }

    fn type_expr(&self, pair: Pair<'_, Rule>) -> TypeExpr {
        let span = self.span(&pair);
        let kind = match pair.into_inner().next() {
            Some(p) if p.as_rule() == Rule::enum_type => TypeKind::Enum(
                p.into_inner()
                    .filter(|v| matches!(v.as_rule(), Rule::ident | Rule::quoted))
                    .map(|v| self.ident(&v))
                    .collect(),
            ),
            Some(p) => {
                let ident = p
                    .into_inner()
                    .next()
                    .map(|i| self.ident(&i))
                    .unwrap_or(Ident {
                        name: String::new(),
                        quoted: false,
                        span,
                    });
                match ident.name.as_str() {
                    "string" => TypeKind::String,
                    "number" => TypeKind::Number,
                    "boolean" => TypeKind::Boolean,
                    "date" => TypeKind::Date,
                    "datetime" => TypeKind::Datetime,
                    _ => TypeKind::Unknown(ident),
                }
            }
            None => TypeKind::Unknown(Ident {
                name: String::new(),
                quoted: false,
                span,
            }),
        };
        TypeExpr { kind, span }
    }

    fn string(&self, pair: Pair<'_, Rule>) -> StringLit {
        let span = self.span(&pair);
        let raw = pair
            .into_inner()
            .next()
            .map(|p| p.as_str())
            .unwrap_or_default();
        StringLit {
            value: unescape(raw),
            span,
        }
    }

    fn analysis(&self, pair: Pair<'_, Rule>) -> AnalysisBlock {
        let span = self.span(&pair);
        let mut keyword_span = span;
        let mut mappings = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_analysis => keyword_span = self.span(&p),
                Rule::mapping => mappings.extend(self.mapping(p)),
                _ => {}
            }
        }
        AnalysisBlock {
            keyword_span,
            mappings,
            span,
        }
    }

    fn connection(&self, pair: Pair<'_, Rule>) -> Option<ConnectionBlock> {
        let span = self.span(&pair);
        let mut kind = None;
        let mut sections = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident | Rule::quoted => kind = Some(self.ident(&p)),
                Rule::object_section => {
                    let section_span = self.span(&p);
                    if let Some(name) = p
                        .into_inner()
                        .find(|n| matches!(n.as_rule(), Rule::ident | Rule::quoted))
                    {
                        sections.push(Section::Object {
                            name: self.ident(&name),
                            span: section_span,
                        });
                    }
                }
                Rule::inbound_section => sections.push(Section::Inbound(self.mapping_block(p))),
                Rule::outbound_section => sections.push(Section::Outbound(self.mapping_block(p))),
                Rule::activity_section => sections.push(Section::Activity(self.activity(p))),
                _ => {}
            }
        }
        Some(ConnectionBlock {
            kind: kind?,
            sections,
            span,
        })
    }

    fn mapping_block(&self, pair: Pair<'_, Rule>) -> MappingBlock {
        let span = self.span(&pair);
        let mut keyword_span = span;
        let mut mappings = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_inbound | Rule::kw_outbound => keyword_span = self.span(&p),
                Rule::mapping => mappings.extend(self.mapping(p)),
                _ => {}
            }
        }
        MappingBlock {
            keyword_span,
            mappings,
            span,
        }
    }

    fn activity(&self, pair: Pair<'_, Rule>) -> ActivityBlock {
        let span = self.span(&pair);
        let mut keyword_span = span;
        let mut logs = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_activity => keyword_span = self.span(&p),
                Rule::log_entry => {
                    let log_span = self.span(&p);
                    if let Some(what) = p
                        .into_inner()
                        .find(|n| matches!(n.as_rule(), Rule::ident | Rule::quoted))
                    {
                        logs.push(ActivityLog {
                            what: self.ident(&what),
                            span: log_span,
                        });
                    }
                }
                _ => {}
            }
        }
        ActivityBlock {
            keyword_span,
            logs,
            span,
        }
    }

    fn mapping(&self, pair: Pair<'_, Rule>) -> Option<Mapping> {
        let span = self.span(&pair);
        let mut source = None;
        let mut target = None;
        let mut value_map = None;
        let mut mode = None;
        let mut guard = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::expr => source = Some(self.top_expr(p)),
                Rule::ident | Rule::quoted => target = Some(self.ident(&p)),
                Rule::value_map => value_map = Some(self.value_map(p)),
                Rule::mode => {
                    let mode_span = self.span(&p);
                    let m = match p.into_inner().next().map(|k| k.as_rule()) {
                        Some(Rule::kw_fill_if_empty) => Mode::FillIfEmpty,
                        Some(Rule::kw_merge) => Mode::Merge,
                        _ => Mode::Overwrite,
                    };
                    mode = Some(ModeSpec {
                        mode: m,
                        span: mode_span,
                    });
                }
                Rule::guard => {
                    guard = p
                        .into_inner()
                        .find(|g| g.as_rule() == Rule::expr)
                        .map(|g| self.top_expr(g));
                }
                _ => {}
            }
        }
        Some(Mapping {
            source: source?,
            target: target?,
            value_map,
            mode,
            guard,
            span,
        })
    }

    fn value_map(&self, pair: Pair<'_, Rule>) -> ValueMap {
        let span = self.span(&pair);
        let mut entries = Vec::new();
        for entry in pair.into_inner().filter(|p| p.as_rule() == Rule::map_entry) {
            let entry_span = self.span(&entry);
            let mut key = None;
            let mut value = None;
            for p in entry.into_inner() {
                match p.as_rule() {
                    Rule::kw_else => key = Some(MapKey::Else(self.span(&p))),
                    Rule::map_term if key.is_none() => {
                        key = Some(MapKey::Term(self.map_term(p)));
                    }
                    Rule::map_term => value = Some(self.map_term(p)),
                    _ => {}
                }
            }
            if let (Some(key), Some(value)) = (key, value) {
                entries.push(ValueMapEntry {
                    key,
                    value,
                    span: entry_span,
                });
            }
        }
        ValueMap { entries, span }
    }

    fn map_term(&self, pair: Pair<'_, Rule>) -> MapTerm {
        let span = self.span(&pair);
        let kind = match pair.into_inner().next() {
            Some(p) if matches!(p.as_rule(), Rule::ident | Rule::quoted) => {
                MapTermKind::Name(self.ident(&p).name)
            }
            Some(p) => MapTermKind::Literal(self.literal(p)),
            None => MapTermKind::Literal(Literal::Null),
        };
        MapTerm { kind, span }
    }

    fn literal(&self, pair: Pair<'_, Rule>) -> Literal {
        match pair.as_rule() {
            Rule::kw_null => Literal::Null,
            Rule::kw_true => Literal::Bool(true),
            Rule::kw_false => Literal::Bool(false),
            Rule::number => match pair.as_str().parse::<f64>() {
                Ok(n) if n.is_finite() => Literal::Number(n),
                _ => {
                    self.error(
                        Diagnostic::new(codes::SYNTAX, "number out of range")
                            .primary(self.span(&pair), "too large to represent")
                            .help("numbers must fit a 64-bit floating point value"),
                    );
                    Literal::Null
                }
            },
            Rule::string => Literal::String(self.string(pair).value),
            _ => {
                self.unexpected(&pair);
                Literal::Null
            }
        }
    }

    /// A mapping's source or guard: checked against the size limit before the Pratt parser
    /// (which recurses per prefix operator) and every later pass see it.
    fn top_expr(&self, pair: Pair<'_, Rule>) -> Expr {
        let parts = pair.clone().into_inner().flatten().count();
        let span = self.span(&pair);
        if parts > MAX_EXPRESSION_PARTS {
            // Point at the start only: the whole expression may be many lines long.
            let first = pair
                .clone()
                .into_inner()
                .next()
                .map(|p| self.span(&p))
                .unwrap_or(span);
            self.error(
                Diagnostic::new(
                    codes::EXPRESSION_TOO_COMPLEX,
                    format!(
                        "expression has {parts} syntax nodes; the limit is {MAX_EXPRESSION_PARTS}"
                    ),
                )
                .primary(first, "this expression is too large")
                .help("split it into several mappings, or simplify it"),
            );
            return Expr {
                kind: ExprKind::Literal(Literal::Null),
                span,
            };
        }
        self.expr(pair)
    }

    fn expr(&self, pair: Pair<'_, Rule>) -> Expr {
        pratt()
            .map_primary(|p| self.primary(p))
            .map_prefix(|op, operand| Expr {
                span: self.span(&op).to(operand.span),
                kind: ExprKind::Not(Box::new(operand)),
            })
            .map_infix(|lhs, op, rhs| {
                let bin = match op.as_rule() {
                    Rule::op_coalesce => BinaryOp::Coalesce,
                    Rule::op_or => BinaryOp::Or,
                    Rule::op_and => BinaryOp::And,
                    Rule::op_eq => BinaryOp::Eq,
                    Rule::op_ne => BinaryOp::Ne,
                    Rule::op_lt => BinaryOp::Lt,
                    Rule::op_le => BinaryOp::Le,
                    Rule::op_gt => BinaryOp::Gt,
                    _ => BinaryOp::Ge,
                };
                Expr {
                    span: lhs.span.to(rhs.span),
                    kind: ExprKind::Binary {
                        op: bin,
                        op_span: self.span(&op),
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                }
            })
            .parse(pair.into_inner())
    }

    fn primary(&self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::kw_null | Rule::kw_true | Rule::kw_false | Rule::number | Rule::string => {
                ExprKind::Literal(self.literal(pair))
            }
            Rule::path => ExprKind::Path(
                pair.into_inner()
                    .filter(|p| matches!(p.as_rule(), Rule::ident | Rule::quoted))
                    .map(|p| self.ident(&p))
                    .collect(),
            ),
            Rule::call => {
                let mut name = None;
                let mut args = Vec::new();
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::call_name => {
                            name = Some(Ident {
                                name: p.as_str().to_string(),
                                quoted: false,
                                span: self.span(&p),
                            })
                        }
                        Rule::expr => args.push(self.expr(p)),
                        _ => {}
                    }
                }
                ExprKind::Call {
                    name: name.unwrap_or(Ident {
                        name: String::new(),
                        quoted: false,
                        span,
                    }),
                    args,
                }
            }
            Rule::paren => {
                return match pair.into_inner().find(|p| p.as_rule() == Rule::expr) {
                    Some(inner) => {
                        let mut e = self.expr(inner);
                        e.span = span;
                        e
                    }
                    None => Expr {
                        kind: ExprKind::Literal(Literal::Null),
                        span,
                    },
                };
            }
            _ => {
                self.unexpected(&pair);
                ExprKind::Literal(Literal::Null)
            }
        };
        Expr { kind, span }
    }
}

/// Resolves the escapes of a string literal's inside (`\"`, `\\`, `\n`, `\t`, `\r`).
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ParsedFile {
        parse_file(FileId(0), text)
    }

    #[test]
    fn example_rules_parse_without_errors() {
        for name in ["fields", "analysis", "salesforce", "hubspot"] {
            let path = format!("{}/rules/{name}.rules", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let parsed = parse(&text);
            assert!(
                parsed.diagnostics.is_empty(),
                "{name}: {:?}",
                parsed.diagnostics
            );
            assert!(!parsed.file.items.is_empty());
        }
    }

    #[test]
    fn precedence_coalesce_loosest_then_or_and_not_comparison() {
        let parsed = parse("analysis { not a == b and c or d ?? e -> x }");
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let Item::Analysis(block) = &parsed.file.items[0] else {
            panic!("not analysis")
        };
        let ExprKind::Binary { op, lhs, .. } = &block.mappings[0].source.kind else {
            panic!("not binary")
        };
        assert_eq!(*op, BinaryOp::Coalesce);
        let ExprKind::Binary { op, lhs, .. } = &lhs.kind else {
            panic!("not or")
        };
        assert_eq!(*op, BinaryOp::Or);
        let ExprKind::Binary { op, lhs, .. } = &lhs.kind else {
            panic!("not and")
        };
        assert_eq!(*op, BinaryOp::And);
        let ExprKind::Not(inner) = &lhs.kind else {
            panic!("not `not`")
        };
        assert!(matches!(
            inner.kind,
            ExprKind::Binary {
                op: BinaryOp::Eq,
                ..
            }
        ));
    }

    #[test]
    fn resumes_after_a_syntax_error() {
        let parsed = parse("field a string\nfield b: number\nfield c: \nfield d: date\n");
        assert_eq!(parsed.diagnostics.len(), 2, "{:?}", parsed.diagnostics);
        // The broken declarations are kept with an invalid type, so their names stay known.
        let fields: Vec<(&str, bool)> = parsed
            .file
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Field(f) => Some((f.name.name.as_str(), f.ty.kind == TypeKind::Invalid)),
                _ => None,
            })
            .collect();
        assert_eq!(
            fields,
            [("a", true), ("b", false), ("c", true), ("d", false)]
        );
    }
}
