//! Whether a value or a static type fits a field type.
//!
//! Literals are coerced at compile time with the same strict coercion the evaluator uses
//! (`value::coerce`), so a literal accepted here is accepted at run time and vice versa.
//! Statically typed expressions are judged by [`static_fit`], which mirrors that coercion.

use crate::lang::syntax::ast::Literal;
use crate::lang::types::ExprType;
use crate::value::coerce::coerce;
use crate::value::{DynValue, FieldType, Value};

/// The value of a literal (strings stay strings; coercion happens against a target type).
pub fn literal_value(lit: &Literal) -> Value {
    match lit {
        Literal::Null => Value::Null,
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Number(n) => Value::Number(*n),
        Literal::String(s) => Value::String(s.clone()),
    }
}

/// The static type of a literal.
pub fn literal_type(lit: &Literal) -> ExprType {
    match lit {
        Literal::Null => ExprType::Null,
        Literal::Bool(_) => ExprType::Boolean,
        Literal::Number(_) => ExprType::Number,
        Literal::String(_) => ExprType::String,
    }
}

/// Coerces a literal value to `ty` as the evaluator would; the error is the reason.
pub fn fit_value(value: &Value, ty: &FieldType) -> Result<Value, String> {
    coerce(DynValue::from_value(value), ty).map_err(|e| e.reason)
}

/// Whether a value of static type `from` can be coerced to `to` at all (it may still fail for
/// some values, e.g. a string that is not a number). `Err` explains why not.
pub fn static_fit(from: &ExprType, to: &FieldType) -> Result<(), String> {
    use ExprType as E;
    let ok = match (from, to) {
        (E::Any | E::Null, _) => true,
        (_, FieldType::String) => true,
        (E::Number | E::String, FieldType::Number) => true,
        (E::Boolean | E::String | E::Number, FieldType::Boolean) => true,
        (E::Date | E::Datetime | E::String | E::Number, FieldType::Date | FieldType::Datetime) => {
            true
        }
        (E::String, FieldType::Enum(_)) => true,
        (E::Enum(from_variants), FieldType::Enum(to_variants)) => {
            let missing: Vec<&str> = from_variants
                .iter()
                .filter(|v| !to_variants.contains(v))
                .map(String::as_str)
                .collect();
            if missing.is_empty() {
                true
            } else {
                return Err(format!(
                    "the target enum has no variant {}",
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a {} cannot be converted to a {}",
            from.describe(),
            to.keyword()
        ))
    }
}

/// "a string", "an enum", "a number": for messages.
pub fn a(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_fit_like_runtime_coercion() {
        assert_eq!(
            fit_value(&Value::String("42".into()), &FieldType::Number),
            Ok(Value::Number(42.0))
        );
        assert!(fit_value(&Value::String("lots".into()), &FieldType::Number).is_err());
        assert!(fit_value(&Value::Bool(true), &FieldType::Date).is_err());
    }

    #[test]
    fn static_types() {
        assert!(static_fit(&ExprType::Boolean, &FieldType::Number).is_err());
        assert!(static_fit(&ExprType::String, &FieldType::Number).is_ok());
        let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(static_fit(&ExprType::Enum(e(&["a"])), &FieldType::Enum(e(&["a", "b"]))).is_ok());
        assert!(static_fit(&ExprType::Enum(e(&["c"])), &FieldType::Enum(e(&["a"]))).is_err());
    }
}
