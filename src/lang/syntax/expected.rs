//! Turning pest's "expected one of these rules" into plain words.
//!
//! pest names grammar rules in its errors (`expected map_term`); integrators should never see
//! those. Every rule maps to a phrase here (the `match` is exhaustive, so a new grammar rule
//! cannot slip through unnamed), and the most common situations get a tailored message and a
//! help line, e.g. "expected `->` after the source of a mapping".

use pest::error::{Error, ErrorVariant, InputLocation};

use super::ast::{FileId, Span};
use super::parser::Rule;
use crate::lang::check::suggest::did_you_mean;
use crate::lang::diagnostics::{codes, Diagnostic};

/// The diagnostic for a pest error in the slice starting at `base`, and the error's absolute
/// byte offset.
pub fn syntax_error(id: FileId, text: &str, base: usize, err: &Error<Rule>) -> (Diagnostic, usize) {
    let rel = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let at = (base + rel).min(text.len());
    let (found, found_len) = describe_found(text, at);
    let span = Span::new(id, at, at + found_len);
    let positives = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        ErrorVariant::CustomError { message } => {
            let diagnostic = Diagnostic::new(
                codes::PARSER_LIMIT,
                format!("the parser gave up here ({message})"),
            )
            .primary(span, "parsing stopped here")
            .help("simplify or split this rule file");
            return (diagnostic, at);
        }
    };

    let has = |r: Rule| positives.contains(&r);
    let previous = previous_word(text, at);
    let diagnostic = if has(Rule::arrow) {
        let help = previous
            .and_then(|w| {
                did_you_mean(w, ["overwrite", "fill_if_empty", "merge", "when"]).map(|s| {
                    format!("`{w}` is read as the source of a new mapping; did you mean `{s}`?")
                })
            })
            .unwrap_or_else(|| {
                "a mapping is `SOURCE -> TARGET`, for example `Email -> email`".to_string()
            });
        Diagnostic::new(
            codes::SYNTAX,
            format!("expected `->` after the source of a mapping, found {found}"),
        )
        .primary(span, "expected `->` here")
        .help(help)
    } else if has(Rule::fat_arrow) {
        Diagnostic::new(
            codes::SYNTAX,
            format!("expected `=>` in a value-map entry, found {found}"),
        )
        .primary(span, "expected `=>` here")
        .help(
            "a value-map entry is `KEY => VALUE`, for example `\"Working - Contacted\" => working`",
        )
    } else if has(Rule::colon) {
        Diagnostic::new(
            codes::SYNTAX,
            format!("expected `:` after the field name, found {found}"),
        )
        .primary(span, "expected `:` here")
        .help("a field is declared as `field NAME: TYPE`, for example `field email: string`")
    } else if has(Rule::type_expr) {
        Diagnostic::new(
            codes::SYNTAX,
            format!("expected a field type, found {found}"),
        )
        .primary(span, "expected a type here")
        .help("the types are string, number, boolean, date, datetime and enum [a, b]")
    } else {
        let wanted = phrase_list(&positives);
        let top_level =
            has(Rule::next_item) || has(Rule::item) || has(Rule::kw_field) || has(Rule::field_decl);
        let help = if found.starts_with("an unterminated") {
            "a string ends with `\"` on the same line".to_string()
        } else if found == "end of file" {
            "the file ends inside a block; close each `{` with `}`".to_string()
        } else if has(Rule::rbrace) && starts_item_keyword(text, at) {
            "a block above is missing its closing `}`".to_string()
        } else if top_level {
            word_at(text, at)
                .and_then(|w| did_you_mean(w, ["field", "analysis", "connection"]))
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| {
                    "a rule file holds `field` declarations, `analysis { ... }` and \
                     `connection salesforce|hubspot { ... }` blocks"
                        .to_string()
                })
        } else if has(Rule::object_section) || has(Rule::kw_object) {
            let suggestion = word_at(text, at)
                .and_then(|w| did_you_mean(w, ["object", "inbound", "outbound", "activity"]));
            match suggestion {
                Some(s) => format!("did you mean `{s}`?"),
                None => "a connection holds `object NAME`, `inbound { ... }`, \
                         `outbound { ... }` and `activity { ... }`"
                    .to_string(),
            }
        } else if has(Rule::rparen) {
            "a call's arguments are separated by `,` and the call ends with `)`".to_string()
        } else if has(Rule::rbracket) {
            "enum variants are separated by commas: `enum [new, working]`".to_string()
        } else if has(Rule::log_entry) || has(Rule::kw_log) {
            "an activity block holds `log calls` and `log chats`".to_string()
        } else {
            "see docs/rule-language.md for the forms a rule file may contain".to_string()
        };
        Diagnostic::new(codes::SYNTAX, format!("expected {wanted}, found {found}"))
            .primary(span, "unexpected here")
            .help(help)
    };
    (diagnostic, at)
}

