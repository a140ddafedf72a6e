//! jq expressions (through jaq) for `when`, `for_each`, `transform` and input mappings.
//!
//! Expressions are evaluated over the run's context:
//! `{"input": <run input>, "steps": {<id>: {"status", "output", "error"}}, "item", "index"}`
//! (`item` and `index` only inside a `for_each` element).
//!
//! Filters that reach outside the value are removed: `env` would hand the server's
//! environment (database URLs, keys) to whoever writes a branch, and `input`/`inputs` have
//! no stream to read here. (The standard definitions build on the other natives, so those stay.)

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, mpsc};

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

/// Native filters a user expression may not call.
const DENIED: &[&str] = &["env", "input", "inputs"];

/// Most outputs one expression may produce (a runaway generator stops here).
const MAX_OUTPUTS: usize = 10_000;

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// Compiled filters, shared by every thread. Compiling loads jq's whole standard library
/// (milliseconds each time), while the same few expressions of a branch run over and over.
const CACHE_MAX: usize = 512;

static CACHE: LazyLock<Mutex<HashMap<String, Arc<Filter>>>> = LazyLock::new(Mutex::default);

fn compiled(code: &str) -> Result<Arc<Filter>, String> {
    if let Some(f) = CACHE.lock().ok().and_then(|c| c.get(code).cloned()) {
        return Ok(f);
    }
    let f = Arc::new(compile(code)?);
    if let Ok(mut c) = CACHE.lock() {
        if c.len() >= CACHE_MAX {
            c.clear();
        }
        c.insert(code.to_owned(), f.clone());
    }
    Ok(f)
}

/// Stack of the threads expressions run on. jaq recurses on the native stack (evaluating,
/// formatting and dropping nested values), and an overflow aborts the whole process; this
/// much (reserved, committed only as used) takes nesting a hundred times deeper than a
/// runtime thread's 2 MiB before that could happen.
const EVAL_STACK: usize = 256 << 20;

/// Idle evaluation threads kept for reuse (starting one per evaluation costs more than most
/// evaluations).
const MAX_IDLE: usize = 16;

type Job = Box<dyn FnOnce() + Send>;

/// Senders to idle evaluation threads; a thread puts itself back after each job.
static IDLE: LazyLock<Mutex<Vec<mpsc::Sender<Job>>>> = LazyLock::new(Mutex::default);

fn start_evaluator() -> Result<mpsc::Sender<Job>, String> {
    let (tx, rx) = mpsc::channel::<Job>();
    let me = tx.clone();
    std::thread::Builder::new()
        .name("canopy-jq".to_owned())
        .stack_size(EVAL_STACK)
        .spawn(move || {
            for job in rx {
                job();
                match IDLE.lock() {
                    Ok(mut idle) if idle.len() < MAX_IDLE => idle.push(me.clone()),
                    _ => return,
                }
            }
        })
        .map_err(|e| format!("could not start evaluating the expression: {e}"))?;
    Ok(tx)
}

/// Runs `f` on an evaluation thread (an idle one, or a new one) and waits for its answer.
fn on_big_stack<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let (answer, result) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        // A panic inside jaq fails this evaluation, not the thread.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .unwrap_or_else(|_| Err("the expression failed unexpectedly".to_owned()));
        let _ = answer.send(r);
    });
    let idle = IDLE.lock().ok().and_then(|mut i| i.pop());
    let job = match idle {
        Some(thread) => match thread.send(job) {
            Ok(()) => None,
            Err(mpsc::SendError(job)) => Some(job),
        },
        None => Some(job),
    };
    if let Some(job) = job {
        start_evaluator()?
            .send(job)
            .map_err(|_| "could not start evaluating the expression".to_owned())?;
    }
    result
        .recv()
        .map_err(|_| "the expression failed unexpectedly".to_owned())?
}

fn compile(code: &str) -> Result<Filter, String> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .filter(|f| !DENIED.contains(&f.0));
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(&arena, File { code, path: () })
        .map_err(|errs| format!("invalid jq expression `{code}`: {}", describe(&errs)))?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| format!("invalid jq expression `{code}`: {}", describe(&errs)))
}

fn describe<T: std::fmt::Debug>(errs: &[T]) -> String {
    // jaq's error types carry spans and expected tokens; their debug form names the problem.
    let text = format!("{errs:?}");
    text.chars().take(300).collect()
}

