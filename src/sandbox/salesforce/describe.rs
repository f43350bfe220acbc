//! The sandbox org's schema (Contact and Task) and the `sobjects/{type}/describe` endpoint.
//!
//! The schema drives everything else: SOQL field resolution (`INVALID_FIELD`), write validation
//! (picklists, types, lengths, updateability) and the JSON shape of records.

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value as JsonValue};

use super::errors::ApiError;
use super::AppState;

/// A Salesforce field type (the `type` of a describe field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Id,
    String,
    Textarea,
    Phone,
    Email,
    Picklist,
    Combobox,
    Reference,
    Currency,
    Int,
    Boolean,
    Date,
    DateTime,
}

impl FieldKind {
    pub fn type_name(self) -> &'static str {
        match self {
            FieldKind::Id => "id",
            FieldKind::String => "string",
            FieldKind::Textarea => "textarea",
            FieldKind::Phone => "phone",
            FieldKind::Email => "email",
            FieldKind::Picklist => "picklist",
            FieldKind::Combobox => "combobox",
            FieldKind::Reference => "reference",
            FieldKind::Currency => "currency",
            FieldKind::Int => "int",
            FieldKind::Boolean => "boolean",
            FieldKind::Date => "date",
            FieldKind::DateTime => "datetime",
        }
    }

    fn soap_type(self) -> &'static str {
        match self {
            FieldKind::Id | FieldKind::Reference => "tns:ID",
            FieldKind::Currency => "xsd:double",
            FieldKind::Int => "xsd:int",
            FieldKind::Boolean => "xsd:boolean",
            FieldKind::Date => "xsd:date",
            FieldKind::DateTime => "xsd:dateTime",
            _ => "xsd:string",
        }
    }

    /// Text-like kinds compare case-insensitively in SOQL, as in Salesforce.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            FieldKind::String
                | FieldKind::Textarea
                | FieldKind::Phone
                | FieldKind::Email
                | FieldKind::Picklist
                | FieldKind::Combobox
        )
    }
}

/// One field of an sObject.
#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
    pub length: u32,
    pub createable: bool,
    pub updateable: bool,
    pub nillable: bool,
    pub custom: bool,
    pub picklist: &'static [&'static str],
    pub restricted_picklist: bool,
    pub default_picklist: Option<&'static str>,
    pub reference_to: &'static [&'static str],
}

impl FieldDef {
    const fn new(name: &'static str, label: &'static str, kind: FieldKind) -> Self {
        FieldDef {
            name,
            label,
            kind,
            length: 0,
            createable: true,
            updateable: true,
            nillable: true,
            custom: false,
            picklist: &[],
            restricted_picklist: false,
            default_picklist: None,
            reference_to: &[],
        }
    }
    const fn len(mut self, length: u32) -> Self {
        self.length = length;
        self
    }
    /// System-maintained: neither createable nor updateable.
    const fn system(mut self) -> Self {
        self.createable = false;
        self.updateable = false;
        self.nillable = false;
        self
    }
    const fn create_only(mut self) -> Self {
        self.updateable = false;
        self
    }
    const fn required(mut self) -> Self {
        self.nillable = false;
        self
    }
    const fn custom(mut self) -> Self {
        self.custom = true;
        self
    }
    const fn picklist(mut self, values: &'static [&'static str], restricted: bool) -> Self {
        self.picklist = values;
        self.restricted_picklist = restricted;
        self
    }
    const fn default_value(mut self, value: &'static str) -> Self {
        self.default_picklist = Some(value);
        self
    }
    const fn references(mut self, to: &'static [&'static str]) -> Self {
        self.reference_to = to;
        self
    }
}

/// Which sObject a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SObject {
    Contact,
    Task,
}

impl SObject {
    pub fn name(self) -> &'static str {
        match self {
            SObject::Contact => "Contact",
            SObject::Task => "Task",
        }
    }

    /// Resolve an object name as it appears in a URL or a query (case-insensitive).
    pub fn parse(name: &str) -> Option<SObject> {
        if name.eq_ignore_ascii_case("Contact") {
            Some(SObject::Contact)
        } else if name.eq_ignore_ascii_case("Task") {
            Some(SObject::Task)
        } else {
            None
        }
    }

    pub fn schema(self) -> &'static Schema {
        static CONTACT: OnceLock<Schema> = OnceLock::new();
        static TASK: OnceLock<Schema> = OnceLock::new();
        match self {
            SObject::Contact => CONTACT.get_or_init(contact_schema),
            SObject::Task => TASK.get_or_init(task_schema),
        }
    }
}

