//! `to_string(value)`: the text form of a scalar (numbers in plain decimal, booleans
//! `true`/`false`, dates `YYYY-MM-DD`, datetimes RFC 3339 UTC). Missing/null pass through.

use super::{take_text, CallContext, Signature, Text};
use crate::lang::types::ExprType;
use crate::value::DynValue;

pub const SIGNATURE: Signature = Signature {
    name: "to_string",
    params: &[ExprType::Any],
    variadic: false,
    min_args: 1,
    returns: ExprType::String,
    summary: "to_string(value): the value's text form",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    Ok(match take_text(args, 0)? {
        Text::Absent(v) => v,
        Text::Text(t) => DynValue::Str(t),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn text_forms() {
        assert_eq!(
            run(call, vec![DynValue::Number(1e21)]),
            Ok(s("1000000000000000000000"))
        );
        assert_eq!(run(call, vec![DynValue::Number(3.0)]), Ok(s("3")));
        assert_eq!(run(call, vec![DynValue::Bool(false)]), Ok(s("false")));
        assert_eq!(run(call, vec![DynValue::Missing]), Ok(DynValue::Missing));
    }
}
