//! `is_empty(value)`: true for missing, null and blank text (the same notion of "empty" as the
//! `fill_if_empty` mode), false for anything else (including `false` and `0`).

use super::{CallContext, Signature};
use crate::lang::types::ExprType;
use crate::value::DynValue;

pub const SIGNATURE: Signature = Signature {
    name: "is_empty",
    params: &[ExprType::Any],
    variadic: false,
    min_args: 1,
    returns: ExprType::Boolean,
    summary: "is_empty(value): true when the value is missing, null or blank text",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    Ok(DynValue::Bool(match args.first() {
        None | Some(DynValue::Missing | DynValue::Null) => true,
        Some(DynValue::Str(s) | DynValue::Enum(s)) => s.trim().is_empty(),
        Some(_) => false,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn empty_means_absent_or_blank() {
        assert_eq!(run(call, vec![DynValue::Missing]), Ok(DynValue::Bool(true)));
        assert_eq!(run(call, vec![s("  ")]), Ok(DynValue::Bool(true)));
        assert_eq!(
            run(call, vec![DynValue::Number(0.0)]),
            Ok(DynValue::Bool(false))
        );
        assert_eq!(
            run(call, vec![DynValue::Bool(false)]),
            Ok(DynValue::Bool(false))
        );
    }
}
