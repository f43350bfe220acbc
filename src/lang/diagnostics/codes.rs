//! The registry of diagnostic codes.
//!
//! Codes are stable: integrators search for them and `docs/rule-language.md` documents each
//! one. Never renumber a code and never reuse one that was released; retire it by moving it to
//! [`RETIRED`] instead. Ranges: E1xx syntax, files and limits; E2xx names and declarations;
//! E3xx types, functions and value maps; E4xx modes; E5xx connections; W0xx warnings.
//! `tests/lang_check.rs` checks that every code here has a case under
//! `tests/cases/diagnostics/`.

use super::diagnostic::Severity;

/// One diagnostic code: its identifier, severity and a short title for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code {
    /// `E201`, `W001`, ...
    pub id: &'static str,
    pub severity: Severity,
    /// A few words, e.g. "unknown contact field".
    pub title: &'static str,
}

const fn error(id: &'static str, title: &'static str) -> Code {
    Code {
        id,
        severity: Severity::Error,
        title,
    }
}

const fn warning(id: &'static str, title: &'static str) -> Code {
    Code {
        id,
        severity: Severity::Warning,
        title,
    }
}

// ---- E1xx: syntax, files, limits ----
pub const SYNTAX: Code = error("E100", "syntax error");
pub const FILE_TOO_LARGE: Code = error("E101", "rule file too large");
pub const NOT_UTF8: Code = error("E102", "rule file is not valid UTF-8");
pub const NESTING_TOO_DEEP: Code = error("E103", "nesting too deep");
pub const EXPRESSION_TOO_COMPLEX: Code = error("E104", "expression too complex");
pub const PARSER_LIMIT: Code = error("E105", "parser resource limit reached");
pub const NO_RULE_FILES: Code = error("E106", "no rule files");
pub const UNREADABLE: Code = error("E107", "cannot read rule file");

// ---- E2xx: names and declarations ----
pub const UNKNOWN_FIELD: Code = error("E201", "unknown contact field");
pub const BAD_FIELD_NAME: Code = error("E202", "invalid field name");
pub const BUILTIN_FIELD_NAME: Code = error("E203", "field name is a built-in field");
pub const RESERVED_FIELD_NAME: Code = error("E204", "reserved field name");
pub const DUPLICATE_FIELD: Code = error("E205", "duplicate field");
pub const TOO_MANY_FIELDS: Code = error("E206", "too many fields");
pub const UNKNOWN_TYPE: Code = error("E207", "unknown field type");
pub const EMPTY_ENUM: Code = error("E208", "enum without variants");
pub const DUPLICATE_VARIANT: Code = error("E209", "duplicate enum variant");
pub const BAD_VARIANT_NAME: Code = error("E210", "invalid enum variant name");
pub const UNKNOWN_CONVERSATION_FIELD: Code = error("E211", "unknown conversation field");
pub const BAD_CONTACT_PATH: Code = error("E212", "invalid contact field path");

// ---- E3xx: types, functions, value maps ----
pub const UNKNOWN_FUNCTION: Code = error("E301", "unknown function");
pub const WRONG_ARITY: Code = error("E302", "wrong number of arguments");
pub const ARGUMENT_TYPE: Code = error("E303", "argument of the wrong type");
pub const GUARD_NOT_BOOLEAN: Code = error("E304", "guard is not boolean");
pub const VALUE_MAP_RESULT_TYPE: Code = error("E305", "value-map value does not fit the target");
pub const UNKNOWN_VARIANT: Code = error("E306", "unknown enum variant");
pub const DUPLICATE_MAP_KEY: Code = error("E307", "duplicate value-map key");
pub const MISPLACED_ELSE: Code = error("E308", "misplaced or repeated `else`");
pub const SOURCE_TYPE: Code = error("E309", "source does not fit the target field");
pub const OPERAND_TYPE: Code = error("E310", "operand of the wrong type");
pub const VALUE_MAP_KEY_TYPE: Code = error("E311", "value-map key does not fit the source");

// ---- E4xx: modes ----
pub const MERGE_NOT_STRING: Code = error("E401", "`merge` on a non-string field");
pub const MERGE_OUTSIDE_ANALYSIS: Code = error("E402", "`merge` outside `analysis`");
pub const MODE_IN_OUTBOUND: Code = error("E403", "mode on an outbound mapping");

// ---- E5xx: connections ----
pub const UNKNOWN_CONNECTION: Code = error("E501", "unknown connection kind");
pub const DUPLICATE_CONNECTION: Code = error("E502", "duplicate connection");
pub const MISSING_PHONE_MAPPING: Code = error("E503", "inbound does not map `phone_number`");
pub const DUPLICATE_PHONE_MAPPING: Code = error("E504", "`phone_number` mapped twice");
pub const ANALYSIS_WRITES_PHONE: Code = error("E505", "analysis writes `phone_number`");
pub const OUTBOUND_WRITES_PHONE: Code = error("E506", "outbound writes the phone number");
pub const DUPLICATE_SECTION: Code = error("E507", "duplicate section");
pub const UNKNOWN_ACTIVITY: Code = error("E508", "unknown activity kind");
pub const DUPLICATE_ACTIVITY: Code = error("E509", "activity logged twice");

// ---- W0xx: warnings ----
pub const SHADOWED_MAPPING: Code = warning("W001", "mapping overridden by a later one");

/// Every code in use, in order. Tests iterate this list.
pub const ALL: &[Code] = &[
    SYNTAX,
    FILE_TOO_LARGE,
    NOT_UTF8,
    NESTING_TOO_DEEP,
    EXPRESSION_TOO_COMPLEX,
    PARSER_LIMIT,
    NO_RULE_FILES,
    UNREADABLE,
    UNKNOWN_FIELD,
    BAD_FIELD_NAME,
    BUILTIN_FIELD_NAME,
    RESERVED_FIELD_NAME,
    DUPLICATE_FIELD,
    TOO_MANY_FIELDS,
    UNKNOWN_TYPE,
    EMPTY_ENUM,
    DUPLICATE_VARIANT,
    BAD_VARIANT_NAME,
    UNKNOWN_CONVERSATION_FIELD,
    BAD_CONTACT_PATH,
    UNKNOWN_FUNCTION,
    WRONG_ARITY,
    ARGUMENT_TYPE,
    GUARD_NOT_BOOLEAN,
    VALUE_MAP_RESULT_TYPE,
    UNKNOWN_VARIANT,
    DUPLICATE_MAP_KEY,
    MISPLACED_ELSE,
    SOURCE_TYPE,
    OPERAND_TYPE,
    VALUE_MAP_KEY_TYPE,
    MERGE_NOT_STRING,
    MERGE_OUTSIDE_ANALYSIS,
    MODE_IN_OUTBOUND,
    UNKNOWN_CONNECTION,
    DUPLICATE_CONNECTION,
    MISSING_PHONE_MAPPING,
    DUPLICATE_PHONE_MAPPING,
    ANALYSIS_WRITES_PHONE,
    OUTBOUND_WRITES_PHONE,
    DUPLICATE_SECTION,
    UNKNOWN_ACTIVITY,
    DUPLICATE_ACTIVITY,
    SHADOWED_MAPPING,
];

/// Codes that were released and then retired: never reuse these identifiers.
pub const RETIRED: &[&str] = &[];

/// The code with this identifier, if it is in use.
pub fn lookup(id: &str) -> Option<Code> {
    ALL.iter().copied().find(|c| c.id == id)
}