/// Checks that `code` parses, names only known filters, and uses no unbounded recursion.
pub fn check(code: &str) -> Result<(), String> {
    refuse_recursion(code)?;
    compiled(code).map(|_| ())
}

/// Forms whose recursion has no bound but time. jaq recurses on the native stack, and a
/// stack overflow aborts the whole process (it cannot be caught), so an expression like
/// `def f: 1 + f; f` must never run. User definitions and the recursive combinators are
/// refused outright; `recurse` without arguments (`..`) is bounded by the data's depth.
/// The scan is lexical and also looks inside string literals (an interpolation is code),
/// so a string holding one of these words as a whole word is refused too (`$name` and
/// `.name` are a variable and a field, and pass).
const RECURSIVE: &[(&str, bool)] = &[
    ("def", false),
    ("recurse", true),
    ("repeat", false),
    ("while", false),
    ("until", false),
];

fn refuse_recursion(code: &str) -> Result<(), String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !is_ident(chars[i])
            || (i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == '$' || chars[i - 1] == '.'))
        {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let called = chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&'(');
        for (name, only_with_args) in RECURSIVE {
            if word == *name && (!only_with_args || called) {
                return Err(format!(
                    "`{name}` is not allowed in expressions here (unbounded recursion); use map, reduce, limit or range instead"
                ));
            }
        }
    }
    Ok(())
}

/// Every output of `code` over `ctx`.
pub fn eval(code: &str, ctx: &Value) -> Result<Vec<Value>, String> {
    refuse_recursion(code)?;
    let filter = compiled(code)?;
    let (code, ctx) = (code.to_owned(), ctx.clone());
    on_big_stack(move || eval_with(&filter, &code, ctx))
}

fn eval_with(filter: &Filter, code: &str, ctx: Value) -> Result<Vec<Value>, String> {
    let input: Val = serde_json::from_value(ctx).map_err(|e| e.to_string())?;
    let jctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut out = Vec::new();
    for v in filter.id.run((jctx, input)).map(unwrap_valr) {
        let v = v.map_err(|e| format!("`{code}` failed: {e}"))?;
        out.push(to_json(&v)?);
        if out.len() >= MAX_OUTPUTS {
            return Err(format!("`{code}` produced more than {MAX_OUTPUTS} values"));
        }
    }
    Ok(out)
}

/// The first output of `code` over `ctx`, or null when it produces none.
pub fn eval_one(code: &str, ctx: &Value) -> Result<Value, String> {
    refuse_recursion(code)?;
    let filter = compiled(code)?;
    let (code, ctx) = (code.to_owned(), ctx.clone());
    on_big_stack(move || eval_one_with(&filter, &code, ctx))
}

fn eval_one_with(filter: &Filter, code: &str, ctx: Value) -> Result<Value, String> {
    let input: Val = serde_json::from_value(ctx).map_err(|e| e.to_string())?;
    let jctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    match filter.id.run((jctx, input)).map(unwrap_valr).next() {
        None => Ok(Value::Null),
        Some(Ok(v)) => to_json(&v),
        Some(Err(e)) => Err(format!("`{code}` failed: {e}")),
    }
}

/// Deepest nesting an expression may produce (formatting and parsing recurse per level).
const MAX_DEPTH: usize = 100;

fn to_json(v: &Val) -> Result<Value, String> {
    if too_deep(v) {
        return Err(format!(
            "the expression produced a value nested more than {MAX_DEPTH} levels deep"
        ));
    }
    let mut out = serde_json::from_str(&v.to_string())
        .map_err(|_| format!("the expression produced a value that is not JSON: {v}"))?;
    integral(&mut out);
    Ok(out)
}

