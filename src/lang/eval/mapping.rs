//! One compiled inbound/analysis mapping and how it turns an input into a field change:
//! guard → source → value map → blank handling → coercion (or E.164 for `phone_number`) →
//! mode against the stored value.

use crate::lang::check::{CheckedMapping, FieldTable};
use crate::lang::syntax::ast::Mode;
use crate::value::{coerce, DynValue, FieldType, Value};

use super::expr::{truth, EvalError, Node, Scope};
use super::print::print;
use super::value_map::CompiledValueMap;
use super::{Change, EvalOutput, FieldError};

/// Which block a mapping belongs to; decides what a null source means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// A CRM `null` clears the field (the CRM value was emptied).
    Inbound,
    /// A null or missing analysis value writes nothing (the conversation did not say).
    Analysis,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledMapping {
    pub(crate) target: String,
    ty: FieldType,
    pub(crate) is_phone: bool,
    /// The field description: the instruction for `merge`.
    instruction: String,
    source: Node,
    pub(crate) source_text: String,
    value_map: Option<CompiledValueMap>,
    mode: Mode,
    guard: Option<Node>,
    guard_text: String,
    /// Another mapping in the same block writes this target: the later change replaces ours.
    pub(crate) repeated: bool,
    /// Top-level input paths read (for SOQL SELECT / HubSpot `properties=`).
    pub(crate) reads: Vec<Vec<String>>,
}

/// Lazily computed record id for error reports (only looked up when an error happens).
pub(crate) type RecordId<'r> = &'r dyn Fn() -> Option<String>;

impl CompiledMapping {
    pub(crate) fn build(m: &CheckedMapping, fields: &FieldTable) -> CompiledMapping {
        let name = |id: u16| fields.fields[id as usize].name.clone();
        let def = fields.get(m.target);
        let mut reads = Vec::new();
        collect_paths(&m.source, &mut reads);
        if let Some(g) = &m.guard {
            collect_paths(g, &mut reads);
        }
        CompiledMapping {
            target: def.name.clone(),
            ty: def.ty.clone(),
            is_phone: m.target == FieldTable::PHONE_NUMBER,
            instruction: def.description.clone().unwrap_or_default(),
            source: Node::build(&m.source, &name),
            source_text: print(&m.source, &name),
            value_map: m.value_map.as_ref().map(CompiledValueMap::build),
            mode: m.mode,
            guard: m.guard.as_ref().map(|g| Node::build(g, &name)),
            guard_text: m
                .guard
                .as_ref()
                .map(|g| print(g, &name))
                .unwrap_or_default(),
            repeated: false,
            reads,
        }
    }

    fn error(&self, record_id: RecordId<'_>, source: &str, e: EvalError) -> FieldError {
        FieldError {
            record_id: record_id(),
            field: self.target.clone(),
            source: source.to_string(),
            value: e.value,
            reason: e.reason,
        }
    }

