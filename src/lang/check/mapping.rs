//! Mappings: targets, modes, guards, value maps, source/target fit, and overridden mappings.

use std::collections::HashMap;

use super::expr::{unknown_field, ExprChecker, Scope};
use super::fields::Schema;
use super::fit::{a, fit_value, static_fit};
use super::program::{
    CheckedMapping, FieldId, FieldTable, OutboundMapping, TypedExpr, TypedExprKind,
};
use super::value_map;
use crate::lang::diagnostics::{codes, Diagnostic};
use crate::lang::syntax::ast::{Mapping, Mode, Span};
use crate::lang::types::ExprType;

/// Checks the mappings of an `analysis` block (`scope == Analysis`) or an `inbound` section
/// (`scope == Inbound`): each writes one contact field.
pub fn field_mappings(
    scope: Scope,
    mappings: &[Mapping],
    schema: &Schema,
    diags: &mut Vec<Diagnostic>,
) -> Vec<CheckedMapping> {
    let mut out = Vec::new();
    let mut shadow = Shadowing::default();
    for m in mappings {
        let source = ExprChecker {
            fields: &schema.table,
            scope,
            diags,
        }
        .check(&m.source);
        let guard = check_guard(m, scope, &schema.table, diags);
        let Some(target) = schema.table.lookup(&m.target.name) else {
            diags.push(unknown_field(&schema.table, &m.target));
            continue;
        };
        let def = schema.table.get(target);
        let mode = m.mode.map(|s| s.mode).unwrap_or_default();

        if scope == Scope::Analysis && target == FieldTable::PHONE_NUMBER {
            diags.push(
                Diagnostic::new(
                    codes::ANALYSIS_WRITES_PHONE,
                    "analysis cannot write `phone_number`",
                )
                .primary(m.target.span, "the contact's key")
                .help(
                    "a contact is identified by its phone number; analysis applies to the \
                     caller's contact and cannot change the number",
                ),
            );
        }
        if let Some(spec) = m.mode.filter(|s| s.mode == Mode::Merge) {
            if scope != Scope::Analysis {
                diags.push(
                    Diagnostic::new(
                        codes::MERGE_OUTSIDE_ANALYSIS,
                        "`merge` is only allowed in `analysis`",
                    )
                    .primary(spec.span, "not allowed in `inbound`")
                    .help("inbound values come from the CRM as they are; use `overwrite` or `fill_if_empty`"),
                );
            } else if def.ty != crate::value::FieldType::String && !schema.broken.contains(&target)
            {
                diags.push(
                    Diagnostic::new(
                        codes::MERGE_NOT_STRING,
                        format!(
                            "`merge` needs a string field, but `{}` is {}",
                            def.name,
                            a(def.ty.keyword())
                        ),
                    )
                    .primary(spec.span, "merge combines text")
                    .maybe_secondary(def.span, format!("`{}` declared here", def.name))
                    .help("use `overwrite` or `fill_if_empty` for this field"),
                );
            }
        }

        let value_map = m.value_map.as_ref().map(|vm| {
            let target_ty = (!schema.broken.contains(&target)).then_some(&def.ty);
            value_map::inbound(vm, &source.ty, &def.name, target_ty, diags)
        });
        if value_map.is_none() && !schema.broken.contains(&target) {
            check_source_fits(&source, target, &schema.table, diags);
        }
        // Two inbound mappings to the key are an error of their own (E504), not a warning.
        if !(scope == Scope::Inbound && target == FieldTable::PHONE_NUMBER) {
            shadow.see(
                ShadowKey::Field(target),
                m,
                &format!("`{}`", def.name),
                diags,
            );
        }
        out.push(CheckedMapping {
            source,
            target,
            value_map,
            mode,
            guard,
            span: m.span,
        });
    }
    out
}

