//! Strict coercion of input values to a contact field's type (`docs/rule-language.md`).
//!
//! Accepted: numeric strings to numbers; `true/false/yes/no/1/0` (any case, surrounding blanks
//! ignored) to booleans; ISO-8601 dates and datetimes and epoch milliseconds to date/datetime
//! (datetimes converted to UTC); picklist text to an enum variant (exact match first, then
//! case-insensitive). Anything else is an error carrying the value and the reason — never a
//! silent default.
//!
//! A datetime must also be one the store can hold: it keeps nanoseconds since the epoch in an
//! `i64`, so [`STORABLE_DATETIMES`] (1677-09-21 to 2262-04-11) is the range, and a datetime
//! outside it is refused here, on every path that makes one, rather than bent to the nearest
//! end when written.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

use super::dynamic::DynValue;
use super::vars::{format_date, format_datetime, format_number};
use super::{FieldType, Value};

/// A value that does not fit the target type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot use {value} as {target}: {reason}")]
pub struct CoerceError {
    /// The offending value, as JSON.
    pub value: serde_json::Value,
    /// The target type's keyword.
    pub target: &'static str,
    /// Why, in plain words.
    pub reason: String,
}

fn fail(value: &DynValue<'_>, target: &FieldType, reason: impl Into<String>) -> Box<CoerceError> {
    Box::new(CoerceError {
        value: value.to_json(),
        target: target.keyword(),
        reason: reason.into(),
    })
}

/// Coerce a JSON value (CRM or analysis payload) to `ty`. `null` stays `Value::Null`.
pub fn coerce_json(json: &serde_json::Value, ty: &FieldType) -> Result<Value, CoerceError> {
    coerce(DynValue::from_json(json), ty)
}

/// Coerce an evaluated value to `ty`. `Null` and `Missing` become `Value::Null`; callers decide
/// beforehand whether an absent value is written at all.
pub fn coerce(value: DynValue<'_>, ty: &FieldType) -> Result<Value, CoerceError> {
    coerce_boxed(value, ty).map_err(|e| *e)
}

/// [`coerce`] with the error boxed: the evaluator's hot path moves results around, and a small
/// `Result` keeps the success case cheap.
pub fn coerce_boxed(value: DynValue<'_>, ty: &FieldType) -> Result<Value, Box<CoerceError>> {
    if value.is_absent() {
        return Ok(Value::Null);
    }
    match ty {
        FieldType::String => to_string(value, ty),
        FieldType::Number => to_number(&value)
            .map(Value::Number)
            .map_err(|r| fail(&value, ty, r)),
        FieldType::Boolean => to_bool(&value)
            .map(Value::Bool)
            .map_err(|r| fail(&value, ty, r)),
        FieldType::Date => to_date(&value)
            .map(Value::Date)
            .map_err(|r| fail(&value, ty, r)),
        FieldType::Datetime => to_datetime(&value)
            .map(Value::Datetime)
            .map_err(|r| fail(&value, ty, r)),
        FieldType::Enum(variants) => to_enum(&value, variants)
            .map(|v| Value::Enum(v.to_string()))
            .map_err(|r| fail(&value, ty, r)),
    }
}

fn to_string(value: DynValue<'_>, ty: &FieldType) -> Result<Value, Box<CoerceError>> {
    let text = match value {
        DynValue::Str(s) | DynValue::Enum(s) => s.into_owned(),
        DynValue::Number(n) => format_number(n),
        DynValue::Bool(b) => b.to_string(),
        DynValue::Date(d) => format_date(d),
        DynValue::Datetime(d) => format_datetime(d),
        other => {
            let reason = format!("{} has no text form", other.described());
            return Err(fail(&other, ty, reason));
        }
    };
    Ok(Value::String(text))
}

/// A number from a JSON number or a decimal string (`"1200.50"`, `" 42 "`, `"-1e3"`).
/// Not accepted: empty text, `NaN`/`inf`, thousands separators, currency signs.
pub fn to_number(value: &DynValue<'_>) -> Result<f64, String> {
    match value {
        DynValue::Number(n) => Ok(*n),
        DynValue::Str(s) => parse_number(s),
        other => Err(format!("expected a number, found {}", other.described())),
    }
}

/// Parse decimal text strictly.
pub fn parse_number(text: &str) -> Result<f64, String> {
    let t = text.trim();
    // `f64::from_str` also takes "inf", "NaN" and "infinity"; only digits, sign, point and
    // exponent are numbers here.
    let plausible = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        && t.bytes().any(|b| b.is_ascii_digit());
    match t.parse::<f64>() {
        Ok(n) if plausible && n.is_finite() => Ok(n),
        _ => Err(format!("{text:?} is not a number")),
    }
}