/// The fields of one sObject, with case-insensitive lookup.
#[derive(Debug)]
pub struct Schema {
    pub object: SObject,
    pub label: &'static str,
    pub label_plural: &'static str,
    pub key_prefix: &'static str,
    pub fields: Vec<FieldDef>,
}

/// Positions of the fields every record has, the same in every schema below.
pub const ID: usize = 0;
pub const IS_DELETED: usize = 1;
pub const CREATED_DATE: usize = 2;
pub const LAST_MODIFIED_DATE: usize = 3;
pub const SYSTEM_MODSTAMP: usize = 4;

impl Schema {
    fn new(
        object: SObject,
        label: &'static str,
        label_plural: &'static str,
        key_prefix: &'static str,
        specific: Vec<FieldDef>,
    ) -> Schema {
        let mut fields = vec![
            FieldDef::new("Id", ID_LABEL, FieldKind::Id)
                .len(18)
                .system(),
            FieldDef::new("IsDeleted", "Deleted", FieldKind::Boolean).system(),
            FieldDef::new("CreatedDate", "Created Date", FieldKind::DateTime).system(),
            FieldDef::new(
                "LastModifiedDate",
                "Last Modified Date",
                FieldKind::DateTime,
            )
            .system(),
            FieldDef::new("SystemModstamp", "System Modstamp", FieldKind::DateTime).system(),
        ];
        fields.extend(specific);
        Schema {
            object,
            label,
            label_plural,
            key_prefix,
            fields,
        }
    }

    /// The position of a field, by any casing of its API name. A linear scan without
    /// allocating beats hashing a lower-cased copy for schemas of a couple dozen fields.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))
    }

    pub fn field(&self, index: usize) -> &FieldDef {
        &self.fields[index]
    }

    /// Position of a field known to exist in this schema (used for fixed fields).
    pub fn require(&self, name: &str) -> usize {
        self.index_of(name).unwrap_or_else(|| {
            unreachable!("field {name} is part of the built-in {} schema", self.label)
        })
    }
}

const ID_LABEL: &str = "Record ID";

pub const LEAD_STATUS_VALUES: &[&str] = &[
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
];

fn contact_schema() -> Schema {
    Schema::new(
        SObject::Contact,
        "Contact",
        "Contacts",
        "003",
        vec![
            FieldDef::new("FirstName", "First Name", FieldKind::String).len(40),
            FieldDef::new("LastName", "Last Name", FieldKind::String)
                .len(80)
                .required(),
            FieldDef::new("Title", "Title", FieldKind::String).len(128),
            FieldDef::new("Email", "Email", FieldKind::Email).len(80),
            FieldDef::new("Phone", "Business Phone", FieldKind::Phone).len(40),
            FieldDef::new("MobilePhone", "Mobile Phone", FieldKind::Phone).len(40),
            FieldDef::new("DoNotCall", "Do Not Call", FieldKind::Boolean).required(),
            FieldDef::new("Lead_Status__c", "Lead Status", FieldKind::Picklist)
                .len(255)
                .custom()
                .picklist(LEAD_STATUS_VALUES, true),
            FieldDef::new("Notes__c", "Notes", FieldKind::Textarea)
                .len(32_768)
                .custom(),
            FieldDef::new("Renewal_Date__c", "Renewal Date", FieldKind::Date).custom(),
            FieldDef::new("AnnualRevenue", "Annual Revenue", FieldKind::Currency),
        ],
    )
}

pub const TASK_STATUS_VALUES: &[&str] = &[
    "Not Started",
    "In Progress",
    "Completed",
    "Waiting on someone else",
    "Deferred",
];

