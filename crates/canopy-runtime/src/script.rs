//! The `script` step: a rhai script over the step's input and context.
//!
//! Config: `{source, limits?}`. In scope: `input` (the step's resolved input) and `context`
//! (`{input, steps, item?, index?}`); the script's last value is the step's output (unit is
//! null). The script cannot reach files or the network: rhai has no such functions unless
//! registered, module imports go to a resolver that finds nothing, and `eval` is disabled.
//! `print` and `debug` go to tracing (at most [`MAX_LOG_LINES`] lines per run of a script).
//!
//! Limits ([`ScriptLimits`]): operations, wall-clock time (checked by rhai's progress
//! callback), string length, array and map sizes (rhai counts nested values into their
//! container) and call depth. A definition may set its own under `limits`, capped at
//! [`ScriptLimits::HARD`].
//!
//! The script runs on a thread of its own with a [`STACK_SIZE`] stack rather than on tokio's
//! blocking pool: rhai evaluates on the native stack, and an unoptimised build overflows the
//! pool's 2 MiB threads well before the call-depth limit (an overflow aborts the process).
//! A future dropped mid-run (the engine's step timeout, a lost lease) raises a flag the
//! progress callback sees, so the thread stops soon after instead of running to its limits.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use canopy_engine::{BoxFuture, StepCall, StepError, StepExecutor, StepOutput};
use rhai::packages::Package;
use rhai::{Dynamic, Engine, EvalAltResult, Scope};
use serde_json::Value;

/// Stack of a script's thread (address space; pages are touched only as deep as it goes).
pub const STACK_SIZE: usize = 64 * 1024 * 1024;
/// `print`/`debug` lines logged per script run; the rest are dropped.
pub const MAX_LOG_LINES: u32 = 100;
/// Nesting of the result (arrays and maps) a step may output; stored outputs are read back
/// by JSON parsers with a recursion limit.
pub const MAX_RESULT_DEPTH: usize = 100;
/// Nesting depths the parser accepts (expressions at top level, inside functions).
const MAX_EXPR_DEPTH: usize = 64;
const MAX_FN_EXPR_DEPTH: usize = 32;

/// Bounds on one run of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptLimits {
    /// rhai operations (roughly: expressions evaluated).
    pub max_operations: u64,
    /// Wall-clock milliseconds.
    pub max_ms: u64,
    /// Bytes of string, counted over a whole value (an array's strings add up).
    pub max_string_len: usize,
    /// Elements of an array, nested arrays included.
    pub max_array_len: usize,
    /// Entries of an object map, nested maps included.
    pub max_map_len: usize,
    /// Nested function calls.
    pub max_call_depth: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits {
            max_operations: 1_000_000,
            max_ms: 1_000,
            max_string_len: 1024 * 1024,
            max_array_len: 100_000,
            max_map_len: 100_000,
            max_call_depth: 64,
        }
    }
}

impl ScriptLimits {
    /// What a definition's `limits` may raise the defaults to.
    pub const HARD: ScriptLimits = ScriptLimits {
        max_operations: 100_000_000,
        max_ms: 30_000,
        max_string_len: 16 * 1024 * 1024,
        max_array_len: 1_000_000,
        max_map_len: 1_000_000,
        // rhai recurses on the native stack (see STACK_SIZE).
        max_call_depth: 128,
    };

    /// `self` with the overrides in `cfg` (an object of positive integers), each capped at
    /// [`ScriptLimits::HARD`]. Unknown keys are refused so a typo does not pass silently.
    pub fn with_overrides(&self, cfg: Option<&Value>) -> Result<ScriptLimits, String> {
        let mut out = self.clone();
        let map = match cfg {
            None | Some(Value::Null) => return Ok(out),
            Some(Value::Object(m)) => m,
            Some(_) => return Err("limits: expected an object".to_owned()),
        };
        let hard = ScriptLimits::HARD;
        for (key, v) in map {
            let n = v
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("limits.{key}: expected a positive integer"))?;
            let size = |cap: usize| usize::try_from(n).unwrap_or(usize::MAX).min(cap);
            match key.as_str() {
                "max_operations" => out.max_operations = n.min(hard.max_operations),
                "max_ms" => out.max_ms = n.min(hard.max_ms),
                "max_string_len" => out.max_string_len = size(hard.max_string_len),
                "max_array_len" => out.max_array_len = size(hard.max_array_len),
                "max_map_len" => out.max_map_len = size(hard.max_map_len),
                "max_call_depth" => out.max_call_depth = size(hard.max_call_depth),
                other => return Err(format!("limits: unknown limit '{other}'")),
            }
        }
        Ok(out)
    }
}

