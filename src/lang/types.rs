//! The static types the checker gives to expressions.

use crate::value::FieldType;

/// The type of an expression, as far as the checker can know it.
///
/// Paths into a CRM record or analysis payload are `Any`: their JSON shape is only known at
/// evaluation time, where strict coercion to the target field's type applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprType {
    /// Dynamically typed input (a path into the record or payload).
    Any,
    Null,
    String,
    Number,
    Boolean,
    Date,
    Datetime,
    /// An enum variant of a declared enum field (the variants, when known).
    Enum(Vec<String>),
}

impl ExprType {
    /// The expression type of a declared field.
    pub fn of_field(ty: &FieldType) -> ExprType {
        match ty {
            FieldType::String => ExprType::String,
            FieldType::Number => ExprType::Number,
            FieldType::Boolean => ExprType::Boolean,
            FieldType::Date => ExprType::Date,
            FieldType::Datetime => ExprType::Datetime,
            FieldType::Enum(v) => ExprType::Enum(v.clone()),
        }
    }

    /// Name shown in diagnostics.
    pub fn describe(&self) -> &'static str {
        match self {
            ExprType::Any => "any",
            ExprType::Null => "null",
            ExprType::String => "string",
            ExprType::Number => "number",
            ExprType::Boolean => "boolean",
            ExprType::Date => "date",
            ExprType::Datetime => "datetime",
            ExprType::Enum(_) => "enum",
        }
    }
}
