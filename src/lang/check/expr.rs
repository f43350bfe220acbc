//! Expressions: resolve paths, check calls and operators, infer static types.
//!
//! What a path means depends on the block: in `inbound` it reads the CRM record, in `analysis`
//! the analysis payload (and `conversation.*` the conversation's built-ins), in `outbound` a
//! contact field. `contact.NAME` reads a contact field everywhere. A sub-expression with an
//! error becomes `null` of type `any`, so one mistake is reported once, not at every use.

use super::fit::{a, literal_type, literal_value};
use super::program::{ConversationField, FieldId, FieldTable, TypedExpr, TypedExprKind};
use super::suggest::did_you_mean;
use crate::lang::diagnostics::{codes, Diagnostic};
use crate::lang::functions;
use crate::lang::syntax::ast::{BinaryOp, Expr, ExprKind, Ident, Span};
use crate::lang::types::ExprType;
use crate::value::Value;

/// Which block an expression is in: decides what paths mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Inbound,
    Analysis,
    Outbound,
}

/// Resolves expressions of one block.
pub struct ExprChecker<'a> {
    pub fields: &'a FieldTable,
    pub scope: Scope,
    pub diags: &'a mut Vec<Diagnostic>,
}

impl ExprChecker<'_> {
    /// Resolves and types `expr`, reporting problems.
    pub fn check(&mut self, expr: &Expr) -> TypedExpr {
        match &expr.kind {
            ExprKind::Literal(lit) => TypedExpr {
                kind: TypedExprKind::Literal(literal_value(lit)),
                ty: literal_type(lit),
                span: expr.span,
            },
            ExprKind::Path(segments) => self.path(segments, expr.span),
            ExprKind::Call { name, args } => self.call(name, args, expr.span),
            ExprKind::Not(operand) => {
                let operand = self.check(operand);
                self.expect_boolean(&operand, "`not`");
                TypedExpr {
                    kind: TypedExprKind::Not(Box::new(operand)),
                    ty: ExprType::Boolean,
                    span: expr.span,
                }
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                let lhs = self.check(lhs);
                let rhs = self.check(rhs);
                let ty = self.binary_type(*op, *op_span, &lhs, &rhs);
                TypedExpr {
                    kind: TypedExprKind::Binary {
                        op: *op,
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                    ty,
                    span: expr.span,
                }
            }
        }
    }

    fn poisoned(span: Span) -> TypedExpr {
        TypedExpr {
            kind: TypedExprKind::Literal(Value::Null),
            ty: ExprType::Any,
            span,
        }
    }

    fn path(&mut self, segments: &[Ident], span: Span) -> TypedExpr {
        let Some(head) = segments.first() else {
            return Self::poisoned(span);
        };
        if !head.quoted && head.name == "contact" && segments.len() > 1 {
            return self.contact_field(&segments[1..], span);
        }
        match self.scope {
            Scope::Outbound => self.contact_field(segments, span),
            Scope::Analysis if !head.quoted && head.name == "conversation" => {
                self.conversation(segments, span)
            }
            _ => TypedExpr {
                kind: TypedExprKind::Input(segments.iter().map(|s| s.name.clone()).collect()),
                ty: ExprType::Any,
                span,
            },
        }
    }

    fn contact_field(&mut self, segments: &[Ident], span: Span) -> TypedExpr {
        let field = &segments[0];
        if segments.len() > 1 {
            self.diags.push(
                Diagnostic::new(
                    codes::BAD_CONTACT_PATH,
                    format!("contact field `{}` has no sub-fields", field.name),
                )
                .primary(
                    segments[1].span.to(segments[segments.len() - 1].span),
                    "not a contact field",
                )
                .help(match self.scope {
                    Scope::Outbound => {
                        "outbound sources read contact fields by their plain name, like `email`"
                    }
                    _ => "write `contact.NAME` to read a contact field",
                }),
            );
            return Self::poisoned(span);
        }
        match self.fields.lookup(&field.name) {
            Some(id) => self.contact(id, span),
            None => {
                self.diags.push(unknown_field(self.fields, field));
                Self::poisoned(span)
            }
        }
    }

    fn contact(&self, id: FieldId, span: Span) -> TypedExpr {
        TypedExpr {
            kind: TypedExprKind::Contact(id),
            ty: ExprType::of_field(&self.fields.get(id).ty),
            span,
        }
    }

    fn conversation(&mut self, segments: &[Ident], span: Span) -> TypedExpr {
        let names = ConversationField::ALL.map(ConversationField::name);
        if segments.len() == 2 {
            if let Some(field) = ConversationField::from_name(&segments[1].name) {
                return TypedExpr {
                    kind: TypedExprKind::Conversation(field),
                    ty: field.ty(),
                    span,
                };
            }
        }
        let (label_span, what) = match segments.get(1) {
            Some(second) => (second.span, format!("`conversation.{}`", second.name)),
            None => (span, "`conversation`".to_string()),
        };
        let help = segments
            .get(1)
            .and_then(|s| did_you_mean(&s.name, names))
            .map(|s| format!("did you mean `conversation.{s}`?"))
            .unwrap_or_else(|| format!("the conversation built-ins are {}", names.join(", ")));
        self.diags.push(
            Diagnostic::new(
                codes::UNKNOWN_CONVERSATION_FIELD,
                format!("{what} is not a conversation field"),
            )
            .primary(label_span, "unknown conversation field")
            .help(help)
            .note("to read an analysis field literally named `conversation`, backquote it: `` `conversation`.x ``"),
        );
        Self::poisoned(span)
    }

    fn call(&mut self, name: &Ident, args: &[Expr], span: Span) -> TypedExpr {
        let checked: Vec<TypedExpr> = args.iter().map(|a| self.check(a)).collect();
        let Some(sig) = functions::signature(&name.name) else {
            let known = functions::signatures().iter().map(|s| s.name);
            let help = match did_you_mean(&name.name, known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "the built-in functions are {}",
                    functions::signatures()
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.diags.push(
                Diagnostic::new(
                    codes::UNKNOWN_FUNCTION,
                    format!("unknown function `{}`", name.name),
                )
                .primary(name.span, "not a built-in function")
                .help(help),
            );
            return Self::poisoned(span);
        };
        let n = checked.len();
        let max = if sig.variadic {
            None
        } else {
            Some(sig.params.len())
        };
        if n < sig.min_args || max.is_some_and(|m| n > m) {
            let expected = match max {
                Some(m) if m == sig.min_args => plural(m, "argument"),
                Some(m) => format!("{} to {m} arguments", sig.min_args),
                None => format!("at least {}", plural(sig.min_args, "argument")),
            };
            self.diags.push(
                Diagnostic::new(
                    codes::WRONG_ARITY,
                    format!(
                        "`{}` takes {expected} but {} given",
                        sig.name,
                        if n == 1 {
                            "1 was".to_string()
                        } else {
                            format!("{n} were")
                        }
                    ),
                )
                .primary(span, format!("called with {}", plural(n, "argument")))
                .help(format!("{}: {}", sig.name, sig.summary)),
            );
            return Self::poisoned(span);
        }
        let mut ok = true;
        for (i, arg) in checked.iter().enumerate() {
            let param = sig
                .params
                .get(i)
                .or(sig.params.last())
                .unwrap_or(&ExprType::Any);
            if !arg_fits(&arg.ty, param) {
                ok = false;
                self.diags.push(
                    Diagnostic::new(
                        codes::ARGUMENT_TYPE,
                        format!(
                            "argument {} of `{}` must be {}, found {}",
                            i + 1,
                            sig.name,
                            a(param.describe()),
                            a(arg.ty.describe())
                        ),
                    )
                    .primary(arg.span, format!("this is {}", a(arg.ty.describe())))
                    .help(format!("{}: {}", sig.name, sig.summary)),
                );
            }
        }
        if !ok {
            return Self::poisoned(span);
        }
        let ty = if sig.returns == ExprType::Any {
            checked
                .iter()
                .map(|a| a.ty.clone())
                .reduce(|x, y| join(&x, &y))
                .unwrap_or(ExprType::Any)
        } else {
            sig.returns.clone()
        };
        TypedExpr {
            kind: TypedExprKind::Call {
                function: sig.name,
                args: checked,
            },
            ty,
            span,
        }
    }

    fn expect_boolean(&mut self, operand: &TypedExpr, what: &str) -> bool {
        if matches!(
            operand.ty,
            ExprType::Boolean | ExprType::Any | ExprType::Null
        ) {
            return true;
        }
        self.diags.push(
            Diagnostic::new(
                codes::OPERAND_TYPE,
                format!("{what} needs a boolean, found {}", a(operand.ty.describe())),
            )
            .primary(
                operand.span,
                format!("this is {}", a(operand.ty.describe())),
            )
            .help("compare it to get a boolean, for example `x == \"yes\"`, or use `to_bool(x)`"),
        );
        false
    }

    fn binary_type(
        &mut self,
        op: BinaryOp,
        op_span: Span,
        lhs: &TypedExpr,
        rhs: &TypedExpr,
    ) -> ExprType {
        match op {
            BinaryOp::Coalesce => join(&lhs.ty, &rhs.ty),
            BinaryOp::And | BinaryOp::Or => {
                let what = format!("`{}`", op.symbol());
                self.expect_boolean(lhs, &what);
                self.expect_boolean(rhs, &what);
                ExprType::Boolean
            }
            _ => {
                self.comparison(op, op_span, lhs, rhs);
                ExprType::Boolean
            }
        }
    }

    fn comparison(&mut self, op: BinaryOp, op_span: Span, lhs: &TypedExpr, rhs: &TypedExpr) {
        use ExprType as E;
        let comparable = match (&lhs.ty, &rhs.ty) {
            (E::Any | E::Null, _) | (_, E::Any | E::Null) => true,
            (E::Enum(_), E::String) | (E::String, E::Enum(_)) | (E::Enum(_), E::Enum(_)) => true,
            (E::Date | E::Datetime, E::Date | E::Datetime) => true,
            (l, r) => l == r,
        };
        if !comparable {
            self.diags.push(
                Diagnostic::new(
                    codes::OPERAND_TYPE,
                    format!(
                        "cannot compare {} with {}",
                        a(lhs.ty.describe()),
                        a(rhs.ty.describe())
                    ),
                )
                .primary(op_span, "incompatible operands")
                .secondary(lhs.span, format!("this is {}", a(lhs.ty.describe())))
                .secondary(rhs.span, format!("this is {}", a(rhs.ty.describe())))
                .help("convert one side first, for example with `to_number(x)` or `to_string(x)`"),
            );
            return;
        }
        let ordered = !matches!(op, BinaryOp::Eq | BinaryOp::Ne);
        if ordered {
            for side in [lhs, rhs] {
                if matches!(side.ty, E::Boolean | E::Enum(_)) {
                    self.diags.push(
                        Diagnostic::new(
                            codes::OPERAND_TYPE,
                            format!(
                                "`{}` cannot order {} values",
                                op.symbol(),
                                side.ty.describe()
                            ),
                        )
                        .primary(side.span, format!("this is {}", a(side.ty.describe())))
                        .help("use `==` or `!=` for booleans and enum variants"),
                    );
                    return;
                }
            }
        }
        // `lead_status == "qualifed"`: a literal compared with an enum must name a variant.
        for (side, other) in [(lhs, rhs), (rhs, lhs)] {
            if let (E::Enum(variants), TypedExprKind::Literal(Value::String(text))) =
                (&side.ty, &other.kind)
            {
                if !variants.iter().any(|v| v == text) {
                    self.diags.push(unknown_variant(text, variants, other.span));
                }
            }
        }
    }
}

/// Whether an argument of static type `arg` is accepted for a parameter of type `param`.
/// Text parameters take any value with a text form (numbers, dates, enum variants), but not
/// booleans, whose text form is almost never what was meant.
fn arg_fits(arg: &ExprType, param: &ExprType) -> bool {
    use ExprType as E;
    match (arg, param) {
        (_, E::Any) | (E::Any | E::Null, _) => true,
        (E::Boolean, E::String) => false,
        (_, E::String) => true,
        (E::Enum(_), E::Enum(_)) => true,
        (E::Date | E::Datetime, E::Date | E::Datetime) => true,
        (l, r) => l == r,
    }
}

/// The type of `a ?? b` (and of `coalesce`): the common type, else `any`.
fn join(x: &ExprType, y: &ExprType) -> ExprType {
    match (x, y) {
        (ExprType::Null, other) | (other, ExprType::Null) => other.clone(),
        (l, r) if l == r => l.clone(),
        _ => ExprType::Any,
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// E201 for a name that is not a contact field, with "did you mean".
pub fn unknown_field(fields: &FieldTable, name: &Ident) -> Diagnostic {
    // Bounded: a hostile schema with thousands of fields must not make each miss expensive.
    let candidates = fields
        .fields
        .iter()
        .take(crate::lang::syntax::limits::MAX_FIELDS + FieldTable::BUILTINS.len())
        .map(|f| f.name.as_str());
    let suggestion = did_you_mean(&name.name, candidates);
    Diagnostic::new(
        codes::UNKNOWN_FIELD,
        format!("unknown contact field `{}`", name.name),
    )
    .primary(name.span, "not a contact field")
    .help(match suggestion {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "declare it first, for example `field {}: string`",
            if super::fields::is_snake_case(&name.name) {
                name.name.as_str()
            } else {
                "my_field"
            }
        ),
    })
}

/// E306 for a value that names no variant of an enum.
pub fn unknown_variant(text: &str, variants: &[String], span: Span) -> Diagnostic {
    let suggestion = did_you_mean(text, variants.iter().map(String::as_str));
    Diagnostic::new(
        codes::UNKNOWN_VARIANT,
        format!("`{text}` is not a variant of this enum"),
    )
    .primary(span, "unknown variant")
    .help(match suggestion {
        Some(s) => format!(
            "did you mean `{s}`? the variants are {}",
            variants.join(", ")
        ),
        None => format!("the variants are {}", variants.join(", ")),
    })
}
