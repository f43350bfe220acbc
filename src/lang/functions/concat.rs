//! `concat(a, b, ...)`: the texts joined. Missing or null parts count as empty text, so
//! `concat(FirstName, " ", LastName)` works when one name is absent.

use super::{take_text, CallContext, Signature, Text};
use crate::lang::types::ExprType;
use crate::value::DynValue;
use std::borrow::Cow;

pub const SIGNATURE: Signature = Signature {
    name: "concat",
    params: &[ExprType::Any],
    variadic: true,
    min_args: 1,
    returns: ExprType::String,
    summary: "concat(a, b, ...): the texts joined; missing or null parts are empty",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    let mut out = String::new();
    for i in 0..args.len() {
        if let Text::Text(t) = take_text(args, i)? {
            out.push_str(&t);
        }
    }
    Ok(DynValue::Str(Cow::Owned(out)))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn joins_and_skips_absent_parts() {
        assert_eq!(
            run(call, vec![s("Ada"), s(" "), s("Lovelace")]),
            Ok(s("Ada Lovelace"))
        );
        assert_eq!(
            run(call, vec![s("Call "), DynValue::Number(12.0)]),
            Ok(s("Call 12"))
        );
        assert_eq!(
            run(call, vec![DynValue::Missing, s("x"), DynValue::Null]),
            Ok(s("x"))
        );
        assert!(run(
            call,
            vec![DynValue::Json(Box::leak(Box::new(serde_json::json!([1]))))]
        )
        .is_err());
    }
}
