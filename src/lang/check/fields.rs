//! Field declarations → the contact schema ([`FieldTable`]).
//!
//! Declarations from every file are collected before any mapping is checked, so a field may be
//! used in a file that sorts before the one declaring it.

use std::collections::{HashMap, HashSet};

use super::program::{FieldDef, FieldId, FieldTable};
use super::suggest::did_you_mean;
use crate::lang::diagnostics::{codes, Diagnostic};
use crate::lang::syntax::ast::{self, FieldDecl, Span, TypeKind};
use crate::lang::syntax::limits::MAX_FIELDS;
use crate::value::FieldType;

/// The schema and the fields whose declaration had an error. Such fields are still in the
/// table (so their uses do not cascade into "unknown field" errors), but checks that depend on
/// their type are skipped.
pub struct Schema {
    pub table: FieldTable,
    pub broken: HashSet<FieldId>,
}

/// Builds the schema from all declarations, reporting E202–E210 and E206.
pub fn declare_fields(files: &[ast::File], diags: &mut Vec<Diagnostic>) -> Schema {
    let mut table = FieldTable::with_builtins();
    let mut broken = HashSet::new();
    let mut first_decl: HashMap<String, Span> = HashMap::new();
    let mut custom = 0usize;
    let mut over_limit_reported = false;

    for decl in files.iter().flat_map(|f| &f.items).filter_map(|i| match i {
        ast::Item::Field(d) => Some(d),
        _ => None,
    }) {
        let name = &decl.name.name;
        if table.lookup(name).is_some_and(|id| table.get(id).builtin) {
            diags.push(
                Diagnostic::new(
                    codes::BUILTIN_FIELD_NAME,
                    format!("`{name}` is a built-in field and cannot be declared"),
                )
                .primary(decl.name.span, "built-in field")
                .help(
                    "phone_number, first_name, last_name (strings) and do_not_call (boolean) \
                     always exist; map to them without declaring them",
                ),
            );
            continue;
        }
        if let Some(first) = first_decl.get(name) {
            diags.push(
                Diagnostic::new(
                    codes::DUPLICATE_FIELD,
                    format!("field `{name}` is declared twice"),
                )
                .primary(decl.name.span, "declared again here")
                .secondary(*first, "first declared here")
                .help("remove one of the declarations (they may be in different files)"),
            );
            continue;
        }
        first_decl.insert(name.clone(), decl.name.span);

        custom += 1;
        // Past the limit the field is still known, so its uses do not cascade into "unknown field".
        if custom > MAX_FIELDS && !over_limit_reported {
            over_limit_reported = true;
            diags.push(
                Diagnostic::new(
                    codes::TOO_MANY_FIELDS,
                    format!("more than {MAX_FIELDS} fields declared"),
                )
                .primary(decl.name.span, format!("field number {custom}"))
                .help(format!(
                    "a contact has at most {MAX_FIELDS} custom fields; remove fields you do not sync"
                )),
            );
        }

        let mut ok = check_name(decl, diags);
        let ty = match field_type(decl, diags) {
            Some(ty) => ty,
            None => {
                ok = false;
                FieldType::String
            }
        };
        let Some(id) = table.push(FieldDef {
            name: name.clone(),
            ty,
            description: decl.description.as_ref().map(|d| d.value.clone()),
            builtin: false,
            // Name through type: the declaration's span would include trailing blank lines.
            span: Some(decl.name.span.to(decl.ty.span)),
        }) else {
            continue; // tens of thousands of fields: E206 is already reported
        };
        if !ok {
            broken.insert(id);
        }
    }
    Schema { table, broken }
}

/// E202 (not snake_case) and E204 (reserved prefix). True when the name is fine.
fn check_name(decl: &FieldDecl, diags: &mut Vec<Diagnostic>) -> bool {
    let name = &decl.name.name;
    if !is_snake_case(name) {
        let suggestion = to_snake_case(name);
        let help = if is_snake_case(&suggestion) {
            format!("field names are snake_case (`[a-z][a-z0-9_]*`), for example `{suggestion}`")
        } else {
            "field names are snake_case (`[a-z][a-z0-9_]*`)".to_string()
        };
        diags.push(
            Diagnostic::new(
                codes::BAD_FIELD_NAME,
                format!("invalid field name `{name}`"),
            )
            .primary(decl.name.span, "not snake_case")
            .help(help),
        );
        return false;
    }
    for prefix in ["contact", "external"] {
        if name.starts_with(prefix) {
            diags.push(
                Diagnostic::new(
                    codes::RESERVED_FIELD_NAME,
                    format!("field names may not start with `{prefix}`"),
                )
                .primary(decl.name.span, "reserved prefix")
                .help(format!(
                    "names starting with `contact` or `external` are reserved for crmsync; \
                     try `{}`",
                    alternative_name(name, prefix)
                )),
            );
            return false;
        }
    }
    true
}

