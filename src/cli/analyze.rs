//! `crmsync analyze FILE.json`: apply one conversation event (a Retell `call_analyzed` /
//! `chat_analyzed` webhook body, or the generic event of `src/event.rs`).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

use super::open::{engine, engine_error, print_json};
use super::{CliError, CliResult, GlobalOpts};
use crate::config::LoadedConfig;
use crate::engine::retell::{self, RetellEvent};
use crate::engine::{ConversationOutcome, ConversationReport, ResolvedEvent};
use crate::event::ConversationEvent;
use crate::merge::{merger_for, LlmConfig};

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The event: a Retell webhook body or a generic conversation event (JSON).
    pub file: PathBuf,
}

pub fn run(global: &GlobalOpts, args: AnalyzeArgs) -> CliResult {
    let (engine, config) = engine(global)?;
    let place = args.file.display().to_string();
    let text =
        std::fs::read(&args.file).map_err(|err| CliError::input(format!("{place}: {err}")))?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).map_err(|err| CliError::input(format!("{place}: {err}")))?;
    let (event, chat_id) = if retell::is_webhook(&json) {
        let parsed =
            retell::parse_value(&json).map_err(|err| CliError::input(format!("{place}: {err}")))?;
        let Some(parsed) = parsed else {
            let kind = json
                .get("event")
                .or_else(|| json.get("event_type"))
                .map(|e| e.to_string())
                .unwrap_or_default();
            if global.json {
                return print_json(&serde_json::json!({ "outcome": "ignored", "event": kind }));
            }
            println!("ignored: event {kind} is not call_analyzed or chat_analyzed");
            return Ok(());
        };
        let chat_id = matches!(parsed, RetellEvent::Chat(_)).then(|| parsed.id().to_string());
        match engine
            .resolve_retell(parsed, &config.config.retell.chat_number_keys)
            .map_err(engine_error)?
        {
            ResolvedEvent::Ready(event) => (event, chat_id),
            ResolvedEvent::NoNumber(report) => {
                if global.json {
                    return print_json(&report);
                }
                print!("{}", human(&report));
                return Ok(());
            }
        }
    } else {
        // Parsed again from the text so errors carry line and column, and the field's path.
        let deserializer = &mut serde_json::Deserializer::from_slice(&text);
        let event = serde_path_to_error::deserialize::<_, ConversationEvent>(deserializer)
            .map_err(|err| {
                let path = err.path().to_string();
                CliError::input(format!(
                    "{place}: not a conversation event: `{path}`: {}",
                    err.into_inner()
                ))
            })?;
        (event, None)
    };
    let merger = merger_for(llm_config(&config).as_ref());
    let report = engine
        .apply_conversation_blocking(&event, merger.as_ref())
        .map_err(engine_error)?;
    if let (Some(chat_id), ConversationOutcome::Applied { .. }) = (chat_id, &report.outcome) {
        engine.forget_chat_numbers(&chat_id).map_err(engine_error)?;
    }
    if global.json {
        print_json(&report)
    } else {
        print!("{}", human(&report));
        Ok(())
    }
}

/// The merge LLM from the config's `llm:` section.
pub fn llm_config(config: &LoadedConfig) -> Option<LlmConfig> {
    // The config's `llm:` section is the merge module's own `LlmConfig`.
    config.config.llm.clone()
}

/// The human summary.
pub fn human(report: &ConversationReport) -> String {
    let mut out = String::new();
    let id = &report.conversation_id;
    match &report.outcome {
        ConversationOutcome::AlreadyApplied => {
            let _ = writeln!(out, "conversation {id}: already applied, nothing changed");
        }
        ConversationOutcome::NoNumber { reason } => {
            let _ = writeln!(out, "conversation {id}: nothing to apply ({reason})");
        }
        ConversationOutcome::Applied {
            phone,
            created,
            changed,
            outbound,
            activity,
        } => {
            let verb = if *created { "created" } else { "updated" };
            let _ = writeln!(out, "conversation {id}: {verb} contact {phone}");
            let fields = if changed.is_empty() {
                "none".to_string()
            } else {
                changed.join(", ")
            };
            let _ = writeln!(out, "  changed fields: {fields}");
            if !outbound.is_empty() {
                let _ = writeln!(out, "  queued CRM write: {}", outbound.join(", "));
            }
            if *activity {
                let _ = writeln!(out, "  queued activity");
            }
        }
    }
    for problem in &report.field_errors {
        let _ = writeln!(
            out,
            "  skipped {} = {}: {}",
            problem.field, problem.value, problem.reason
        );
    }
    for problem in &report.merge_fallbacks {
        let _ = writeln!(
            out,
            "  merged {} by keeping both texts: {}",
            problem.field, problem.reason
        );
    }
    out
}
