//! Retell webhook bodies (`call_analyzed`, `chat_analyzed`) → the generic conversation event.
//!
//! Body shapes (Retell's SDK types `PhoneCallResponse`/`WebCallResponse` and `ChatResponse`;
//! docs/retell-webhooks.md has the fields crmsync reads): `{"event": "call_analyzed", "call":
//! {call_id, call_type, call_status, direction, from_number, to_number, agent_id,
//! start_timestamp, end_timestamp (epoch ms), duration_ms, disconnection_reason, call_analysis:
//! {call_summary, user_sentiment, call_successful, in_voicemail, custom_analysis_data}}}` and
//! `{"event": "chat_analyzed", "chat": {chat_id, chat_type, chat_status, agent_id,
//! start_timestamp, end_timestamp, metadata, retell_llm_dynamic_variables, chat_analysis:
//! {chat_summary, user_sentiment, chat_successful, custom_analysis_data}}}`. Some docs name the
//! event key `event_type`; both are accepted.
//!
//! A call is complete as parsed (a web call has no numbers: nothing to apply). A chat carries no
//! phone number and no direction at all: it is parsed into a [`RetellChat`], whose number
//! [`crate::engine::Engine::resolve_retell`] finds (the `chat_inbound` webhook's record, then
//! configured keys of `metadata` and `retell_llm_dynamic_variables`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::event::ConversationEvent;

/// Why a webhook body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RetellError {
    #[error("the webhook body is not JSON (line {line}, column {column}): {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("`{path}`: {problem}")]
    Shape { path: String, problem: String },
}

fn shape(path: &str, problem: impl Into<String>) -> RetellError {
    RetellError::Shape {
        path: path.to_string(),
        problem: problem.into(),
    }
}

/// A `call_analyzed` or `chat_analyzed` body.
#[derive(Debug, Clone, PartialEq)]
pub enum RetellEvent {
    /// A call: its numbers and direction are in the body (none for a web call).
    Call(ConversationEvent),
    /// A chat, whose number is still to be found.
    Chat(RetellChat),
}

impl RetellEvent {
    /// The call or chat id.
    pub fn id(&self) -> &str {
        match self {
            RetellEvent::Call(event) => &event.id,
            RetellEvent::Chat(chat) => &chat.event.id,
        }
    }
}

/// A `chat_analyzed` chat: the conversation event without numbers, and where its number may be.
#[derive(Debug, Clone, PartialEq)]
pub struct RetellChat {
    /// No `from_number`/`to_number` (Retell sends none) and `direction: inbound` until the number
    /// is found.
    pub event: ConversationEvent,
    /// `sms_chat` or `api_chat` (absent in some bodies).
    pub chat_type: Option<String>,
    /// The chat's `metadata` (an object; anything else counts as empty).
    pub metadata: Map<String, Value>,
    /// The chat's `retell_llm_dynamic_variables`.
    pub dynamic_variables: Map<String, Value>,
}

/// Parses a Retell webhook body. `Ok(None)` for event types other than `call_analyzed` and
/// `chat_analyzed` (acknowledge and ignore them).
pub fn parse_webhook(body: &[u8]) -> Result<Option<RetellEvent>, RetellError> {
    let value: Value = serde_json::from_slice(body).map_err(|err| RetellError::Json {
        line: err.line(),
        column: err.column(),
        message: err.to_string(),
    })?;
    parse_value(&value)
}

/// Whether a JSON body looks like a Retell webhook (has `event`/`event_type` and a `call` or
/// `chat` object) rather than a generic event.
pub fn is_webhook(value: &Value) -> bool {
    let has_event = value.get("event").is_some() || value.get("event_type").is_some();
    has_event && (value.get("call").is_some() || value.get("chat").is_some())
}

/// [`parse_webhook`] for a body already parsed as JSON.
pub fn parse_value(body: &Value) -> Result<Option<RetellEvent>, RetellError> {
    let Some(object) = body.as_object() else {
        return Err(shape("(body)", "expected a JSON object"));
    };
    let event = object
        .get("event")
        .or_else(|| object.get("event_type"))
        .ok_or_else(|| {
            shape(
                "event",
                "missing (expected \"call_analyzed\" or \"chat_analyzed\")",
            )
        })?;
    let Some(event) = event.as_str() else {
        return Err(shape("event", "expected a string"));
    };
    match event {
        "call_analyzed" => {
            let generic = call(object.get("call"))?;
            Ok(Some(RetellEvent::Call(conversation(generic, "call")?)))
        }
        "chat_analyzed" => chat(object.get("chat")).map(|chat| Some(RetellEvent::Chat(chat))),
        _ => Ok(None),
    }
}

fn conversation(generic: Value, path: &str) -> Result<ConversationEvent, RetellError> {
    serde_json::from_value(generic).map_err(|err| shape(path, err.to_string()))
}

