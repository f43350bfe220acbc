//! Compiled expressions and their evaluation.
//!
//! `build` resolves everything once: paths are split into segments, functions are looked up to
//! plain function pointers, contact fields to their names, literals to values. Evaluating a node
//! only walks the tree and borrows from the input; text is copied only when a function changes it.

use std::cmp::Ordering;

use crate::event::ConversationEvent;
use crate::lang::check::{ConversationField, TypedExpr, TypedExprKind};
use crate::lang::functions::{self, Call, CallContext};
use crate::lang::syntax::ast::BinaryOp;
use crate::value::coerce;
use crate::value::{DynValue, Fields, Value};

/// A compiled expression.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A one-segment path (the common case, looked up without walking a slice).
    Field(Box<str>),
    /// A path into the record or analysis payload.
    Input(Box<[Box<str>]>),
    Conversation(ConversationField),
    /// A contact field by name (read from `current`).
    Contact(Box<str>),
    Literal(Value),
    Call {
        name: &'static str,
        call: Call,
        args: Box<[Node]>,
    },
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Coalesce(Box<Node>, Box<Node>),
    Compare(BinaryOp, Box<Node>, Box<Node>),
}

/// Where paths resolve during one evaluation.
#[derive(Clone, Copy)]
pub(crate) enum Root<'a> {
    /// A CRM record. HubSpot: `primary` is `properties` and `secondary` the record itself (for
    /// `id`, `createdAt`, ...). Salesforce: `primary` is the record.
    Record {
        primary: Option<&'a serde_json::Map<String, serde_json::Value>>,
        secondary: Option<&'a serde_json::Map<String, serde_json::Value>>,
    },
    /// A conversation event: paths read `analysis`, `conversation.*` the built-ins.
    Conversation(&'a ConversationEvent),
    /// Outbound: no input paths (the checker resolves names to contact fields).
    None,
}

/// Everything one evaluation reads. Built once per record, on the stack.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub root: Root<'a>,
    pub current: &'a Fields,
    pub cx: CallContext<'a>,
}

/// A failed evaluation: the value at fault (when known) and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EvalError {
    pub value: serde_json::Value,
    pub reason: String,
}

/// Boxed so that `Result<DynValue, Fail>` stays as small as the value: errors are rare, and
/// every node returns one of these.
pub(crate) type Fail = Box<EvalError>;

impl EvalError {
    pub(crate) fn new(value: serde_json::Value, reason: String) -> Fail {
        Box::new(EvalError { value, reason })
    }
}

impl Node {
    /// Compile a checked expression.
    pub(crate) fn build(expr: &TypedExpr, field_name: &dyn Fn(u16) -> String) -> Node {
        match &expr.kind {
            TypedExprKind::Input(path) if path.len() == 1 => Node::Field(path[0].as_str().into()),
            TypedExprKind::Input(path) => {
                Node::Input(path.iter().map(|s| s.as_str().into()).collect())
            }
            TypedExprKind::Conversation(f) => Node::Conversation(*f),
            TypedExprKind::Contact(id) => Node::Contact(field_name(id.0).into()),
            TypedExprKind::Literal(v) => Node::Literal(v.clone()),
            TypedExprKind::Call { function, args } => {
                let call = functions::implementation(function).unwrap_or(unknown_function);
                Node::Call {
                    name: function,
                    call,
                    args: args.iter().map(|a| Node::build(a, field_name)).collect(),
                }
            }
            TypedExprKind::Not(inner) => Node::Not(Box::new(Node::build(inner, field_name))),
            TypedExprKind::Binary { op, lhs, rhs } => {
                let l = Box::new(Node::build(lhs, field_name));
                let r = Box::new(Node::build(rhs, field_name));
                match op {
                    BinaryOp::And => Node::And(l, r),
                    BinaryOp::Or => Node::Or(l, r),
                    BinaryOp::Coalesce => Node::Coalesce(l, r),
                    cmp => Node::Compare(*cmp, l, r),
                }
            }
        }
    }

