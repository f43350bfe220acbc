//! `upper(text)`: the text in upper case (Unicode-aware). Allocates only when something changes.

use super::{map_text, take_text, CallContext, Signature, Text};
use crate::lang::types::ExprType;
use crate::value::DynValue;

pub const SIGNATURE: Signature = Signature {
    name: "upper",
    params: &[ExprType::String],
    variadic: false,
    min_args: 1,
    returns: ExprType::String,
    summary: "upper(text): the text in upper case",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    Ok(match take_text(args, 0)? {
        Text::Absent(v) => v,
        Text::Text(t) => DynValue::Str(map_text(t, uppered)),
    })
}

/// The text in upper case, or `None` when it has no lower-case letter (nothing to copy).
pub(crate) fn uppered(s: &str) -> Option<String> {
    let unchanged = if s.is_ascii() {
        !s.bytes().any(|b| b.is_ascii_lowercase())
    } else {
        !s.chars().any(char::is_lowercase)
    };
    (!unchanged).then(|| s.to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn changes_case() {
        assert_eq!(
            run(call, vec![s("Ada.Lovelace@Example.COM")]),
            Ok(s(&"Ada.Lovelace@Example.COM".to_uppercase()))
        );
        assert_eq!(run(call, vec![s("Ölçü")]), Ok(s(&"Ölçü".to_uppercase())));
        assert_eq!(run(call, vec![s("123")]), Ok(s("123")));
        assert_eq!(run(call, vec![DynValue::Missing]), Ok(DynValue::Missing));
        assert_eq!(
            run(call, vec![DynValue::Bool(true)]),
            Ok(s(&"true".to_uppercase()))
        );
    }
}
