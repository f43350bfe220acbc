//! Dynamic variables (`docs/sync-semantics.md`): every contact field as a string, for an agent's prompt.
//!
//! Numbers in plain decimal (never `1e21`, integers without `.0`), booleans `true`/`false`,
//! dates `YYYY-MM-DD`, datetimes RFC 3339 in UTC; null fields are absent, like missing ones.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use super::{Fields, Value};

/// A number in plain decimal. Rust's `Display` for `f64` never uses an exponent and prints the
/// shortest text that round-trips, so `42.0` is `42` and `1e21` is `1000000000000000000000`.
pub fn format_number(n: f64) -> String {
    if n == 0.0 {
        // Avoid "-0".
        return "0".to_string();
    }
    format!("{n}")
}

/// A date as `YYYY-MM-DD`.
pub fn format_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A datetime as RFC 3339 in UTC with a `Z` suffix, with fractional seconds only when present.
pub fn format_datetime(d: DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// One value as a dynamic variable; `None` for null (the variable is then absent).
pub fn format_value(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Number(n) => format_number(*n),
        Value::Bool(b) => b.to_string(),
        Value::Date(d) => format_date(*d),
        Value::Datetime(d) => format_datetime(*d),
        Value::Enum(v) => v.clone(),
    })
}

/// Every non-null field of a contact as a dynamic variable, keyed by field name.
pub fn dynamic_variables(fields: &Fields) -> BTreeMap<String, String> {
    fields
        .iter()
        .filter_map(|(name, value)| format_value(value).map(|text| (name.clone(), text)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn numbers_are_plain_decimal() {
        assert_eq!(format_number(42.0), "42");
        assert_eq!(format_number(-3.5), "-3.5");
        assert_eq!(format_number(1e21), "1000000000000000000000");
        assert_eq!(format_number(1.5e-7), "0.00000015");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn dates_and_datetimes() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        assert_eq!(format_date(d), "2026-03-09");
        let t = Utc.with_ymd_and_hms(2026, 3, 9, 14, 5, 0).unwrap();
        assert_eq!(format_datetime(t), "2026-03-09T14:05:00Z");
        let t = t + chrono::Duration::milliseconds(250);
        assert_eq!(format_datetime(t), "2026-03-09T14:05:00.250Z");
    }

    #[test]
    fn variables_skip_null_and_stringify_everything_else() {
        let mut f = Fields::new();
        f.insert("first_name".into(), Value::String("Ada".into()));
        f.insert("do_not_call".into(), Value::Bool(false));
        f.insert("deal_size".into(), Value::Number(120000.0));
        f.insert("lead_status".into(), Value::Enum("working".into()));
        f.insert("email".into(), Value::Null);
        let vars = dynamic_variables(&f);
        assert_eq!(vars.get("first_name").map(String::as_str), Some("Ada"));
        assert_eq!(vars.get("do_not_call").map(String::as_str), Some("false"));
        assert_eq!(vars.get("deal_size").map(String::as_str), Some("120000"));
        assert_eq!(vars.get("lead_status").map(String::as_str), Some("working"));
        assert!(!vars.contains_key("email"));
    }
}
