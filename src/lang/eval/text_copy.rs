//! A superinstruction for the commonest mapping shape: a record field (or nested path such as
//! `Account.Name`), possibly trimmed and lower- or upper-cased, into a string field
//! (`trim(FirstName) -> first_name`, `lower(trim(Email)) -> email`, `Title -> title`). Recognised when the rules are compiled and
//! evaluated on the borrowed JSON text, without building `DynValue`s or calling through
//! function pointers.
//!
//! Only JSON text takes this path: a missing field, null, a number or a boolean goes through
//! the general evaluator, so each edge case keeps its one definition there; the text steps are
//! the functions' own (`trim`, `lower::lowered`, `upper::uppered`).
//!
//! WHY: a full sync evaluates millions of these, and on the general path moving the
//! intermediate values costs about as much as the work itself (BENCHMARKS.md, "Rule
//! evaluation").

use std::borrow::Cow;

use super::expr::{field_json, input_json, Node, Root};
use crate::lang::functions::{lower::lowered, upper::uppered};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Trim,
    Lower,
    Upper,
}

/// Where the text is: a one-segment path, or a nested one (`Account.Name`).
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Field(Box<str>),
    Path(Box<[Box<str>]>),
}

/// `source`, then `steps` in order (innermost call first).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TextCopy {
    source: Source,
    steps: Box<[Step]>,
}

impl TextCopy {
    /// The superinstruction for `source`, when it has the shape.
    pub(crate) fn recognise(source: &Node) -> Option<TextCopy> {
        let mut steps = Vec::new();
        let mut at = source;
        loop {
            match at {
                Node::Field(name) => {
                    steps.reverse();
                    return Some(TextCopy {
                        source: Source::Field(name.clone()),
                        steps: steps.into(),
                    });
                }
                Node::Input(path) => {
                    steps.reverse();
                    return Some(TextCopy {
                        source: Source::Path(path.clone()),
                        steps: steps.into(),
                    });
                }
                Node::Call { name, args, .. } if args.len() == 1 => {
                    steps.push(match *name {
                        "trim" => Step::Trim,
                        "lower" => Step::Lower,
                        "upper" => Step::Upper,
                        _ => return None,
                    });
                    at = &args[0];
                }
                _ => return None,
            }
        }
    }

    /// The mapped text, when the record holds JSON text in the field; `None` leaves the
    /// decision to the general evaluator.
    pub(crate) fn text<'a>(&self, root: Root<'a>) -> Option<Cow<'a, str>> {
        let raw = match &self.source {
            Source::Field(name) => field_json(name, root),
            Source::Path(path) => input_json(path, root),
        }?
        .as_str()?;
        let mut text = Cow::Borrowed(raw);
        for step in self.steps.iter() {
            text = match (step, text) {
                (Step::Trim, Cow::Borrowed(t)) => Cow::Borrowed(t.trim()),
                (Step::Trim, Cow::Owned(t)) if t.trim().len() == t.len() => Cow::Owned(t),
                (Step::Trim, Cow::Owned(t)) => Cow::Owned(t.trim().to_string()),
                (Step::Lower, t) => lowered(&t).map_or(t, Cow::Owned),
                (Step::Upper, t) => uppered(&t).map_or(t, Cow::Owned),
            };
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::functions::{self, Call};

    fn call(name: &'static str, inner: Node) -> Node {
        let call: Call = functions::implementation(name).expect("a built-in");
        Node::Call {
            name,
            call,
            args: vec![inner].into(),
        }
    }

    #[test]
    fn recognises_text_chains_over_one_path_only() {
        let field = || Node::Field("Email".into());
        let fast = TextCopy::recognise(&call("lower", call("trim", field()))).expect("shape");
        assert_eq!(fast.steps.as_ref(), [Step::Trim, Step::Lower]);
        assert!(TextCopy::recognise(&field()).is_some());
        assert!(TextCopy::recognise(&call("to_string", field())).is_none());
        let nested = Node::Input(vec!["Account".into(), "Name".into()].into());
        assert!(TextCopy::recognise(&nested).is_some());
        let literal = Node::Literal(crate::value::Value::String("x".into()));
        assert!(TextCopy::recognise(&call("trim", literal)).is_none());
    }

    #[test]
    fn gives_what_the_functions_give_and_leaves_non_text_alone() {
        let record = serde_json::json!({
            "A": "  MiXed Case ", "N": 5, "Z": null,
            "Account": {"Name": "Acme"}, "Empty": null
        });
        let root = Root::Record {
            primary: record.as_object(),
            secondary: None,
        };
        let chain = |name: &str| call("upper", call("trim", Node::Field(name.into())));
        let fast = TextCopy::recognise(&chain("A")).expect("shape");
        assert_eq!(fast.text(root).as_deref(), Some("MIXED CASE"));
        for absent in ["N", "Z", "missing"] {
            let fast = TextCopy::recognise(&chain(absent)).expect("shape");
            assert_eq!(fast.text(root), None);
        }
        let path = |a: &str, b: &str| Node::Input(vec![a.into(), b.into()].into());
        let nested = TextCopy::recognise(&path("Account", "Name")).expect("shape");
        assert_eq!(nested.text(root).as_deref(), Some("Acme"));
        for absent in [
            path("Empty", "Name"),
            path("A", "Name"),
            path("Account", "Id"),
        ] {
            let fast = TextCopy::recognise(&absent).expect("shape");
            assert_eq!(fast.text(root), None);
        }
    }
}
