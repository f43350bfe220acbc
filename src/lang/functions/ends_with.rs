//! `ends_with(text, part)`: true when text ends with part (case-sensitive). Null when `text` is missing or null.

use super::{take_text, CallContext, Signature, Text};
use crate::lang::types::ExprType;
use crate::value::DynValue;

pub const SIGNATURE: Signature = Signature {
    name: "ends_with",
    params: &[ExprType::String, ExprType::String],
    variadic: false,
    min_args: 2,
    returns: ExprType::Boolean,
    summary: "ends_with(text, part): true when text ends with part (case-sensitive)",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    let text = match take_text(args, 0)? {
        Text::Absent(_) => return Ok(DynValue::Null),
        Text::Text(t) => t,
    };
    match take_text(args, 1)? {
        Text::Absent(_) => Ok(DynValue::Null),
        Text::Text(part) => Ok(DynValue::Bool(text.ends_with(part.as_ref()))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn tests_text() {
        assert_eq!(run(call, vec![s("abc"), s("c")]), Ok(DynValue::Bool(true)));
        assert_eq!(run(call, vec![s("abc"), s("x")]), Ok(DynValue::Bool(false)));
        assert_eq!(
            run(call, vec![DynValue::Missing, s("x")]),
            Ok(DynValue::Null)
        );
    }
}
