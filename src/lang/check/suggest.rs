//! "Did you mean ...": the nearest known name by edit distance.

/// The candidate closest to `name`, when it is close enough to be a likely typo: equal ignoring
/// case, one a prefix of the other (three characters or more), or at most one edit per three
/// characters (and never more than three edits).
pub fn did_you_mean<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = name.to_lowercase();
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| {
            let cl = c.to_lowercase();
            let d = if cl == lower {
                0
            } else if lower.len() >= 3 && (cl.starts_with(&lower) || lower.starts_with(&cl)) {
                // `success` → `successful`, `lowercase` → `lower`: a prefix is a strong hint.
                1
            } else {
                strsim::damerau_levenshtein(&lower, &cl)
            };
            (d, c)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_only_near_names() {
        let fields = ["email", "lead_status", "deal_size"];
        assert_eq!(did_you_mean("emial", fields), Some("email"));
        assert_eq!(did_you_mean("Lead_Status", fields), Some("lead_status"));
        assert_eq!(did_you_mean("revenue", fields), None);
        assert_eq!(did_you_mean("e", fields), None);
        assert_eq!(did_you_mean("lowercase", ["lower", "upper"]), Some("lower"));
        assert_eq!(
            did_you_mean("success", ["successful", "summary"]),
            Some("successful")
        );
    }
}