    /// Evaluate against one input.
    pub(crate) fn eval<'a>(&'a self, s: &Scope<'a>) -> Result<DynValue<'a>, Fail> {
        match self {
            Node::Field(name) => Ok(resolve_field(name, s.root)),
            Node::Input(path) => Ok(resolve_input(path, s.root)),
            Node::Conversation(f) => Ok(match s.root {
                Root::Conversation(event) => conversation(*f, event),
                _ => DynValue::Missing,
            }),
            Node::Contact(name) => Ok(s
                .current
                .get(name.as_ref())
                .map_or(DynValue::Missing, DynValue::from_value)),
            Node::Literal(v) => Ok(DynValue::from_value(v)),
            Node::Call { name, call, args } => self.eval_call(name, *call, args, s),
            Node::Not(inner) => Ok(match truth(inner.eval(s)?)? {
                Some(b) => DynValue::Bool(!b),
                None => DynValue::Null,
            }),
            Node::And(l, r) => {
                let a = truth(l.eval(s)?)?;
                if a == Some(false) {
                    return Ok(DynValue::Bool(false));
                }
                Ok(match (a, truth(r.eval(s)?)?) {
                    (_, Some(false)) => DynValue::Bool(false),
                    (Some(true), Some(true)) => DynValue::Bool(true),
                    _ => DynValue::Null,
                })
            }
            Node::Or(l, r) => {
                let a = truth(l.eval(s)?)?;
                if a == Some(true) {
                    return Ok(DynValue::Bool(true));
                }
                Ok(match (a, truth(r.eval(s)?)?) {
                    (_, Some(true)) => DynValue::Bool(true),
                    (Some(false), Some(false)) => DynValue::Bool(false),
                    _ => DynValue::Null,
                })
            }
            Node::Coalesce(l, r) => {
                let v = l.eval(s)?;
                if functions::is_missing_or_blank(&v) {
                    r.eval(s)
                } else {
                    Ok(v)
                }
            }
            Node::Compare(op, l, r) => Ok(compare(*op, &l.eval(s)?, &r.eval(s)?)),
        }
    }

    fn eval_call<'a>(
        &'a self,
        name: &str,
        call: Call,
        args: &'a [Node],
        s: &Scope<'a>,
    ) -> Result<DynValue<'a>, Fail> {
        // Arguments live on the stack for the common arities: no allocation per call.
        let result = match args {
            [] => call(&mut [], &s.cx),
            [a] => call(&mut [a.eval(s)?], &s.cx),
            [a, b] => call(&mut [a.eval(s)?, b.eval(s)?], &s.cx),
            [a, b, c] => call(&mut [a.eval(s)?, b.eval(s)?, c.eval(s)?], &s.cx),
            many => {
                let mut v = many
                    .iter()
                    .map(|a| a.eval(s))
                    .collect::<Result<Vec<_>, _>>()?;
                call(&mut v, &s.cx)
            }
        };
        result.map_err(|reason| {
            // Errors are rare and evaluation is pure: evaluate the first argument again to
            // report the value at fault instead of copying it before every call.
            let value = args
                .first()
                .and_then(|a| a.eval(s).ok())
                .map_or(serde_json::Value::Null, |v| v.to_json());
            EvalError::new(value, format!("{name}: {reason}"))
        })
    }
}

fn unknown_function<'a>(
    _: &mut [DynValue<'a>],
    _: &CallContext<'_>,
) -> Result<DynValue<'a>, String> {
    // The checker rejects unknown functions; a hand-built program could still name one.
    Err("no such built-in function".to_string())
}

/// Look up a one-segment path.
#[inline]
fn resolve_field<'a>(name: &str, root: Root<'a>) -> DynValue<'a> {
    field_json(name, root).map_or(DynValue::Missing, DynValue::from_json)
}

/// The JSON at a one-segment path, if any.
#[inline]
pub(crate) fn field_json<'a>(name: &str, root: Root<'a>) -> Option<&'a serde_json::Value> {
    match root {
        Root::Record { primary, secondary } => match primary.and_then(|m| m.get(name)) {
            Some(v) => Some(v),
            None => secondary.and_then(|m| m.get(name)),
        },
        Root::Conversation(event) => event.analysis.get(name),
        Root::None => None,
    }
}

/// The JSON at a path, if every segment is there (a null or absent step is `None`: the general
/// path tells those apart).
pub(crate) fn input_json<'a>(path: &[Box<str>], root: Root<'a>) -> Option<&'a serde_json::Value> {
    let (first, rest) = path.split_first()?;
    let mut at = field_json(first, root)?;
    for seg in rest {
        at = at.get(seg.as_ref())?;
    }
    Some(at)
}

/// Follow a path; `Missing` as soon as a segment is absent or the value is not an object.
fn resolve_input<'a>(path: &[Box<str>], root: Root<'a>) -> DynValue<'a> {
    let (first, rest) = match path.split_first() {
        Some(split) => split,
        None => return DynValue::Missing,
    };
    let start = match root {
        Root::Record { primary, secondary } => primary
            .and_then(|m| m.get(first.as_ref()))
            .or_else(|| secondary.and_then(|m| m.get(first.as_ref()))),
        Root::Conversation(event) => event.analysis.get(first.as_ref()),
        Root::None => None,
    };
    let mut at = match start {
        Some(v) => v,
        None => return DynValue::Missing,
    };
    for seg in rest {
        at = match at.get(seg.as_ref()) {
            Some(v) => v,
            // Salesforce sends `"Account": null` when the relationship is empty.
            None if at.is_null() => return DynValue::Null,
            None => return DynValue::Missing,
        };
    }
    DynValue::from_json(at)
}

