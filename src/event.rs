//! The generic conversation event (DESIGN.md §4): what `crmsync analyze`, `POST
//! /v1/conversations` and the Retell webhook (after mapping) hand to analysis evaluation.
//!
//! Times accept RFC 3339 text or epoch milliseconds; `successful`/`in_voicemail` accept
//! booleans or the boolean words coercion accepts; `analysis` may be absent or null (empty).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::value::{coerce, DynValue};

/// Call or chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Call,
    Chat,
}

impl ConversationKind {
    /// `call` / `chat`.
    pub fn name(self) -> &'static str {
        match self {
            ConversationKind::Call => "call",
            ConversationKind::Chat => "chat",
        }
    }
}

/// Who started the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    /// `inbound` / `outbound`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// One finished, analysed conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationEvent {
    pub id: String,
    pub kind: ConversationKind,
    pub direction: Direction,
    #[serde(default)]
    pub from_number: Option<String>,
    #[serde(default)]
    pub to_number: Option<String>,
    #[serde(default, deserialize_with = "time")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "time")]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub sentiment: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    pub successful: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    pub in_voicemail: Option<bool>,
    #[serde(default)]
    pub disconnection_reason: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The custom analysis payload (`custom_analysis_data` in Retell's bodies).
    #[serde(default, deserialize_with = "object")]
    pub analysis: serde_json::Map<String, serde_json::Value>,
}

fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let json = serde_json::Value::deserialize(d)?;
    if json.is_null() {
        return Ok(None);
    }
    coerce::to_datetime(&DynValue::from_json(&json))
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let json = serde_json::Value::deserialize(d)?;
    if json.is_null() {
        return Ok(None);
    }
    coerce::to_bool(&DynValue::from_json(&json))
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn object<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<serde_json::Map<String, serde_json::Value>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(serde_json::Map::new()),
        serde_json::Value::Object(map) => Ok(map),
        other => Err(serde::de::Error::custom(format!(
            "analysis must be an object, found {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn parses_the_generic_form_with_both_time_notations() {
        let e: ConversationEvent = serde_json::from_value(json!({
            "id": "call_1", "kind": "call", "direction": "outbound",
            "from_number": "+14155550100", "to_number": "+14155550132",
            "start_time": "2026-03-09T14:00:00+02:00", "end_time": 1773057661000_i64,
            "duration_ms": 61000, "summary": "Wants a demo", "sentiment": "Positive",
            "successful": "true", "disconnection_reason": "user_hangup",
            "analysis": {"demo_requested": true}
        }))
        .unwrap();
        assert_eq!(e.kind, ConversationKind::Call);
        assert_eq!(e.direction, Direction::Outbound);
        assert_eq!(
            e.start_time,
            Some(Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).unwrap())
        );
        assert_eq!(
            e.end_time,
            Some(Utc.with_ymd_and_hms(2026, 3, 9, 12, 1, 1).unwrap())
        );
        assert_eq!(e.successful, Some(true));
        assert_eq!(e.in_voicemail, None);
        assert_eq!(e.analysis.get("demo_requested"), Some(&json!(true)));
    }

    #[test]
    fn minimal_event_and_bad_values() {
        let e: ConversationEvent = serde_json::from_value(
            json!({"id": "c", "kind": "chat", "direction": "inbound", "analysis": null}),
        )
        .unwrap();
        assert!(e.analysis.is_empty());
        assert!(serde_json::from_value::<ConversationEvent>(
            json!({"id": "c", "kind": "sms", "direction": "inbound"})
        )
        .is_err());
        let err = serde_json::from_value::<ConversationEvent>(
            json!({"id": "c", "kind": "call", "direction": "inbound", "start_time": "yesterday"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a datetime"), "{err}");
    }
}