/// A boolean from a JSON boolean, the numbers 1 and 0, or the words
/// `true/false/yes/no/1/0` in any case.
pub fn to_bool(value: &DynValue<'_>) -> Result<bool, String> {
    match value {
        DynValue::Bool(b) => Ok(*b),
        DynValue::Number(n) if *n == 1.0 => Ok(true),
        DynValue::Number(n) if *n == 0.0 => Ok(false),
        DynValue::Number(n) => Err(format!("{} is not 1 or 0", format_number(*n))),
        DynValue::Str(s) => parse_bool(s),
        other => Err(format!("expected a boolean, found {}", other.described())),
    }
}

/// Parse a boolean word strictly.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    let t = text.trim();
    const TRUE: [&str; 3] = ["true", "yes", "1"];
    const FALSE: [&str; 3] = ["false", "no", "0"];
    if TRUE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Ok(true)
    } else if FALSE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Ok(false)
    } else {
        Err(format!(
            "{text:?} is not a boolean (use true/false, yes/no or 1/0)"
        ))
    }
}

/// A date from `YYYY-MM-DD`, or from a datetime / epoch milliseconds that fall exactly on
/// midnight UTC (HubSpot stores date properties that way). A datetime with a time of day is
/// refused rather than silently truncated.
pub fn to_date(value: &DynValue<'_>) -> Result<NaiveDate, String> {
    let dt = match value {
        DynValue::Date(d) => return Ok(*d),
        DynValue::Str(s) => {
            let t = s.trim();
            if let Some(d) = parse_iso_date(t) {
                return Ok(d);
            }
            parse_datetime_any(t)
                .map_err(|_| format!("{s:?} is not a date (expected YYYY-MM-DD)"))?
        }
        DynValue::Datetime(d) => *d,
        DynValue::Number(n) => epoch_ms_any(*n)?,
        other => return Err(format!("expected a date, found {}", other.described())),
    };
    if dt.time() == NaiveTime::MIN {
        Ok(dt.date_naive())
    } else {
        Err(format!(
            "{} has a time of day; a date field takes YYYY-MM-DD",
            format_datetime(dt)
        ))
    }
}

/// The datetimes the store can hold, as people read the bounds (nanoseconds since the epoch in
/// an `i64`).
pub const STORABLE_DATETIMES: &str =
    "1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z";

/// `t` when the store can hold it, else why not.
pub fn storable_datetime(t: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    match t.timestamp_nanos_opt() {
        Some(_) => Ok(t),
        None => Err(format!(
            "{} is outside the datetimes crmsync can store ({STORABLE_DATETIMES})",
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        )),
    }
}

/// A datetime (stored in UTC) from RFC 3339 / ISO-8601 text with an offset (`Z`, `+02:00`,
/// Salesforce's `+0000`), ISO text without offset (taken as UTC), a bare date (midnight UTC),
/// or epoch milliseconds as a number or digit string. Only datetimes the store can hold
/// ([`storable_datetime`]).
pub fn to_datetime(value: &DynValue<'_>) -> Result<DateTime<Utc>, String> {
    let t = match value {
        DynValue::Datetime(d) => *d,
        DynValue::Date(d) => Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)),
        DynValue::Number(n) => epoch_ms_any(*n)?,
        DynValue::Str(s) => parse_datetime_any(s.trim())?,
        other => return Err(format!("expected a datetime, found {}", other.described())),
    };
    storable_datetime(t)
}

/// Parse datetime text (see [`to_datetime`]); only datetimes the store can hold.
pub fn parse_datetime(t: &str) -> Result<DateTime<Utc>, String> {
    parse_datetime_any(t).and_then(storable_datetime)
}

/// [`parse_datetime`] over chrono's whole range: a date field takes `9999-12-31T00:00:00Z`
/// (dates are stored as text).
fn parse_datetime_any(t: &str) -> Result<DateTime<Utc>, String> {
    let digits = t.strip_prefix('-').unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Epoch milliseconds as text (HubSpot sends every property as a string).
        if let Ok(ms) = t.parse::<i64>() {
            return epoch_ms_any(ms as f64);
        }
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    // Salesforce: 2024-05-01T12:00:00.000+0000 (offset without colon). Insert the colon on the
    // stack and use chrono's fast RFC 3339 parser rather than a format string.
    let b = t.as_bytes();
    if b.len() >= 5 && b.len() < 64 {
        let (head, zone) = b.split_at(b.len() - 5);
        if matches!(zone[0], b'+' | b'-') && zone[1..].iter().all(u8::is_ascii_digit) {
            let mut buf = [0u8; 70];
            let n = head.len();
            buf[..n].copy_from_slice(head);
            buf[n..n + 3].copy_from_slice(&zone[..3]);
            buf[n + 3] = b':';
            buf[n + 4..n + 6].copy_from_slice(&zone[3..]);
            if let Ok(d) = std::str::from_utf8(&buf[..n + 6])
                .map_err(|_| ())
                .and_then(|s| DateTime::parse_from_rfc3339(s).map_err(|_| ()))
            {
                return Ok(d.with_timezone(&Utc));
            }
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(Utc.from_utc_datetime(&d));
        }
    }
    if let Some(d) = parse_iso_date(t) {
        return Ok(Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)));
    }
    Err(format!(
        "{t:?} is not a datetime (expected ISO-8601 such as 2026-03-09T14:05:00Z, or epoch milliseconds)"
    ))
}