/// Executor of kind `script`.
#[derive(Clone, Debug, Default)]
pub struct ScriptStep {
    /// The limits of a script that sets none.
    pub defaults: ScriptLimits,
}

impl ScriptStep {
    pub fn new(defaults: ScriptLimits) -> Self {
        ScriptStep { defaults }
    }
}

/// Why a script failed: `script_error` or `script_limit` (both fatal: the same script on the
/// same input fails the same way), or `invalid_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFailure {
    pub code: &'static str,
    pub message: String,
}

impl From<ScriptFailure> for StepError {
    fn from(f: ScriptFailure) -> Self {
        StepError::fatal(f.code, f.message)
    }
}

impl StepExecutor for ScriptStep {
    fn execute(&self, call: StepCall) -> BoxFuture<'_, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let source = match call.config.get("source").and_then(Value::as_str) {
                Some(s) => s.to_owned(),
                None => {
                    return Err(StepError::fatal(
                        "invalid_config",
                        "source: required, a string",
                    ));
                }
            };
            let limits = self
                .defaults
                .with_overrides(call.config.get("limits"))
                .map_err(|m| StepError::fatal("invalid_config", m))?;
            let label = format!("{}/{}", call.run_id, call.step_id);
            let cancel = Arc::new(AtomicBool::new(false));
            let _guard = CancelOnDrop(cancel.clone());
            let (tx, rx) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new()
                .name("canopy-script".to_owned())
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    let result = run(&source, call.input, call.context, &limits, &cancel, &label);
                    // The receiver is gone when the step was abandoned; nothing to report to.
                    let _ = tx.send(result);
                });
            if let Err(e) = spawned {
                return Err(StepError::retryable(
                    "script_error",
                    format!("could not start the script's thread: {e}"),
                ));
            }
            match rx.await {
                Ok(result) => result.map(StepOutput::from).map_err(StepError::from),
                // The thread ended without an answer: a panic inside rhai. It fails the
                // attempt, not the worker.
                Err(_) => Err(StepError::fatal(
                    "script_error",
                    "the script engine failed unexpectedly",
                )),
            }
        })
    }
}

/// Raises the flag when the step's future is dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Compiles `source` without running it, for validation when a definition is authored.
pub fn check(source: &str) -> Result<(), String> {
    let engine = engine(&ScriptLimits::default());
    engine
        .compile(source)
        .map(|_| ())
        .map_err(|e| format!("syntax error: {e}"))
}

/// Runs `source` to completion on the current thread (blocking); `label` names it in logs.
/// The thread needs a deep stack for deep scripts: [`STACK_SIZE`] covers the hard limits.
pub fn run(
    source: &str,
    input: Value,
    context: Value,
    limits: &ScriptLimits,
    cancel: &Arc<AtomicBool>,
    label: &str,
) -> Result<Value, ScriptFailure> {
    let mut engine = engine(limits);
    let deadline = Instant::now() + Duration::from_millis(limits.max_ms);
    let max_ms = limits.max_ms;
    let cancel = cancel.clone();
    engine.on_progress(move |ops| {
        // Reading the clock every operation would dominate tight loops.
        if ops % 256 != 0 {
            return None;
        }
        if cancel.load(Ordering::Relaxed) {
            Some(Dynamic::from("cancelled"))
        } else if Instant::now() >= deadline {
            Some(Dynamic::from(format!("time limit of {max_ms} ms")))
        } else {
            None
        }
    });
    let lines = Arc::new(AtomicU32::new(0));
    let (l1, who1) = (lines.clone(), label.to_owned());
    engine.on_print(move |s| {
        if l1.fetch_add(1, Ordering::Relaxed) < MAX_LOG_LINES {
            tracing::info!(target: "canopy_runtime::script", script = %who1, "{}", clip(s));
        }
    });
    let who2 = label.to_owned();
    engine.on_debug(move |s, _src, pos| {
        if lines.fetch_add(1, Ordering::Relaxed) < MAX_LOG_LINES {
            tracing::debug!(target: "canopy_runtime::script", script = %who2, %pos, "{}", clip(s));
        }
    });

    let ast = engine.compile(source).map_err(|e| ScriptFailure {
        code: "script_error",
        message: format!("syntax error: {e}"),
    })?;
    let mut scope = Scope::new();
    scope.push_dynamic("input", to_dynamic(&input, "input")?);
    scope.push_dynamic("context", to_dynamic(&context, "context")?);
    let out: Dynamic = engine
        .eval_ast_with_scope(&mut scope, &ast)
        .map_err(|e| failure(&e))?;
    if too_deep(&out, 0) {
        return Err(ScriptFailure {
            code: "script_limit",
            message: format!(
                "script limit exceeded: the result is nested over {MAX_RESULT_DEPTH} levels"
            ),
        });
    }
    rhai::serde::from_dynamic::<Value>(&out).map_err(|e| ScriptFailure {
        code: "script_error",
        message: format!("the script's result is not JSON: {e}"),
    })
}

