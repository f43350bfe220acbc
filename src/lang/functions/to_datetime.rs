//! `to_datetime(value)`: a UTC datetime from ISO-8601 text or epoch milliseconds. Strict, like automatic coercion (`crate::value::coerce`): a value that
//! does not convert is an error, never a default. Missing/null pass through.

use super::{CallContext, Signature};
use crate::lang::types::ExprType;
use crate::value::{coerce, DynValue};

pub const SIGNATURE: Signature = Signature {
    name: "to_datetime",
    params: &[ExprType::Any],
    variadic: false,
    min_args: 1,
    returns: ExprType::Datetime,
    summary: "to_datetime(value): a UTC datetime from ISO-8601 text or epoch milliseconds",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    let v = args.first().cloned().unwrap_or_default();
    if v.is_absent() {
        return Ok(v);
    }
    coerce::to_datetime(&v).map(DynValue::Datetime)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn converts_strictly() {
        assert_eq!(
            run(call, vec![s("2026-03-09T14:00:00+02:00")]),
            Ok(DynValue::Datetime(
                chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 9, 12, 0, 0).unwrap()
            ))
        );
        assert!(run(call, vec![s("soon")]).is_err());
        assert_eq!(run(call, vec![DynValue::Null]), Ok(DynValue::Null));
        assert_eq!(run(call, vec![DynValue::Missing]), Ok(DynValue::Missing));
    }
}