/// Exactly `YYYY-MM-DD` (a real calendar date). Checked byte by byte: this is the common case
/// and chrono's format-string parser costs more than the rest of a mapping.
pub fn parse_iso_date(t: &str) -> Option<NaiveDate> {
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

/// Epoch milliseconds to UTC; must be a whole number whose datetime the store can hold.
pub fn from_epoch_ms(ms: f64) -> Result<DateTime<Utc>, String> {
    epoch_ms_any(ms).and_then(storable_datetime)
}

/// Epoch milliseconds in chrono's range (dates; see [`parse_datetime_any`]).
fn epoch_ms_any(ms: f64) -> Result<DateTime<Utc>, String> {
    if ms.fract() != 0.0 || !ms.is_finite() || ms.abs() > 8.0e15 {
        return Err(format!("{} is not epoch milliseconds", format_number(ms)));
    }
    Utc.timestamp_millis_opt(ms as i64)
        .single()
        .ok_or_else(|| format!("{} is out of range for a datetime", format_number(ms)))
}

/// The enum variant a picklist text names: exact match first, then case-insensitive (the
/// first declared variant wins a tie). Returns the declared spelling.
pub fn to_enum<'v>(value: &DynValue<'_>, variants: &'v [String]) -> Result<&'v str, String> {
    let text: Cow<'_, str> = match value {
        DynValue::Str(s) | DynValue::Enum(s) => Cow::Borrowed(s.as_ref()),
        other => {
            return Err(format!(
                "expected one of {}, found {}",
                variants.join(", "),
                other.described()
            ))
        }
    };
    match_variant(text.trim(), variants)
        .ok_or_else(|| format!("{text:?} is not one of {}", variants.join(", ")))
}

