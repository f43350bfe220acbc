//! The writes the sandbox supports, shared by the HTTP handlers and the test hooks: create (with
//! inline associations), update, upsert by a unique property, archive and merge.
//!
//! Each returns a [`WriteError`] that renders either as a whole-request error envelope or as one
//! item of a batch response's `errors` array, so single and batch endpoints fail alike.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::errors::{ApiError, BatchError, ErrorDetail};
use super::record::Record;
use super::schema::ObjectKind;
use super::state::{association_types, PortalState};
use super::table::Lookup;
use super::validate::{summary_message, validate_properties, PropertyWrites};

/// One inline association of a create request, already checked against the type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssociationInput {
    pub to_kind: ObjectKind,
    pub to_id: u64,
}

#[derive(Debug, Clone)]
pub enum WriteError {
    Invalid(Vec<ErrorDetail>),
    NotFound(String),
    Conflict { existing: u64, message: String },
    Association(String),
    MissingRequired(&'static str),
    Unsupported(String),
}

impl WriteError {
    pub fn to_api(&self, kind: ObjectKind) -> ApiError {
        match self {
            WriteError::Invalid(errors) => {
                ApiError::validation(summary_message(errors)).with_errors(errors.clone())
            }
            WriteError::NotFound(id) => ApiError::not_found(format!(
                "resource not found: no {} with id {id}",
                kind.error_name()
            )),
            WriteError::Conflict { message, .. } => {
                ApiError::new(StatusCode::CONFLICT, "CONFLICT", message.clone())
            }
            WriteError::Association(message) => ApiError::validation(message.clone())
                .with_sub_category("crm.associations.INVALID_ASSOCIATION"),
            WriteError::MissingRequired(property) => {
                let detail = ErrorDetail::property(
                    "REQUIRED_FIELD",
                    property,
                    format!("Property \"{property}\" is required."),
                );
                ApiError::validation(summary_message(std::slice::from_ref(&detail)))
                    .with_errors(vec![detail])
            }
            WriteError::Unsupported(message) => ApiError::validation(message.clone()),
        }
    }

