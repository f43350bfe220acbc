//! `to_bool(value)`: a boolean from true/false, yes/no or 1/0 in any case. Strict, like automatic coercion (`crate::value::coerce`): a value that
//! does not convert is an error, never a default. Missing/null pass through.

use super::{CallContext, Signature};
use crate::lang::types::ExprType;
use crate::value::{coerce, DynValue};

pub const SIGNATURE: Signature = Signature {
    name: "to_bool",
    params: &[ExprType::Any],
    variadic: false,
    min_args: 1,
    returns: ExprType::Boolean,
    summary: "to_bool(value): a boolean from true/false, yes/no or 1/0 in any case",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    let v = args.first().cloned().unwrap_or_default();
    if v.is_absent() {
        return Ok(v);
    }
    coerce::to_bool(&v).map(DynValue::Bool)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn converts_strictly() {
        assert_eq!(run(call, vec![s("YES")]), Ok(DynValue::Bool(true)));
        assert!(run(call, vec![s("y")]).is_err());
        assert_eq!(run(call, vec![DynValue::Null]), Ok(DynValue::Null));
        assert_eq!(run(call, vec![DynValue::Missing]), Ok(DynValue::Missing));
    }
}
