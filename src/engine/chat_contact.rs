//! Which contact a Retell chat belongs to.
//!
//! Retell's chat object carries no phone number and no direction (docs/retell-webhooks.md), so
//! the number is looked for, in this order:
//! 1. the chat was applied before (a redelivered `chat_analyzed`): the contact it was applied to;
//! 2. the `chat_inbound` webhook of an inbound SMS: its sender (`from_number`), recorded in the
//!    store when crmsync answered it; the chat is inbound;
//! 3. the configured keys (`retell.chat_number_keys`) in the chat's `metadata`, then in its
//!    `retell_llm_dynamic_variables`: values the integrator set when starting the chat. Such a
//!    chat was not announced by `chat_inbound`, so it is taken as outbound (to that number).
//!
//! A value that is no phone number is passed over and named in the reason. A chat whose number
//! is found nowhere is not applied: it is answered `no_number` with the reason, so it is
//! counted and visible rather than dropped.

use serde_json::Value;

use super::analysis::empty_report;
use super::retell::{RetellChat, RetellEvent};
use super::{ConversationOutcome, ConversationReport, Engine, EngineError};
use crate::event::{ConversationEvent, Direction};

/// A Retell event ready to apply, or a chat that has no contact.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolvedEvent {
    /// A call, or a chat whose number was found.
    Ready(ConversationEvent),
    /// A chat whose number was found nowhere: its report, outcome `no_number` with the reason
    /// (where the number was looked for, and why each place gave none). Not applied and not
    /// recorded: a `chat_inbound` that arrives late still lets a redelivery apply it.
    NoNumber(ConversationReport),
}

impl Engine {
    /// Gives a Retell event its contact's number: a call has it already; a chat's is looked up
    /// (see the module docs) with `keys` as the metadata / dynamic-variable keys.
    pub fn resolve_retell(
        &self,
        event: RetellEvent,
        keys: &[String],
    ) -> Result<ResolvedEvent, EngineError> {
        match event {
            RetellEvent::Call(event) => Ok(ResolvedEvent::Ready(event)),
            RetellEvent::Chat(chat) => self.resolve_chat(chat, keys),
        }
    }

    fn resolve_chat(
        &self,
        chat: RetellChat,
        keys: &[String],
    ) -> Result<ResolvedEvent, EngineError> {
        let RetellChat {
            mut event,
            chat_type,
            metadata,
            dynamic_variables,
        } = chat;
        let store = self.store();
        let applied = store.read(|tx| tx.conversation(&event.id))?;
        if let Some(phone) = applied.and_then(|a| a.phone) {
            // The engine answers `already_applied` for it.
            event.direction = Direction::Inbound;
            event.from_number = Some(phone);
            return Ok(ResolvedEvent::Ready(event));
        }

        let inbound = match store.chat_numbers(&event.id)? {
            Some(numbers) => match self.normalize_phone(&numbers.from_number) {
                Ok(_) => {
                    event.direction = Direction::Inbound;
                    event.from_number = Some(numbers.from_number);
                    event.to_number = numbers.to_number;
                    return Ok(ResolvedEvent::Ready(event));
                }
                Err(err) => format!("its chat_inbound webhook named as the sender an {err}"),
            },
            None => "no chat_inbound webhook was received for it".to_string(),
        };

        let mut passed_over = Vec::new();

        for (place, values) in [
            ("metadata", &metadata),
            ("retell_llm_dynamic_variables", &dynamic_variables),
        ] {
            for key in keys {
                let text = match values.get(key) {
                    None | Some(Value::Null) => continue,
                    Some(Value::String(text)) if text.trim().is_empty() => continue,
                    Some(Value::String(text)) => text,
                    Some(other) => {
                        passed_over.push(format!("`{place}.{key}` is {other}, not text"));
                        continue;
                    }
                };
                match self.normalize_phone(text) {
                    Ok(_) => {
                        event.direction = Direction::Outbound;
                        event.to_number = Some(text.clone());
                        return Ok(ResolvedEvent::Ready(event));
                    }
                    Err(err) => passed_over.push(format!("`{place}.{key}` holds {err}")),
                }
            }
        }
        let kind = chat_type.as_deref().unwrap_or("chat");
        let mut reason = format!(
            "{kind} {} has no phone number (Retell's chat object carries none): {inbound}, and \
             its metadata and retell_llm_dynamic_variables hold none under the keys [{}] \
             (config `retell.chat_number_keys`)",
            event.id,
            keys.join(", "),
        );
        if !passed_over.is_empty() {
            reason.push_str(&format!("; passed over: {}", passed_over.join("; ")));
        }
        Ok(ResolvedEvent::NoNumber(empty_report(
            &event,
            ConversationOutcome::NoNumber { reason },
        )))
    }

    /// After a chat was applied: its `chat_inbound` record is no longer needed (a redelivery
    /// finds the applied conversation).
    pub fn forget_chat_numbers(&self, chat_id: &str) -> Result<(), EngineError> {
        Ok(self.store().forget_chat_numbers(chat_id)?)
    }
}
