//! One compiled inbound/analysis mapping and how it turns an input into a field change:
//! guard → source → value map → blank handling → coercion (or E.164 for `phone_number`) →
//! mode against the stored value.

use crate::lang::check::{CheckedMapping, FieldTable};
use crate::lang::syntax::ast::Mode;
use crate::value::{coerce, DynValue, FieldType, Value};

use super::expr::{truth, EvalError, Fail, Node, Scope};
use super::print::print;
use super::text_copy::TextCopy;
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
    /// The superinstruction for a text field copied from the record (`text_copy.rs`).
    text_copy: Option<TextCopy>,
    /// The `phone_number` mapping of `a ?? b ?? ...` (or `coalesce(a, b, ...)`): each
    /// alternative in order; the first that is a valid phone number wins. Empty otherwise.
    phone_alternatives: Box<[Node]>,
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
        let source = Node::build(&m.source, &name);
        let is_phone = m.target == FieldTable::PHONE_NUMBER;
        let phone_alternatives = match alternatives(&m.source) {
            alts if is_phone && m.value_map.is_none() && alts.len() > 1 => {
                alts.into_iter().map(|a| Node::build(a, &name)).collect()
            }
            _ => Box::default(),
        };
        let plain_text = def.ty == FieldType::String
            && m.target != FieldTable::PHONE_NUMBER
            && m.guard.is_none()
            && m.value_map.is_none();
        CompiledMapping {
            text_copy: plain_text.then(|| TextCopy::recognise(&source)).flatten(),
            target: def.name.clone(),
            ty: def.ty.clone(),
            is_phone,
            phone_alternatives,
            instruction: def.description.clone().unwrap_or_default(),
            source,
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

    /// Evaluate and append the resulting change or error to `out`.
    pub(crate) fn apply<'r: 'a, 'a>(
        &'r self,
        s: &Scope<'a>,
        flow: Flow,
        record_id: RecordId<'_>,
        out: &mut EvalOutput<'r>,
    ) {
        if let Err(failure) = self.change(s, flow, &mut out.changes) {
            let (in_guard, e) = *failure;
            let source = if in_guard {
                &self.guard_text
            } else {
                &self.source_text
            };
            out.errors.push(FieldError {
                record_id: record_id(),
                field: self.target.clone(),
                source: source.clone(),
                value: e.value,
                reason: e.reason,
            });
        }
    }

    /// Whether this mapping can yield a [`Change::Merge`] (mode `merge`).
    pub(crate) fn is_merge(&self) -> bool {
        self.mode == Mode::Merge
    }

    /// The later of two mappings to one target wins (the checker warns): drop the earlier
    /// one's change before pushing ours.
    #[inline]
    fn make_room(&self, changes: &mut Vec<Change<'_>>) {
        if self.repeated {
            changes.retain(|c| c.field() != self.target);
        }
    }

    /// Push the change (if any) this mapping makes. The error says whether the guard failed.
    fn change<'r: 'a, 'a>(
        &'r self,
        s: &Scope<'a>,
        flow: Flow,
        changes: &mut Vec<Change<'r>>,
    ) -> Result<(), Box<(bool, EvalError)>> {
        if let Some(text) = self.text_copy.as_ref().and_then(|fast| fast.text(s.root)) {
            let current = s.current.get(&self.target);
            if !unchanged_string(current, &text) {
                self.write(current, Value::String(text.into_owned()), changes);
            }
            return Ok(());
        }
        let in_guard = |e: Fail| Box::new((true, *e));
        let in_source = |e: Fail| Box::new((false, *e));
        if let Some(guard) = &self.guard {
            let v = guard.eval(s).map_err(in_guard)?;
            if truth(v).map_err(in_guard)? != Some(true) {
                return Ok(());
            }
        }
        if !self.phone_alternatives.is_empty() {
            let phone = self.first_valid_phone(s).map_err(in_source)?;
            self.write(s.current.get(&self.target), phone, changes);
            return Ok(());
        }
        let mut v = self.source.eval(s).map_err(in_source)?;
        if matches!(v, DynValue::Missing) && !self.is_phone {
            return Ok(());
        }
        if let Some(map) = &self.value_map {
            v = map.apply(v);
        }
        // Blank text means "no value" for every type but string (HubSpot sends "" for unset
        // properties); it is not a coercion error.
        if !matches!(self.ty, FieldType::String) {
            if let DynValue::Str(t) = &v {
                if t.trim().is_empty() {
                    v = DynValue::Null;
                }
            }
        }
        if v.is_absent() {
            if self.is_phone {
                let e = EvalError::new(v.to_json(), "no phone number".to_string());
                return Err(in_source(e));
            }
            if flow == Flow::Analysis {
                return Ok(());
            }
        }
        let current = s.current.get(&self.target);
        if !self.is_phone && unchanged_text(current, &v, &self.ty) {
            return Ok(());
        }
        let new = if self.is_phone {
            self.phone(v, s).map_err(in_source)?
        } else {
            coerce::coerce_boxed(v, &self.ty).map_err(|e| {
                let reason = format!(
                    "cannot be {}: {}",
                    crate::value::dynamic::with_article(e.target),
                    e.reason
                );
                Box::new((
                    false,
                    EvalError {
                        value: e.value,
                        reason,
                    },
                ))
            })?
        };
        self.write(current, new, changes);
        Ok(())
    }

    /// Push the change that writing `new` over `current` makes in this mapping's mode, if any.
    fn write<'r>(&'r self, current: Option<&Value>, new: Value, changes: &mut Vec<Change<'r>>) {
        if same(current, &new) {
            return;
        }
        let current_empty = current.is_none_or(is_empty);
        match self.mode {
            Mode::Overwrite => {}
            Mode::FillIfEmpty | Mode::Merge if current_empty => {}
            Mode::FillIfEmpty => return,
            Mode::Merge => match (current, new) {
                (_, new) if is_empty(&new) => return,
                (Some(Value::String(old)), Value::String(new)) => {
                    let change = Change::Merge {
                        field: &self.target,
                        old: old.clone(),
                        new,
                        instruction: self.instruction.clone(),
                    };
                    self.make_room(changes);
                    changes.push(change);
                    return;
                }
                // Merge is checked to string fields; a stored value of another type is replaced.
                (_, replacement) => {
                    self.make_room(changes);
                    changes.push(Change::Set {
                        field: &self.target,
                        value: replacement,
                    });
                    return;
                }
            },
        }
        // Built in place in the vector: this is the hot path of a full sync.
        self.make_room(changes);
        changes.push(Change::Set {
            field: &self.target,
            value: new,
        });
    }

    /// The first alternative that is a valid phone number. WHY not plain `??`: a CRM phone
    /// field often holds text that is no number (`MobilePhone: "n/a"`), and the record's other
    /// number is then the one to use. None valid: the first invalid one's error, else "no
    /// phone number".
    fn first_valid_phone(&self, s: &Scope<'_>) -> Result<Value, Fail> {
        let mut first_error = None;
        for alternative in self.phone_alternatives.iter() {
            let v = alternative.eval(s)?;
            if crate::lang::functions::is_missing_or_blank(&v) {
                continue;
            }
            match self.phone(v, s) {
                Ok(phone) => return Ok(phone),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error
            .unwrap_or_else(|| EvalError::new(serde_json::Value::Null, "no phone number".into())))
    }

    fn phone(&self, v: DynValue<'_>, s: &Scope<'_>) -> Result<Value, Fail> {
        let text = match &v {
            DynValue::Str(t) => s.cx.phone.normalize(t),
            DynValue::Number(n) => s.cx.phone.normalize(&crate::value::vars::format_number(*n)),
            other => {
                let reason = format!("a phone number must be text, found {}", other.described());
                return Err(EvalError::new(other.to_json(), reason));
            }
        };
        text.map(Value::String)
            .map_err(|e| EvalError::new(v.to_json(), e.to_string()))
    }
}

