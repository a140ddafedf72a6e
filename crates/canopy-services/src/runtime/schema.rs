//! JSON Schema checks for bud and branch `input_schema` (run requests) and for `llm` answers
//! with `response: json`. Schemas are the draft the document declares (2020-12 by default).

use serde_json::Value;

/// At most this many problems are named in one message.
const MAX_REPORTED: usize = 5;

/// Whether `schema` is a usable JSON Schema (authoring-time check).
pub fn valid_schema(schema: &Value) -> Result<(), String> {
    jsonschema::validator_for(schema)
        .map(|_| ())
        .map_err(|e| format!("not a valid JSON Schema: {e}"))
}

/// Checks `v` against `schema`; the message names where it fails (`/path: why; …`).
pub fn check(schema: &Value, v: &Value) -> Result<(), String> {
    let validator =
        jsonschema::validator_for(schema).map_err(|e| format!("not a valid JSON Schema: {e}"))?;
    let problems: Vec<String> = validator
        .iter_errors(v)
        .take(MAX_REPORTED)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_the_failing_path() {
        let s =
            json!({"type": "object", "required": ["q"], "properties": {"n": {"type": "integer"}}});
        assert!(check(&s, &json!({"q": "x", "n": 2})).is_ok());
        let e = check(&s, &json!({"n": "two"})).unwrap_err();
        assert!(e.contains("/n"), "{e}");
        assert!(e.contains("\"q\""), "{e}");
        assert!(valid_schema(&json!({"type": "nope"})).is_err());
    }
}