fn call(call: Option<&Value>) -> Result<Value, RetellError> {
    let call = call
        .and_then(Value::as_object)
        .ok_or_else(|| shape("call", "missing or not an object"))?;
    let id = conversation_id(call, "call", "call_id")?;
    let analysis = object(call, "call", "call_analysis")?;
    let web = call.get("call_type").and_then(Value::as_str) == Some("web_call");
    let (from, to) = if web {
        (None, None)
    } else {
        (
            string(call, "call", "from_number")?,
            string(call, "call", "to_number")?,
        )
    };
    let start = timestamp(call, "call", "start_timestamp")?;
    let end = timestamp(call, "call", "end_timestamp")?;
    let duration = match call.get("duration_ms") {
        // WHY refused, not dropped: the generic event refuses the same value (a 400), and a
        // call applied without the duration it came with loses it silently.
        Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| {
            shape(
                "call.duration_ms",
                format!("{n} is not a whole number of milliseconds, 0 or more"),
            )
        })?),
        Some(Value::Null) | None => duration(start, end),
        Some(_) => return Err(shape("call.duration_ms", "expected a number")),
    };
    // Retell's own verdict on calls that never connected (dial_no_answer, dial_busy, ...): it
    // also covers disconnection reasons added after this version.
    let connected = match string(call, "call", "call_status")?.as_deref() {
        Some("not_connected") => Some(false),
        _ => None,
    };
    Ok(json!({
        "id": id,
        "kind": "call",
        "direction": string(call, "call", "direction")?.unwrap_or_else(|| "inbound".to_string()),
        "from_number": from,
        "to_number": to,
        "start_time": start.map(rfc3339),
        "end_time": end.map(rfc3339),
        "duration_ms": duration,
        "summary": analysis.and_then(|a| a.get("call_summary")).cloned(),
        "sentiment": analysis.and_then(|a| a.get("user_sentiment")).cloned(),
        "successful": analysis.and_then(|a| a.get("call_successful")).cloned(),
        "in_voicemail": analysis.and_then(|a| a.get("in_voicemail")).cloned(),
        "disconnection_reason": string(call, "call", "disconnection_reason")?,
        "agent_id": string(call, "call", "agent_id")?,
        "connected": connected,
        "analysis": custom_data(analysis, "call.call_analysis")?,
    }))
}

fn chat(chat: Option<&Value>) -> Result<RetellChat, RetellError> {
    let chat = chat
        .and_then(Value::as_object)
        .ok_or_else(|| shape("chat", "missing or not an object"))?;
    let id = conversation_id(chat, "chat", "chat_id")?;
    let analysis = object(chat, "chat", "chat_analysis")?;
    let start = timestamp(chat, "chat", "start_timestamp")?;
    let end = timestamp(chat, "chat", "end_timestamp")?;
    let generic = json!({
        "id": id,
        "kind": "chat",
        // Placeholder: Retell's chat has no direction; the number's source decides it.
        "direction": "inbound",
        "start_time": start.map(rfc3339),
        "end_time": end.map(rfc3339),
        "duration_ms": duration(start, end),
        "summary": analysis.and_then(|a| a.get("chat_summary")).cloned(),
        "sentiment": analysis.and_then(|a| a.get("user_sentiment")).cloned(),
        "successful": analysis.and_then(|a| a.get("chat_successful")).cloned(),
        "agent_id": string(chat, "chat", "agent_id")?,
        "analysis": custom_data(analysis, "chat.chat_analysis")?,
    });
    Ok(RetellChat {
        event: conversation(generic, "chat")?,
        chat_type: string(chat, "chat", "chat_type")?,
        // Storage-only objects the integrator fills: an unexpected shape is no reason to refuse
        // the chat's analysis, it just holds no number.
        metadata: loose_object(chat.get("metadata")),
        dynamic_variables: loose_object(chat.get("retell_llm_dynamic_variables")),
    })
}

/// The call's or chat's id: present, a string, and not blank (it is what makes a redelivery a
/// no-op).
fn conversation_id(
    obj: &Map<String, Value>,
    parent: &str,
    key: &str,
) -> Result<String, RetellError> {
    let path = format!("{parent}.{key}");
    match obj.get(key) {
        None | Some(Value::Null) => Err(shape(&path, "missing")),
        Some(Value::String(id)) if crate::event::is_usable_id(id) => Ok(id.clone()),
        Some(Value::String(_)) => Err(shape(&path, crate::event::BLANK_ID)),
        Some(_) => Err(shape(&path, "expected a string")),
    }
}

fn loose_object(value: Option<&Value>) -> Map<String, Value> {
    match value {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    }
}

fn string(
    obj: &Map<String, Value>,
    parent: &str,
    key: &str,
) -> Result<Option<String>, RetellError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(shape(&format!("{parent}.{key}"), "expected a string")),
    }
}

fn object<'a>(
    obj: &'a Map<String, Value>,
    parent: &str,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, RetellError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(shape(&format!("{parent}.{key}"), "expected an object")),
    }
}

fn timestamp(
    obj: &Map<String, Value>,
    parent: &str,
    key: &str,
) -> Result<Option<DateTime<Utc>>, RetellError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            // Only times the store can hold (named here: the generic event it becomes would
            // not say which Retell field it was).
            Some(ms) => crate::value::coerce::from_epoch_ms(ms as f64)
                .map(Some)
                .map_err(|reason| shape(&format!("{parent}.{key}"), reason)),
            None => Err(shape(
                &format!("{parent}.{key}"),
                "not a valid epoch-milliseconds time",
            )),
        },
        Some(_) => Err(shape(
            &format!("{parent}.{key}"),
            "expected epoch milliseconds",
        )),
    }
}

fn duration(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Option<u64> {
    let ms = (end? - start?).num_milliseconds();
    u64::try_from(ms).ok()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn custom_data(analysis: Option<&Map<String, Value>>, path: &str) -> Result<Value, RetellError> {
    match analysis.and_then(|a| a.get("custom_analysis_data")) {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(Value::Object(o)) => Ok(Value::Object(o.clone())),
        Some(_) => Err(shape(
            &format!("{path}.custom_analysis_data"),
            "expected an object",
        )),
    }
}
