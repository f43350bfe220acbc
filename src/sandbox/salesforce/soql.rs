//! The subset of SOQL the sandbox understands, parsed into an AST.
//!
//! ```text
//! SELECT (COUNT() | field, ...) FROM object
//!   [WHERE cond]   cond: cond OR cond | cond AND cond | NOT cond | ( cond )
//!                        | field (= != <> < <= > >=) literal
//!                        | field [NOT] IN (literal, ...) | field LIKE 'pattern'
//!   [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]
//! ```
//!
//! Literals: `'quoted strings'` (with `\'` escapes), numbers, `true`/`false`/`null`, unquoted
//! ISO-8601 datetimes (`2024-05-01T00:00:00Z`, `…+00:00`, `….000+0000`) and dates
//! (`2024-05-01`), as in SOQL. A hand-written recursive-descent parser: the grammar is tiny, and
//! it lets errors read like Salesforce's (`unexpected token: 'X'`).

/// A parsed query. Field and object names are kept as written; resolution against the schema
/// (and `INVALID_FIELD`) happens when the query is compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Select,
    pub from: String,
    pub filter: Option<Cond>,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    Count,
    Fields(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub field: String,
    pub descending: bool,
    /// `None`: Salesforce's default (nulls first ascending, last descending).
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    /// Epoch milliseconds.
    DateTime(i64),
    Date(chrono::NaiveDate),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Cmp(String, CmpOp, Literal),
    In(String, bool, Vec<Literal>),
    Like(String, String),
}

/// Why a query could not be parsed (`MALFORMED_QUERY`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SyntaxError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Number(String),
    /// A token starting with a digit that is not a plain number: a date or datetime.
    Temporal(String),
    Sym(&'static str),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Word(w) | Token::Number(w) | Token::Temporal(w) => w.clone(),
            Token::Str(s) => format!("'{s}'"),
            Token::Sym(s) => (*s).to_string(),
        }
    }
}

fn tokenize(input: &str) -> Result<Vec<Token>, SyntaxError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_.".contains(chars[i])) {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "-:.+".contains(chars[i]))
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            if text.parse::<f64>().is_ok() {
                tokens.push(Token::Number(text));
            } else {
                tokens.push(Token::Temporal(text));
            }
        } else if c == '\'' {
            i += 1;
            let mut text = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(SyntaxError("unterminated string literal".into())),
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some('n') => text.push('\n'),
                            Some(other) => text.push(*other),
                            None => return Err(SyntaxError("unterminated string literal".into())),
                        }
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        text.push(*other);
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Str(text));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = match two.as_str() {
                "!=" => Some("!="),
                "<>" => Some("<>"),
                "<=" => Some("<="),
                ">=" => Some(">="),
                _ => None,
            };
            if let Some(sym) = sym {
                tokens.push(Token::Sym(sym));
                i += 2;
                continue;
            }
            let sym = match c {
                '=' => "=",
                '<' => "<",
                '>' => ">",
                '(' => "(",
                ')' => ")",
                ',' => ",",
                _ => return Err(SyntaxError(format!("unexpected token: '{c}'"))),
            };
            tokens.push(Token::Sym(sym));
            i += 1;
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