fn text(t: &Option<String>) -> DynValue<'_> {
    match t {
        Some(t) => DynValue::Str(std::borrow::Cow::Borrowed(t.as_str())),
        None => DynValue::Null,
    }
}

fn conversation(f: ConversationField, e: &ConversationEvent) -> DynValue<'_> {
    use std::borrow::Cow::Borrowed;
    match f {
        ConversationField::Id => DynValue::Str(Borrowed(&e.id)),
        ConversationField::Kind => DynValue::Str(Borrowed(e.kind.name())),
        ConversationField::Direction => DynValue::Str(Borrowed(e.direction.name())),
        ConversationField::FromNumber => text(&e.from_number),
        ConversationField::ToNumber => text(&e.to_number),
        ConversationField::StartTime => e.start_time.map_or(DynValue::Null, DynValue::Datetime),
        ConversationField::EndTime => e.end_time.map_or(DynValue::Null, DynValue::Datetime),
        ConversationField::DurationMs => e
            .duration_ms
            .map_or(DynValue::Null, |d| DynValue::Number(d as f64)),
        ConversationField::Summary => text(&e.summary),
        ConversationField::Sentiment => text(&e.sentiment),
        ConversationField::Successful => e.successful.map_or(DynValue::Null, DynValue::Bool),
        ConversationField::InVoicemail => e.in_voicemail().map_or(DynValue::Null, DynValue::Bool),
        ConversationField::DisconnectionReason => text(&e.disconnection_reason),
        ConversationField::AgentId => text(&e.agent_id),
        ConversationField::Connected => DynValue::Bool(e.connected()),
    }
}

/// A value as a condition: `None` for missing/null, strict boolean coercion otherwise (CRMs
/// such as HubSpot send booleans as `"true"`).
#[inline]
pub(crate) fn truth(v: DynValue<'_>) -> Result<Option<bool>, Fail> {
    match v {
        DynValue::Bool(b) => Ok(Some(b)),
        DynValue::Missing | DynValue::Null => Ok(None),
        v => coerce::to_bool(&v)
            .map(Some)
            .map_err(|reason| EvalError::new(v.to_json(), format!("not a condition: {reason}"))),
    }
}

/// `== != < <= > >=`. Numbers compare with numeric text and booleans with boolean words (CRM
/// payloads are often all text); otherwise values of different types are unequal and unordered.
/// Ordering with a missing/null side is null (a guard on it does not apply).
fn compare(op: BinaryOp, l: &DynValue<'_>, r: &DynValue<'_>) -> DynValue<'static> {
    let ord = order(l, r);
    let b = match op {
        BinaryOp::Eq => ord == Some(Ordering::Equal),
        BinaryOp::Ne => ord != Some(Ordering::Equal),
        _ if ord.is_none() => return DynValue::Null,
        BinaryOp::Lt => ord == Some(Ordering::Less),
        BinaryOp::Le => ord != Some(Ordering::Greater),
        BinaryOp::Gt => ord == Some(Ordering::Greater),
        BinaryOp::Ge => ord != Some(Ordering::Less),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Coalesce => return DynValue::Null,
    };
    DynValue::Bool(b)
}

fn order(l: &DynValue<'_>, r: &DynValue<'_>) -> Option<Ordering> {
    use DynValue as D;
    match (l, r) {
        (a, b) if a.is_absent() && b.is_absent() => Some(Ordering::Equal),
        (a, b) if a.is_absent() || b.is_absent() => None,
        (D::Number(a), D::Number(b)) => a.partial_cmp(b),
        (D::Number(a), D::Str(b)) => coerce::parse_number(b)
            .ok()?
            .partial_cmp(a)
            .map(Ordering::reverse),
        (D::Str(a), D::Number(b)) => coerce::parse_number(a).ok()?.partial_cmp(b),
        (D::Bool(a), D::Bool(b)) => Some(a.cmp(b)),
        (D::Bool(a), D::Str(b)) => Some(a.cmp(&coerce::parse_bool(b).ok()?)),
        (D::Str(a), D::Bool(b)) => Some(coerce::parse_bool(a).ok()?.cmp(b)),
        (D::Date(a), D::Date(b)) => Some(a.cmp(b)),
        (D::Datetime(a), D::Datetime(b)) => Some(a.cmp(b)),
        (D::Date(a), b @ D::Str(_)) => Some(a.cmp(&coerce::to_date(b).ok()?)),
        (a @ D::Str(_), D::Date(b)) => Some(coerce::to_date(a).ok()?.cmp(b)),
        (D::Datetime(a), b @ D::Str(_)) => Some(a.cmp(&coerce::to_datetime(b).ok()?)),
        (a @ D::Str(_), D::Datetime(b)) => Some(coerce::to_datetime(a).ok()?.cmp(b)),
        (a, b) => match (a.as_text(), b.as_text()) {
            (Some(a), Some(b)) => Some(a.cmp(b)),
            _ => None,
        },
    }
}