fn alternative_name(name: &str, prefix: &str) -> String {
    let rest = name[prefix.len()..].trim_start_matches('_');
    if rest.is_empty() {
        format!("{name}_info")
    } else {
        format!("crm_{rest}")
    }
}

/// `[a-z][a-z0-9_]*`.
pub fn is_snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn to_snake_case(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
            prev_lower = false;
        }
    }
    out.trim_end_matches('_').to_string()
}

/// The declared type, or None after reporting E207–E210.
fn field_type(decl: &FieldDecl, diags: &mut Vec<Diagnostic>) -> Option<FieldType> {
    Some(match &decl.ty.kind {
        TypeKind::String => FieldType::String,
        TypeKind::Number => FieldType::Number,
        TypeKind::Boolean => FieldType::Boolean,
        TypeKind::Date => FieldType::Date,
        TypeKind::Datetime => FieldType::Datetime,
        TypeKind::Invalid => return None,
        TypeKind::Unknown(ident) => {
            let alias = match ident.name.to_ascii_lowercase().as_str() {
                "text" | "str" | "varchar" => Some("string"),
                "int" | "integer" | "float" | "decimal" | "double" | "currency" => Some("number"),
                "bool" => Some("boolean"),
                "timestamp" | "time" => Some("datetime"),
                "picklist" => Some("enum"),
                _ => None,
            };
            let suggestion = alias.or_else(|| {
                did_you_mean(
                    &ident.name,
                    ["string", "number", "boolean", "date", "datetime", "enum"],
                )
            });
            diags.push(
                Diagnostic::new(
                    codes::UNKNOWN_TYPE,
                    format!("unknown field type `{}`", ident.name),
                )
                .primary(ident.span, "not a type")
                .help(match suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "the types are string, number, boolean, date, datetime and enum [a, b]"
                        .to_string(),
                }),
            );
            return None;
        }
        TypeKind::Enum(variants) => {
            if variants.is_empty() {
                diags.push(
                    Diagnostic::new(
                        codes::EMPTY_ENUM,
                        format!("enum field `{}` has no variants", decl.name.name),
                    )
                    .primary(decl.ty.span, "empty enum")
                    .help("list the values, for example `enum [new, working, qualified]`"),
                );
                return None;
            }
            let mut ok = true;
            let mut seen: HashMap<&str, Span> = HashMap::new();
            let mut names = Vec::new();
            for v in variants {
                if v.quoted || v.name.is_empty() {
                    diags.push(
                        Diagnostic::new(
                            codes::BAD_VARIANT_NAME,
                            format!("invalid enum variant `{}`", v.name),
                        )
                        .primary(v.span, "not a plain name")
                        .help(
                            "enum variants are plain names like `closed_won`; map CRM picklist \
                             text to them with a value map",
                        ),
                    );
                    ok = false;
                    continue;
                }
                if let Some(first) = seen.get(v.name.as_str()) {
                    diags.push(
                        Diagnostic::new(
                            codes::DUPLICATE_VARIANT,
                            format!("enum variant `{}` is listed twice", v.name),
                        )
                        .primary(v.span, "listed again here")
                        .secondary(*first, "first listed here")
                        .help("remove the repeated variant"),
                    );
                    ok = false;
                    continue;
                }
                seen.insert(&v.name, v.span);
                names.push(v.name.clone());
            }
            if !ok {
                return None;
            }
            FieldType::Enum(names)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        assert!(is_snake_case("lead_status2"));
        assert!(!is_snake_case("LeadStatus"));
        assert!(!is_snake_case("_x"));
        assert_eq!(to_snake_case("LeadStatus"), "lead_status");
        assert_eq!(to_snake_case("Deal Size"), "deal_size");
    }
}