/// Checks the mappings of an `outbound` section: contact fields → CRM fields.
pub fn outbound_mappings(
    mappings: &[Mapping],
    schema: &Schema,
    diags: &mut Vec<Diagnostic>,
) -> Vec<OutboundMapping> {
    let mut out = Vec::new();
    let mut shadow = Shadowing::default();
    for m in mappings {
        let source = ExprChecker {
            fields: &schema.table,
            scope: Scope::Outbound,
            diags,
        }
        .check(&m.source);
        let guard = check_guard(m, Scope::Outbound, &schema.table, diags);
        if let Some(spec) = m.mode {
            diags.push(
                Diagnostic::new(
                    codes::MODE_IN_OUTBOUND,
                    format!(
                        "outbound mappings take no mode (found `{}`)",
                        spec.mode.keyword()
                    ),
                )
                .primary(spec.span, "not allowed in `outbound`")
                .help(
                    "outbound mappings always write the contact's current value; remove the mode",
                ),
            );
        }
        let mut reads = Vec::new();
        collect_contact_reads(&source, &mut reads);
        if let Some(g) = &guard {
            collect_contact_reads(g, &mut reads);
        }
        reads.sort();
        reads.dedup();
        if reads.contains(&FieldTable::PHONE_NUMBER) {
            diags.push(
                Diagnostic::new(
                    codes::OUTBOUND_WRITES_PHONE,
                    "outbound mappings never write the phone number back",
                )
                .primary(m.source.span, "reads `phone_number`")
                .help("the phone number is the contact's key and comes from the CRM; remove this mapping"),
            );
        }
        let value_map = m
            .value_map
            .as_ref()
            .map(|vm| value_map::outbound(vm, &source.ty, diags));
        shadow.see(
            ShadowKey::Crm(m.target.name.clone()),
            m,
            &format!("`{}`", m.target.name),
            diags,
        );
        out.push(OutboundMapping {
            source,
            target: m.target.name.clone(),
            reads,
            value_map,
            guard,
            span: m.span,
        });
    }
    out
}

fn check_guard(
    m: &Mapping,
    scope: Scope,
    fields: &FieldTable,
    diags: &mut Vec<Diagnostic>,
) -> Option<TypedExpr> {
    let guard = m.guard.as_ref()?;
    let typed = ExprChecker {
        fields,
        scope,
        diags,
    }
    .check(guard);
    if !matches!(typed.ty, ExprType::Boolean | ExprType::Any) {
        diags.push(
            Diagnostic::new(
                codes::GUARD_NOT_BOOLEAN,
                format!("`when` needs a boolean, found {}", a(typed.ty.describe())),
            )
            .primary(typed.span, format!("this is {}", a(typed.ty.describe())))
            .help("compare it to get a boolean, for example `when Status == \"Active\"`"),
        );
    }
    Some(typed)
}

/// E309: a source whose static type (or literal value) cannot become the target's type.
fn check_source_fits(
    source: &TypedExpr,
    target: FieldId,
    fields: &FieldTable,
    diags: &mut Vec<Diagnostic>,
) {
    let def = fields.get(target);
    let problem = match &source.kind {
        TypedExprKind::Literal(value) => fit_value(value, &def.ty).err(),
        _ => static_fit(&source.ty, &def.ty).err(),
    };
    if let Some(reason) = problem {
        diags.push(
            Diagnostic::new(
                codes::SOURCE_TYPE,
                format!(
                    "{} cannot be written to `{}`, which is {} field",
                    a(source.ty.describe()),
                    def.name,
                    a(def.ty.keyword())
                ),
            )
            .primary(source.span, reason)
            .maybe_secondary(def.span, format!("`{}` declared here", def.name))
            .help(
                "convert the value first, or add a value map `{ ... }` that gives the right type",
            ),
        );
    }
}

fn collect_contact_reads(expr: &TypedExpr, out: &mut Vec<FieldId>) {
    match &expr.kind {
        TypedExprKind::Contact(id) => out.push(*id),
        TypedExprKind::Call { args, .. } => {
            for arg in args {
                collect_contact_reads(arg, out);
            }
        }
        TypedExprKind::Not(inner) => collect_contact_reads(inner, out),
        TypedExprKind::Binary { lhs, rhs, .. } => {
            collect_contact_reads(lhs, out);
            collect_contact_reads(rhs, out);
        }
        TypedExprKind::Input(_) | TypedExprKind::Conversation(_) | TypedExprKind::Literal(_) => {}
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ShadowKey {
    Field(FieldId),
    Crm(String),
}

/// W001: a second unguarded mapping to one target in one block overrides the first.
#[derive(Default)]
struct Shadowing {
    unguarded: HashMap<ShadowKey, Span>,
}

impl Shadowing {
    fn see(&mut self, key: ShadowKey, m: &Mapping, shown: &str, diags: &mut Vec<Diagnostic>) {
        if m.guard.is_some() {
            return;
        }
        if let Some(first) = self.unguarded.insert(key, m.target.span) {
            diags.push(
                Diagnostic::new(
                    codes::SHADOWED_MAPPING,
                    format!("{shown} is mapped twice in this block; the later mapping wins"),
                )
                .primary(m.target.span, "this mapping wins")
                .secondary(first, "this one is overridden")
                .help("remove one mapping, combine the sources with `??`, or add a `when` guard"),
            );
        }
    }
}

trait MaybeSecondary {
    fn maybe_secondary(self, span: Option<Span>, message: String) -> Self;
}

impl MaybeSecondary for Diagnostic {
    fn maybe_secondary(self, span: Option<Span>, message: String) -> Self {
        match span {
            Some(span) => self.secondary(span, message),
            None => self,
        }
    }
}
