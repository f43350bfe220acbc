//! The sandbox portal's object types and property definitions (what the properties API serves and
//! what every write is validated against).
//!
//! Property names and types follow HubSpot's defaults (crm_apis.md §1.2, §1.7–§1.9); `notes` and
//! `crmsync_activity_id` are custom properties an integrator would create in a real portal.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// An object type the sandbox serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    Contacts,
    Calls,
    Communications,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 3] = [
        ObjectKind::Contacts,
        ObjectKind::Calls,
        ObjectKind::Communications,
    ];

    /// Accepts the plural path name, the singular name and the object type id, as HubSpot does.
    pub fn parse(segment: &str) -> Option<ObjectKind> {
        match segment.to_ascii_lowercase().as_str() {
            "contacts" | "contact" | "0-1" => Some(ObjectKind::Contacts),
            "calls" | "call" | "0-48" => Some(ObjectKind::Calls),
            "communications" | "communication" | "0-18" => Some(ObjectKind::Communications),
            _ => None,
        }
    }

    /// The plural name used in URL paths.
    pub fn path_name(self) -> &'static str {
        match self {
            ObjectKind::Contacts => "contacts",
            ObjectKind::Calls => "calls",
            ObjectKind::Communications => "communications",
        }
    }

    /// The singular name used in association type names (`call_to_contact`).
    pub fn singular(self) -> &'static str {
        match self {
            ObjectKind::Contacts => "contact",
            ObjectKind::Calls => "call",
            ObjectKind::Communications => "communication",
        }
    }

    /// HubSpot's object type id (`0-1` for contacts).
    pub fn type_id(self) -> &'static str {
        match self {
            ObjectKind::Contacts => "0-1",
            ObjectKind::Calls => "0-48",
            ObjectKind::Communications => "0-18",
        }
    }

    /// Upper-case name used in HubSpot's error messages ("Could not get some CONTACT objects").
    pub fn error_name(self) -> &'static str {
        match self {
            ObjectKind::Contacts => "CONTACT",
            ObjectKind::Calls => "CALL",
            ObjectKind::Communications => "COMMUNICATION",
        }
    }

    /// Contacts use `lastmodifieddate`; activities use `hs_lastmodifieddate` (crm_apis.md §1.2).
    pub fn modified_property(self) -> &'static str {
        match self {
            ObjectKind::Contacts => "lastmodifieddate",
            _ => "hs_lastmodifieddate",
        }
    }

    pub fn created_property(self) -> &'static str {
        match self {
            ObjectKind::Contacts => "createdate",
            _ => "hs_createdate",
        }
    }

    /// Properties returned when a request names none (crm_apis.md §1.5).
    pub fn default_properties(self) -> &'static [&'static str] {
        match self {
            ObjectKind::Contacts => &[
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname",
            ],
            _ => &["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
        }
    }

    pub fn schema(self) -> &'static Arc<ObjectSchema> {
        static SCHEMAS: OnceLock<[Arc<ObjectSchema>; 3]> = OnceLock::new();
        let all = SCHEMAS.get_or_init(|| {
            [
                Arc::new(ObjectSchema::new(
                    ObjectKind::Contacts,
                    contact_properties(),
                )),
                Arc::new(ObjectSchema::new(ObjectKind::Calls, call_properties())),
                Arc::new(ObjectSchema::new(
                    ObjectKind::Communications,
                    communication_properties(),
                )),
            ]
        });
        match self {
            ObjectKind::Contacts => &all[0],
            ObjectKind::Calls => &all[1],
            ObjectKind::Communications => &all[2],
        }
    }
}

/// HubSpot's property `type` (how values are interpreted and compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyType {
    String,
    Number,
    Bool,
    Date,
    Datetime,
    Enumeration,
    PhoneNumber,
}

impl PropertyType {
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyType::String => "string",
            PropertyType::Number => "number",
            PropertyType::Bool => "bool",
            PropertyType::Date => "date",
            PropertyType::Datetime => "datetime",
            PropertyType::Enumeration => "enumeration",
            PropertyType::PhoneNumber => "phone_number",
        }
    }
}

/// Values the sandbox computes from the record itself rather than storing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Computed {
    ObjectId,
    CreatedAt,
    UpdatedAt,
}

#[derive(Debug, Clone)]
pub struct PropertyOption {
    pub value: &'static str,
    pub label: &'static str,
}

#[derive(Debug, Clone)]
pub struct PropertyDef {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: PropertyType,
    pub field_type: &'static str,
    pub group: &'static str,
    pub description: &'static str,
    pub options: Vec<PropertyOption>,
    pub read_only: bool,
    pub unique: bool,
    pub hubspot_defined: bool,
    pub computed: Option<Computed>,
}