/// Whether arrays and maps nest deeper than `MAX_RESULT_DEPTH - d` inside `v`. The recursion
/// stops at the bound, so it stays shallow however deep the value goes.
fn too_deep(v: &Dynamic, d: usize) -> bool {
    if d > MAX_RESULT_DEPTH {
        return true;
    }
    if let Ok(arr) = v.as_array_ref() {
        arr.iter().any(|x| too_deep(x, d + 1))
    } else if let Ok(map) = v.as_map_ref() {
        map.values().any(|x| too_deep(x, d + 1))
    } else {
        false
    }
}

/// rhai's standard library, built once: building it is most of what `Engine::new` costs.
static STANDARD: LazyLock<rhai::Shared<rhai::Module>> =
    LazyLock::new(|| rhai::packages::StandardPackage::new().as_shared_module());

fn engine(limits: &ScriptLimits) -> Engine {
    // Raw: no file module resolver and no stdout printing (Engine::new has both).
    let mut engine = Engine::new_raw();
    engine.register_global_module(STANDARD.clone());
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.disable_symbol("eval");
    engine.set_max_operations(limits.max_operations);
    engine.set_max_string_size(limits.max_string_len);
    engine.set_max_array_size(limits.max_array_len);
    engine.set_max_map_size(limits.max_map_len);
    engine.set_max_call_levels(limits.max_call_depth);
    engine.set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FN_EXPR_DEPTH);
    engine
}

fn to_dynamic(v: &Value, name: &str) -> Result<Dynamic, ScriptFailure> {
    rhai::serde::to_dynamic(v).map_err(|e| ScriptFailure {
        code: "script_error",
        message: format!("{name} cannot be given to the script: {e}"),
    })
}

/// The innermost error, past calls into functions.
fn root(e: &EvalAltResult) -> &EvalAltResult {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => root(inner),
        other => other,
    }
}

fn failure(e: &EvalAltResult) -> ScriptFailure {
    let limit = match root(e) {
        EvalAltResult::ErrorTooManyOperations(_) => Some("too many operations".to_owned()),
        EvalAltResult::ErrorDataTooLarge(what, _) => Some(format!("{what} too large")),
        EvalAltResult::ErrorStackOverflow(_) => Some("calls nested too deeply".to_owned()),
        EvalAltResult::ErrorTooManyVariables(_) | EvalAltResult::ErrorTooManyModules(_) => {
            Some("too many variables or modules".to_owned())
        }
        EvalAltResult::ErrorTerminated(why, _) => Some(format!("stopped: {why}")),
        _ => None,
    };
    match limit {
        Some(what) => ScriptFailure {
            code: "script_limit",
            message: format!("script limit exceeded: {what} ({})", e.position()),
        },
        None => ScriptFailure {
            code: "script_error",
            message: e.to_string(),
        },
    }
}