/// Exact, then ASCII-case-insensitive, variant lookup.
pub fn match_variant<'v>(text: &str, variants: &'v [String]) -> Option<&'v str> {
    variants
        .iter()
        .find(|v| v.as_str() == text)
        .or_else(|| variants.iter().find(|v| v.eq_ignore_ascii_case(text)))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(j: serde_json::Value, ty: FieldType) -> Result<Value, CoerceError> {
        coerce_json(&j, &ty)
    }

    #[test]
    fn numbers() {
        assert_eq!(c(json!(12.5), FieldType::Number), Ok(Value::Number(12.5)));
        assert_eq!(
            c(json!(" 1200 "), FieldType::Number),
            Ok(Value::Number(1200.0))
        );
        assert_eq!(
            c(json!("-1e3"), FieldType::Number),
            Ok(Value::Number(-1000.0))
        );
        for bad in ["", "abc", "NaN", "inf", "1,000", "$5", "12abc", "-"] {
            let e = c(json!(bad), FieldType::Number).unwrap_err();
            assert_eq!(e.value, json!(bad));
            assert!(e.reason.contains("is not a number"), "{bad}: {}", e.reason);
        }
        assert!(c(json!(true), FieldType::Number).is_err());
        assert!(c(json!([1]), FieldType::Number).is_err());
    }

    #[test]
    fn booleans() {
        for (t, want) in [
            ("true", true),
            ("TRUE", true),
            ("Yes", true),
            ("1", true),
            (" no ", false),
            ("False", false),
            ("0", false),
        ] {
            assert_eq!(
                c(json!(t), FieldType::Boolean),
                Ok(Value::Bool(want)),
                "{t}"
            );
        }
        assert_eq!(c(json!(1), FieldType::Boolean), Ok(Value::Bool(true)));
        assert_eq!(c(json!(0), FieldType::Boolean), Ok(Value::Bool(false)));
        assert_eq!(c(json!(false), FieldType::Boolean), Ok(Value::Bool(false)));
        for bad in [
            json!("y"),
            json!("maybe"),
            json!(2),
            json!(""),
            json!({"a": 1}),
        ] {
            assert!(c(bad.clone(), FieldType::Boolean).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        assert_eq!(c(json!("2026-03-09"), FieldType::Date), Ok(Value::Date(d)));
        assert_eq!(
            c(json!("2026-03-09T00:00:00Z"), FieldType::Date),
            Ok(Value::Date(d))
        );
        assert_eq!(
            c(json!(1773014400000_i64), FieldType::Date),
            Ok(Value::Date(d))
        );
        assert_eq!(
            c(json!("1773014400000"), FieldType::Date),
            Ok(Value::Date(d))
        );
        let e = c(json!("2026-03-09T10:00:00Z"), FieldType::Date).unwrap_err();
        assert!(e.reason.contains("time of day"), "{}", e.reason);
        for bad in ["03/09/2026", "2026-02-30", "tomorrow", ""] {
            assert!(c(json!(bad), FieldType::Date).is_err(), "{bad}");
        }
    }

    #[test]
    fn iso_date_fast_path_is_strict() {
        assert_eq!(
            parse_iso_date("2024-02-29"),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        for bad in [
            "2023-02-29",
            "2024-2-29",
            "2024/02/29",
            "2024-02-2x",
            "+024-02-29",
            "20240229",
        ] {
            assert_eq!(parse_iso_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn datetimes_are_utc() {
        let want = Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).unwrap();
        for t in [
            json!("2026-03-09T12:00:00Z"),
            json!("2026-03-09T14:00:00+02:00"),
            json!("2026-03-09T12:00:00.000+0000"),
            json!("2026-03-09T07:00:00-0500"),
            json!("2026-03-09T12:00:00"),
            json!(1773057600000_i64),
            json!("1773057600000"),
        ] {
            assert_eq!(
                c(t.clone(), FieldType::Datetime),
                Ok(Value::Datetime(want)),
                "{t}"
            );
        }
        assert_eq!(
            c(json!("2026-03-09"), FieldType::Datetime),
            Ok(Value::Datetime(
                Utc.with_ymd_and_hms(2026, 3, 9, 0, 0, 0).unwrap()
            ))
        );
        for bad in [
            json!("next week"),
            json!(1.5),
            json!("2026-13-01T00:00:00Z"),
            json!(true),
        ] {
            assert!(c(bad.clone(), FieldType::Datetime).is_err(), "{bad}");
        }
    }

    #[test]
    fn datetimes_the_store_cannot_hold_are_refused_not_bent() {
        for bad in [
            json!("9999-12-31T23:59:59Z"),
            json!("0000-01-01T00:00:00Z"),
            json!("1677-09-21T00:12:43Z"),
            json!("2262-04-11T23:47:17Z"),
            json!(-99_999_999_999_999_i64),
            json!("-99999999999999"),
            json!(253_402_300_799_000_i64),
            json!("9999-12-31"),
        ] {
            let e = c(bad.clone(), FieldType::Datetime).unwrap_err();
            assert!(
                e.reason.contains("outside the datetimes"),
                "{bad}: {}",
                e.reason
            );
            assert!(e.reason.contains("2262-04-11"), "{bad}: {}", e.reason);
        }
        // A datetime value made elsewhere (a rule's expression) meets the same check.
        let far = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
        assert!(coerce(DynValue::Datetime(far), &FieldType::Datetime).is_err());
        // The ends themselves are storable.
        for good in ["1677-09-21T00:12:44Z", "2262-04-11T23:47:16Z"] {
            assert!(c(json!(good), FieldType::Datetime).is_ok(), "{good}");
        }
        // A date is stored as text: the far future is a valid date.
        assert_eq!(
            c(json!("9999-12-31"), FieldType::Date),
            Ok(Value::Date(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap()))
        );
    }

    #[test]
    fn enums_exact_then_case_insensitive() {
        let ty = FieldType::Enum(vec!["new".into(), "working".into(), "New".into()]);
        assert_eq!(c(json!("New"), ty.clone()), Ok(Value::Enum("New".into())));
        assert_eq!(
            c(json!("WORKING"), ty.clone()),
            Ok(Value::Enum("working".into()))
        );
        let e = c(json!("closed"), ty.clone()).unwrap_err();
        assert_eq!(e.reason, "\"closed\" is not one of new, working, New");
        assert!(c(json!(3), ty).is_err());
    }

    #[test]
    fn strings_take_scalars_not_structures() {
        assert_eq!(
            c(json!(42), FieldType::String),
            Ok(Value::String("42".into()))
        );
        assert_eq!(
            c(json!(true), FieldType::String),
            Ok(Value::String("true".into()))
        );
        assert!(c(json!({"a": 1}), FieldType::String).is_err());
        assert!(c(json!([]), FieldType::String).is_err());
    }

    #[test]
    fn null_stays_null() {
        for ty in [FieldType::String, FieldType::Number, FieldType::Date] {
            assert_eq!(c(json!(null), ty), Ok(Value::Null));
        }
    }
}
