//! Trimming the generated JSON Schemas for `tools/list`, where every token is paid for by
//! every agent that connects.
//!
//! What goes: `$schema` (MCP says 2020-12 already), `title`s (the property name says it),
//! numeric `format`s such as `int64` / `uint32` (the `type` and `minimum` say what matters),
//! and, in inputs only, `null` as an alternative of an optional property (absent and `null`
//! mean the same to every input: serde reads both as `None`). Definitions used once are
//! inlined; shared ones stay under `$defs`; empty defaults (`""`, `[]`, `false`) and
//! `additionalProperties: true` go, since absent means the same; markdown code marks leave descriptions. What stays: every
//! property, `required`, `enum`, bounds, real defaults, patterns and descriptions.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Keywords whose value is one schema.
const ONE: &[&str] = &[
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "unevaluatedProperties",
    "propertyNames",
];
/// Keywords whose value is a list of schemas.
const MANY: &[&str] = &["anyOf", "oneOf", "allOf", "prefixItems"];
/// Keywords whose value maps names to schemas.
const MAPS: &[&str] = &["properties", "patternProperties", "$defs", "definitions"];

/// Formats that only restate the numeric type.
const NUMERIC_FORMATS: &[&str] = &[
    "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float",
    "double", "int", "uint128", "int128",
];

/// A tool's `inputSchema`.
pub fn input(schema: &Value) -> Value {
    let mut s = inline_defs(schema.clone());
    clean(&mut s, true);
    if let Value::Object(m) = &mut s {
        // MCP requires an object at the root; the input type's own doc repeats the tool's
        // description.
        m.entry("type").or_insert(Value::from("object"));
        m.remove("description");
    }
    s
}

/// Whether an operation's result is a JSON object (so it can be `structuredContent`).
///
/// The listing carries no `outputSchema`: at the top every result is `{"data": …}` or
/// `{"data": […], "pagination": …}`, so a schema saying only that costs a dozen tokens per
/// tool for nothing an agent needs, and the complete shapes would cost more than the rest of
/// the list together (11,000 tokens for the seed 003 tools). Results still carry
/// `structuredContent`; the full shapes are in `/openapi.json`.
pub fn is_object(schema: &Value) -> bool {
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    resolve(schema, &defs).get("type").and_then(Value::as_str) == Some("object")
}

/// Markdown code marks cost tokens and mean nothing to a model reading JSON.
pub fn plain(text: &str) -> String {
    text.replace('`', "")
}

/// Follows a local `$ref` (one level is all schemars emits).
fn resolve<'a>(node: &'a Value, defs: &'a Value) -> &'a Value {
    node.get("$ref")
        .and_then(Value::as_str)
        .and_then(def_name)
        .and_then(|n| defs.get(n))
        .unwrap_or(node)
}

/// Inlines every `$defs` entry referenced once (and not from itself); keeps the rest.
fn inline_defs(mut root: Value) -> Value {
    let Some(Value::Object(defs)) = root.as_object_mut().and_then(|m| m.remove("$defs")) else {
        return root;
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    count_refs(&root, &mut counts);
    for d in defs.values() {
        count_refs(d, &mut counts);
    }
    let inlinable = |name: &str| {
        counts.get(name) == Some(&1) && defs.get(name).is_some_and(|d| !refers_to(d, name))
    };
    // Inline repeatedly: a definition inlined into another may bring its own references.
    let mut kept: Map<String, Value> = Map::new();
    for (name, d) in &defs {
        if !inlinable(name) && counts.get(name).copied().unwrap_or(0) > 0 {
            kept.insert(name.clone(), d.clone());
        }
    }
    for _ in 0..8 {
        if !replace_refs(&mut root, &defs, &inlinable) {
            break;
        }
    }
    for d in kept.values_mut() {
        for _ in 0..8 {
            if !replace_refs(d, &defs, &inlinable) {
                break;
            }
        }
    }
    if !kept.is_empty()
        && let Value::Object(m) = &mut root
    {
        m.insert("$defs".into(), Value::Object(kept));
    }
    root
}

fn def_name(r: &str) -> Option<&str> {
    r.strip_prefix("#/$defs/")
}

fn count_refs(v: &Value, counts: &mut HashMap<String, usize>) {
    match v {
        Value::Object(m) => {
            if let Some(name) = m.get("$ref").and_then(Value::as_str).and_then(def_name) {
                *counts.entry(name.to_owned()).or_default() += 1;
            }
            m.values().for_each(|x| count_refs(x, counts));
        }
        Value::Array(a) => a.iter().for_each(|x| count_refs(x, counts)),
        _ => {}
    }
}

fn refers_to(v: &Value, name: &str) -> bool {
    let mut c = HashMap::new();
    count_refs(v, &mut c);
    c.contains_key(name)
}

/// Replaces inlinable references by their definitions; `true` when one was replaced.
fn replace_refs(
    v: &mut Value,
    defs: &Map<String, Value>,
    inlinable: &impl Fn(&str) -> bool,
) -> bool {
    match v {
        Value::Object(m) => {
            let target = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(def_name)
                .filter(|n| inlinable(n))
                .and_then(|n| defs.get(n))
                .cloned();
            if let Some(Value::Object(def)) = target {
                m.remove("$ref");
                // Keywords beside the reference (a description) win over the definition's.
                for (k, x) in def {
                    m.entry(k).or_insert(x);
                }
                replace_refs(v, defs, inlinable);
                return true;
            }
            let mut any = false;
            for x in m.values_mut() {
                any |= replace_refs(x, defs, inlinable);
            }
            any
        }
        Value::Array(a) => {
            let mut any = false;
            for x in a {
                any |= replace_refs(x, defs, inlinable);
            }
            any
        }
        _ => false,
    }
}

/// Removes the noise from one schema node and its sub-schemas. `input`: optional properties
/// also lose their `null` alternative.
fn clean(v: &mut Value, input: bool) {
    let Value::Object(m) = v else { return };
    m.remove("$schema");
    m.remove("title");
    if input && let Some(Value::String(d)) = m.get_mut("description") {
        *d = plain(d);
    }
    if m.get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| NUMERIC_FORMATS.contains(&f))
    {
        m.remove("format");
    }
    if input && m.get("additionalProperties") == Some(&Value::Bool(true)) {
        // Any extra property is allowed anyway.
        m.remove("additionalProperties");
    }
    if input && m.get("default").is_some_and(is_empty_default) {
        // Absent already means empty, false or zero items.
        m.remove("default");
    }
    if input
        && let Some(Value::Object(items)) = m.get_mut("items")
        && items.get("type").and_then(Value::as_str) == Some("object")
    {
        // The element type's doc ("The fields of a new entry.") says what the list's does.
        items.remove("description");
    }
    let required: Vec<String> = m
        .get("required")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    for k in ONE {
        if let Some(x) = m.get_mut(*k) {
            clean(x, input);
        }
    }
    for k in MANY {
        if let Some(Value::Array(a)) = m.get_mut(*k) {
            a.iter_mut().for_each(|x| clean(x, input));
        }
    }
    for k in MAPS {
        if let Some(Value::Object(props)) = m.get_mut(*k) {
            for (name, x) in props.iter_mut() {
                if input && *k == "properties" && !required.contains(name) {
                    drop_null(x);
                }
                clean(x, input);
            }
        }
    }
    if input {
        order_keys(m);
    }
}