/// Log lines are cut at 1,000 characters.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(1000) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn go(src: &str, input: Value) -> Result<Value, ScriptFailure> {
        go_with(src, input, ScriptLimits::default())
    }

    /// On a thread with the executor's stack.
    fn go_with(src: &str, input: Value, limits: ScriptLimits) -> Result<Value, ScriptFailure> {
        let src = src.to_owned();
        std::thread::Builder::new()
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let cancel = Arc::new(AtomicBool::new(false));
                run(&src, input, json!({"steps": {}}), &limits, &cancel, "t")
            })
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn values_round_trip() {
        assert_eq!(go("()", json!(null)).unwrap(), Value::Null);
        assert_eq!(
            go(
                "#{a: input.x * 2, b: [1, 2.5, \"s\", true], c: ()}",
                json!({"x": 21})
            )
            .unwrap(),
            json!({"a": 42, "b": [1, 2.5, "s", true], "c": null})
        );
    }

    #[test]
    fn print_and_debug_are_harmless() {
        let src = "for i in 0..500 { print(`line ${i}`); debug(i); } 7";
        assert_eq!(go(src, json!(null)).unwrap(), json!(7));
    }

    #[test]
    fn overrides_are_capped() {
        let d = ScriptLimits::default();
        let l = d
            .with_overrides(Some(&json!({"max_ms": 10_000_000, "max_operations": 5})))
            .unwrap();
        assert_eq!(l.max_ms, ScriptLimits::HARD.max_ms);
        assert_eq!(l.max_operations, 5);
        assert!(d.with_overrides(Some(&json!({"max_msec": 1}))).is_err());
        assert!(d.with_overrides(Some(&json!({"max_ms": 0}))).is_err());
        assert!(d.with_overrides(Some(&json!([1]))).is_err());
    }

    #[test]
    fn no_imports_and_no_eval() {
        let e = go("import \"/etc/passwd\" as p; 1", json!(null)).unwrap_err();
        assert_eq!(e.code, "script_error", "{e:?}");
        let e = go("eval(\"1\")", json!(null)).unwrap_err();
        assert_eq!(e.code, "script_error", "{e:?}");
    }

    #[test]
    fn deep_recursion_is_a_limit() {
        let e = go(
            "fn f(n) { if n == 0 { 0 } else { 1 + f(n - 1) } } f(100000)",
            json!(null),
        )
        .unwrap_err();
        assert_eq!(e.code, "script_limit", "{e:?}");
        // At the hard maximum, each level also nesting expressions as deep as the parser
        // allows inside a function: the stack holds.
        let hard = ScriptLimits {
            max_call_depth: ScriptLimits::HARD.max_call_depth,
            ..ScriptLimits::default()
        };
        let nested = format!(
            "{}n{}",
            "(1 + ".repeat(MAX_FN_EXPR_DEPTH / 3),
            ")".repeat(MAX_FN_EXPR_DEPTH / 3)
        );
        let src =
            format!("fn f(n) {{ if n == 0 {{ 0 }} else {{ {nested} + f(n - 1) }} }} f(100000)");
        let e = go_with(&src, json!(null), hard).unwrap_err();
        assert_eq!(e.code, "script_limit", "{e:?}");
    }

    #[test]
    fn deep_nesting_is_refused_at_parse() {
        let src = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(check(&src).is_err());
        assert!(check("let x = 1; x + 1").is_ok());
    }

    #[test]
    fn deeply_nested_values_are_bounded() {
        for src in [
            "let a = []; loop { a = [a]; }",
            "let m = #{}; loop { m = #{m: m}; }",
            "let a = []; let i = 0; while i < 5000 { a = [a]; i += 1; } a",
        ] {
            let e = go(src, json!(null)).unwrap_err();
            assert_eq!(e.code, "script_limit", "{src}: {e:?}");
        }
        let ok = go(
            "let a = 1; let i = 0; while i < 50 { a = [a]; i += 1; } a",
            json!(null),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn cancel_flag_stops_the_script() {
        let cancel = Arc::new(AtomicBool::new(true));
        let e = run(
            "loop {}",
            json!(null),
            json!({}),
            &ScriptLimits::default(),
            &cancel,
            "t",
        )
        .unwrap_err();
        assert_eq!(e.code, "script_limit");
        assert!(e.message.contains("cancelled"), "{e:?}");
    }
}
