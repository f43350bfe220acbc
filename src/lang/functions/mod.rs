//! Built-in functions of the rule language: one file per function, and this registry that the
//! checker (signatures) and the evaluator (implementations) both use.
//!
//! Conventions shared by every function (so rules read predictably):
//! - a missing or null argument where text or a value is expected gives back that same
//!   missing/null (`lower(Email)` with no `Email` is missing, and the mapping is skipped),
//!   except in `concat` (absent parts are empty), `coalesce`, `nonempty` and `is_empty`;
//! - `??`, `coalesce` and `nonempty` treat blank text like a missing value;
//! - text functions accept numbers, booleans and dates too, using their text form;
//! - a value that cannot be converted is an error for that mapping only, with a reason.

use std::borrow::Cow;

use crate::lang::types::ExprType;
use crate::value::phone::PhoneNormalizer;
use crate::value::vars::{format_date, format_datetime, format_number};
use crate::value::DynValue;

pub mod coalesce;
pub mod concat;
pub mod contains;
pub mod e164;
pub mod ends_with;
pub mod is_empty;
pub mod lower;
pub mod nonempty;
pub mod replace;
pub mod starts_with;
pub mod to_bool;
pub mod to_date;
pub mod to_datetime;
pub mod to_number;
pub mod to_string;
pub mod trim;
pub mod upper;

/// What the checker needs to know about a built-in function.
#[derive(Debug, Clone)]
pub struct Signature {
    pub name: &'static str,
    /// Parameter types; `ExprType::Any` accepts anything. A dynamically typed argument (a path)
    /// is accepted for any parameter: it is converted, strictly, when evaluated.
    pub params: &'static [ExprType],
    /// When true, the last parameter type repeats (e.g. `concat`, `coalesce`).
    pub variadic: bool,
    /// Minimum number of arguments.
    pub min_args: usize,
    /// `Any` for `coalesce`, whose result has its arguments' type.
    pub returns: ExprType,
    /// One line for `--help`-style listings and "did you mean" help.
    pub summary: &'static str,
}

/// What a function may use besides its arguments: fixed at compile time, never I/O or a clock.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'r> {
    /// Default region for `e164`.
    pub phone: &'r PhoneNormalizer,
}

/// A function's implementation. Arguments are passed by value in a slice the function may
/// `std::mem::take` from, so borrowed text flows through without copies.
pub type Call = for<'a> fn(&mut [DynValue<'a>], &CallContext<'_>) -> Result<DynValue<'a>, String>;

static SIGNATURES: [Signature; 17] = [
    coalesce::SIGNATURE,
    concat::SIGNATURE,
    contains::SIGNATURE,
    e164::SIGNATURE,
    ends_with::SIGNATURE,
    is_empty::SIGNATURE,
    lower::SIGNATURE,
    nonempty::SIGNATURE,
    replace::SIGNATURE,
    starts_with::SIGNATURE,
    to_bool::SIGNATURE,
    to_date::SIGNATURE,
    to_datetime::SIGNATURE,
    to_number::SIGNATURE,
    to_string::SIGNATURE,
    trim::SIGNATURE,
    upper::SIGNATURE,
];

/// Every built-in function's signature, sorted by name.
pub fn signatures() -> &'static [Signature] {
    &SIGNATURES
}

/// The signature of a built-in function, if one has that name.
pub fn signature(name: &str) -> Option<&'static Signature> {
    signatures().iter().find(|s| s.name == name)
}

/// The implementation of a built-in function, if one has that name.
pub fn implementation(name: &str) -> Option<Call> {
    Some(match name {
        "coalesce" => coalesce::call,
        "concat" => concat::call,
        "contains" => contains::call,
        "e164" => e164::call,
        "ends_with" => ends_with::call,
        "is_empty" => is_empty::call,
        "lower" => lower::call,
        "nonempty" => nonempty::call,
        "replace" => replace::call,
        "starts_with" => starts_with::call,
        "to_bool" => to_bool::call,
        "to_date" => to_date::call,
        "to_datetime" => to_datetime::call,
        "to_number" => to_number::call,
        "to_string" => to_string::call,
        "trim" => trim::call,
        "upper" => upper::call,
        _ => return None,
    })
}

/// Whether `??` and `coalesce` look past this value: missing, null, or blank text. WHY blank
/// text: HubSpot answers `""` for a property that was set and then cleared, so `mobilephone ??
/// phone` must fall back exactly as if `mobilephone` had never been set.
#[inline]
pub(crate) fn is_missing_or_blank(v: &DynValue<'_>) -> bool {
    match v {
        DynValue::Missing | DynValue::Null => true,
        DynValue::Str(t) => t.trim().is_empty(),
        _ => false,
    }
}

/// An argument as text, or the absent value to hand back unchanged.
pub(crate) enum Text<'a> {
    Text(Cow<'a, str>),
    Absent(DynValue<'a>),
}

/// Take argument `i` as text (scalars use their text form).
pub(crate) fn take_text<'a>(args: &mut [DynValue<'a>], i: usize) -> Result<Text<'a>, String> {
    let v = args.get_mut(i).map(std::mem::take).unwrap_or_default();
    Ok(Text::Text(match v {
        DynValue::Missing | DynValue::Null => return Ok(Text::Absent(v)),
        DynValue::Str(s) | DynValue::Enum(s) => s,
        DynValue::Number(n) => Cow::Owned(format_number(n)),
        DynValue::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
        DynValue::Date(d) => Cow::Owned(format_date(d)),
        DynValue::Datetime(d) => Cow::Owned(format_datetime(d)),
        DynValue::Json(_) => return Err(format!("expected text, found {}", v.described())),
    }))
}

/// Apply a text transformation that only allocates when `f` reports a change.
pub(crate) fn map_text<'a>(
    text: Cow<'a, str>,
    f: impl FnOnce(&str) -> Option<String>,
) -> Cow<'a, str> {
    match f(&text) {
        Some(changed) => Cow::Owned(changed),
        None => text,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Call a function with owned arguments and the US region.
    pub fn run(call: Call, mut args: Vec<DynValue<'static>>) -> Result<DynValue<'static>, String> {
        let phone = PhoneNormalizer::default();
        call(&mut args, &CallContext { phone: &phone })
    }

    pub fn s(text: &str) -> DynValue<'static> {
        DynValue::Str(Cow::Owned(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_sorted_and_complete() {
        let names: Vec<_> = signatures().iter().map(|s| s.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        for name in names {
            assert!(implementation(name).is_some(), "{name}");
            assert!(signature(name).is_some());
        }
        assert!(implementation("nope").is_none());
    }
}