/// "`->`", "a mapping or `}`", "`field`, `analysis`, `connection` or end of file".
fn phrase_list(positives: &[Rule]) -> String {
    let mut phrases: Vec<&'static str> = Vec::new();
    for rule in positives {
        let p = phrase(*rule);
        if !p.is_empty() && !phrases.contains(&p) {
            phrases.push(p);
        }
    }
    // Operators are almost always possible after an expression; only mention them alone.
    if phrases.len() > 1 {
        phrases.retain(|p| *p != "an operator");
    }
    // Where a block may close, a new expression starts the next mapping.
    if phrases.contains(&"`}`") {
        for p in phrases.iter_mut() {
            if *p == "an expression" {
                *p = "another mapping";
            }
        }
    }
    // Closing brackets first: they are the likeliest fix.
    phrases.sort_by_key(|p| match *p {
        "`}`" | "`)`" | "`]`" => 0,
        "a mapping" | "another mapping" | "a value-map entry" => 1,
        _ => 2,
    });
    match phrases.len() {
        0 => "something else".to_string(),
        1 => phrases[0].to_string(),
        n => format!("{} or {}", phrases[..n - 1].join(", "), phrases[n - 1]),
    }
}

/// What a grammar rule means to a reader of rule files.
fn phrase(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of file",
        Rule::WHITESPACE | Rule::COMMENT | Rule::reserved | Rule::ident_char => "",
        Rule::item => "`field`, `analysis` or `connection`",
        Rule::section => "a section",
        Rule::infix => "an operator",
        Rule::primary | Rule::literal => "an expression",
        Rule::path_head | Rule::segment | Rule::name => "a name",
        Rule::file | Rule::next_item => "`field`, `analysis` or `connection`",
        Rule::field_decl | Rule::kw_field => "`field`",
        Rule::analysis_block | Rule::kw_analysis => "`analysis`",
        Rule::connection_block | Rule::kw_connection => "`connection`",
        Rule::type_expr | Rule::type_name | Rule::enum_type | Rule::kw_enum => "a field type",
        Rule::object_section | Rule::kw_object => "`object`",
        Rule::inbound_section | Rule::kw_inbound => "`inbound`",
        Rule::outbound_section | Rule::kw_outbound => "`outbound`",
        Rule::activity_section | Rule::kw_activity => "`activity`",
        Rule::log_entry | Rule::kw_log => "`log calls` or `log chats`",
        Rule::mapping => "a mapping",
        Rule::value_map => "a value map",
        Rule::map_entry => "a value-map entry",
        Rule::map_term => "a value (a string, number, `true`, `false`, `null` or a name)",
        Rule::kw_else => "`else`",
        Rule::mode | Rule::kw_overwrite | Rule::kw_fill_if_empty | Rule::kw_merge => {
            "a mode (`overwrite`, `fill_if_empty` or `merge`)"
        }
        Rule::guard | Rule::kw_when => "`when`",
        Rule::expr
        | Rule::paren
        | Rule::call
        | Rule::call_name
        | Rule::path
        | Rule::op_not
        | Rule::kw_null
        | Rule::kw_true
        | Rule::kw_false
        | Rule::number => "an expression",
        Rule::string | Rule::string_inner => "a string",
        Rule::escape => "an escape (`\\\"`, `\\\\`, `\\n`, `\\t` or `\\r`)",
        Rule::op_coalesce
        | Rule::op_or
        | Rule::op_and
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_le
        | Rule::op_lt
        | Rule::op_ge
        | Rule::op_gt => "an operator",
        Rule::ident | Rule::quoted => "a name",
        Rule::colon => "`:`",
        Rule::comma => "`,`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::arrow => "`->`",
        Rule::fat_arrow => "`=>`",
    }
}

/// Describes the text at `at` for "found ...", and the byte length to underline.
fn describe_found(text: &str, at: usize) -> (String, usize) {
    let rest = &text[at..];
    let Some(c) = rest.chars().next() else {
        return ("end of file".to_string(), 0);
    };
    if c == '"' {
        let line = rest.split('\n').next().unwrap_or(rest);
        return if line[1..].contains('"') {
            let end = 1 + line[1..].find('"').map(|i| i + 1).unwrap_or(line.len() - 1);
            ("a string".to_string(), end)
        } else {
            (
                "an unterminated string".to_string(),
                line.trim_end_matches('\r').len(),
            )
        };
    }
    if let Some(word) = word_at(text, at) {
        return (format!("`{}`", shorten(word)), word.len());
    }
    if c.is_ascii_digit() || (c == '-' && rest[1..].starts_with(|d: char| d.is_ascii_digit())) {
        let len = 1 + rest[1..]
            .find(|d: char| !(d.is_ascii_digit() || d == '.'))
            .unwrap_or(rest.len() - 1);
        return (format!("the number `{}`", shorten(&rest[..len])), len);
    }
    for op in ["->", "=>", "==", "!=", "<=", ">=", "??"] {
        if rest.starts_with(op) {
            return (format!("`{op}`"), 2);
        }
    }
    if c == '`' {
        return ("a backquoted name".to_string(), 1);
    }
    if c.is_control() || c.is_whitespace() {
        return (format!("the character U+{:04X}", c as u32), c.len_utf8());
    }
    (format!("`{c}`"), c.len_utf8())
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifier-like word starting at `at`, if any.
fn word_at(text: &str, at: usize) -> Option<&str> {
    let rest = &text[at.min(text.len())..];
    if !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let len = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
    Some(&rest[..len])
}

/// The identifier-like word just before `at` (skipping whitespace), if any.
fn previous_word(text: &str, at: usize) -> Option<&str> {
    let before = text[..at.min(text.len())].trim_end();
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word_char(*c))
        .last()
        .map(|(i, _)| i)?;
    Some(&before[start..])
}

fn starts_item_keyword(text: &str, at: usize) -> bool {
    matches!(word_at(text, at), Some("field" | "analysis" | "connection"))
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(40).collect();
        format!("{cut}…")
    } else {
        s.to_string()
    }
}