impl PropertyDef {
    fn new(
        name: &'static str,
        label: &'static str,
        kind: PropertyType,
        field_type: &'static str,
    ) -> Self {
        PropertyDef {
            name,
            label,
            kind,
            field_type,
            group: "contactinformation",
            description: "",
            options: Vec::new(),
            read_only: false,
            unique: false,
            hubspot_defined: true,
            computed: None,
        }
    }
    fn group(mut self, group: &'static str) -> Self {
        self.group = group;
        self
    }
    fn describe(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }
    fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
    fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    fn custom(mut self) -> Self {
        self.hubspot_defined = false;
        self
    }
    fn computed(mut self, computed: Computed) -> Self {
        self.computed = Some(computed);
        self.read_only = true;
        self
    }
    fn options(mut self, options: &[(&'static str, &'static str)]) -> Self {
        self.options = options
            .iter()
            .map(|(value, label)| PropertyOption { value, label })
            .collect();
        self
    }
}

/// One object type's properties, with a name index.
#[derive(Debug)]
pub struct ObjectSchema {
    pub kind: ObjectKind,
    pub properties: Vec<PropertyDef>,
    by_name: HashMap<&'static str, u16>,
}

impl ObjectSchema {
    fn new(kind: ObjectKind, properties: Vec<PropertyDef>) -> Self {
        let by_name = properties
            .iter()
            .enumerate()
            .map(|(index, def)| (def.name, index as u16))
            .collect();
        ObjectSchema {
            kind,
            properties,
            by_name,
        }
    }

    pub fn index_of(&self, name: &str) -> Option<u16> {
        self.by_name.get(name).copied()
    }

    pub fn get(&self, name: &str) -> Option<&PropertyDef> {
        self.index_of(name)
            .map(|index| &self.properties[index as usize])
    }

    pub fn def(&self, index: u16) -> &PropertyDef {
        &self.properties[index as usize]
    }
}

/// hs_lead_status options: HubSpot's defaults plus `QUALIFIED`, which the example rules map
/// (the example rules use it; the sandbox portal defines it so the example works).
const LEAD_STATUS_OPTIONS: &[(&str, &str)] = &[
    ("NEW", "New"),
    ("OPEN", "Open"),
    ("IN_PROGRESS", "In Progress"),
    ("OPEN_DEAL", "Open Deal"),
    ("UNQUALIFIED", "Unqualified"),
    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
    ("CONNECTED", "Connected"),
    ("BAD_TIMING", "Bad Timing"),
    ("QUALIFIED", "Qualified"),
];

const LIFECYCLE_OPTIONS: &[(&str, &str)] = &[
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
];

fn record_properties(kind: ObjectKind) -> Vec<PropertyDef> {
    use PropertyType as T;
    vec![
        PropertyDef::new("hs_object_id", "Record ID", T::Number, "number")
            .describe("The unique ID for this record. This value is set automatically by HubSpot.")
            .computed(Computed::ObjectId)
            .unique(),
        PropertyDef::new(kind.created_property(), "Create Date", T::Datetime, "date")
            .computed(Computed::CreatedAt),
        PropertyDef::new(
            kind.modified_property(),
            "Last Modified Date",
            T::Datetime,
            "date",
        )
        .describe("Most recent timestamp of any property update for this record.")
        .computed(Computed::UpdatedAt),
    ]
}

fn contact_properties() -> Vec<PropertyDef> {
    use PropertyType as T;
    let mut props = record_properties(ObjectKind::Contacts);
    props.extend([
        PropertyDef::new("email", "Email", T::String, "text")
            .describe("A contact's email address")
            .unique(),
        PropertyDef::new("firstname", "First Name", T::String, "text"),
        PropertyDef::new("lastname", "Last Name", T::String, "text"),
        PropertyDef::new("phone", "Phone Number", T::String, "phonenumber")
            .describe("A contact's primary phone number"),
        PropertyDef::new(
            "mobilephone",
            "Mobile Phone Number",
            T::String,
            "phonenumber",
        ),
        PropertyDef::new("fax", "Fax Number", T::String, "phonenumber"),
        PropertyDef::new("company", "Company Name", T::String, "text"),
        PropertyDef::new("jobtitle", "Job Title", T::String, "text"),
        PropertyDef::new("city", "City", T::String, "text"),
        PropertyDef::new("hs_lead_status", "Lead Status", T::Enumeration, "select")
            .group("sales_properties")
            .describe("The contact's sales, prospecting or outreach status")
            .options(LEAD_STATUS_OPTIONS),
        PropertyDef::new("lifecyclestage", "Lifecycle Stage", T::Enumeration, "radio")
            .options(LIFECYCLE_OPTIONS),
        PropertyDef::new("annualrevenue", "Annual Revenue", T::Number, "number")
            .group("companyinformation"),
        PropertyDef::new(
            "hs_email_optout",
            "Unsubscribed from all email",
            T::Bool,
            "booleancheckbox",
        )
        .options(&[("true", "Yes"), ("false", "No")]),
        PropertyDef::new("date_of_birth", "Date of birth", T::Date, "date"),
        PropertyDef::new(
            "hs_merged_object_ids",
            "Merged Contact IDs",
            T::Enumeration,
            "checkbox",
        )
        .describe("The list of Contact record IDs that have been merged into this Contact.")
        .read_only(),
        PropertyDef::new("notes", "Notes", T::String, "textarea")
            .describe("Running notes written back by crmsync.")
            .custom(),
        PropertyDef::new("renewal_date", "Renewal date", T::Date, "date").custom(),
        PropertyDef::new("do_not_call", "Do not call", T::Bool, "booleancheckbox")
            .options(&[("true", "Yes"), ("false", "No")])
            .custom(),
    ]);
    props
}

