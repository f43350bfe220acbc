//! `lower(text)`: the text in lower case (Unicode-aware). Allocates only when something changes.

use super::{map_text, take_text, CallContext, Signature, Text};
use crate::lang::types::ExprType;
use crate::value::DynValue;

pub const SIGNATURE: Signature = Signature {
    name: "lower",
    params: &[ExprType::String],
    variadic: false,
    min_args: 1,
    returns: ExprType::String,
    summary: "lower(text): the text in lower case",
};

pub fn call<'a>(args: &mut [DynValue<'a>], _: &CallContext<'_>) -> Result<DynValue<'a>, String> {
    Ok(match take_text(args, 0)? {
        Text::Absent(v) => v,
        Text::Text(t) => DynValue::Str(map_text(t, lowered)),
    })
}

/// The text in lower case, or `None` when it has no upper-case letter (nothing to copy).
pub(crate) fn lowered(s: &str) -> Option<String> {
    let unchanged = if s.is_ascii() {
        !s.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        !s.chars().any(char::is_uppercase)
    };
    (!unchanged).then(|| s.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, s};
    use super::*;

    #[test]
    fn changes_case() {
        assert_eq!(
            run(call, vec![s("Ada.Lovelace@Example.COM")]),
            Ok(s(&"Ada.Lovelace@Example.COM".to_lowercase()))
        );
        assert_eq!(run(call, vec![s("Ölçü")]), Ok(s(&"Ölçü".to_lowercase())));
        assert_eq!(run(call, vec![s("123")]), Ok(s("123")));
        assert_eq!(run(call, vec![DynValue::Missing]), Ok(DynValue::Missing));
        assert_eq!(
            run(call, vec![DynValue::Bool(true)]),
            Ok(s(&"true".to_lowercase()))
        );
    }
}
