//! "Did you mean ...": the nearest known name by edit distance.

/// The candidate closest to `name`, when it is close enough to be a likely typo: equal ignoring
/// case, or at most one edit per three characters (and never more than three edits).
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
            let d = if c.to_lowercase() == lower {
                0
            } else {
                strsim::damerau_levenshtein(&lower, &c.to_lowercase())
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
    }
}