/// Whether text coerces to exactly the stored string or enum value, decided on the borrowed
/// text. WHY: most records of an incremental sync did not change; answering here, before
/// coercion, spares them an allocation per text field (a `false` takes the general path, which
/// decides the same way after coercing).
#[inline]
fn unchanged_text(current: Option<&Value>, v: &DynValue<'_>, ty: &FieldType) -> bool {
    let (Some(current), DynValue::Str(text) | DynValue::Enum(text)) = (current, v) else {
        return false;
    };
    match (ty, current) {
        (FieldType::String, _) => unchanged_string(Some(current), text),
        (FieldType::Enum(variants), Value::Enum(stored)) => {
            coerce::match_variant(text.trim(), variants) == Some(stored.as_str())
        }
        _ => false,
    }
}

/// Whether text is exactly the stored string (or both are blank), without copying it.
#[inline]
fn unchanged_string(current: Option<&Value>, text: &str) -> bool {
    match current {
        Some(Value::String(stored)) => {
            stored == text || (stored.trim().is_empty() && text.trim().is_empty())
        }
        _ => false,
    }
}

/// Null, or text that is blank.
#[inline]
pub(crate) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// A new value equal to the stored one writes nothing; all empty values are equal.
#[inline]
fn same(current: Option<&Value>, new: &Value) -> bool {
    match current {
        None => is_empty(new),
        Some(c) => c == new || (is_empty(c) && is_empty(new)),
    }
}

/// The operands of a `a ?? b ?? ...` chain or a `coalesce(a, b, ...)` call, in order; any other
/// expression is its own single alternative.
fn alternatives(e: &crate::lang::check::TypedExpr) -> Vec<&crate::lang::check::TypedExpr> {
    use crate::lang::check::TypedExprKind as K;
    use crate::lang::syntax::ast::BinaryOp;
    match &e.kind {
        K::Binary {
            op: BinaryOp::Coalesce,
            lhs,
            rhs,
        } => {
            let mut out = alternatives(lhs);
            out.extend(alternatives(rhs));
            out
        }
        K::Call { function, args } if *function == "coalesce" => {
            args.iter().flat_map(alternatives).collect()
        }
        _ => vec![e],
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
