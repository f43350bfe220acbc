//! `contains(text, part)`: true when text contains part (case-sensitive). Null when `text` is missing or null.

use super::{take_text, CallContext, Signature, Text};
use crate::lang::types::ExprType;
use crate::value::DynValue;

pub const SIGNATURE: Signature = Signature {
    name: "contains",
    params: &[ExprType::String, ExprType::String],
    variadic: false,
    min_args: 2,
    returns: ExprType::Boolean,
    summary: "contains(text, part): true when text contains part (case-sensitive)",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    let text = match take_text(args, 0)? {
        Text::Absent(_) => return Ok(DynValue::Null),
        Text::Text(t) => t,
    };
    match take_text(args, 1)? {
        Text::Absent(_) => Ok(DynValue::Null),
        Text::Text(part) => Ok(DynValue::Bool(text.contains(part.as_ref()))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn tests_text() {
        assert_eq!(run(call, vec![s("abc"), s("b")]), Ok(DynValue::Bool(true)));
        assert_eq!(run(call, vec![s("abc"), s("x")]), Ok(DynValue::Bool(false)));
        assert_eq!(
            run(call, vec![DynValue::Missing, s("x")]),
            Ok(DynValue::Null)
        );
    }
}
