//! "Did you mean …?" for enum mistakes: the accepted value nearest by edit distance.

/// Levenshtein distance over chars, case-insensitive.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate, if it is close enough to be a plausible typo (at most a third of
/// the longer word, minimum 2 edits), or if one candidate starts with the input.
pub fn closest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = input.to_lowercase();
    candidates
        .iter()
        .map(|c| (distance(input, c), *c))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, c)| *d <= (c.len().max(input.len()) / 3).max(2) || c.starts_with(&lower))
        .map(|(_, c)| c)
}

/// Checks `value` against the accepted set, answering a mistake with 422 `invalid_type`,
/// the accepted values and the nearest one as a suggestion.
pub fn parse_enum(
    value: &str,
    field: &str,
    accepted: &[&'static str],
) -> Result<&'static str, crate::Error> {
    if let Some(v) = accepted.iter().find(|a| **a == value) {
        return Ok(v);
    }
    let mut err = crate::Error::new(
        crate::Code::InvalidType,
        format!(
            "'{value}' is not a valid value for {field}. Accepted values are: {}.",
            accepted.join(", ")
        ),
    )
    .with_field(field);
    if let Some(best) = closest(value, accepted) {
        err = err.with_suggestion(format!("Did you mean '{best}'?"));
    }
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("Fact", "fact"), 0);
    }

    #[test]
    fn closest_finds_typos_only() {
        let c = [
            "rule", "pattern", "snippet", "decision", "fact", "warning", "event",
        ];
        assert_eq!(closest("warnig", &c), Some("warning"));
        assert_eq!(closest("snipet", &c), Some("snippet"));
        assert_eq!(closest("decison", &c), Some("decision"));
        assert_eq!(closest("xyzzyxyzzy", &c), None);
    }
}
