//! `replace(text, find, with)`: every occurrence of `find` replaced (plain text, not a regex).

use super::{take_text, CallContext, Signature, Text};
use crate::lang::types::ExprType;
use crate::value::DynValue;
use std::borrow::Cow;

pub const SIGNATURE: Signature = Signature {
    name: "replace",
    params: &[ExprType::String, ExprType::String, ExprType::String],
    variadic: false,
    min_args: 3,
    returns: ExprType::String,
    summary: "replace(text, find, with): every occurrence of find replaced by with",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    let text = match take_text(args, 0)? {
        Text::Absent(v) => return Ok(v),
        Text::Text(t) => t,
    };
    let find = match take_text(args, 1)? {
        Text::Text(t) if !t.is_empty() => t,
        _ => return Err("the text to find is empty or null".to_string()),
    };
    let with = match take_text(args, 2)? {
        Text::Text(t) => t,
        Text::Absent(_) => Cow::Borrowed(""),
    };
    Ok(DynValue::Str(if text.contains(find.as_ref()) {
        Cow::Owned(text.replace(find.as_ref(), &with))
    } else {
        text
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn replaces_every_occurrence() {
        assert_eq!(run(call, vec![s("a-b-c"), s("-"), s("")]), Ok(s("abc")));
        assert_eq!(run(call, vec![s("a.b"), s("."), s("*")]), Ok(s("a*b")));
        assert_eq!(run(call, vec![s("abc"), s("x"), s("y")]), Ok(s("abc")));
        assert_eq!(
            run(call, vec![DynValue::Null, s("x"), s("y")]),
            Ok(DynValue::Null)
        );
        assert!(run(call, vec![s("abc"), s(""), s("y")]).is_err());
    }
}
