//! The generic conversation event (README "HTTP API"): what `crmsync analyze`, `POST
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
    /// The conversation's unique id: a second event with the same id is "already applied". A
    /// blank one is refused when read, or every later blank-id event would count as a
    /// redelivery of the first and never be applied.
    #[serde(deserialize_with = "conversation_id")]
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
    /// Whether the call reached a person. Usually left out: [`ConversationEvent::connected`]
    /// derives it from `disconnection_reason` and `in_voicemail`. A Retell call whose
    /// `call_status` is `not_connected` arrives with `false` here, so a reason Retell adds later
    /// still counts as not connected.
    #[serde(default, deserialize_with = "flag")]
    pub connected: Option<bool>,
    /// The custom analysis payload (`custom_analysis_data` in Retell's bodies).
    #[serde(default, deserialize_with = "object")]
    pub analysis: serde_json::Map<String, serde_json::Value>,
}

impl ConversationEvent {
    /// What became of the call; `None` for a chat.
    pub fn call_outcome(&self) -> Option<CallOutcome> {
        if self.kind == ConversationKind::Chat {
            return None;
        }
        let outcome = CallOutcome::of(self.disconnection_reason.as_deref(), self.in_voicemail);
        Some(match self.connected {
            Some(true) => CallOutcome::Connected,
            // Told it did not connect, for a reason that alone would say it did.
            Some(false) if outcome == CallOutcome::Connected => CallOutcome::Failed,
            _ => outcome,
        })
    }

    /// Whether the conversation reached the person: a call that was answered by someone (not
    /// a voicemail box, an automated menu, a busy line, ...). A chat always counts: it is only
    /// analysed once it took place.
    pub fn connected(&self) -> bool {
        self.call_outcome().is_none_or(CallOutcome::connected)
    }

    /// Whether the call reached a voicemail box: Retell's `in_voicemail` flag, or the
    /// `voicemail_reached` disconnection reason when the flag is absent.
    pub fn in_voicemail(&self) -> Option<bool> {
        self.in_voicemail.or_else(|| {
            (self.disconnection_reason.as_deref() == Some(VOICEMAIL_REACHED)).then_some(true)
        })
    }
}

const VOICEMAIL_REACHED: &str = "voicemail_reached";

/// What became of a call, from Retell's `disconnection_reason` (the values of
/// `PhoneCallResponse.disconnection_reason` in Retell's SDKs; docs/retell-webhooks.md lists
/// them with the outcome each gives) and `call_analysis.in_voicemail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Someone answered and the call took place (however it ended).
    Connected,
    /// The call reached a voicemail box (the agent may have left a message).
    Voicemail,
    /// The call reached an automated phone menu and the agent hung up.
    Ivr,
    /// Dialled; nobody answered.
    NoAnswer,
    /// The line was busy, or the callee declined the call.
    Busy,
    /// The call was never connected: an invalid number, a carrier or SIP failure, a spam
    /// block, an account limit.
    Failed,
}

impl CallOutcome {
    /// Classifies a call by its disconnection reason and voicemail flag. A reason this version
    /// does not know (Retell adds some over time) counts as connected: Retell's own
    /// `call_status` (`not_connected`) catches the new ones that are not (see
    /// [`ConversationEvent::connected`]).
    pub fn of(disconnection_reason: Option<&str>, in_voicemail: Option<bool>) -> CallOutcome {
        let by_reason = match disconnection_reason.unwrap_or("") {
            "dial_no_answer" => CallOutcome::NoAnswer,
            // Declining rings off like a busy line; Retell reports it as not connected.
            "dial_busy" | "user_declined" => CallOutcome::Busy,
            "dial_failed"
            | "invalid_destination"
            | "telephony_provider_permission_denied"
            | "telephony_provider_unavailable"
            | "sip_routing_error"
            | "marked_as_spam"
            | "network_blocked"
            | "concurrency_limit_reached"
            | "no_concurrency_fallback"
            | "no_valid_payment"
            | "credit_exhausted"
            | "budget_reached"
            | "error_user_not_joined"
            | "registered_call_timeout"
            | "error_inbound_webhook" => CallOutcome::Failed,
            VOICEMAIL_REACHED | "machine_detected" => CallOutcome::Voicemail,
            "ivr_reached" => CallOutcome::Ivr,
            _ => CallOutcome::Connected,
        };
        match (by_reason, in_voicemail) {
            (CallOutcome::Connected, Some(true)) => CallOutcome::Voicemail,
            (outcome, _) => outcome,
        }
    }

