//! `trim(text)`: leading and trailing whitespace removed. Borrows; never allocates.

use super::{take_text, CallContext, Signature, Text};
use crate::lang::types::ExprType;
use crate::value::DynValue;
use std::borrow::Cow;

pub const SIGNATURE: Signature = Signature {
    name: "trim",
    params: &[ExprType::String],
    variadic: false,
    min_args: 1,
    returns: ExprType::String,
    summary: "trim(text): the text without leading and trailing whitespace",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    Ok(match take_text(args, 0)? {
        Text::Absent(v) => v,
        Text::Text(Cow::Borrowed(s)) => DynValue::Str(Cow::Borrowed(s.trim())),
        Text::Text(Cow::Owned(s)) if s.trim().len() == s.len() => DynValue::Str(Cow::Owned(s)),
        Text::Text(Cow::Owned(s)) => DynValue::Str(Cow::Owned(s.trim().to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn trims_both_ends_and_passes_absent_through() {
        assert_eq!(run(call, vec![s("  a b \n")]), Ok(s("a b")));
        assert_eq!(run(call, vec![s("ab")]), Ok(s("ab")));
        assert_eq!(run(call, vec![DynValue::Null]), Ok(DynValue::Null));
        assert_eq!(run(call, vec![DynValue::Missing]), Ok(DynValue::Missing));
        assert_eq!(run(call, vec![DynValue::Number(4.0)]), Ok(s("4")));
    }
}
