//! Retell webhook bodies (`call_analyzed`, `chat_analyzed`) → the generic conversation event.
//!
//! Body shape (Retell's public SDKs, `PhoneCallResponse`/`WebCallResponse`/`ChatResponse`):
//! `{"event": "call_analyzed", "call": {call_id, call_type, direction, from_number, to_number,
//! agent_id, start_timestamp, end_timestamp (epoch ms), duration_ms, disconnection_reason,
//! call_analysis: {call_summary, user_sentiment, call_successful, in_voicemail,
//! custom_analysis_data}}}` and `{"event": "chat_analyzed", "chat": {chat_id, chat_type,
//! agent_id, start_timestamp, end_timestamp, chat_analysis: {chat_summary, user_sentiment,
//! chat_successful, custom_analysis_data}}}`. Some docs name the event key `event_type`; both
//! are accepted. Chats carry no direction or numbers in the SDK types; SMS chats that do carry
//! `from_number`/`to_number`/`direction` use them (direction defaults to `inbound`), and API
//! (web) chats without numbers map to an event without numbers, which the engine ignores.

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

/// Parses a Retell webhook body. `Ok(None)` for event types other than `call_analyzed` and
/// `chat_analyzed` (acknowledge and ignore them).
pub fn parse_webhook(body: &[u8]) -> Result<Option<ConversationEvent>, RetellError> {
    let value: Value = serde_json::from_slice(body).map_err(|err| RetellError::Json {
        line: err.line(),
        column: err.column(),
        message: err.to_string(),
    })?;
    let Some(generic) = to_generic(&value)? else {
        return Ok(None);
    };
    serde_json::from_value(generic)
        .map(Some)
        .map_err(|err| shape("call", err.to_string()))
}

/// Whether a JSON body looks like a Retell webhook (has `event`/`event_type` and a `call` or
/// `chat` object) rather than a generic event.
pub fn is_webhook(value: &Value) -> bool {
    let has_event = value.get("event").is_some() || value.get("event_type").is_some();
    has_event && (value.get("call").is_some() || value.get("chat").is_some())
}

/// Maps a parsed webhook body to the generic event's JSON form (DESIGN.md §4).
pub fn to_generic(body: &Value) -> Result<Option<Value>, RetellError> {
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
        "call_analyzed" => call(object.get("call")).map(Some),
        "chat_analyzed" => chat(object.get("chat")).map(Some),
        _ => Ok(None),
    }
}

fn call(call: Option<&Value>) -> Result<Value, RetellError> {
    let call = call
        .and_then(Value::as_object)
        .ok_or_else(|| shape("call", "missing or not an object"))?;
    let id = string(call, "call", "call_id")?.ok_or_else(|| shape("call.call_id", "missing"))?;
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
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::Null) | None => duration(start, end),
        Some(_) => return Err(shape("call.duration_ms", "expected a number")),
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
        "analysis": custom_data(analysis, "call.call_analysis")?,
    }))
}

fn chat(chat: Option<&Value>) -> Result<Value, RetellError> {
    let chat = chat
        .and_then(Value::as_object)
        .ok_or_else(|| shape("chat", "missing or not an object"))?;
    let id = string(chat, "chat", "chat_id")?.ok_or_else(|| shape("chat.chat_id", "missing"))?;
    let analysis = object(chat, "chat", "chat_analysis")?;
    let start = timestamp(chat, "chat", "start_timestamp")?;
    let end = timestamp(chat, "chat", "end_timestamp")?;
    Ok(json!({
        "id": id,
        "kind": "chat",
        "direction": string(chat, "chat", "direction")?.unwrap_or_else(|| "inbound".to_string()),
        "from_number": string(chat, "chat", "from_number")?,
        "to_number": string(chat, "chat", "to_number")?,
        "start_time": start.map(rfc3339),
        "end_time": end.map(rfc3339),
        "duration_ms": duration(start, end),
        "summary": analysis.and_then(|a| a.get("chat_summary")).cloned(),
        "sentiment": analysis.and_then(|a| a.get("user_sentiment")).cloned(),
        "successful": analysis.and_then(|a| a.get("chat_successful")).cloned(),
        "in_voicemail": null,
        "disconnection_reason": null,
        "agent_id": string(chat, "chat", "agent_id")?,
        "analysis": custom_data(analysis, "chat.chat_analysis")?,
    }))
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
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(DateTime::from_timestamp_millis)
            .map(Some)
            .ok_or_else(|| {
                shape(
                    &format!("{parent}.{key}"),
                    "not a valid epoch-milliseconds time",
                )
            }),
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
