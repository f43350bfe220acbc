//! Expression text for error reports (`FieldError::source`): `Email`, `lower(trim(Email))`,
//! `Amount ?? 0`. Printed once at build time from the checked tree.

use crate::lang::check::{TypedExpr, TypedExprKind};
use crate::value::vars::format_number;
use crate::value::Value;

pub(crate) fn print(expr: &TypedExpr, field_name: &dyn Fn(u16) -> String) -> String {
    let mut out = String::new();
    write(expr, field_name, &mut out);
    out
}

fn write(expr: &TypedExpr, field_name: &dyn Fn(u16) -> String, out: &mut String) {
    match &expr.kind {
        TypedExprKind::Input(path) => {
            for (i, seg) in path.iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                let plain = seg.chars().enumerate().all(|(i, c)| {
                    c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
                });
                if plain && !seg.is_empty() {
                    out.push_str(seg);
                } else {
                    out.push('`');
                    out.push_str(seg);
                    out.push('`');
                }
            }
        }
        TypedExprKind::Conversation(f) => {
            out.push_str("conversation.");
            out.push_str(f.name());
        }
        TypedExprKind::Contact(id) => out.push_str(&field_name(id.0)),
        TypedExprKind::Literal(v) => out.push_str(&literal(v)),
        TypedExprKind::Call { function, args } => {
            out.push_str(function);
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(a, field_name, out);
            }
            out.push(')');
        }
        TypedExprKind::Not(inner) => {
            out.push_str("not ");
            write_operand(inner, field_name, out);
        }
        TypedExprKind::Binary { op, lhs, rhs } => {
            write_operand(lhs, field_name, out);
            out.push(' ');
            out.push_str(op.symbol());
            out.push(' ');
            write_operand(rhs, field_name, out);
        }
    }
}

fn write_operand(expr: &TypedExpr, field_name: &dyn Fn(u16) -> String, out: &mut String) {
    if matches!(expr.kind, TypedExprKind::Binary { .. }) {
        out.push('(');
        write(expr, field_name, out);
        out.push(')');
    } else {
        write(expr, field_name, out);
    }
}

fn literal(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format_number(*n),
        Value::String(s) => serde_json::Value::String(s.clone()).to_string(),
        Value::Enum(e) => e.clone(),
        Value::Date(d) => crate::value::vars::format_date(*d),
        Value::Datetime(d) => crate::value::vars::format_datetime(*d),
    }
}