/// Parse one SOQL query.
pub fn parse(input: &str) -> Result<Query, SyntaxError> {
    let mut parser = Parser {
        tokens: tokenize(input)?,
        pos: 0,
    };
    let query = parser.query()?;
    if let Some(extra) = parser.peek() {
        return Err(SyntaxError(format!("unexpected token: '{}'", extra.text())));
    }
    Ok(query)
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        if self.at_keyword(keyword) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), SyntaxError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected {keyword}")))
        }
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Token::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, sym: &str) -> Result<(), SyntaxError> {
        if self.eat_sym(sym) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected '{sym}'")))
        }
    }

    fn unexpected(&self, expected: &str) -> SyntaxError {
        match self.peek() {
            Some(token) => {
                SyntaxError(format!("unexpected token: '{}' ({expected})", token.text()))
            }
            None => SyntaxError(format!("unexpected end of query ({expected})")),
        }
    }

    fn name(&mut self) -> Result<String, SyntaxError> {
        match self.peek() {
            Some(Token::Word(w)) if !is_reserved(w) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.unexpected("expected a field or object name")),
        }
    }

    fn query(&mut self) -> Result<Query, SyntaxError> {
        self.expect_keyword("SELECT")?;
        let select = if self.at_keyword("COUNT") {
            self.pos += 1;
            self.expect_sym("(")?;
            self.expect_sym(")")?;
            Select::Count
        } else {
            let mut fields = vec![self.name()?];
            while self.eat_sym(",") {
                fields.push(self.name()?);
            }
            Select::Fields(fields)
        };
        self.expect_keyword("FROM")?;
        let from = self.name()?;
        let filter = if self.eat_keyword("WHERE") {
            Some(self.or_cond()?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if self.eat_keyword("ORDER") {
            self.expect_keyword("BY")?;
            loop {
                let field = self.name()?;
                let descending = if self.eat_keyword("DESC") {
                    true
                } else {
                    self.eat_keyword("ASC");
                    false
                };
                let nulls_first = if self.eat_keyword("NULLS") {
                    if self.eat_keyword("FIRST") {
                        Some(true)
                    } else {
                        self.expect_keyword("LAST")?;
                        Some(false)
                    }
                } else {
                    None
                };
                order_by.push(OrderItem {
                    field,
                    descending,
                    nulls_first,
                });
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        let limit = if self.eat_keyword("LIMIT") {
            Some(self.count()?)
        } else {
            None
        };
        let offset = if self.eat_keyword("OFFSET") {
            Some(self.count()?)
        } else {
            None
        };
        Ok(Query {
            select,
            from,
            filter,
            order_by,
            limit,
            offset,
        })
    }

    fn count(&mut self) -> Result<u64, SyntaxError> {
        match self.peek() {
            Some(Token::Number(n)) => match n.parse::<u64>() {
                Ok(value) => {
                    self.pos += 1;
                    Ok(value)
                }
                Err(_) => Err(self.unexpected("expected a whole number")),
            },
            _ => Err(self.unexpected("expected a whole number")),
        }
    }

    fn or_cond(&mut self) -> Result<Cond, SyntaxError> {
        let mut left = self.and_cond()?;
        while self.eat_keyword("OR") {
            let right = self.and_cond()?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_cond(&mut self) -> Result<Cond, SyntaxError> {
        let mut left = self.not_cond()?;
        while self.eat_keyword("AND") {
            let right = self.not_cond()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_cond(&mut self) -> Result<Cond, SyntaxError> {
        if self.eat_keyword("NOT") {
            return Ok(Cond::Not(Box::new(self.not_cond()?)));
        }
        if self.eat_sym("(") {
            let inner = self.or_cond()?;
            self.expect_sym(")")?;
            return Ok(inner);
        }
        let field = self.name()?;
        if self.eat_keyword("LIKE") {
            return match self.next() {
                Some(Token::Str(pattern)) => Ok(Cond::Like(field, pattern)),
                _ => {
                    self.pos -= 1;
                    Err(self.unexpected("expected a quoted LIKE pattern"))
                }
            };
        }
        let negated_in = if self.at_keyword("NOT") {
            self.pos += 1;
            self.expect_keyword("IN")?;
            Some(true)
        } else if self.eat_keyword("IN") {
            Some(false)
        } else {
            None
        };
        if let Some(negated) = negated_in {
            self.expect_sym("(")?;
            let mut values = vec![self.literal()?];
            while self.eat_sym(",") {
                values.push(self.literal()?);
            }
            self.expect_sym(")")?;
            return Ok(Cond::In(field, negated, values));
        }
        let op = match self.next() {
            Some(Token::Sym("=")) => CmpOp::Eq,
            Some(Token::Sym("!=")) | Some(Token::Sym("<>")) => CmpOp::Ne,
            Some(Token::Sym("<")) => CmpOp::Lt,
            Some(Token::Sym("<=")) => CmpOp::Le,
            Some(Token::Sym(">")) => CmpOp::Gt,
            Some(Token::Sym(">=")) => CmpOp::Ge,
            _ => {
                self.pos -= 1;
                return Err(self.unexpected("expected a comparison operator"));
            }
        };
        Ok(Cond::Cmp(field, op, self.literal()?))
    }

    fn literal(&mut self) -> Result<Literal, SyntaxError> {
        let literal = match self.peek() {
            Some(Token::Str(s)) => Literal::Str(s.clone()),
            Some(Token::Number(n)) => match n.parse::<f64>() {
                Ok(v) => Literal::Num(v),
                Err(_) => return Err(self.unexpected("expected a number")),
            },
            Some(Token::Temporal(t)) => temporal(t).ok_or_else(|| {
                SyntaxError(format!(
                    "line 1:{} no viable alternative at character '{}': not a date or datetime",
                    self.pos, t
                ))
            })?,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => return Err(self.unexpected("expected a value")),
        };
        self.pos += 1;
        Ok(literal)
    }
}

fn temporal(text: &str) -> Option<Literal> {
    if text.contains('T') {
        super::record::parse_datetime(text).map(Literal::DateTime)
    } else {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(Literal::Date)
    }
}

fn is_reserved(word: &str) -> bool {
    const RESERVED: &[&str] = &[
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "ORDER", "BY", "LIMIT", "OFFSET", "IN",
        "LIKE", "ASC", "DESC", "NULLS", "NULL", "TRUE", "FALSE",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cursor_tiebreak_query() {
        let q = parse(
            "SELECT Id, Phone, SystemModstamp FROM Contact WHERE SystemModstamp > 2024-05-01T00:00:00Z \
             OR (SystemModstamp = 2024-05-01T00:00:00.000+0000 AND Id > '003SB0000000001AAA') \
             ORDER BY SystemModstamp ASC, Id LIMIT 500",
        )
        .unwrap();
        assert_eq!(
            q.select,
            Select::Fields(vec!["Id".into(), "Phone".into(), "SystemModstamp".into()])
        );
        assert_eq!(q.from, "Contact");
        assert_eq!(q.limit, Some(500));
        assert_eq!(q.order_by.len(), 2);
        let ms =
            crate::sandbox::salesforce::record::parse_datetime("2024-05-01T00:00:00Z").unwrap();
        match q.filter.unwrap() {
            Cond::Or(left, right) => {
                assert_eq!(
                    *left,
                    Cond::Cmp("SystemModstamp".into(), CmpOp::Gt, Literal::DateTime(ms))
                );
                assert!(matches!(*right, Cond::And(..)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_in_like_not_count_and_escapes() {
        let q = parse(
            "select count() from Task where Subject like 'Call %' and not WhoId in ('a','b') \
             and Description != 'it\\'s'",
        )
        .unwrap();
        assert_eq!(q.select, Select::Count);
        assert!(q.filter.is_some());
    }

    #[test]
    fn reports_malformed_queries_in_plain_words() {
        for (query, fragment) in [
            ("SELECT FROM Contact", "unexpected token: 'FROM'"),
            ("SELECT Id FROM", "unexpected end of query"),
            ("SELECT Id FROM Contact WHERE", "unexpected end"),
            ("SELECT Id FROM Contact LIMIT x", "expected a whole number"),
            ("SELECT Id FROM Contact WHERE Name = 'x", "unterminated"),
            (
                "SELECT Id FROM Contact WHERE X > 2024-13-45T00:00:00Z",
                "not a date",
            ),
            ("SELECT Id FROM Contact junk", "unexpected token: 'junk'"),
        ] {
            let err = parse(query).unwrap_err();
            assert!(err.0.contains(fragment), "{query}: {}", err.0);
        }
    }
}
