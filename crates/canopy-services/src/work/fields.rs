//! Field checks the work services share (tasks, runbooks): one rule and one message each.

use canopy_core::Error;

/// Trimmed text of 1 to `max` characters.
pub fn required_text(field: &str, s: &str, max: usize) -> Result<String, Error> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(Error::validation(
            field,
            format!("{field} must be 1 to {max} characters."),
        ));
    }
    Ok(t.to_owned())
}

/// Markdown of at most 50,000 characters, kept as written.
pub fn description(s: &str) -> Result<String, Error> {
    if s.chars().count() > 50_000 {
        return Err(Error::validation(
            "description",
            "description must be at most 50,000 characters.",
        ));
    }
    Ok(s.to_owned())
}

/// A lower-cased category of at most 64 characters; blank means none.
pub fn category(c: Option<String>) -> Result<Option<String>, Error> {
    match c.map(|c| c.trim().to_lowercase()).filter(|c| !c.is_empty()) {
        Some(c) if c.chars().count() > 64 => Err(Error::validation(
            "category",
            "category must be at most 64 characters.",
        )),
        other => Ok(other),
    }
}

/// Up to 20 tags of 1–64 characters, stored lower-cased, sorted and unique, as JSON.
pub fn tags_json(t: &[String]) -> Result<String, Error> {
    if t.len() > 20
        || t.iter()
            .any(|x| x.trim().is_empty() || x.chars().count() > 64)
    {
        return Err(Error::validation(
            "tags",
            "Up to 20 tags of 1 to 64 characters.",
        ));
    }
    let mut v: Vec<String> = t.iter().map(|x| x.trim().to_lowercase()).collect();
    v.sort();
    v.dedup();
    Ok(serde_json::to_string(&v)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert_eq!(required_text("title", "  x ", 3).unwrap(), "x");
        assert!(required_text("title", "   ", 3).is_err());
        assert!(required_text("title", "abcd", 3).is_err());
        assert_eq!(
            category(Some(" Ops ".into())).unwrap().as_deref(),
            Some("ops")
        );
        assert_eq!(category(Some(" ".into())).unwrap(), None);
        assert_eq!(
            tags_json(&["B".into(), "a".into(), "b".into()]).unwrap(),
            r#"["a","b"]"#
        );
        assert!(tags_json(&[" ".into()]).is_err());
    }
}
