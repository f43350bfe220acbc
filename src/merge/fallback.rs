//! The merge used when no LLM is configured or the LLM call fails: keep both texts, without
//! repeating what the field already says.

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

/// Old, a blank line, and the paragraphs of new that old does not already contain — or
/// whichever side is non-blank when the other is blank. `reason` says why the LLM was not used.
///
/// WHY paragraphs are checked: a conversation often restates what an earlier one said (and a
/// redelivered or re-summarised call says it all again); appending it each time would grow the
/// field with copies of itself.
pub fn fallback_merge(req: &MergeRequest, reason: MergeError) -> MergeOutcome {
    if let Some(trivial) = trivial_merge(req) {
        return trivial;
    }
    let old = req.old.trim_end();
    let known = words(old);
    let fresh: Vec<&str> = paragraphs(&req.new)
        .into_iter()
        .filter(|p| !contains_words(&known, &words(p)))
        .collect();
    let text = if fresh.is_empty() {
        req.old.clone()
    } else {
        // Separated by exactly one blank line.
        format!("{old}\n\n{}", fresh.join("\n\n"))
    };
    MergeOutcome {
        text,
        via: MergeVia::Fallback { reason },
    }
}

/// The non-blank paragraphs of `text` (separated by blank lines), trimmed.
fn paragraphs(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            if let Some(s) = start.take() {
                out.push(text[s..end].trim());
            }
        } else {
            start.get_or_insert(offset);
            end = offset + line.len();
        }
        offset += line.len();
    }
    if let Some(s) = start {
        out.push(text[s..end].trim());
    }
    out
}

/// The words of `text` (split on whitespace, so line breaks and spacing do not matter).
fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

/// Whether `needle` occurs in `haystack` as a run of whole words.
fn contains_words(haystack: &[&str], needle: &[&str]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_split_on_blank_lines() {
        let p = paragraphs("a\nb\n\n  \nc\n\nd  ");
        assert_eq!(p, ["a\nb", "c", "d"]);
        assert!(paragraphs("\n\n").is_empty());
    }

    #[test]
    fn whole_words_only() {
        assert!(contains_words(
            &words("wants a demo now"),
            &words("a  demo")
        ));
        assert!(!contains_words(&words("a demonstration"), &words("demo")));
    }
}
