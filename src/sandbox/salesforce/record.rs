//! Records of the sandbox org: typed values aligned with a schema's fields, their JSON shape,
//! and validation of incoming JSON field values against the schema.

use std::io::Write;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Timelike, Utc};
use serde_json::Value as JsonValue;

use super::describe::{self, FieldDef, FieldKind, SObject, Schema};
use super::errors::RecordError;
use crate::sandbox::seed::Person;

/// One field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Str(String),
    Bool(bool),
    Num(f64),
    Int(i64),
    Date(NaiveDate),
    /// Epoch milliseconds, UTC.
    DateTime(i64),
}

/// A record: one value per schema field, in schema order.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub object: SObject,
    pub values: Vec<Val>,
}

impl Record {
    /// An empty record of `object` with the given id and timestamps.
    pub fn new(object: SObject, id: String, created_ms: i64, modified_ms: i64) -> Record {
        let schema = object.schema();
        let mut values = vec![Val::Null; schema.fields.len()];
        values[describe::ID] = Val::Str(id);
        values[describe::IS_DELETED] = Val::Bool(false);
        values[describe::CREATED_DATE] = Val::DateTime(created_ms);
        values[describe::LAST_MODIFIED_DATE] = Val::DateTime(modified_ms);
        values[describe::SYSTEM_MODSTAMP] = Val::DateTime(modified_ms);
        Record { object, values }
    }

    pub fn id(&self) -> &str {
        match &self.values[describe::ID] {
            Val::Str(id) => id,
            _ => "",
        }
    }

    pub fn modstamp(&self) -> i64 {
        match self.values[describe::SYSTEM_MODSTAMP] {
            Val::DateTime(ms) => ms,
            _ => 0,
        }
    }

    /// Mark the record modified at `ms` (both LastModifiedDate and SystemModstamp).
    pub fn touch(&mut self, ms: i64) {
        self.values[describe::LAST_MODIFIED_DATE] = Val::DateTime(ms);
        self.values[describe::SYSTEM_MODSTAMP] = Val::DateTime(ms);
    }

    pub fn get(&self, index: usize) -> &Val {
        &self.values[index]
    }

    pub fn set_by_name(&mut self, name: &str, value: Val) {
        if let Some(index) = self.object.schema().index_of(name) {
            self.values[index] = value;
        }
    }

    /// All fields as a Salesforce JSON record (with `attributes`).
    pub fn to_json(&self, version: &str) -> JsonValue {
        let all: Vec<usize> = (0..self.values.len()).collect();
        let mut out = Vec::new();
        write_record_json(&mut out, self, &all, version);
        serde_json::from_slice(&out).unwrap_or(JsonValue::Null)
    }
}

/// Positions of the Contact fields a seeded person fills, resolved once.
struct ContactPositions {
    first_name: usize,
    last_name: usize,
    title: usize,
    email: usize,
    phone: usize,
    mobile_phone: usize,
    do_not_call: usize,
    lead_status: usize,
    notes: usize,
    renewal_date: usize,
    annual_revenue: usize,
}

fn contact_positions() -> &'static ContactPositions {
    static POSITIONS: std::sync::OnceLock<ContactPositions> = std::sync::OnceLock::new();
    POSITIONS.get_or_init(|| {
        let schema = SObject::Contact.schema();
        ContactPositions {
            first_name: schema.require("FirstName"),
            last_name: schema.require("LastName"),
            title: schema.require("Title"),
            email: schema.require("Email"),
            phone: schema.require("Phone"),
            mobile_phone: schema.require("MobilePhone"),
            do_not_call: schema.require("DoNotCall"),
            lead_status: schema.require("Lead_Status__c"),
            notes: schema.require("Notes__c"),
            renewal_date: schema.require("Renewal_Date__c"),
            annual_revenue: schema.require("AnnualRevenue"),
        }
    })
}

/// A seeded contact as a full record (moves the person's strings; this runs per served row).
pub fn contact_from_person(id: String, person: Person) -> Record {
    let at = contact_positions();
    let mut record = Record::new(SObject::Contact, id, person.created_ms, person.modified_ms);
    let text = |s: Option<String>| s.map(Val::Str).unwrap_or(Val::Null);
    let values = &mut record.values;
    values[at.first_name] = Val::Str(person.first_name);
    values[at.last_name] = Val::Str(person.last_name);
    values[at.title] = text(person.title);
    values[at.email] = text(person.email);
    values[at.phone] = text(person.phone);
    values[at.mobile_phone] = text(person.mobile_phone);
    values[at.do_not_call] = Val::Bool(person.do_not_call);
    values[at.lead_status] = person
        .lead_stage
        .map(|s| Val::Str(s.salesforce_value().to_string()))
        .unwrap_or(Val::Null);
    values[at.notes] = text(person.notes);
    values[at.renewal_date] = person.renewal_date.map(Val::Date).unwrap_or(Val::Null);
    values[at.annual_revenue] = person.annual_revenue.map(Val::Num).unwrap_or(Val::Null);
    record
}

