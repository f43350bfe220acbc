//! The checker's output: a rule set whose names are resolved and whose types are known.
//!
//! This is the contract between the checker and the evaluator: `eval::Ruleset::build` turns a
//! [`CheckedProgram`] into closures once, so evaluation never looks names up again. Everything in
//! here is already valid: every field id exists, every value-map result fits its target type,
//! every function exists with the right arity.

use std::collections::HashMap;

use crate::lang::syntax::ast::{self, BinaryOp, Mode, Span};
use crate::lang::types::ExprType;
use crate::value::{FieldType, Value};

/// A compiled-and-checked rule set.
#[derive(Debug, Clone)]
pub struct CheckedProgram {
    /// Every contact field: built-ins first, then declared fields in file/declaration order.
    pub fields: FieldTable,
    /// All `analysis` mappings of all files, in file-name order then source order.
    pub analysis: Vec<CheckedMapping>,
    /// One entry per `connection` block, in file-name order then source order.
    pub connections: Vec<CheckedConnection>,
    /// The parsed files (index = `FileId`), for tools that want the original syntax.
    pub files: Vec<ast::File>,
}

impl CheckedProgram {
    /// The connection of the given kind, if the rule set defines one.
    pub fn connection(&self, kind: ConnectionKind) -> Option<&CheckedConnection> {
        self.connections.iter().find(|c| c.kind == kind)
    }
}

/// Index of a field in [`FieldTable`]; stable for one compiled rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldId(pub u16);

/// The contact schema: built-in fields then declared ones.
#[derive(Debug, Clone, Default)]
pub struct FieldTable {
    /// Read-only for users of a checked program; the checker adds fields with [`Self::push`].
    pub fields: Vec<FieldDef>,
    /// Name → id, so lookups stay constant-time even for hostile schemas.
    index: HashMap<String, FieldId>,
}

impl FieldTable {
    /// Names of the built-in fields, in table order; they always exist.
    pub const BUILTINS: [(&'static str, FieldType); 4] = [
        ("phone_number", FieldType::String),
        ("first_name", FieldType::String),
        ("last_name", FieldType::String),
        ("do_not_call", FieldType::Boolean),
    ];

    /// The id of `phone_number` (always the first built-in).
    pub const PHONE_NUMBER: FieldId = FieldId(0);

    /// A table holding only the built-in fields.
    pub fn with_builtins() -> FieldTable {
        let mut table = FieldTable::default();
        for (name, ty) in Self::BUILTINS.iter() {
            table.push(FieldDef {
                name: (*name).to_string(),
                ty: ty.clone(),
                description: None,
                builtin: true,
                span: None,
            });
        }
        table
    }

    /// Adds a field and returns its id; None when the table is full (ids are 16-bit, far above
    /// the 200-field limit) or the name is taken.
    pub fn push(&mut self, def: FieldDef) -> Option<FieldId> {
        if self.fields.len() >= u16::MAX as usize || self.index.contains_key(&def.name) {
            return None;
        }
        let id = FieldId(self.fields.len() as u16);
        self.index.insert(def.name.clone(), id);
        self.fields.push(def);
        Some(id)
    }

    /// Looks a field up by name.
    pub fn lookup(&self, name: &str) -> Option<FieldId> {
        self.index.get(name).copied()
    }

    /// The field with this id. Ids come from this table, so this never fails for them.
    pub fn get(&self, id: FieldId) -> &FieldDef {
        &self.fields[id.0 as usize]
    }

    /// All fields with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (FieldId, &FieldDef)> {
        self.fields
            .iter()
            .enumerate()
            .map(|(i, f)| (FieldId(i as u16), f))
    }

    /// Number of fields, built-ins included.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Never true in practice (built-ins always exist); here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// One contact field.
#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: String,
    pub ty: FieldType,
    /// The declaration's description (the `merge` instruction).
    pub description: Option<String>,
    /// True for phone_number, first_name, last_name, do_not_call.
    pub builtin: bool,
    /// The declaration from its name through its type (None for built-ins).
    pub span: Option<Span>,
}

/// The CRMs crmsync can connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectionKind {
    Salesforce,
    Hubspot,
}

impl ConnectionKind {
    /// Every kind, for "did you mean" and listings.
    pub const ALL: [ConnectionKind; 2] = [ConnectionKind::Salesforce, ConnectionKind::Hubspot];

    /// The name used in rule files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionKind::Salesforce => "salesforce",
            ConnectionKind::Hubspot => "hubspot",
        }
    }

    /// Parses a rule-file / command-line name.
    pub fn from_name(name: &str) -> Option<ConnectionKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One checked `connection` block.
#[derive(Debug, Clone)]
pub struct CheckedConnection {
    pub kind: ConnectionKind,
    /// `object NAME`, when given (e.g. `Contact`); connectors pick their default otherwise.
    pub object: Option<String>,
    /// CRM record → contact. Exactly one of them targets `phone_number` (checked).
    pub inbound: Vec<CheckedMapping>,
    /// Contact → CRM record.
    pub outbound: Vec<OutboundMapping>,
    pub activity: ActivityLogging,
    /// The whole block.
    pub span: Span,
}

/// Which conversation kinds are logged as CRM activities (opt-in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityLogging {
    pub calls: bool,
    pub chats: bool,
}

