//! `e164(phone)`: a phone number in E.164 (`+14155550132`), using the rule set's default region
//! for numbers without a country code. Letters, over-long and invalid numbers are errors.

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
    summary: "e164(phone): the phone number in E.164 form, with the default region",
};

pub fn call<'a>(args: &mut [DynValue<'a>], cx: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    match take_text(args, 0)? {
        Text::Absent(v) => Ok(v),
        Text::Text(t) => cx
            .phone
            .normalize(&t)
            .map(|p| DynValue::Str(Cow::Owned(p)))
            .map_err(|e| e.to_string()),
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
        assert!(run(call, vec![s("1-800-FLOWERS")]).is_err());
        assert_eq!(run(call, vec![DynValue::Null]), Ok(DynValue::Null));
    }
}
