//! Typed contact values: the six field types of the rule language plus null.
//!
//! `Value` is what the store keeps and what the evaluator produces; CRM and analysis JSON is
//! turned into a `Value` of a field's type by [`coerce`] (strict: a value that does not fit is an
//! error, never a silent default). Phone numbers are normalized by [`phone`].

pub mod coerce;
pub mod dynamic;
pub mod phone;
pub mod vars;

pub use dynamic::DynValue;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The declared type of a contact field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "variants", rename_all = "snake_case")]
pub enum FieldType {
    String,
    Number,
    Boolean,
    Date,
    Datetime,
    /// An enum with its variants, in declaration order.
    Enum(Vec<String>),
}

impl FieldType {
    /// The keyword used in rule files (`enum` for every enum).
    pub fn keyword(&self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Enum(_) => "enum",
        }
    }
}

/// A typed value. `Null` means "present but empty"; a missing field is simply absent from the
/// contact's map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum Value {
    Null,
    String(String),
    Number(f64),
    Bool(bool),
    Date(NaiveDate),
    /// Always UTC.
    Datetime(DateTime<Utc>),
    /// An enum variant (the checker guarantees it belongs to the target field's enum).
    Enum(String),
}

impl Value {
    /// Null, or text that is empty or only white space: no value, as `fill_if_empty` and a
    /// first link see it (a CRM answers `""` for a property set and then cleared).
    pub fn is_blank(&self) -> bool {
        match self {
            Value::Null => true,
            Value::String(s) => s.trim().is_empty(),
            _ => false,
        }
    }
}

/// A contact's fields by name (built-ins and custom fields alike).
pub type Fields = BTreeMap<String, Value>;