/// Salesforce's datetime format: `2024-05-01T10:11:12.000+0000`.
pub fn format_datetime(ms: i64) -> String {
    let mut out = Vec::with_capacity(28);
    write_datetime(&mut out, ms);
    String::from_utf8(out).unwrap_or_default()
}

/// Append `format_datetime(ms)`: written field by field, because chrono's format strings are
/// re-parsed on every call and this runs for every served record.
fn write_datetime(out: &mut Vec<u8>, ms: i64) {
    if let Some(dt) = Utc.timestamp_millis_opt(ms).single() {
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.timestamp_subsec_millis()
        );
    }
}

/// RFC 3339 with milliseconds and `Z`, for places where Salesforce uses ISO form.
pub fn format_iso(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|dt| dt.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Parse a datetime as clients send it: RFC 3339 (`Z` or offset) or Salesforce's `+0000` form.
pub fn parse_datetime(text: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.timestamp_millis());
    }
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|dt| dt.timestamp_millis())
}

/// Append the JSON of `record` restricted to `fields` (schema positions, in output order).
pub fn write_record_json(out: &mut Vec<u8>, record: &Record, fields: &[usize], version: &str) {
    let schema = record.object.schema();
    let name = schema.object.name();
    let _ = write!(
        out,
        "{{\"attributes\":{{\"type\":\"{name}\",\"url\":\"/services/data/{version}/sobjects/{name}/"
    );
    out.extend_from_slice(record.id().as_bytes());
    out.extend_from_slice(b"\"}");
    for &index in fields {
        out.push(b',');
        write_json_str(out, schema.field(index).name);
        out.push(b':');
        write_val_json(out, record.get(index));
    }
    out.push(b'}');
}