/// Puts a schema's keywords in the order that tokenizes shortest (measured with `o200k_base`
/// on the seed 003 tools: about 60 tokens fewer than schemars' order); the rest keep theirs.
fn order_keys(m: &mut Map<String, Value>) {
    const FIRST: &[&str] = &["description", "type", "items", "properties", "required"];
    let mut keys: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
    // Stable: keywords not listed keep their relative order, after the listed ones.
    keys.sort_by_key(|(k, _)| FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()));
    m.extend(keys);
}

fn is_empty_default(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty_default),
        Value::Number(_) | Value::Bool(true) => false,
    }
}

/// Makes an optional property's schema say what to send: `["string", "null"]` → `"string"`,
/// `null` out of `enum`, `{"type": "null"}` out of `anyOf`, no `default: null`.
fn drop_null(v: &mut Value) {
    let Value::Object(m) = v else { return };
    if let Some(Value::Array(types)) = m.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let t = types.remove(0);
            m.insert("type".into(), t);
        }
    }
    if let Some(Value::Array(e)) = m.get_mut("enum") {
        e.retain(|x| !x.is_null());
    }
    if m.get("default").is_some_and(Value::is_null) {
        m.remove("default");
    }
    for k in ["anyOf", "oneOf"] {
        let Some(Value::Array(alts)) = m.get_mut(k) else {
            continue;
        };
        alts.retain(|a| a.get("type").and_then(Value::as_str) != Some("null"));
        if alts.len() == 1 {
            let only = alts.remove(0);
            m.remove(k);
            if let Value::Object(o) = only {
                for (key, x) in o {
                    m.entry(key).or_insert(x);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn optional_inputs_lose_null_and_noise() {
        let s = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "X",
            "type": "object",
            "properties": {
                "title": {"type": "string", "description": "kept: a property named title"},
                "limit": {"type": ["integer", "null"], "format": "int64", "minimum": 1},
                "kind": {"type": ["string", "null"], "enum": ["a", "b", null]},
                "page": {"anyOf": [{"$ref": "#/$defs/Page"}, {"type": "null"}]},
                "must": {"type": ["string", "null"]}
            },
            "required": ["title", "must"],
            "$defs": {"Page": {"type": "object", "title": "Page", "properties": {"n": {"type": "integer"}}}}
        });
        let t = input(&s);
        assert_eq!(
            t,
            json!({
                "type": "object",
                "properties": {
                    "title": {"type": "string", "description": "kept: a property named title"},
                    "limit": {"type": "integer", "minimum": 1},
                    "kind": {"type": "string", "enum": ["a", "b"]},
                    "page": {"type": "object", "properties": {"n": {"type": "integer"}}},
                    "must": {"type": ["string", "null"]}
                },
                "required": ["title", "must"]
            })
        );
    }

    #[test]
    fn shared_definitions_stay_shared() {
        let s = json!({
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/T"}, "b": {"$ref": "#/$defs/T"}},
            "$defs": {"T": {"type": "string", "enum": ["x"]}}
        });
        let t = input(&s);
        assert_eq!(t["$defs"]["T"]["enum"], json!(["x"]));
        assert_eq!(t["properties"]["a"]["$ref"], "#/$defs/T");
    }

    #[test]
    fn objects_are_told_apart() {
        let s = json!({
            "type": "object",
            "title": "Data",
            "properties": {
                "x": {"type": ["string", "null"], "description": "d"},
                "data": {"$ref": "#/$defs/T"},
                "any": {"anyOf": [{"type": "string"}, {"type": "integer"}]}
            },
            "required": ["data"],
            "$defs": {"T": {"type": "object", "properties": {"id": {"type": "string"}}}}
        });
        assert!(is_object(&s));
        assert!(is_object(
            &json!({"$ref": "#/$defs/T", "$defs": {"T": {"type": "object"}}})
        ));
        assert!(!is_object(&json!({"type": "array"})));
    }
}
