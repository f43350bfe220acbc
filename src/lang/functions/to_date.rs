//! `to_date(value)`: a date from YYYY-MM-DD, or a midnight-UTC datetime or epoch ms. Strict, like automatic coercion (`crate::value::coerce`): a value that
//! does not convert is an error, never a default. Missing/null pass through.

use super::{CallContext, Signature};
use crate::lang::types::ExprType;
use crate::value::{coerce, DynValue};

pub const SIGNATURE: Signature = Signature {
    name: "to_date",
    params: &[ExprType::Any],
    variadic: false,
    min_args: 1,
    returns: ExprType::Date,
    summary: "to_date(value): a date from YYYY-MM-DD, or a midnight-UTC datetime or epoch ms",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    let v = args.first().cloned().unwrap_or_default();
    if v.is_absent() {
        return Ok(v);
    }
    coerce::to_date(&v).map(DynValue::Date)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn converts_strictly() {
        assert_eq!(
            run(call, vec![s("2026-03-09")]),
            Ok(DynValue::Date(
                chrono::NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()
            ))
        );
        assert!(run(call, vec![s("09/03/2026")]).is_err());
        assert_eq!(run(call, vec![DynValue::Null]), Ok(DynValue::Null));
        assert_eq!(run(call, vec![DynValue::Missing]), Ok(DynValue::Missing));
    }
}