/// Measures nesting with a heap stack, not recursion (the point is not to overflow).
fn too_deep(v: &Val) -> bool {
    let mut stack: Vec<(&Val, usize)> = vec![(v, 1)];
    while let Some((v, d)) = stack.pop() {
        if d > MAX_DEPTH {
            return true;
        }
        match v {
            Val::Arr(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Val::Obj(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    false
}

/// Writes whole floats as integers, as jq prints them (`10 / 2` is `5`, not `5.0`).
fn integral(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64())
                && f.fract() == 0.0
                && f.abs() < 9_007_199_254_740_992.0
            {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral),
        Value::Object(o) => o.values_mut().for_each(integral),
        _ => {}
    }
}

/// jq's truth: everything but `false` and `null`.
pub fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

/// Resolves a mapping: objects and arrays are walked, a string that starts with `=` is a jq
/// expression replaced by its first output (`"=.steps.fetch.output.body"`), `"=="` escapes a
/// literal leading `=`, a string with `{{ … }}` or `{% … %}` is a minijinja template rendered
/// to text over the same context, and everything else is kept as written.
pub fn resolve(mapping: &Value, ctx: &Value) -> Result<Value, String> {
    Ok(match mapping {
        Value::String(s) => match s.strip_prefix('=') {
            Some(rest) if rest.starts_with('=') => Value::String(rest.to_owned()),
            Some(code) => eval_one(code, ctx)?,
            None if crate::template::has_syntax(s) => {
                Value::String(crate::template::render(s, ctx)?)
            }
            None => mapping.clone(),
        },
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|v| resolve(v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| resolve(v, ctx).map(|v| (k.clone(), v)))
                .collect::<Result<_, _>>()?,
        ),
        _ => mapping.clone(),
    })
}

/// Checks every expression and template inside a mapping; answers the first problem.
pub fn check_mapping(mapping: &Value) -> Result<(), String> {
    match mapping {
        Value::String(s) => match s.strip_prefix('=') {
            Some(rest) if rest.starts_with('=') => Ok(()),
            Some(code) => check(code),
            None if crate::template::has_syntax(s) => crate::template::check(s),
            None => Ok(()),
        },
        Value::Array(a) => a.iter().try_for_each(check_mapping),
        Value::Object(o) => o.values().try_for_each(check_mapping),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mappings_render_templates_beside_jq() {
        let ctx = json!({"input": {"name": "Ada"}, "steps": {"a": {"output": [1, 2]}}});
        let m = json!({"greeting": "Hi {{ input.name }}", "n": "=.steps.a.output | length", "lit": "plain {x}"});
        assert_eq!(
            resolve(&m, &ctx).unwrap(),
            json!({"greeting": "Hi Ada", "n": 2, "lit": "plain {x}"})
        );
        assert!(check_mapping(&json!({"bad": "{{ unclosed"})).is_err());
    }

    #[test]
    fn evaluates_over_the_context() {
        let ctx = json!({"input": {"n": 2}, "steps": {"a": {"output": [1, 2, 3]}}});
        assert_eq!(eval_one(".input.n + 1", &ctx), Ok(json!(3)));
        assert_eq!(
            eval(".steps.a.output[]", &ctx),
            Ok(vec![json!(1), json!(2), json!(3)])
        );
        assert_eq!(eval_one("empty", &ctx), Ok(Value::Null));
        assert_eq!(
            eval_one("[.steps.a.output[] | . * 2] | add", &ctx),
            Ok(json!(12))
        );
    }

    #[test]
    fn rejects_bad_and_denied_expressions() {
        assert!(check(".a |").is_err());
        assert!(check("env").is_err());
        assert!(check("$ENV").is_err());
        assert!(check("map(. + 1)").is_ok());
        for bad in [
            "def f: 1 + f; f",
            "last(recurse(. + 1))",
            "repeat(.)",
            "\"\\(def f: f; f)\"",
            "until(false; .)",
        ] {
            assert!(check(bad).is_err(), "{bad}");
            assert!(eval_one(bad, &Value::Null).is_err(), "{bad}");
        }
        for fine in [
            ".. | numbers",
            "[recurse] | length",
            ".undefined",
            ".define",
            ".until | .while",
        ] {
            assert!(check(fine).is_ok(), "{fine}");
        }
        // Deep values inside an expression stay on the evaluation thread's big stack (on a
        // 2 MiB runtime thread this aborts the process).
        let inner = eval_one(
            "reduce range(100000) as $i (null; [.]) | length",
            &Value::Null,
        );
        assert_eq!(inner, Ok(json!(1)));
        let deep = eval_one("reduce range(200) as $i (null; [.])", &Value::Null);
        assert!(
            deep.is_err_and(|e| e.contains("nested")),
            "deep output refused"
        );
        assert!(eval_one("error(\"boom\")", &Value::Null).is_err());
    }

    #[test]
    fn resolves_mappings() {
        let ctx = json!({"input": {"name": "x"}});
        let m = json!({"a": "=.input.name", "b": "==lit", "c": ["plain", 1]});
        assert_eq!(
            resolve(&m, &ctx),
            Ok(json!({"a": "x", "b": "=lit", "c": ["plain", 1]}))
        );
    }
}
