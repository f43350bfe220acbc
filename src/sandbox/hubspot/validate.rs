//! Validation of written property values against the properties API (crm_apis.md §1.6, §1.7):
//! unknown and read-only properties, enumeration options, numbers, booleans and dates. Values are
//! normalized to the string form HubSpot returns them in.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::errors::ErrorDetail;
use super::record::{format_ms, parse_ms};
use super::schema::{ObjectSchema, PropertyType};

/// Validated writes: schema index and the normalized value (`""` clears).
pub type PropertyWrites = Vec<(u16, String)>;

/// Checks every property of one input; all problems are reported, not just the first.
pub fn validate_properties(
    schema: &ObjectSchema,
    properties: &Map<String, Value>,
) -> Result<PropertyWrites, Vec<ErrorDetail>> {
    let mut writes = Vec::with_capacity(properties.len());
    let mut errors = Vec::new();
    for (name, raw) in properties {
        match validate_one(schema, name, raw) {
            Ok(write) => writes.push(write),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(writes)
    } else {
        Err(errors)
    }
}

/// The top-level message HubSpot uses for a property validation failure.
pub fn summary_message(errors: &[ErrorDetail]) -> String {
    let items: Vec<String> = errors
        .iter()
        .map(|e| {
            format!(
                "{{\"isValid\":false,\"message\":{},\"error\":\"{}\",\"name\":{}}}",
                Value::String(e.message.clone()),
                e.code,
                Value::String(e.property.clone().unwrap_or_default())
            )
        })
        .collect();
    format!("Property values were not valid: [{}]", items.join(","))
}

fn validate_one(
    schema: &ObjectSchema,
    name: &str,
    raw: &Value,
) -> Result<(u16, String), ErrorDetail> {
    let Some(index) = schema.index_of(name) else {
        return Err(ErrorDetail::property(
            "PROPERTY_DOESNT_EXIST",
            name,
            format!("Property \"{name}\" does not exist"),
        ));
    };
    let def = schema.def(index);
    if def.read_only {
        return Err(ErrorDetail::property(
            "READ_ONLY_VALUE",
            name,
            format!("\"{name}\" is a read only property; its value cannot be set."),
        ));
    }
    // Lenient on input: numbers and booleans are accepted where HubSpot documents strings.
    let text = match raw {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(ErrorDetail::property(
                "INVALID_PROPERTY_VALUE",
                name,
                format!("{other} is not a valid value for \"{name}\""),
            ))
        }
    };
    if text.is_empty() {
        return Ok((index, text));
    }
    let invalid = |code: &'static str, what: &str| {
        ErrorDetail::property(
            code,
            name,
            format!("{} was not a valid {what}.", Value::String(text.clone())),
        )
    };
    // HubSpot checks the format of the contact's `email` (its message and code, as the API
    // answers them: `Email address x is invalid`, `INVALID_EMAIL`).
    if name == "email" && !looks_like_email(text.trim()) {
        return Err(ErrorDetail::property(
            "INVALID_EMAIL",
            name,
            format!("Email address {text} is invalid"),
        ));
    }
    let normalized = match def.kind {
        PropertyType::String | PropertyType::PhoneNumber => text.clone(),
        PropertyType::Number => match text.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => text.trim().to_string(),
            _ => return Err(invalid("INVALID_DECIMAL", "number")),
        },
        PropertyType::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "true" => "true".to_string(),
            "false" => "false".to_string(),
            _ => {
                return Err(invalid(
                    "INVALID_BOOLEAN",
                    "boolean (use \"true\" or \"false\")",
                ))
            }
        },
        PropertyType::Date => match parse_ms(&text) {
            Some(ms) if ms.rem_euclid(86_400_000) == 0 => {
                DateTime::<Utc>::from_timestamp_millis(ms)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default()
            }
            Some(_) => return Err(invalid("INVALID_DATE", "date (must be midnight UTC)")),
            None => return Err(invalid("INVALID_DATE", "date")),
        },
        PropertyType::Datetime => match parse_ms(&text) {
            Some(ms) => format_ms(ms),
            None => return Err(invalid("INVALID_DATETIME", "datetime")),
        },
        PropertyType::Enumeration => {
            if !def.options.is_empty() {
                // Multi-select values are joined with `;` (crm_apis.md §1.2).
                let multi = def.field_type == "checkbox";
                let parts: Vec<&str> = if multi {
                    text.split(';').collect()
                } else {
                    vec![text.as_str()]
                };
                for part in parts {
                    if !def.options.iter().any(|o| o.value == part) {
                        let allowed: Vec<&str> = def.options.iter().map(|o| o.value).collect();
                        return Err(ErrorDetail::property(
                            "INVALID_OPTION",
                            name,
                            format!(
                                "{} was not one of the allowed options: [{}]",
                                Value::String(part.to_string()),
                                allowed.join(", ")
                            ),
                        ));
                    }
                }
            }
            text.clone()
        }
    };
    Ok((index, normalized))
}

/// One `@`, a non-empty local part, a dotted domain, no spaces: the shape HubSpot requires
/// (it also checks the top-level domain against IANA's list, which the sandbox does not).
fn looks_like_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::ObjectKind;
    use super::*;
    use serde_json::json;

    fn check(props: Value) -> Result<PropertyWrites, Vec<ErrorDetail>> {
        let Value::Object(map) = props else {
            unreachable!()
        };
        validate_properties(ObjectKind::Contacts.schema(), &map)
    }

    #[test]
    fn reports_every_bad_property_with_its_code() {
        let errors = check(json!({
            "nope": "x",
            "hs_lead_status": "MAYBE",
            "hs_object_id": "5",
            "annualrevenue": "lots",
            "firstname": "Ada"
        }))
        .unwrap_err();
        let mut codes: Vec<_> = errors.iter().map(|e| e.code).collect();
        codes.sort_unstable();
        assert_eq!(
            codes,
            [
                "INVALID_DECIMAL",
                "INVALID_OPTION",
                "PROPERTY_DOESNT_EXIST",
                "READ_ONLY_VALUE"
            ]
        );
        let option = errors.iter().find(|e| e.code == "INVALID_OPTION").unwrap();
        assert!(option.message.contains("QUALIFIED"), "{}", option.message);
        assert!(summary_message(&errors).starts_with("Property values were not valid: ["));
    }

    #[test]
    fn a_malformed_email_is_refused_by_name() {
        let errors = check(json!({"email": "not-an-email", "firstname": "Ada"})).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, "INVALID_EMAIL");
        assert_eq!(errors[0].property.as_deref(), Some("email"));
        assert_eq!(errors[0].message, "Email address not-an-email is invalid");
        assert!(check(json!({"email": "ada@example.com"})).is_ok());
        assert!(check(json!({"email": ""})).is_ok(), "clearing is allowed");
    }

    #[test]
    fn normalizes_values_to_hubspot_strings() {
        let writes = check(json!({
            "hs_email_optout": "TRUE",
            "date_of_birth": "1990-05-01T00:00:00Z",
            "annualrevenue": 1200,
            "notes": null,
            "hs_lead_status": "QUALIFIED"
        }))
        .unwrap();
        let schema = ObjectKind::Contacts.schema();
        let get = |name: &str| {
            let index = schema.index_of(name).unwrap();
            writes.iter().find(|(i, _)| *i == index).unwrap().1.clone()
        };
        assert_eq!(get("hs_email_optout"), "true");
        assert_eq!(get("date_of_birth"), "1990-05-01");
        assert_eq!(get("annualrevenue"), "1200");
        assert_eq!(get("notes"), "");
        assert_eq!(get("hs_lead_status"), "QUALIFIED");
    }
}
