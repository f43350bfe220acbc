//! Compiled value maps: `"Open - Not Contacted" => new`, `new => "Open - Not Contacted"`,
//! `else => unqualified`.
//!
//! Lookup is a linear scan: real maps have a handful of entries, where comparing a few short
//! strings beats hashing. Exact matches win; then text keys match case-insensitively after
//! trimming (CRM picklists drift in case: `NEW` vs `New`). Numeric and boolean keys match their
//! text forms, since HubSpot sends every property as text.

use crate::lang::check::CheckedValueMap;
use crate::value::coerce::{parse_bool, parse_number};
use crate::value::{DynValue, Value};

#[derive(Debug, Clone)]
pub(crate) struct CompiledValueMap {
    entries: Box<[(Value, Value)]>,
    default: Option<Value>,
}

impl CompiledValueMap {
    pub(crate) fn build(map: &CheckedValueMap) -> CompiledValueMap {
        CompiledValueMap {
            entries: map.entries.clone().into_boxed_slice(),
            default: map.default.clone(),
        }
    }

    /// The translated value: a matching entry's result; else the `else` result for a present
    /// value; else the value unchanged (missing and null stay as they are unless a `null` key
    /// names them).
    pub(crate) fn apply<'a>(&'a self, v: DynValue<'a>) -> DynValue<'a> {
        if let Some(out) = self.lookup(&v) {
            return DynValue::from_value(out);
        }
        match &self.default {
            Some(d) if !v.is_absent() => DynValue::from_value(d),
            _ => v,
        }
    }

    fn lookup(&self, v: &DynValue<'_>) -> Option<&Value> {
        if let Some((_, out)) = self.entries.iter().find(|(k, _)| key_matches(k, v)) {
            return Some(out);
        }
        let text = v.as_text()?.trim();
        self.entries.iter().find_map(|(k, out)| match k {
            Value::String(k) | Value::Enum(k) if k.eq_ignore_ascii_case(text) => Some(out),
            _ => None,
        })
    }
}

fn key_matches(k: &Value, v: &DynValue<'_>) -> bool {
    match (k, v) {
        (Value::String(k) | Value::Enum(k), DynValue::Str(t) | DynValue::Enum(t)) => k == t,
        (Value::String(k), DynValue::Number(n)) => parse_number(k) == Ok(*n),
        (Value::Number(k), DynValue::Number(n)) => k == n,
        (Value::Number(k), DynValue::Str(t)) => parse_number(t) == Ok(*k),
        (Value::Bool(k), DynValue::Bool(b)) => k == b,
        (Value::Bool(k), DynValue::Str(t)) => parse_bool(t) == Ok(*k),
        (Value::Null, v) => v.is_absent(),
        (Value::Date(k), DynValue::Date(d)) => k == d,
        (Value::Datetime(k), DynValue::Datetime(d)) => k == d,
        _ => false,
    }
}
