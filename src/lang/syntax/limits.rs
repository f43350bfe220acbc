//! Limits that keep hostile rule files from crashing or stalling the compiler.
//!
//! pest is a recursive-descent parser: every nested `(`, `[` or `{` is a few stack frames, so
//! nesting is measured by a flat scan *before* pest sees the text. Expressions are measured by
//! their number of parts before the Pratt parser (which recurses once per prefix operator)
//! builds a tree, which also bounds the depth of every later recursive pass.

/// Largest rule file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Deepest nesting of `(`, `[` and `{` accepted in one file.
pub const MAX_NESTING: usize = 64;
/// Most tokens (names, literals, operators, calls) in one mapping source or guard.
pub const MAX_EXPRESSION_PARTS: usize = 256;
/// Budget of pest rule calls per parse (see `pest::set_call_limit`); generous for 1 MiB files.
pub const PEST_CALL_LIMIT: usize = 50_000_000;
/// Most custom fields (built-ins not counted).
pub const MAX_FIELDS: usize = 200;

/// Where nesting first goes deeper than [`MAX_NESTING`]: the byte offset of the opening
/// bracket that is one too many. Strings, backquoted names and comments are skipped, so their
/// contents never count.
pub fn find_excessive_nesting(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_measured_outside_strings_and_comments() {
        let deep = "(".repeat(MAX_NESTING + 1);
        assert_eq!(find_excessive_nesting(&deep), Some(MAX_NESTING));
        assert_eq!(find_excessive_nesting(&"(".repeat(MAX_NESTING)), None);
        let quoted = format!("\"{deep}\" # {deep}\n`{deep}`");
        assert_eq!(find_excessive_nesting(&quoted), None);
        let balanced = "()".repeat(10_000);
        assert_eq!(find_excessive_nesting(&balanced), None);
    }
}
