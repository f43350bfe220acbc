//! `coalesce(a, b, ...)`: the first argument that is neither missing, null nor blank text (like
//! chained `??`; `false` and `0` count as values, `""` and `"  "` do not). All absent: the last
//! argument.

use super::{is_missing_or_blank, CallContext, Signature};
use crate::lang::types::ExprType;
use crate::value::DynValue;

pub const SIGNATURE: Signature = Signature {
    name: "coalesce",
    params: &[ExprType::Any],
    variadic: true,
    min_args: 1,
    returns: ExprType::Any,
    summary: "coalesce(a, b, ...): the first argument that is not missing, null or blank text",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    let n = args.len();
    for (i, arg) in args.iter_mut().enumerate() {
        if !is_missing_or_blank(arg) || i + 1 == n {
            return Ok(std::mem::take(arg));
        }
    }
    Ok(DynValue::Missing)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn first_present_value() {
        assert_eq!(
            run(call, vec![DynValue::Null, DynValue::Missing, s("b")]),
            Ok(s("b"))
        );
        assert_eq!(run(call, vec![s(""), s("b")]), Ok(s("b")));
        assert_eq!(run(call, vec![s(" \t"), s("b")]), Ok(s("b")));
        assert_eq!(
            run(call, vec![DynValue::Bool(false), s("b")]),
            Ok(DynValue::Bool(false))
        );
        assert_eq!(
            run(call, vec![DynValue::Number(0.0), s("b")]),
            Ok(DynValue::Number(0.0))
        );
        assert_eq!(
            run(call, vec![DynValue::Missing, DynValue::Null]),
            Ok(DynValue::Null)
        );
        assert_eq!(run(call, vec![DynValue::Null, s("")]), Ok(s("")));
    }
}