fn task_schema() -> Schema {
    Schema::new(
        SObject::Task,
        "Task",
        "Tasks",
        "00T",
        vec![
            FieldDef::new("WhoId", "Name ID", FieldKind::Reference)
                .len(18)
                .references(&["Contact", "Lead"]),
            FieldDef::new("Subject", "Subject", FieldKind::Combobox)
                .len(255)
                .picklist(&["Call", "Send Letter", "Send Quote", "Other"], false),
            FieldDef::new("Status", "Status", FieldKind::Picklist)
                .len(255)
                .required()
                .picklist(TASK_STATUS_VALUES, true)
                .default_value("Not Started"),
            FieldDef::new("Priority", "Priority", FieldKind::Picklist)
                .len(40)
                .required()
                .picklist(&["High", "Normal", "Low"], true)
                .default_value("Normal"),
            FieldDef::new("TaskSubtype", "Task Subtype", FieldKind::Picklist)
                .len(40)
                .create_only()
                .picklist(
                    &["Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"],
                    true,
                )
                .default_value("Task"),
            FieldDef::new("CallType", "Call Type", FieldKind::Picklist)
                .len(40)
                .picklist(&["Internal", "Inbound", "Outbound"], true),
            FieldDef::new("CallDurationInSeconds", "Call Duration", FieldKind::Int),
            FieldDef::new("CallObject", "Call Object Identifier", FieldKind::String).len(255),
            FieldDef::new("CallDisposition", "Call Result", FieldKind::String).len(255),
            FieldDef::new("Description", "Comments", FieldKind::Textarea).len(32_000),
            FieldDef::new("ActivityDate", "Due Date Only", FieldKind::Date),
        ],
    )
}

/// The `DescribeSObjectResult` JSON for a schema.
pub fn describe_json(schema: &Schema, version: &str) -> JsonValue {
    let name = schema.object.name();
    let fields: Vec<JsonValue> = schema
        .fields
        .iter()
        .map(|f| {
            let picklist: Vec<JsonValue> = f
                .picklist
                .iter()
                .map(|v| {
                    json!({"active": true, "defaultValue": f.default_picklist == Some(*v),
                           "label": v, "validFor": null, "value": v})
                })
                .collect();
            json!({
                "name": f.name,
                "label": f.label,
                "type": f.kind.type_name(),
                "soapType": f.kind.soap_type(),
                "length": f.length,
                "byteLength": f.length * 3,
                "precision": if f.kind == FieldKind::Currency { 18 } else { 0 },
                "scale": if f.kind == FieldKind::Currency { 2 } else { 0 },
                "digits": if f.kind == FieldKind::Int { 9 } else { 0 },
                "nillable": f.nillable,
                "createable": f.createable,
                "updateable": f.updateable,
                "unique": false,
                "externalId": false,
                "idLookup": f.kind == FieldKind::Id || f.kind == FieldKind::Email,
                "calculated": false,
                "custom": f.custom,
                "defaultValue": f.default_picklist,
                "defaultedOnCreate": f.default_picklist.is_some() || !f.createable,
                "restrictedPicklist": f.restricted_picklist,
                "dependentPicklist": false,
                "controllerName": null,
                "referenceTo": f.reference_to,
                "relationshipName": if f.kind == FieldKind::Reference { json!("Who") } else { json!(null) },
                "filterable": true,
                "sortable": f.kind != FieldKind::Textarea,
                "groupable": f.kind != FieldKind::Textarea,
                "picklistValues": picklist,
            })
        })
        .collect();
    let base = format!("/services/data/{version}/sobjects/{name}");
    json!({
        "name": name,
        "label": schema.label,
        "labelPlural": schema.label_plural,
        "keyPrefix": schema.key_prefix,
        "custom": false,
        "createable": true,
        "updateable": true,
        "deletable": true,
        "queryable": true,
        "searchable": true,
        "replicateable": true,
        "retrieveable": true,
        "childRelationships": [],
        "recordTypeInfos": [],
        "urls": {
            "sobject": base,
            "describe": format!("{base}/describe"),
            "rowTemplate": format!("{base}/{{ID}}"),
        },
        "fields": fields,
    })
}

/// `GET /services/data/{v}/sobjects/{type}/describe[/]`. The schema never changes, so any
/// valid `If-Modified-Since` gets 304, as Salesforce answers when metadata is unchanged.
pub async fn describe(
    State(app): State<AppState>,
    Path((version, object)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let object = SObject::parse(&object).ok_or_else(|| ApiError::not_found_type(&object))?;
    let unchanged = headers
        .get(axum::http::header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .is_some_and(|since| since.timestamp_millis() >= app.schema_modified_ms);
    if unchanged {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    Ok(Json(describe_json(object.schema(), &version)).into_response())
}
