//! `nonempty(text)`: the text, or null when it is blank (`""`, only spaces). Reads better than
//! a comparison where a blank value must count as no value, e.g. `nonempty(Nickname) ->
//! first_name` clears the field instead of storing `""`. Missing and null stay as they are.

use super::{take_text, CallContext, Signature, Text};
use crate::lang::types::ExprType;
use crate::value::DynValue;

pub const SIGNATURE: Signature = Signature {
    name: "nonempty",
    params: &[ExprType::String],
    variadic: false,
    min_args: 1,
    returns: ExprType::String,
    summary: "nonempty(text): the text, or null when it is blank",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    match take_text(args, 0)? {
        Text::Absent(v) => Ok(v),
        Text::Text(t) if t.trim().is_empty() => Ok(DynValue::Null),
        Text::Text(t) => Ok(DynValue::Str(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn blank_text_is_null() {
        assert_eq!(run(call, vec![s("")]), Ok(DynValue::Null));
        assert_eq!(run(call, vec![s(" \t ")]), Ok(DynValue::Null));
        assert_eq!(run(call, vec![s(" Ada ")]), Ok(s(" Ada ")));
        assert_eq!(run(call, vec![DynValue::Number(0.0)]), Ok(s("0")));
        assert_eq!(run(call, vec![DynValue::Missing]), Ok(DynValue::Missing));
        assert_eq!(run(call, vec![DynValue::Null]), Ok(DynValue::Null));
    }
}