fn write_json_str(out: &mut Vec<u8>, text: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn write_val_json(out: &mut Vec<u8>, value: &Val) {
    match value {
        Val::Null => out.extend_from_slice(b"null"),
        Val::Str(s) => write_json_str(out, s),
        Val::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Val::Num(n) => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
        Val::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Val::Date(d) => {
            let _ = write!(out, "\"{:04}-{:02}-{:02}\"", d.year(), d.month(), d.day());
        }
        Val::DateTime(ms) => {
            out.push(b'"');
            write_datetime(out, *ms);
            out.push(b'"');
        }
    }
}

/// Why a write to a record was refused (the record's SaveResult errors).
pub type FieldErrors = Vec<RecordError>;

/// Validate a JSON object of field values for create (`creating`) or update of `schema`,
/// returning `(position, value)` pairs. Lenient on input where Salesforce is (numbers given as
/// strings); strict where it is not (unknown fields, non-updateable fields, bad picklist values).
/// `attributes` and (for updates) `id`/`Id` are not fields and are skipped.
pub fn validate_fields(
    schema: &Schema,
    body: &serde_json::Map<String, JsonValue>,
    creating: bool,
) -> Result<Vec<(usize, Val)>, FieldErrors> {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for (name, raw) in body {
        if name == "attributes" || (!creating && name.eq_ignore_ascii_case("id")) {
            continue;
        }
        let Some(index) = schema.index_of(name) else {
            errors.push(RecordError::new(
                "INVALID_FIELD",
                format!(
                    "No such column '{name}' on sobject of type {}",
                    schema.label
                ),
                Some(name),
            ));
            continue;
        };
        let field = schema.field(index);
        let allowed = if creating {
            field.createable
        } else {
            field.updateable
        };
        if !allowed {
            errors.push(RecordError::new(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    field.name
                ),
                Some(field.name),
            ));
            continue;
        }
        match convert(field, raw) {
            Ok(value) => values.push((index, value)),
            Err(error) => errors.push(error),
        }
    }
    if creating {
        for (index, field) in schema.fields.iter().enumerate() {
            let given = values.iter().any(|(i, v)| *i == index && *v != Val::Null);
            if given || !field.createable {
                continue;
            }
            if let Some(default) = field.default_picklist {
                values.push((index, Val::Str(default.to_string())));
            } else if field.kind == FieldKind::Boolean {
                values.push((index, Val::Bool(false)));
            } else if !field.nillable {
                errors.push(RecordError::new(
                    "REQUIRED_FIELD_MISSING",
                    format!("Required fields are missing: [{}]", field.name),
                    Some(field.name),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

fn convert(field: &FieldDef, raw: &JsonValue) -> Result<Val, RecordError> {
    let type_error = || {
        RecordError::new(
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            format!(
                "{}: value not of required type: {}",
                field.label,
                compact(raw)
            ),
            Some(field.name),
        )
    };
    if raw.is_null() {
        if field.nillable || field.kind == FieldKind::Boolean {
            return Ok(if field.kind == FieldKind::Boolean {
                Val::Bool(false)
            } else {
                Val::Null
            });
        }
        return Err(RecordError::new(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", field.name),
            Some(field.name),
        ));
    }
    match field.kind {
        FieldKind::Boolean => match raw {
            JsonValue::Bool(b) => Ok(Val::Bool(*b)),
            JsonValue::String(s) if s.eq_ignore_ascii_case("true") => Ok(Val::Bool(true)),
            JsonValue::String(s) if s.eq_ignore_ascii_case("false") => Ok(Val::Bool(false)),
            _ => Err(type_error()),
        },
        FieldKind::Currency => match raw {
            JsonValue::Number(n) => n.as_f64().map(Val::Num).ok_or_else(type_error),
            JsonValue::String(s) => s.trim().parse().map(Val::Num).map_err(|_| type_error()),
            _ => Err(type_error()),
        },
        FieldKind::Int => match raw {
            JsonValue::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .map(Val::Int)
                .ok_or_else(type_error),
            JsonValue::String(s) => s.trim().parse().map(Val::Int).map_err(|_| type_error()),
            _ => Err(type_error()),
        },
        FieldKind::Date => match raw {
            JsonValue::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Val::Date)
                .map_err(|_| type_error()),
            _ => Err(type_error()),
        },
        FieldKind::DateTime => match raw {
            JsonValue::String(s) => parse_datetime(s).map(Val::DateTime).ok_or_else(type_error),
            _ => Err(type_error()),
        },
        _ => {
            let text = match raw {
                JsonValue::String(s) => s.clone(),
                JsonValue::Number(n) => n.to_string(),
                JsonValue::Bool(b) => b.to_string(),
                _ => return Err(type_error()),
            };
            check_text(field, text)
        }
    }
}

fn check_text(field: &FieldDef, text: String) -> Result<Val, RecordError> {
    if field.length > 0 && text.chars().count() > field.length as usize {
        return Err(RecordError::new(
            "STRING_TOO_LONG",
            format!(
                "{}: data value too large: {} (max length={})",
                field.label,
                preview(&text),
                field.length
            ),
            Some(field.name),
        ));
    }
    match field.kind {
        FieldKind::Picklist
            if field.restricted_picklist && !field.picklist.contains(&text.as_str()) =>
        {
            Err(RecordError::new(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                format!(
                    "{}: bad value for restricted picklist field: {text}",
                    field.label
                ),
                Some(field.name),
            ))
        }
        FieldKind::Email if !looks_like_email(&text) => Err(RecordError::new(
            "INVALID_EMAIL_ADDRESS",
            format!("{}: invalid email address: {text}", field.label),
            Some(field.name),
        )),
        FieldKind::Id | FieldKind::Reference if !looks_like_id(&text) => Err(RecordError::new(
            "MALFORMED_ID",
            format!("{}: id value of incorrect type: {text}", field.label),
            Some(field.name),
        )),
        _ => Ok(Val::Str(text)),
    }
}

fn looks_like_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// 15- or 18-character alphanumeric, as Salesforce ids are.
pub fn looks_like_id(text: &str) -> bool {
    (text.len() == 15 || text.len() == 18) && text.chars().all(|c| c.is_ascii_alphanumeric())
}

fn compact(raw: &JsonValue) -> String {
    preview(&raw.to_string())
}

fn preview(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: JsonValue) -> serde_json::Map<String, JsonValue> {
        match value {
            JsonValue::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }

    #[test]
    fn validation_reports_each_bad_field_with_its_code() {
        let schema = SObject::Contact.schema();
        let body = object(json!({
            "attributes": {"type": "Contact"},
            "id": "003SB0000000001AAA",
            "Lead_Status__c": "Maybe",
            "Email": "not an email",
            "Bogus__c": 1,
            "SystemModstamp": "2024-01-01T00:00:00Z",
            "AnnualRevenue": "12.5",
        }));
        let errors = validate_fields(schema, &body, false).unwrap_err();
        let mut codes: Vec<(&str, Vec<String>)> = errors
            .iter()
            .map(|e| (e.status_code, e.fields.clone()))
            .collect();
        codes.sort();
        let field = |name: &str| vec![name.to_string()];
        assert_eq!(
            codes,
            vec![
                ("INVALID_EMAIL_ADDRESS", field("Email")),
                ("INVALID_FIELD", field("Bogus__c")),
                ("INVALID_FIELD_FOR_INSERT_UPDATE", field("SystemModstamp")),
                (
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    field("Lead_Status__c")
                ),
            ]
        );
    }

    #[test]
    fn create_fills_defaults_and_requires_required_fields() {
        let schema = SObject::Task.schema();
        let values = validate_fields(schema, &object(json!({"Subject": "Call 1"})), true).unwrap();
        let status = schema.require("Status");
        assert!(values.contains(&(status, Val::Str("Not Started".into()))));
        let contact = SObject::Contact.schema();
        let errors =
            validate_fields(contact, &object(json!({"FirstName": "A"})), true).unwrap_err();
        assert_eq!(errors[0].status_code, "REQUIRED_FIELD_MISSING");
        assert_eq!(errors[0].fields, vec!["LastName".to_string()]);
    }

    #[test]
    fn datetimes_round_trip_in_salesforce_format() {
        let ms = parse_datetime("2024-05-01T10:11:12Z").unwrap();
        assert_eq!(format_datetime(ms), "2024-05-01T10:11:12.000+0000");
        assert_eq!(parse_datetime("2024-05-01T10:11:12.000+0000"), Some(ms));
    }
}
