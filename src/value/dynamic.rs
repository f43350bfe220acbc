//! `DynValue`: a value during expression evaluation, before it is coerced to a field's type.
//!
//! It borrows from the input record wherever it can (`Str(Cow::Borrowed)`, `Json(&..)`), so
//! reading a path and passing it through string functions allocates only when a function
//! actually changes the text. `Missing` (the path is absent) and `Null` (present but null) are
//! kept apart because `??`, modes and the engine treat them differently.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};

use super::Value;

/// A dynamically typed value produced by evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum DynValue<'a> {
    /// The path does not exist in the input.
    Missing,
    Null,
    Bool(bool),
    Number(f64),
    Str(Cow<'a, str>),
    Date(NaiveDate),
    Datetime(DateTime<Utc>),
    /// An enum variant (from a value map or a contact field).
    Enum(Cow<'a, str>),
    /// A JSON array or object (only ever borrowed from the input).
    Json(&'a serde_json::Value),
}

impl Default for DynValue<'_> {
    /// `Missing`, so arguments can be `std::mem::take`n.
    fn default() -> Self {
        DynValue::Missing
    }
}

impl<'a> DynValue<'a> {
    /// Borrow a JSON value: scalars become their typed variants, arrays and objects stay JSON.
    #[inline]
    pub fn from_json(json: &'a serde_json::Value) -> DynValue<'a> {
        match json {
            serde_json::Value::Null => DynValue::Null,
            serde_json::Value::Bool(b) => DynValue::Bool(*b),
            // `as_f64` is infallible for serde_json numbers without arbitrary precision.
            serde_json::Value::Number(n) => n.as_f64().map_or(DynValue::Null, DynValue::Number),
            serde_json::Value::String(s) => DynValue::Str(Cow::Borrowed(s)),
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => DynValue::Json(json),
        }
    }

    /// Borrow a stored contact value.
    #[inline]
    pub fn from_value(value: &'a Value) -> DynValue<'a> {
        match value {
            Value::Null => DynValue::Null,
            Value::String(s) => DynValue::Str(Cow::Borrowed(s)),
            Value::Number(n) => DynValue::Number(*n),
            Value::Bool(b) => DynValue::Bool(*b),
            Value::Date(d) => DynValue::Date(*d),
            Value::Datetime(d) => DynValue::Datetime(*d),
            Value::Enum(v) => DynValue::Enum(Cow::Borrowed(v)),
        }
    }

    /// True for `Missing` and `Null`: the values `??` falls back on.
    #[inline]
    pub fn is_absent(&self) -> bool {
        matches!(self, DynValue::Missing | DynValue::Null)
    }

    /// Name of the dynamic type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            DynValue::Missing => "missing",
            DynValue::Null => "null",
            DynValue::Bool(_) => "boolean",
            DynValue::Number(_) => "number",
            DynValue::Str(_) => "string",
            DynValue::Date(_) => "date",
            DynValue::Datetime(_) => "datetime",
            DynValue::Enum(_) => "enum",
            DynValue::Json(serde_json::Value::Array(_)) => "array",
            DynValue::Json(_) => "object",
        }
    }

    /// The type name with its article (`a number`, `an enum`), for error messages.
    pub fn described(&self) -> String {
        with_article(self.type_name())
    }

    /// The text of a string or enum value.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            DynValue::Str(s) | DynValue::Enum(s) => Some(s),
            _ => None,
        }
    }

    /// The value as JSON, for error reports and outbound writes. `Missing` becomes `null`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            DynValue::Missing | DynValue::Null => serde_json::Value::Null,
            DynValue::Bool(b) => serde_json::Value::Bool(*b),
            // Whole numbers print as integers (`2`, not `2.0`), as the CRM sent them.
            DynValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
                serde_json::Value::Number((*n as i64).into())
            }
            DynValue::Number(n) => serde_json::Number::from_f64(*n)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            DynValue::Str(s) | DynValue::Enum(s) => serde_json::Value::String(s.to_string()),
            DynValue::Date(d) => serde_json::Value::String(super::vars::format_date(*d)),
            DynValue::Datetime(d) => serde_json::Value::String(super::vars::format_datetime(*d)),
            DynValue::Json(j) => (*j).clone(),
        }
    }
}

/// `a number`, `an enum`, `an array`.
pub fn with_article(word: &str) -> String {
    let article = if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {word}")
}