/// An inbound or analysis mapping: writes one contact field.
#[derive(Debug, Clone)]
pub struct CheckedMapping {
    pub source: TypedExpr,
    pub target: FieldId,
    /// Applied to the source value before coercion to the target's type.
    pub value_map: Option<CheckedValueMap>,
    /// `Merge` only ever appears in analysis mappings on string fields (checked).
    pub mode: Mode,
    /// Boolean (or dynamically typed) expression; the mapping applies only when it is `true`.
    pub guard: Option<TypedExpr>,
    /// The whole mapping.
    pub span: Span,
}

/// An outbound mapping: contact fields → one CRM field.
#[derive(Debug, Clone)]
pub struct OutboundMapping {
    /// Expression over contact fields (paths resolve to [`TypedExprKind::Contact`]).
    pub source: TypedExpr,
    /// The CRM field written (e.g. `Lead_Status__c`).
    pub target: String,
    /// Contact fields this mapping reads: the mapping is due when one of them changed.
    pub reads: Vec<FieldId>,
    /// Usually enum variant → CRM text.
    pub value_map: Option<CheckedValueMap>,
    pub guard: Option<TypedExpr>,
    pub span: Span,
}

/// A checked value map.
///
/// Inbound/analysis: keys are CRM/payload literals (`Value::String("Open")`, numbers,
/// booleans; a bare name as key means that text), results are already values of the target
/// field's type (`Value::Enum("new")` for enum targets).
/// Outbound: keys are values of the source type (`Value::Enum("new")` when the source is an enum
/// field), results are the literals sent to the CRM (`Value::String(..)`, numbers, booleans,
/// null).
#[derive(Debug, Clone)]
pub struct CheckedValueMap {
    /// Unique keys in source order.
    pub entries: Vec<(Value, Value)>,
    /// The `else` result; without one, an unmatched value passes through unchanged.
    pub default: Option<Value>,
    pub span: Span,
}

/// An expression with names resolved and its static type.
#[derive(Debug, Clone)]
pub struct TypedExpr {
    pub kind: TypedExprKind,
    pub ty: ExprType,
    pub span: Span,
}

/// Resolved expression forms.
#[derive(Debug, Clone)]
pub enum TypedExprKind {
    /// A path into the input: the CRM record (inbound) or the analysis payload (analysis),
    /// segment by segment (`Account.Name` → `["Account", "Name"]`).
    Input(Vec<String>),
    /// `conversation.NAME` in analysis: a built-in of the conversation event.
    Conversation(ConversationField),
    /// A contact field's current value: bare names in outbound, `contact.NAME` anywhere.
    Contact(FieldId),
    /// `null`, `true`, `1.5`, `"text"` (never `Value::Enum`/dates here).
    Literal(Value),
    /// A built-in function (`crate::lang::functions::signature(function)` exists).
    Call {
        function: &'static str,
        args: Vec<TypedExpr>,
    },
    Not(Box<TypedExpr>),
    Binary {
        op: BinaryOp,
        lhs: Box<TypedExpr>,
        rhs: Box<TypedExpr>,
    },
}

/// The built-in `conversation.*` names available in `analysis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationField {
    Id,
    Kind,
    Direction,
    FromNumber,
    ToNumber,
    StartTime,
    EndTime,
    DurationMs,
    Summary,
    Sentiment,
    Successful,
    InVoicemail,
    DisconnectionReason,
    AgentId,
    Connected,
}

impl ConversationField {
    /// Every built-in, in documentation order.
    pub const ALL: [ConversationField; 15] = [
        ConversationField::Id,
        ConversationField::Kind,
        ConversationField::Direction,
        ConversationField::FromNumber,
        ConversationField::ToNumber,
        ConversationField::StartTime,
        ConversationField::EndTime,
        ConversationField::DurationMs,
        ConversationField::Summary,
        ConversationField::Sentiment,
        ConversationField::Successful,
        ConversationField::InVoicemail,
        ConversationField::DisconnectionReason,
        ConversationField::AgentId,
        ConversationField::Connected,
    ];

    /// The name after `conversation.` (also the key in the generic event JSON).
    pub fn name(self) -> &'static str {
        match self {
            ConversationField::Id => "id",
            ConversationField::Kind => "kind",
            ConversationField::Direction => "direction",
            ConversationField::FromNumber => "from_number",
            ConversationField::ToNumber => "to_number",
            ConversationField::StartTime => "start_time",
            ConversationField::EndTime => "end_time",
            ConversationField::DurationMs => "duration_ms",
            ConversationField::Summary => "summary",
            ConversationField::Sentiment => "sentiment",
            ConversationField::Successful => "successful",
            ConversationField::InVoicemail => "in_voicemail",
            ConversationField::DisconnectionReason => "disconnection_reason",
            ConversationField::AgentId => "agent_id",
            ConversationField::Connected => "connected",
        }
    }

    /// Its static type: times are datetimes, `duration_ms` a number, flags booleans.
    pub fn ty(self) -> ExprType {
        match self {
            ConversationField::StartTime | ConversationField::EndTime => ExprType::Datetime,
            ConversationField::DurationMs => ExprType::Number,
            ConversationField::Successful
            | ConversationField::InVoicemail
            | ConversationField::Connected => ExprType::Boolean,
            _ => ExprType::String,
        }
    }

    /// Parses the name after `conversation.`.
    pub fn from_name(name: &str) -> Option<ConversationField> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}
