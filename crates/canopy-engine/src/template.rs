//! minijinja templates for prompts, URLs, headers, bodies and mappings.
//!
//! Bounds, since templates are authored by users and rendered on workers:
//! - fuel ([`FUEL`] instructions): a loop bomb stops with an error instead of spinning;
//! - output ([`MAX_OUTPUT`] bytes): rendering stops with an error once the output is over;
//! - no loader, no macros, no includes (those minijinja features are off), so a template sees
//!   only the context it is given.
//!
//! Undefined values follow minijinja's `Chainable` behaviour: printing one gives the empty
//! string, iterating one gives nothing, `{% if x.y.z %}` is false and a lookup on one is
//! undefined again. Steps read optional upstream outputs (`steps.a.output.field` when `a` was
//! skipped), so failing on those would make templates brittle; nothing unsafe comes of it.
//!
//! Residual risk: minijinja itself caps a single string repetition at 100 MB but not repeated
//! concatenation, so a template can still build large intermediate strings within its fuel;
//! templates are authored by an organisation's admins, not by run callers.

use std::cell::Cell;
use std::io;

use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use serde_json::Value;

/// Instructions one render may execute.
pub const FUEL: u64 = 100_000;
/// Bytes one render may produce.
pub const MAX_OUTPUT: usize = 1024 * 1024;
/// Nesting of blocks and calls minijinja accepts.
const RECURSION_LIMIT: usize = 100;

fn environment<'s>() -> Environment<'s> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_recursion_limit(RECURSION_LIMIT);
    // No HTML escaping: outputs are URLs, JSON strings and prompts, not markup.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env
}

/// Renders `src` over `ctx`. Errors name the kind, the detail and the line.
pub fn render(src: &str, ctx: &Value) -> Result<String, String> {
    Context::new(ctx).render(src)
}

/// Renders every string inside `v` that holds template syntax (`{{` or `{%`); other values
/// are copied as they are. Rendered strings stay strings, even when the whole string is one
/// expression of another type (`"{{ 1 + 1 }}"` becomes `"2"`).
pub fn render_value(v: &Value, ctx: &Value) -> Result<Value, String> {
    Context::new(ctx).render_value(v)
}

/// A context converted once for several renders (converting copies the whole value, and a
/// step's context holds every earlier output).
#[derive(Clone, Debug)]
pub struct Context(minijinja::Value);

impl Context {
    pub fn new(ctx: &Value) -> Self {
        Context(minijinja::Value::from(minijinja::value::Serde(ctx)))
    }

    /// [`render`] over this context.
    pub fn render(&self, src: &str) -> Result<String, String> {
        let env = environment();
        let tmpl = env.template_from_str(src).map_err(|e| describe(&e))?;
        let over = Cell::new(false);
        let mut out = CappedWriter {
            buf: Vec::new(),
            over: &over,
        };
        match tmpl.render_captured_to(self.0.clone(), &mut out) {
            Ok(_) => String::from_utf8(out.buf)
                .map_err(|_| "template output is not valid UTF-8".to_owned()),
            Err(_) if over.get() => Err(format!("template output is over {MAX_OUTPUT} bytes")),
            Err(e) => Err(describe(&e)),
        }
    }

    /// [`render_value`] over this context.
    pub fn render_value(&self, v: &Value) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) if has_syntax(s) => Value::String(self.render(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.render_value(i))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, item) in map {
                    let rendered = self.render_value(item).map_err(|e| format!("{k}: {e}"))?;
                    out.insert(k.clone(), rendered);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
}

/// Syntax check, for validation when a definition is authored.
pub fn check(src: &str) -> Result<(), String> {
    environment()
        .template_from_str(src)
        .map(|_| ())
        .map_err(|e| describe(&e))
}

/// Whether `s` contains template syntax at all (plain strings are not parsed). Comments
/// (`{#`) alone do not count, so a plain `{#tag}` in a body stays as it is.
pub fn has_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

fn describe(e: &Error) -> String {
    let what = match e.kind() {
        ErrorKind::OutOfFuel => format!("template ran out of fuel ({FUEL} instructions)"),
        kind => match e.detail() {
            Some(d) => format!("{kind}: {d}"),
            None => kind.to_string(),
        },
    };
    match e.line() {
        Some(line) => format!("{what} (line {line})"),
        None => what,
    }
}

/// Collects output and fails the write that would take it over [`MAX_OUTPUT`].
struct CappedWriter<'a> {
    buf: Vec<u8>,
    over: &'a Cell<bool>,
}

impl io::Write for CappedWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > MAX_OUTPUT {
            self.over.set(true);
            return Err(io::Error::other("template output too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_context() {
        let ctx = json!({"input": {"name": "Ada", "n": [1, 2, 3]}});
        assert_eq!(
            render("Hi {{ input.name }}: {{ input.n | join(',') }}", &ctx).unwrap(),
            "Hi Ada: 1,2,3"
        );
        // tojson gives valid JSON (minijinja escapes `<` as \u003c, which JSON parsers accept).
        let out = render("{{ input | tojson }}", &json!({"input": {"a": "<b>"}})).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap(),
            json!({"a": "<b>"})
        );
    }

    #[test]
    fn no_html_escaping() {
        assert_eq!(
            render("{{ x }}", &json!({"x": "a&b<c>"})).unwrap(),
            "a&b<c>"
        );
    }

    #[test]
    fn undefined_is_lenient() {
        let ctx = json!({"steps": {}});
        assert_eq!(render("[{{ steps.a.output.x }}]", &ctx).unwrap(), "[]");
        assert_eq!(
            render("{% if steps.a.output %}y{% else %}n{% endif %}", &ctx).unwrap(),
            "n"
        );
        assert_eq!(
            render("{% for i in missing %}x{% endfor %}.", &ctx).unwrap(),
            "."
        );
    }

    #[test]
    fn loop_bomb_runs_out_of_fuel() {
        let e = render(
            "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}",
            &json!({}),
        )
        .unwrap_err();
        assert!(e.contains("fuel"), "{e}");
    }

    #[test]
    fn output_is_capped() {
        let e = render("{{ 'x' * 2000000 }}", &json!({})).unwrap_err();
        assert!(e.contains("over"), "{e}");
        // Just under the cap is fine.
        assert_eq!(render("{{ 'x' * 1000 }}", &json!({})).unwrap().len(), 1000);
    }

    #[test]
    fn errors_name_the_line() {
        let e = render("a\nb\n{{ 1 + }}", &json!({})).unwrap_err();
        assert!(e.contains("syntax error") && e.contains("line 3"), "{e}");
        let e = check("ok\n{% if x %}").unwrap_err();
        assert!(e.contains("line"), "{e}");
        assert!(check("{{ a.b | upper }}").is_ok());
        let e = render("x\n{{ 1 / 0 }}", &json!({})).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn render_value_walks_strings() {
        let ctx = json!({"input": {"id": 7, "tag": "t"}});
        let v = json!({
            "url": "/items/{{ input.id }}",
            "plain": "no {braces} here",
            "hash": "{#tag}",
            "n": 3,
            "list": ["{{ input.tag }}", true, null],
            "nested": {"sum": "{{ input.id + 1 }}"}
        });
        assert_eq!(
            render_value(&v, &ctx).unwrap(),
            json!({
                "url": "/items/7",
                "plain": "no {braces} here",
                "hash": "{#tag}",
                "n": 3,
                "list": ["t", true, null],
                "nested": {"sum": "8"}
            })
        );
        let e = render_value(&json!({"bad": "{{ 1 + }}"}), &ctx).unwrap_err();
        assert!(e.starts_with("bad: "), "{e}");
    }
}