fn activity_properties(kind: ObjectKind) -> Vec<PropertyDef> {
    use PropertyType as T;
    let mut props = record_properties(kind);
    props.extend([
        PropertyDef::new("hs_timestamp", "Activity date", T::Datetime, "date")
            .group("engagement")
            .describe("The date the activity occurred (required)."),
        PropertyDef::new(
            "hubspot_owner_id",
            "Activity assigned to",
            T::Enumeration,
            "select",
        )
        .group("engagement"),
        PropertyDef::new(
            "crmsync_activity_id",
            "crmsync activity id",
            T::String,
            "text",
        )
        .group("engagement")
        .describe(
            "The conversation id crmsync logged this activity for; unique, so a client can \
                 look an activity up (search EQ) or upsert it before resending.",
        )
        .custom()
        .unique(),
    ]);
    props
}

fn call_properties() -> Vec<PropertyDef> {
    use PropertyType as T;
    let mut props = activity_properties(ObjectKind::Calls);
    props.extend([
        PropertyDef::new("hs_call_title", "Call Title", T::String, "text").group("call"),
        PropertyDef::new("hs_call_body", "Call notes", T::String, "html").group("call"),
        PropertyDef::new("hs_call_duration", "Call duration", T::Number, "number")
            .group("call")
            .describe("The duration of the call in milliseconds."),
        PropertyDef::new(
            "hs_call_direction",
            "Call direction",
            T::Enumeration,
            "select",
        )
        .group("call")
        .options(&[("INBOUND", "Inbound"), ("OUTBOUND", "Outbound")]),
        PropertyDef::new("hs_call_status", "Call status", T::Enumeration, "select")
            .group("call")
            .options(&[
                ("BUSY", "Busy"),
                ("CALLING_CRM_USER", "Calling CRM User"),
                ("CANCELED", "Canceled"),
                ("COMPLETED", "Completed"),
                ("CONNECTING", "Connecting"),
                ("FAILED", "Failed"),
                ("IN_PROGRESS", "In Progress"),
                ("MISSED", "Missed"),
                ("NO_ANSWER", "No Answer"),
                ("QUEUED", "Queued"),
                ("RINGING", "Ringing"),
            ]),
        PropertyDef::new("hs_call_from_number", "From number", T::String, "text").group("call"),
        PropertyDef::new("hs_call_to_number", "To number", T::String, "text").group("call"),
        PropertyDef::new("hs_call_disposition", "Call outcome", T::String, "text").group("call"),
        PropertyDef::new("hs_call_recording_url", "Recording URL", T::String, "text").group("call"),
        PropertyDef::new(
            "hs_call_has_voicemail",
            "Has voicemail",
            T::Bool,
            "booleancheckbox",
        )
        .group("call")
        .options(&[("true", "Yes"), ("false", "No")]),
    ]);
    props
}

fn communication_properties() -> Vec<PropertyDef> {
    use PropertyType as T;
    let mut props = activity_properties(ObjectKind::Communications);
    props.extend([
        PropertyDef::new(
            "hs_communication_channel_type",
            "Channel type",
            T::Enumeration,
            "select",
        )
        .group("communication")
        .options(&[
            ("SMS", "SMS"),
            ("WHATS_APP", "WhatsApp"),
            ("LINKEDIN_MESSAGE", "LinkedIn"),
        ]),
        PropertyDef::new(
            "hs_communication_logged_from",
            "Logged from",
            T::Enumeration,
            "select",
        )
        .group("communication")
        .options(&[("CRM", "CRM")]),
        PropertyDef::new("hs_communication_body", "Body", T::String, "textarea")
            .group("communication"),
    ]);
    props
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_timestamps_and_unique_names() {
        for kind in ObjectKind::ALL {
            let schema = kind.schema();
            assert!(schema.get(kind.modified_property()).is_some());
            assert!(schema.get(kind.created_property()).is_some());
            let mut names: Vec<_> = schema.properties.iter().map(|p| p.name).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "{kind:?} has duplicate property names");
        }
    }

    #[test]
    fn object_kinds_parse_by_name_and_type_id() {
        assert_eq!(ObjectKind::parse("0-48"), Some(ObjectKind::Calls));
        assert_eq!(ObjectKind::parse("contact"), Some(ObjectKind::Contacts));
        assert_eq!(ObjectKind::parse("deals"), None);
    }
}
