//! How a step kind does its work: the [`StepExecutor`] trait, the registry of executors by
//! kind, and the built-in `transform`. (`wait` and `approval` are built into the state machine
//! itself, since they suspend a step rather than compute its output.)

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use canopy_core::RunId;
use serde_json::{Value, json};

use crate::expr;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything an executor gets for one attempt of one step.
#[derive(Debug, Clone)]
pub struct StepCall {
    pub run_id: RunId,
    /// The run's org and project (database ids): whose credentials and data a step may use.
    pub org_id: String,
    pub project_id: String,
    pub step_id: String,
    /// The element index inside a `for_each` step.
    pub item: Option<u32>,
    /// 1 for the first attempt; a retry adds one, a takeover after a crash does not.
    pub attempt: u32,
    /// `run_id:step_id:item:attempt` (item `-1` outside `for_each`): the same for a takeover
    /// of an attempt cut short, so an outbound side effect can be deduplicated downstream.
    pub idempotency_key: String,
    pub kind: String,
    pub config: Value,
    /// The step's input, resolved.
    pub input: Value,
    /// `{input, steps: {<id>: {status, output, error}}, item?, index?}`.
    pub context: Value,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct StepError {
    /// A short snake_case reason (`timeout`, `http_status`, …).
    pub code: String,
    pub message: String,
    /// Whether another attempt may succeed (the step's retry policy decides if there is one).
    pub retryable: bool,
    /// What the failed attempt consumed anyway (tokens, cost), added to the step's usage.
    pub usage: Option<Box<Value>>,
}

impl StepError {
    pub fn retryable(code: &str, message: impl Into<String>) -> Self {
        StepError {
            code: code.to_owned(),
            message: message.into(),
            retryable: true,
            usage: None,
        }
    }

    pub fn fatal(code: &str, message: impl Into<String>) -> Self {
        StepError {
            code: code.to_owned(),
            message: message.into(),
            retryable: false,
            usage: None,
        }
    }

    pub fn with_usage(mut self, usage: Value) -> Self {
        self.usage = Some(Box::new(usage));
        self
    }

    pub fn to_json(&self) -> Value {
        json!({"code": self.code, "message": self.message, "retryable": self.retryable})
    }
}

/// A successful attempt: the step's output and what it consumed.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    pub output: Value,
    /// `{input_tokens, output_tokens, cost_usd, …}`: numbers add up over attempts and steps.
    pub usage: Option<Value>,
}

impl From<Value> for StepOutput {
    fn from(output: Value) -> Self {
        StepOutput {
            output,
            usage: None,
        }
    }
}

/// Runs one kind of step. Implementations must be safe to run again for the same
/// idempotency key: a worker that dies mid-step leaves its attempt to be taken over.
pub trait StepExecutor: Send + Sync + 'static {
    fn execute(&self, call: StepCall) -> BoxFuture<'_, Result<StepOutput, StepError>>;
}

/// Executors by step kind.
#[derive(Clone)]
pub struct Executors(HashMap<String, Arc<dyn StepExecutor>>);

impl Default for Executors {
    /// The built-ins: `transform`.
    fn default() -> Self {
        let mut e = Executors(HashMap::new());
        e.register("transform", Arc::new(Transform));
        e
    }
}

impl std::fmt::Debug for Executors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kinds: Vec<&String> = self.0.keys().collect();
        kinds.sort();
        f.debug_tuple("Executors").field(&kinds).finish()
    }
}

impl Executors {
    /// Adds or replaces the executor of `kind`.
    pub fn register(&mut self, kind: &str, executor: Arc<dyn StepExecutor>) -> &mut Self {
        self.0.insert(kind.to_owned(), executor);
        self
    }

    pub fn get(&self, kind: &str) -> Option<Arc<dyn StepExecutor>> {
        self.0.get(kind).cloned()
    }
}

/// `transform`: `config.jq` evaluated over the context (first output, null for none), or,
/// without one, the step's resolved input passed through (so `input` acts as the mapping).
pub struct Transform;

impl StepExecutor for Transform {
    fn execute(&self, call: StepCall) -> BoxFuture<'_, Result<StepOutput, StepError>> {
        Box::pin(async move {
            match call.config.get("jq").and_then(Value::as_str) {
                Some(code) => {
                    let mut ctx = call.context;
                    if let Value::Object(o) = &mut ctx {
                        o.insert("step_input".to_owned(), call.input);
                    }
                    expr::eval_one(code, &ctx)
                        .map(StepOutput::from)
                        .map_err(|m| StepError::fatal("expression_error", m))
                }
                None => Ok(call.input.into()),
            }
        })
    }
}
