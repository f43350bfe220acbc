//! Manual edits (CLI `contact set`, HTTP `PATCH /v1/contacts/{phone}`): validated against the
//! field types, written in one transaction with the outbound intent they cause.

use chrono::Utc;
use serde::Serialize;

use super::{Engine, EngineError};
use crate::store::{ContactRecord, Source};
use crate::value::{coerce, FieldType, Fields, Value};

/// What a manual edit did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManualReport {
    pub phone: String,
    pub created: bool,
    /// Fields whose stored value changed.
    pub changed: Vec<String>,
    /// CRM fields enqueued for the active connection.
    pub outbound: Vec<String>,
    /// Edited fields that only inbound sync writes and no outbound mapping reads: the edit is
    /// kept, but the CRM never hears of it and its next sync replaces it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<OwnedField>,
}

/// An edited field that a CRM owns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnedField {
    pub field: String,
    /// The connections whose inbound rules write it.
    pub owners: Vec<String>,
    pub message: String,
}

impl Engine {
    /// Sets fields of the contact with this phone (created when missing). Every field must
    /// exist and every value must have the field's type (`Value::Null` clears a field); on any
    /// error nothing is written.
    pub fn manual_set(&self, phone: &str, fields: Fields) -> Result<ManualReport, EngineError> {
        let phone = self.normalize_phone(phone)?;
        for (name, value) in &fields {
            let ty = self.field_type(name)?;
            check_type(name, &ty, value)?;
        }
        let warnings: Vec<OwnedField> = fields
            .keys()
            .filter_map(|name| self.owned_field(name))
            .collect();
        let now = Utc::now();
        self.store.write(|tx| {
            let existing = tx.contact(&phone)?;
            let created = existing.is_none();
            let mut contact = existing.unwrap_or_else(|| ContactRecord::new(&phone, now));
            let mut changed = Vec::new();
            for (name, value) in fields {
                if contact.set_field(&name, value, Source::Manual, now) {
                    changed.push(name);
                }
            }
            let outbound = self.enqueue_outbound(tx, &contact, &changed, now)?;
            if created || !changed.is_empty() {
                tx.put_contact(&contact)?;
            }
            Ok(ManualReport {
                phone: phone.clone(),
                created,
                changed,
                outbound: outbound.into_keys().collect(),
                warnings,
            })
        })
    }

    /// The warning for editing `field` by hand when only inbound sync writes it (no analysis
    /// mapping does) and no outbound mapping of any connection reads it. WHY a warning and not
    /// a refusal: the local value is still useful until the next sync (the agent hears it), and
    /// an integrator may edit on purpose; what must not happen is a silent revert.
    fn owned_field(&self, field: &str) -> Option<OwnedField> {
        let connections = self.ruleset.connections();
        let owners: Vec<String> = connections
            .iter()
            .filter(|c| c.inbound_target_fields().iter().any(|t| t == field))
            .map(|c| c.name.clone())
            .collect();
        let read_outbound = connections
            .iter()
            .any(|c| c.outbound_source_fields().iter().any(|f| f == field));
        let by_analysis = self.ruleset.analysis_target_fields().any(|t| t == field);
        if owners.is_empty() || read_outbound || by_analysis {
            return None;
        }
        Some(OwnedField {
            field: field.to_string(),
            message: format!(
                "`{field}` is owned by {}: no outbound mapping sends it to the CRM, so the next sync from {} replaces this edit",
                owners.join(" and "),
                owners.join(" or ")
            ),
            owners,
        })
    }

    /// Reads a JSON value for a field with strict coercion to its type (`"42"` for a number,
    /// `"yes"` for a boolean, `null` to clear). For text input from the command line, pass
    /// `serde_json::Value::String`.
    pub fn parse_field_value(
        &self,
        name: &str,
        value: &serde_json::Value,
    ) -> Result<Value, EngineError> {
        let ty = self.field_type(name)?;
        if value.is_null() {
            return Ok(Value::Null);
        }
        coerce::coerce_json(value, &ty).map_err(|err| EngineError::WrongType {
            field: name.to_string(),
            expected: describe(&ty),
            value: value.to_string(),
            reason: err.to_string(),
        })
    }

    /// The type of a settable field (not `phone_number`, which is the key).
    fn field_type(&self, name: &str) -> Result<FieldType, EngineError> {
        if name == "phone_number" {
            return Err(EngineError::ReadOnlyField {
                field: name.to_string(),
                reason: "the phone number is the contact's key".to_string(),
            });
        }
        match self.ruleset.field(name) {
            Some(def) => Ok(def.ty.clone()),
            None => Err(EngineError::UnknownField {
                field: name.to_string(),
                suggestion: self.suggest_field(name),
            }),
        }
    }

    fn suggest_field(&self, name: &str) -> Option<String> {
        self.ruleset
            .fields()
            .iter()
            .map(|def| def.name.clone())
            .filter(|candidate| candidate != "phone_number")
            .map(|candidate| (strsim::jaro_winkler(name, &candidate), candidate))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, candidate)| candidate)
    }
}

fn describe(ty: &FieldType) -> String {
    match ty {
        FieldType::Enum(variants) => format!("enum [{}]", variants.join(", ")),
        other => other.keyword().to_string(),
    }
}

fn check_type(name: &str, ty: &FieldType, value: &Value) -> Result<(), EngineError> {
    if let Value::Datetime(t) = value {
        // A datetime the store cannot hold is refused here, not bent when written.
        coerce::storable_datetime(*t).map_err(|reason| EngineError::WrongType {
            field: name.to_string(),
            expected: describe(ty),
            value: t.to_rfc3339(),
            reason,
        })?;
    }
    let fits = match (ty, value) {
        (_, Value::Null) => true,
        (FieldType::String, Value::String(_)) => true,
        (FieldType::Number, Value::Number(n)) => n.is_finite(),
        (FieldType::Boolean, Value::Bool(_)) => true,
        (FieldType::Date, Value::Date(_)) => true,
        (FieldType::Datetime, Value::Datetime(_)) => true,
        (FieldType::Enum(variants), Value::Enum(v)) => variants.contains(v),
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(EngineError::WrongType {
            field: name.to_string(),
            expected: describe(ty),
            value: format!("{value:?}"),
            reason: "the value does not have the field's type".to_string(),
        })
    }
}
