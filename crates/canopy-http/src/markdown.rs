//! `Accept: text/markdown`: the same answer as JSON, rendered for reading (by people and by
//! agents that prefer prose). One generic renderer serves every operation: a list becomes a
//! section per item, an object a list of its fields; long text fields (`body`, `description`)
//! are set as paragraphs after the fields.

use serde_json::{Map, Value};

/// Fields shown as the heading of an item, in order of preference.
const HEADING_FIELDS: &[&str] = &["title", "name", "value", "id"];
/// Fields rendered as paragraphs rather than bullets.
const TEXT_FIELDS: &[&str] = &["body", "description", "content"];

/// Whether the request asks for markdown (and prefers it to JSON).
pub fn wants_markdown(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|first| first.trim().starts_with("text/markdown"))
    })
}

pub fn render(title: &str, v: &Value) -> String {
    let mut out = format!("# {title}\n\n");
    match v {
        Value::Object(o) if o.contains_key("data") => {
            render_value(&mut out, &o["data"], 2);
            if let Some(Value::Object(p)) = o.get("pagination") {
                let more = p.get("has_more").and_then(Value::as_bool).unwrap_or(false);
                out.push_str(&format!("\n---\n{} item(s) shown", count(&o["data"])));
                if more && let Some(c) = p.get("next_cursor").and_then(Value::as_str) {
                    out.push_str(&format!("; more with `cursor={c}`"));
                }
                out.push('\n');
            }
        }
        other => render_value(&mut out, other, 2),
    }
    out
}

fn count(v: &Value) -> usize {
    v.as_array().map_or(1, Vec::len)
}

fn render_value(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Array(items) if items.is_empty() => out.push_str("_None._\n"),
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(o) => render_object(out, o, level),
                    scalar => out.push_str(&format!("- {}\n", inline(scalar))),
                }
            }
        }
        Value::Object(o) => render_object(out, o, level),
        scalar => out.push_str(&format!("{}\n", inline(scalar))),
    }
}

fn render_object(out: &mut String, o: &Map<String, Value>, level: usize) {
    let heading = HEADING_FIELDS
        .iter()
        .find_map(|f| o.get(*f).and_then(Value::as_str));
    if let Some(h) = heading {
        out.push_str(&format!(
            "{} {}\n\n",
            "#".repeat(level.min(6)),
            h.replace('\n', " ")
        ));
    }
    for (k, v) in o {
        if TEXT_FIELDS.contains(&k.as_str())
            || heading
                .is_some_and(|h| v.as_str() == Some(h) && HEADING_FIELDS.contains(&k.as_str()))
        {
            continue;
        }
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                out.push_str(&format!("- **{k}**:\n"));
                for (ik, iv) in inner {
                    out.push_str(&format!("  - {ik}: {}\n", inline(iv)));
                }
            }
            _ => out.push_str(&format!("- **{k}**: {}\n", inline(v))),
        }
    }
    for f in TEXT_FIELDS {
        if let Some(Value::String(t)) = o.get(*f)
            && !t.is_empty()
        {
            out.push_str(&format!("\n{t}\n"));
        }
    }
    out.push('\n');
}

fn inline(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.replace('\n', " "),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            if a.is_empty() {
                "—".to_owned()
            } else {
                a.iter().map(inline).collect::<Vec<_>>().join(", ")
            }
        }
        other => format!("`{other}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_render_a_section_per_item() {
        let v = json!({"data": [{"id": "ctx_1", "title": "Use UTC", "tags": ["a", "b"], "body": "All times.", "meta": {"x": 1}}],
                       "pagination": {"has_more": true, "next_cursor": "abc", "limit": 1}});
        let md = render("Context", &v);
        assert!(md.starts_with("# Context\n"), "{md}");
        assert!(md.contains("## Use UTC\n"), "{md}");
        assert!(md.contains("- **tags**: a, b\n"), "{md}");
        assert!(md.contains("\nAll times.\n"), "{md}");
        assert!(md.contains("  - x: `1`"), "{md}");
        assert!(md.contains("`cursor=abc`"), "{md}");
    }

    #[test]
    fn accept_parsing() {
        assert!(wants_markdown(Some("text/markdown")));
        assert!(wants_markdown(Some(
            "text/markdown; charset=utf-8, application/json"
        )));
        assert!(!wants_markdown(Some("application/json, text/markdown")));
        assert!(!wants_markdown(None));
    }
}
