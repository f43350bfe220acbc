//! Resolving `merge` mode: combining a contact field's old text with a conversation's new text.
//!
//! The rule evaluator is pure, so a `merge` mapping only says "needs merge"; the engine resolves
//! it here, *before* it opens the store's write transaction (an LLM call can take seconds and
//! must never hold the redb write lock).
//!
//! How the engine calls it (async, inside the daemon's tokio runtime):
//!
//! ```ignore
//! let merger: std::sync::Arc<dyn Merger> = crmsync::merge::merger_for(config.llm.as_ref());
//! let req = MergeRequest { field, instruction: field_description, old, new };
//! let outcome = merger.merge(&req).await;      // never fails: falls back to old + "\n\n" + new
//! // outcome.text is the value to write; outcome.via says whether the LLM produced it.
//! ```
//!
//! From synchronous code (the CLI), use [`merge_blocking`], which runs the future on a private
//! current-thread runtime.
//!
//! Merging never fails from the caller's point of view: when no LLM is configured, or the call
//! fails, times out, or returns nothing usable, the [`FallbackMerger`] result (old, a blank
//! line, new) is returned with the reason in [`MergeVia::Fallback`], and the reason is logged.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

mod fallback;
mod llm;

pub use fallback::{fallback_merge, FallbackMerger};
pub use llm::{LlmConfig, LlmMerger, MAX_MERGED_CHARS};

/// One field to merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeRequest {
    /// The contact field's name (for logs and the prompt).
    pub field: String,
    /// The field's description from the rule file: the instruction for the LLM.
    pub instruction: String,
    /// The stored text (empty when the field is missing).
    pub old: String,
    /// The text the conversation produced.
    pub new: String,
}

/// The merged text and how it was produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOutcome {
    pub text: String,
    pub via: MergeVia,
}

/// How a merge result was produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeVia {
    /// The LLM combined the texts.
    Llm,
    /// Nothing to combine (one side blank, or both equal): the non-blank text, no LLM call.
    Trivial,
    /// Old, a blank line, new — because of `reason`.
    Fallback { reason: MergeError },
}

/// Why a merge fell back to keeping both texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("no LLM is configured")]
    NotConfigured,
    #[error("the LLM API key variable `{var}` is not set")]
    MissingApiKey { var: String },
    #[error("the LLM call timed out after {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("the LLM endpoint answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("the LLM request failed: {0}")]
    Transport(String),
    #[error("the LLM response is not a chat completion: {0}")]
    MalformedBody(String),
    #[error("the LLM returned no text")]
    EmptyContent,
    /// The answer was cut off (`finish_reason` `length`, `content_filter`, ...): using it would
    /// drop the end of the field.
    #[error("the LLM answer was cut off (finish_reason `{finish_reason}`)")]
    Truncated { finish_reason: String },
    /// The answer is longer than a merged field may be ([`MAX_MERGED_CHARS`]); cutting it
    /// would drop its end.
    #[error("the LLM answer has {chars} characters, more than the {max} a merged field may have")]
    TooLong { chars: usize, max: usize },
}

/// A boxed future, so `Merger` can be used as `dyn Merger` (async fns in traits are not object
/// safe).
pub type MergeFuture<'a> = Pin<Box<dyn Future<Output = MergeOutcome> + Send + 'a>>;

/// Combines old and new text for a `merge` mapping. Never fails; see the module docs.
pub trait Merger: Send + Sync {
    fn merge<'a>(&'a self, req: &'a MergeRequest) -> MergeFuture<'a>;

    /// True when every outcome is [`fallback_merge`] with [`MergeError::NotConfigured`] (or a
    /// trivial merge) — exactly what the engine's write transaction computes by itself for a
    /// merge nobody resolved. The engine then skips reading the contact before the transaction
    /// (BENCHMARKS.md, "Conversation events": that read was a fifth of the group-commit
    /// writer's time). Only [`FallbackMerger`] says yes.
    fn is_fallback(&self) -> bool {
        false
    }
}

/// The merger the config asks for: the LLM merger when `llm` is configured, else the fallback.
pub fn merger_for(llm: Option<&LlmConfig>) -> Arc<dyn Merger> {
    match llm {
        Some(config) => Arc::new(LlmMerger::from_config(config.clone())),
        None => Arc::new(FallbackMerger),
    }
}

/// Runs `merger.merge(req)` to completion from synchronous code (the CLI).
///
/// Uses a private current-thread runtime. If the caller is already inside a tokio runtime
/// (where `block_on` would panic), the merge runs on a scoped helper thread instead.
pub fn merge_blocking(merger: &dyn Merger, req: &MergeRequest) -> MergeOutcome {
    let run = || match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(merger.merge(req)),
        Err(err) => {
            let reason = MergeError::Transport(format!("cannot start a runtime: {err}"));
            tracing::warn!(field = %req.field, %reason, "merge falls back to keeping both texts");
            fallback_merge(req, reason)
        }
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|scope| match scope.spawn(run).join() {
            Ok(outcome) => outcome,
            Err(_) => fallback_merge(
                req,
                MergeError::Transport("the merge thread panicked".to_string()),
            ),
        })
    } else {
        run()
    }
}

/// The result when there is nothing to combine: one side blank, or both the same text.
fn trivial_merge(req: &MergeRequest) -> Option<MergeOutcome> {
    let text = if req.old.trim().is_empty() {
        req.new.clone()
    } else if req.new.trim().is_empty() || req.old == req.new {
        req.old.clone()
    } else {
        return None;
    };
    Some(MergeOutcome {
        text,
        via: MergeVia::Trivial,
    })
}