    /// Whether a person was reached.
    pub fn connected(self) -> bool {
        self == CallOutcome::Connected
    }

    /// `connected`, `voicemail`, `ivr`, `no_answer`, `busy`, `failed`.
    pub fn name(self) -> &'static str {
        match self {
            CallOutcome::Connected => "connected",
            CallOutcome::Voicemail => "voicemail",
            CallOutcome::Ivr => "ivr",
            CallOutcome::NoAnswer => "no_answer",
            CallOutcome::Busy => "busy",
            CallOutcome::Failed => "failed",
        }
    }

    /// A short label for people (a Salesforce Task's `CallDisposition`).
    pub fn label(self) -> &'static str {
        match self {
            CallOutcome::Connected => "Connected",
            CallOutcome::Voicemail => "Voicemail",
            CallOutcome::Ivr => "Automated menu (IVR)",
            CallOutcome::NoAnswer => "No answer",
            CallOutcome::Busy => "Busy",
            CallOutcome::Failed => "Failed",
        }
    }
}

/// Why a conversation id is refused, for every route that reads one (the caller prefixes the
/// field's path).
pub const BLANK_ID: &str =
    "is blank: every event needs its own id (a second event with the same id is a no-op)";

/// Whether `id` can identify a conversation.
pub fn is_usable_id(id: &str) -> bool {
    !id.trim().is_empty()
}

fn conversation_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let id = String::deserialize(d)?;
    if is_usable_id(&id) {
        Ok(id)
    } else {
        Err(serde::de::Error::custom(BLANK_ID))
    }
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
    fn call_outcomes_follow_the_disconnection_reason() {
        let call = |extra: serde_json::Value| {
            let mut e = json!({"id": "c", "kind": "call", "direction": "outbound"});
            e.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value::<ConversationEvent>(e).unwrap()
        };
        for (extra, outcome) in [
            (
                json!({"disconnection_reason": "dial_no_answer"}),
                CallOutcome::NoAnswer,
            ),
            (
                json!({"disconnection_reason": "dial_busy"}),
                CallOutcome::Busy,
            ),
            (
                json!({"disconnection_reason": "user_declined"}),
                CallOutcome::Busy,
            ),
            (
                json!({"disconnection_reason": "dial_failed"}),
                CallOutcome::Failed,
            ),
            (
                json!({"disconnection_reason": "voicemail_reached"}),
                CallOutcome::Voicemail,
            ),
            (
                json!({"disconnection_reason": "ivr_reached"}),
                CallOutcome::Ivr,
            ),
            (
                json!({"disconnection_reason": "user_hangup"}),
                CallOutcome::Connected,
            ),
            (json!({}), CallOutcome::Connected),
            // The analysis says the agent spoke to a voicemail box, then hung up.
            (
                json!({"disconnection_reason": "agent_hangup", "in_voicemail": true}),
                CallOutcome::Voicemail,
            ),
            // Retell said not_connected, for a reason this version does not know.
            (
                json!({"disconnection_reason": "new_reason", "connected": false}),
                CallOutcome::Failed,
            ),
            (
                json!({"disconnection_reason": "dial_busy", "connected": false}),
                CallOutcome::Busy,
            ),
        ] {
            let e = call(extra.clone());
            assert_eq!(e.call_outcome(), Some(outcome), "{extra}");
            assert_eq!(e.connected(), outcome == CallOutcome::Connected, "{extra}");
        }
        assert_eq!(
            call(json!({"disconnection_reason": "voicemail_reached"})).in_voicemail(),
            Some(true)
        );
        assert_eq!(call(json!({})).in_voicemail(), None);
        let chat: ConversationEvent =
            serde_json::from_value(json!({"id": "c", "kind": "chat", "direction": "inbound"}))
                .unwrap();
        assert_eq!((chat.call_outcome(), chat.connected()), (None, true));
    }

    #[test]
    fn a_blank_id_is_refused() {
        for id in ["", " ", "\t\n"] {
            let err = serde_json::from_value::<ConversationEvent>(
                json!({"id": id, "kind": "call", "direction": "inbound"}),
            )
            .unwrap_err();
            assert!(err.to_string().contains("is blank"), "{id:?}: {err}");
        }
        let err = serde_json::from_value::<ConversationEvent>(
            json!({"kind": "call", "direction": "inbound"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("missing field `id`"), "{err}");
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