    /// Evaluate and append the resulting change or error to `out`.
    pub(crate) fn apply<'a>(
        &'a self,
        s: &Scope<'a>,
        flow: Flow,
        record_id: RecordId<'_>,
        out: &mut EvalOutput,
    ) {
        match self.change(s, flow) {
            Ok(Some(change)) => {
                if self.repeated {
                    // The later of two mappings to one target wins (the checker warns).
                    out.changes.retain(|c| c.field() != self.target);
                }
                out.changes.push(change);
            }
            Ok(None) => {}
            Err((source, e)) => {
                let text = if source {
                    &self.source_text
                } else {
                    &self.guard_text
                };
                out.errors.push(self.error(record_id, text, e));
            }
        }
    }

    /// `Err((true, _))`: the source failed; `Err((false, _))`: the guard failed.
    fn change<'a>(
        &'a self,
        s: &Scope<'a>,
        flow: Flow,
    ) -> Result<Option<Change>, (bool, EvalError)> {
        if let Some(guard) = &self.guard {
            let v = guard.eval(s).map_err(|e| (false, e))?;
            if truth(v).map_err(|e| (false, e))? != Some(true) {
                return Ok(None);
            }
        }
        let mut v = self.source.eval(s).map_err(|e| (true, e))?;
        if matches!(v, DynValue::Missing) {
            return Ok(None);
        }
        if let Some(map) = &self.value_map {
            v = map.apply(v);
        }
        // Blank text means "no value" for every type but string (HubSpot sends "" for unset
        // properties); it is not a coercion error.
        if self.ty != FieldType::String {
            if let DynValue::Str(t) = &v {
                if t.trim().is_empty() {
                    v = DynValue::Null;
                }
            }
        }
        if v.is_absent() && (flow == Flow::Analysis || self.is_phone) {
            if self.is_phone {
                return Err((
                    true,
                    EvalError {
                        value: v.to_json(),
                        reason: "no phone number".to_string(),
                    },
                ));
            }
            return Ok(None);
        }
        let new = if self.is_phone {
            self.phone(v, s)?
        } else {
            coerce::coerce(v, &self.ty).map_err(|e| {
                (
                    true,
                    EvalError {
                        value: e.value,
                        reason: format!("cannot be a {}: {}", e.target, e.reason),
                    },
                )
            })?
        };
        let current = s.current.get(&self.target);
        if same(current, &new) {
            return Ok(None);
        }
        let current_empty = current.is_none_or(is_empty);
        Ok(match self.mode {
            Mode::Overwrite => Some(self.set(new)),
            Mode::FillIfEmpty if current_empty => Some(self.set(new)),
            Mode::FillIfEmpty => None,
            Mode::Merge if current_empty => Some(self.set(new)),
            Mode::Merge => match (current, new) {
                (_, new) if is_empty(&new) => None,
                (Some(Value::String(old)), Value::String(new)) => Some(Change::Merge {
                    field: self.target.clone(),
                    old: old.clone(),
                    new,
                    instruction: self.instruction.clone(),
                }),
                // Merge is checked to string fields; a stored value of another type is replaced.
                (_, new) => Some(self.set(new)),
            },
        })
    }

    fn set(&self, value: Value) -> Change {
        Change::Set {
            field: self.target.clone(),
            value,
        }
    }

    fn phone(&self, v: DynValue<'_>, s: &Scope<'_>) -> Result<Value, (bool, EvalError)> {
        let text = match &v {
            DynValue::Str(t) => s.cx.phone.normalize(t),
            DynValue::Number(n) => s.cx.phone.normalize(&crate::value::vars::format_number(*n)),
            other => {
                return Err((
                    true,
                    EvalError {
                        value: other.to_json(),
                        reason: format!(
                            "a phone number must be text, found a {}",
                            other.type_name()
                        ),
                    },
                ))
            }
        };
        text.map(Value::String).map_err(|e| {
            (
                true,
                EvalError {
                    value: v.to_json(),
                    reason: e.to_string(),
                },
            )
        })
    }
}

/// Null, or text that is blank.
pub(crate) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// A new value equal to the stored one writes nothing; all empty values are equal.
fn same(current: Option<&Value>, new: &Value) -> bool {
    match current {
        None => is_empty(new),
        Some(c) => c == new || (is_empty(c) && is_empty(new)),
    }
}

/// Every input path an expression reads.
pub(crate) fn collect_paths(e: &crate::lang::check::TypedExpr, out: &mut Vec<Vec<String>>) {
    use crate::lang::check::TypedExprKind as K;
    match &e.kind {
        K::Input(p) => {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        K::Call { args, .. } => args.iter().for_each(|a| collect_paths(a, out)),
        K::Not(i) => collect_paths(i, out),
        K::Binary { lhs, rhs, .. } => {
            collect_paths(lhs, out);
            collect_paths(rhs, out);
        }
        K::Conversation(_) | K::Contact(_) | K::Literal(_) => {}
    }
}

/// Every contact field an expression reads.
pub(crate) fn collect_contact_fields(e: &crate::lang::check::TypedExpr, out: &mut Vec<u16>) {
    use crate::lang::check::TypedExprKind as K;
    match &e.kind {
        K::Contact(id) => {
            if !out.contains(&id.0) {
                out.push(id.0);
            }
        }
        K::Call { args, .. } => args.iter().for_each(|a| collect_contact_fields(a, out)),
        K::Not(i) => collect_contact_fields(i, out),
        K::Binary { lhs, rhs, .. } => {
            collect_contact_fields(lhs, out);
            collect_contact_fields(rhs, out);
        }
        K::Conversation(_) | K::Input(_) | K::Literal(_) => {}
    }
}
