//! The merge used when no LLM is configured or the LLM call fails: keep both texts.

use super::{trivial_merge, MergeError, MergeFuture, MergeOutcome, MergeRequest, MergeVia, Merger};

/// Keeps both texts: old, a blank line, new (just new when old is blank). Nothing is lost, so
/// it is the safe answer whenever the LLM cannot be used.
#[derive(Debug, Clone, Copy, Default)]
pub struct FallbackMerger;

impl Merger for FallbackMerger {
    fn merge<'a>(&'a self, req: &'a MergeRequest) -> MergeFuture<'a> {
        Box::pin(async move {
            trivial_merge(req).unwrap_or_else(|| fallback_merge(req, MergeError::NotConfigured))
        })
    }

    fn is_fallback(&self) -> bool {
        true
    }
}

/// Old, a blank line, new — or whichever side is non-blank when the other is blank.
/// `reason` says why the LLM was not used.
pub fn fallback_merge(req: &MergeRequest, reason: MergeError) -> MergeOutcome {
    if let Some(trivial) = trivial_merge(req) {
        return trivial;
    }
    MergeOutcome {
        // Trimmed at the seam so the texts are separated by exactly one blank line.
        text: format!("{}\n\n{}", req.old.trim_end(), req.new.trim_start()),
        via: MergeVia::Fallback { reason },
    }
}
