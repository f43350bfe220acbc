//! `e164(phone)`: a phone number in E.164 (`+14155550132`), using the rule set's default region
//! for numbers without a country code. Text that is no valid phone number (`"n/a"`, letters,
//! over-long or unassigned numbers) gives null, not an error: CRMs hold such text in phone
//! fields routinely, and null lets `e164(MobilePhone) ?? e164(Phone)` fall back.

use super::{take_text, CallContext, Signature, Text};
use crate::lang::types::ExprType;
use crate::value::DynValue;
use std::borrow::Cow;

pub const SIGNATURE: Signature = Signature {
    name: "e164",
    params: &[ExprType::String],
    variadic: false,
    min_args: 1,
    returns: ExprType::String,
    summary:
        "e164(phone): the phone number in E.164 form, with the default region; null when it is none",
};

pub fn call<'a>(args: &mut [DynValue<'a>], cx: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    match take_text(args, 0)? {
        Text::Absent(v) => Ok(v),
        Text::Text(t) => Ok(cx
            .phone
            .normalize(&t)
            .map_or(DynValue::Null, |p| DynValue::Str(Cow::Owned(p)))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn formats_with_default_region() {
        assert_eq!(run(call, vec![s("(415) 555-0132")]), Ok(s("+14155550132")));
        assert_eq!(
            run(call, vec![DynValue::Number(4155550132.0)]),
            Ok(s("+14155550132"))
        );
        assert_eq!(run(call, vec![s("1-800-FLOWERS")]), Ok(DynValue::Null));
        assert_eq!(run(call, vec![s("n/a")]), Ok(DynValue::Null));
        assert_eq!(run(call, vec![DynValue::Null]), Ok(DynValue::Null));
    }
}