    /// The batch `errors[]` item for this failure; `id` is the input's record id when known,
    /// `trace` its `objectWriteTraceId`.
    pub fn to_batch(
        &self,
        kind: ObjectKind,
        id: Option<String>,
        trace: Option<String>,
    ) -> BatchError {
        let mut context: Vec<(&'static str, Vec<String>)> = Vec::new();
        if let Some(id) = &id {
            context.push(("id", vec![id.clone()]));
        }
        if let Some(trace) = trace {
            context.push(("objectWriteTraceId", vec![trace]));
        }
        let api = self.to_api(kind);
        let (category, errors) = match self {
            WriteError::NotFound(missing) => {
                context.push(("ids", vec![missing.clone()]));
                ("OBJECT_NOT_FOUND", Vec::new())
            }
            WriteError::Invalid(errors) => {
                let names: Vec<String> = errors.iter().filter_map(|e| e.property.clone()).collect();
                context.push(("propertyName", names));
                ("VALIDATION_ERROR", errors.clone())
            }
            WriteError::Conflict { existing, .. } => {
                context.push(("existingId", vec![existing.to_string()]));
                ("CONFLICT", Vec::new())
            }
            _ => (api.category, api.errors.clone()),
        };
        BatchError {
            category,
            message: api.message,
            id,
            context,
            errors,
        }
    }
}

/// Parses HubSpot's inline association list:
/// `[{"to":{"id":"501"},"types":[{"associationCategory":"HUBSPOT_DEFINED","associationTypeId":194}]}]`.
/// Ids and type ids may be strings or numbers (the spec and the docs disagree).
pub fn parse_associations(
    kind: ObjectKind,
    value: Option<&Value>,
) -> Result<Vec<AssociationInput>, WriteError> {
    let Some(items) = value else {
        return Ok(Vec::new());
    };
    let Some(items) = items.as_array() else {
        return Err(WriteError::Association(
            "associations must be an array".into(),
        ));
    };
    let mut out = Vec::new();
    for item in items {
        let to_id = item
            .get("to")
            .and_then(|to| to.get("id"))
            .and_then(as_id)
            .ok_or_else(|| {
                WriteError::Association(format!("association {item} has no valid to.id"))
            })?;
        let types = item
            .get("types")
            .and_then(Value::as_array)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| WriteError::Association(format!("association {item} has no types")))?;
        for spec in types {
            let type_id = spec
                .get("associationTypeId")
                .and_then(as_id)
                .ok_or_else(|| {
                    WriteError::Association(format!(
                        "association type {spec} has no associationTypeId"
                    ))
                })?;
            let to_kind = ObjectKind::ALL
                .into_iter()
                .find(|to| {
                    association_types(kind, *to).map(|(forward, _)| u64::from(forward))
                        == Some(type_id)
                })
                .ok_or_else(|| {
                    WriteError::Association(format!(
                        "association type id {type_id} doesn't exist from {}",
                        kind.singular()
                    ))
                })?;
            out.push(AssociationInput { to_kind, to_id });
        }
    }
    Ok(out)
}

/// Reads an id given as a JSON string or number.
pub fn as_id(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn required_properties(kind: ObjectKind) -> &'static [&'static str] {
    match kind {
        ObjectKind::Contacts => &[],
        ObjectKind::Calls | ObjectKind::Communications => &["hs_timestamp"],
    }
}

/// Refuses a write that would give a unique property a value another live record holds.
fn check_unique(
    state: &mut PortalState,
    kind: ObjectKind,
    writes: &PropertyWrites,
    own_id: Option<u64>,
) -> Result<(), WriteError> {
    for (index, value) in writes {
        let table = state.table_mut(kind);
        if value.is_empty() || !table.is_unique_property(*index) {
            continue;
        }
        if let Some(existing) = table.find_unique(*index, value) {
            if Some(existing) != own_id {
                let message = match kind {
                    ObjectKind::Contacts => {
                        format!("Contact already exists. Existing ID: {existing}")
                    }
                    _ => format!(
                        "A {} with {} {value:?} already exists. Existing ID: {existing}",
                        kind.singular(),
                        table.schema.def(*index).name
                    ),
                };
                return Err(WriteError::Conflict { existing, message });
            }
        }
    }
    Ok(())
}

/// Creates a record with its inline associations; returns the new id.
pub fn create(
    state: &mut PortalState,
    kind: ObjectKind,
    properties: &Map<String, Value>,
    associations: &[AssociationInput],
    now: i64,
) -> Result<u64, WriteError> {
    let writes = check_create(state, kind, properties, associations)?;
    let id = state.allocate_id();
    let mut record = Record::new(id, now, now);
    for (index, value) in &writes {
        record.set_at(*index, value, now);
    }
    let due = state.due_now();
    state.table_mut(kind).insert(record, due);
    for association in associations {
        let to_id = match state.table(association.to_kind).resolve(association.to_id) {
            Lookup::Live(to_id) => to_id,
            _ => association.to_id,
        };
        state
            .associations
            .associate((kind, id), (association.to_kind, to_id));
    }
    Ok(id)
}

/// Everything `create` checks, without writing: lets a batch create refuse as a whole.
pub fn check_create(
    state: &mut PortalState,
    kind: ObjectKind,
    properties: &Map<String, Value>,
    associations: &[AssociationInput],
) -> Result<PropertyWrites, WriteError> {
    let schema = kind.schema();
    let writes = validate_properties(schema, properties).map_err(WriteError::Invalid)?;
    for required in required_properties(kind) {
        let present = schema
            .index_of(required)
            .is_some_and(|index| writes.iter().any(|(i, v)| *i == index && !v.is_empty()));
        if !present {
            return Err(WriteError::MissingRequired(required));
        }
    }
    check_unique(state, kind, &writes, None)?;
    for association in associations {
        if !matches!(
            state.table(association.to_kind).resolve(association.to_id),
            Lookup::Live(_)
        ) {
            return Err(WriteError::Association(format!(
                "One or more associations are invalid: {} {} does not exist",
                association.to_kind.singular(),
                association.to_id
            )));
        }
    }
    Ok(writes)
}

/// Updates a live record (merged ids resolve to the survivor); returns the id written.
pub fn update(
    state: &mut PortalState,
    kind: ObjectKind,
    id: u64,
    properties: &Map<String, Value>,
    now: i64,
) -> Result<u64, WriteError> {
    let Lookup::Live(id) = state.table(kind).resolve(id) else {
        return Err(WriteError::NotFound(id.to_string()));
    };
    let writes = validate_properties(kind.schema(), properties).map_err(WriteError::Invalid)?;
    check_unique(state, kind, &writes, Some(id))?;
    let due = state.due_now();
    state
        .table_mut(kind)
        .update(id, &writes, now, due)
        .map(|r| r.id)
        .ok_or(WriteError::NotFound(id.to_string()))
}

/// Finds the live record a request names: by id, or by a unique property's value.
pub fn find(
    state: &mut PortalState,
    kind: ObjectKind,
    id_value: &str,
    id_property: Option<&str>,
) -> Result<Option<u64>, WriteError> {
    match id_property {
        None | Some("hs_object_id") => Ok(id_value.trim().parse::<u64>().ok().and_then(|id| {
            match state.table(kind).resolve(id) {
                Lookup::Live(id) => Some(id),
                _ => None,
            }
        })),
        Some(name) => {
            let table = state.table_mut(kind);
            let index = table
                .schema
                .index_of(name)
                .filter(|index| table.is_unique_property(*index))
                .ok_or_else(|| {
                    WriteError::Unsupported(format!(
                        "{name} is not a unique property of {} and cannot be used as idProperty",
                        kind.path_name()
                    ))
                })?;
            Ok(table.find_unique(index, id_value))
        }
    }
}

/// Updates the record whose `id_property` equals `id_value`, or creates it with that value.
/// Returns the id and whether it was created.
pub fn upsert(
    state: &mut PortalState,
    kind: ObjectKind,
    id_value: &str,
    id_property: &str,
    properties: &Map<String, Value>,
    now: i64,
) -> Result<(u64, bool), WriteError> {
    if id_property == "hs_object_id" {
        return Err(WriteError::Unsupported(
            "upsert needs a unique property such as email as idProperty".into(),
        ));
    }
    match find(state, kind, id_value, Some(id_property))? {
        Some(id) => update(state, kind, id, properties, now).map(|id| (id, false)),
        None => {
            let mut properties = properties.clone();
            properties.insert(id_property.to_string(), Value::String(id_value.to_string()));
            create(state, kind, &properties, &[], now).map(|id| (id, true))
        }
    }
}

/// Archives a record (HubSpot's DELETE). Archiving a missing or archived record succeeds, as the
/// real API answers 204 either way.
pub fn archive(state: &mut PortalState, kind: ObjectKind, id: u64, now: i64) {
    if let Lookup::Live(id) = state.table(kind).resolve(id) {
        state.table_mut(kind).archive(id, now);
    }
}

/// Merges contact `loser` into `primary` (crm_apis.md §1.11): the primary keeps its values and
/// takes the loser's where it has none, records the loser in `hs_merged_object_ids`, inherits its
/// associations, and the loser's id resolves to the primary from then on.
pub fn merge(
    state: &mut PortalState,
    primary: u64,
    loser: u64,
    now: i64,
) -> Result<u64, WriteError> {
    let kind = ObjectKind::Contacts;
    let table = state.table(kind);
    let (Lookup::Live(primary), Lookup::Live(loser)) =
        (table.resolve(primary), table.resolve(loser))
    else {
        let missing = if matches!(table.resolve(primary), Lookup::Live(_)) {
            loser
        } else {
            primary
        };
        return Err(WriteError::NotFound(missing.to_string()));
    };
    if primary == loser {
        return Err(WriteError::Unsupported(
            "Cannot merge a contact with itself".into(),
        ));
    }
    let (Some(kept), Some(gone)) = (table.get(primary), table.get(loser)) else {
        return Err(WriteError::NotFound(loser.to_string()));
    };
    let (kept, gone) = (kept.into_owned(), gone.into_owned());
    let schema = kind.schema();
    let merged_index = schema.index_of("hs_merged_object_ids");
    let mut writes: PropertyWrites = gone
        .stored_values()
        .filter(|(index, _)| Some(*index) != merged_index && kept.stored(*index).is_none())
        .map(|(index, value)| (index, value.to_string()))
        .collect();
    if let Some(index) = merged_index {
        let mut ids: Vec<String> = kept
            .stored(index)
            .into_iter()
            .chain(gone.stored(index))
            .flat_map(|list| list.split(';'))
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .collect();
        ids.push(loser.to_string());
        writes.push((index, ids.join(";")));
    }
    // The loser leaves first so its unique values (email) can move to the primary.
    state.table_mut(kind).merge_away(loser, primary);
    state.associations.repoint(kind, loser, primary);
    let due = state.due_now();
    state.table_mut(kind).update(primary, &writes, now, due);
    Ok(primary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::hubspot::seed_contacts::SeededContacts;
    use crate::sandbox::seed::Population;
    use serde_json::json;

    fn portal() -> PortalState {
        PortalState::new(SeededContacts::new(Population::new(20, 3)))
    }

    fn props(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn create_call_with_association_and_required_timestamp() {
        let mut state = portal();
        let now = state.tick();
        let assoc = parse_associations(
            ObjectKind::Calls,
            Some(&json!([{"to": {"id": 1001}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": "194"}]}])),
        )
        .unwrap();
        assert_eq!(assoc[0].to_kind, ObjectKind::Contacts);
        let missing = create(
            &mut state,
            ObjectKind::Calls,
            &props(json!({"hs_call_title": "x"})),
            &assoc,
            now,
        );
        assert!(matches!(
            missing,
            Err(WriteError::MissingRequired("hs_timestamp"))
        ));
        let id = create(
            &mut state,
            ObjectKind::Calls,
            &props(json!({"hs_timestamp": "1767225600000", "hs_call_status": "COMPLETED"})),
            &assoc,
            now,
        )
        .unwrap();
        let edges = state
            .associations
            .of((ObjectKind::Contacts, 1001), ObjectKind::Calls);
        assert_eq!((edges[0].to_id, edges[0].type_id), (id, 193));
    }

    #[test]
    fn wrong_association_type_or_target_is_refused() {
        let err = parse_associations(
            ObjectKind::Calls,
            Some(&json!([{"to": {"id": "1001"}, "types": [{"associationTypeId": 81}]}])),
        )
        .unwrap_err();
        assert!(matches!(err, WriteError::Association(_)));
        let mut state = portal();
        let assoc = [AssociationInput {
            to_kind: ObjectKind::Contacts,
            to_id: 99,
        }];
        let err = create(
            &mut state,
            ObjectKind::Communications,
            &props(json!({"hs_timestamp": "2026-01-01T00:00:00Z"})),
            &assoc,
            1,
        )
        .unwrap_err();
        assert_eq!(err.to_api(ObjectKind::Communications).status, 400);
    }

    #[test]
    fn upsert_by_email_creates_then_updates_and_create_conflicts() {
        let mut state = portal();
        let (id, new) = upsert(
            &mut state,
            ObjectKind::Contacts,
            "new@person.test",
            "email",
            &props(json!({"firstname": "New"})),
            5,
        )
        .unwrap();
        assert!(new);
        let (again, new) = upsert(
            &mut state,
            ObjectKind::Contacts,
            "NEW@person.test",
            "email",
            &props(json!({"lastname": "Person"})),
            6,
        )
        .unwrap();
        assert_eq!((again, new), (id, false));
        let err = create(
            &mut state,
            ObjectKind::Contacts,
            &props(json!({"email": "new@person.test"})),
            &[],
            7,
        )
        .unwrap_err();
        let api = err.to_api(ObjectKind::Contacts);
        assert_eq!(api.status, 409);
        assert_eq!(
            api.message,
            format!("Contact already exists. Existing ID: {id}")
        );
    }

    #[test]
    fn merge_fills_gaps_records_the_loser_and_redirects_it() {
        let mut state = portal();
        let notes = ObjectKind::Contacts.schema().index_of("notes").unwrap();
        update(
            &mut state,
            ObjectKind::Contacts,
            1002,
            &props(json!({"notes": "from the loser", "company": "Loser Inc"})),
            10,
        )
        .unwrap();
        update(
            &mut state,
            ObjectKind::Contacts,
            1001,
            &props(json!({"notes": "kept"})),
            11,
        )
        .unwrap();
        let now = state.tick();
        merge(&mut state, 1001, 1002, now).unwrap();
        let table = state.table(ObjectKind::Contacts);
        assert_eq!(table.resolve(1002), Lookup::Live(1001));
        let kept = table.get(1001).unwrap();
        assert_eq!(kept.stored(notes), Some("kept"));
        let schema = ObjectKind::Contacts.schema();
        assert_eq!(
            kept.value_by_name(schema, "company").as_deref(),
            Some("Loser Inc")
        );
        assert_eq!(
            kept.value_by_name(schema, "hs_merged_object_ids")
                .as_deref(),
            Some("1002")
        );
        assert_eq!(kept.updated_ms, now);
        assert!(matches!(
            merge(&mut state, 1001, 1002, now),
            Err(WriteError::Unsupported(_))
        ));
    }

    #[test]
    fn batch_error_items_name_the_record_and_property() {
        let err = update(
            &mut portal(),
            ObjectKind::Contacts,
            1001,
            &props(json!({"hs_lead_status": "MAYBE"})),
            1,
        )
        .unwrap_err();
        let item = err
            .to_batch(ObjectKind::Contacts, Some("1001".into()), None)
            .to_json();
        assert_eq!(item["category"], "VALIDATION_ERROR");
        assert_eq!(item["id"], "1001");
        assert_eq!(item["context"]["propertyName"][0], "hs_lead_status");
        assert_eq!(item["errors"][0]["code"], "INVALID_OPTION");
    }
}
