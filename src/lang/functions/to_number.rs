//! `to_number(value)`: a number from a number or decimal text. Strict, like automatic coercion (`crate::value::coerce`): a value that
//! does not convert is an error, never a default. Missing/null pass through.

use super::{CallContext, Signature};
use crate::lang::types::ExprType;
use crate::value::{coerce, DynValue};

pub const SIGNATURE: Signature = Signature {
    name: "to_number",
    params: &[ExprType::Any],
    variadic: false,
    min_args: 1,
    returns: ExprType::Number,
    summary: "to_number(value): a number from a number or decimal text",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    let v = args.first().cloned().unwrap_or_default();
    if v.is_absent() {
        return Ok(v);
    }
    coerce::to_number(&v).map(DynValue::Number)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn converts_strictly() {
        assert_eq!(run(call, vec![s(" 1200.5")]), Ok(DynValue::Number(1200.5)));
        assert!(run(call, vec![s("12k")]).is_err());
        assert_eq!(run(call, vec![DynValue::Null]), Ok(DynValue::Null));
        assert_eq!(run(call, vec![DynValue::Missing]), Ok(DynValue::Missing));
    }
}
