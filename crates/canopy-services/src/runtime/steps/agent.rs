//! `agent`: a model with a tool loop. Config: everything `llm` takes, plus `tools` (Canopy
//! operation names, `"bud:<id>"`, `{server_url, headers?, tools?}` of external MCP servers)
//! and `max_turns` (default 8, at most 50). Each turn is one model call; the tool calls it
//! asks for run (in order) and their results go back to the model, until it answers without
//! asking for a tool or the turns run out (then the step fails with `max_turns_exceeded`).

use std::sync::Arc;

use canopy_engine::{BoxFuture, StepCall, StepError, StepExecutor, StepOutput, usage};
use canopy_runtime::providers::{Message, ToolSpec};
use serde_json::{Value, json};

use super::llm::{ModelSpec, chat};
use super::tool::{ToolAnswer, bud_db_id, resolve_tools};
use super::{Kit, Services};
use crate::runtime::defs::{BudSpec, KIND_BUD};

const DEFAULT_TURNS: u64 = 8;
const MAX_TURNS: u64 = 50;
/// Longest tool result handed back to the model, characters.
const MAX_RESULT_CHARS: usize = 20_000;

pub(crate) struct AgentStep(pub Arc<Kit>);

impl StepExecutor for AgentStep {
    fn execute(&self, call: StepCall) -> BoxFuture<'_, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let kit = &self.0;
            let spec = ModelSpec::parse(&call)?;
            let max_turns = match call.config.get("max_turns") {
                None | Some(Value::Null) => DEFAULT_TURNS,
                Some(v) => v
                    .as_u64()
                    .filter(|n| (1..=MAX_TURNS).contains(n))
                    .ok_or_else(|| {
                        StepError::fatal("invalid_config", "config.max_turns is 1 to 50")
                    })?,
            };
            let tools = resolve_tools(kit, &call).await?;
            let specs: Vec<ToolSpec> = tools.iter().map(|(s, _)| s.clone()).collect();
            let mut messages = vec![Message::User {
                text: spec.prompt.clone(),
            }];
            let mut total = Value::Null;
            let mut trace = Vec::new();
            for turn in 1..=max_turns {
                let (resp, u) = match chat(kit, &call, &spec, messages.clone(), specs.clone()).await
                {
                    Ok(r) => r,
                    Err(e) => return Err(with_total(e, &total)),
                };
                usage::add(&mut total, &u);
                if resp.tool_calls.is_empty() {
                    return Ok(StepOutput {
                        output: json!({
                            "text": resp.text,
                            "provider": resp.provider,
                            "model": resp.model,
                            "turns": turn,
                            "tool_calls": trace,
                        }),
                        usage: Some(total),
                    });
                }
                messages.push(Message::Assistant {
                    text: resp.text.clone(),
                    tool_calls: resp.tool_calls.clone(),
                });
                for tc in resp.tool_calls {
                    let answer = match tools.iter().find(|(s, _)| s.name == tc.name) {
                        Some((_, target)) => {
                            match target.call(kit, &call, tc.arguments.clone()).await {
                                Ok(a) => a,
                                Err(e) => return Err(with_total(e, &total)),
                            }
                        }
                        None => ToolAnswer {
                            value: json!({"error": format!("no tool named `{}`", tc.name)}),
                            is_error: true,
                            usage: None,
                        },
                    };
                    if let Some(u) = &answer.usage {
                        usage::add(&mut total, u);
                    }
                    trace.push(json!({"name": tc.name, "arguments": tc.arguments, "is_error": answer.is_error}));
                    let mut content = match &answer.value {
                        Value::String(s) => s.clone(),
                        v => v.to_string(),
                    };
                    if content.len() > MAX_RESULT_CHARS {
                        let mut cut = MAX_RESULT_CHARS;
                        while !content.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        content.truncate(cut);
                        content.push_str(" …(truncated)");
                    }
                    messages.push(Message::ToolResult {
                        call_id: tc.id,
                        name: tc.name,
                        content,
                        is_error: answer.is_error,
                    });
                }
            }
            Err(StepError::fatal(
                "max_turns_exceeded",
                format!("The agent still asked for tools after {max_turns} turns."),
            )
            .with_usage(total))
        })
    }
}

/// An error that keeps the usage of the turns before it.
fn with_total(e: StepError, total: &Value) -> StepError {
    if total.is_null() {
        return e;
    }
    let mut t = total.clone();
    if let Some(u) = e.usage.as_deref() {
        usage::add(&mut t, u);
    }
    e.with_usage(t)
}

async fn bud(svc: &Services, call: &StepCall, raw: &str) -> Result<BudSpec, StepError> {
    let id = bud_db_id(raw).ok_or_else(|| {
        StepError::fatal("invalid_config", format!("`bud:{raw}` is not a bud id"))
    })?;
    let row = canopy_store::runtime::get_def(svc.store(), &call.org_id, KIND_BUD, &id)
        .await
        .map_err(|e| StepError::retryable("internal", e.message.to_string()))?
        .ok_or_else(|| StepError::fatal("invalid_config", format!("no bud `{raw}`")))?;
    serde_json::from_str(&row.spec).map_err(|e| StepError::fatal("internal", e.to_string()))
}

/// How a bud shows to the model as a tool.
pub(crate) async fn bud_tool_spec(
    svc: &Services,
    call: &StepCall,
    raw: &str,
) -> Result<ToolSpec, StepError> {
    let b = bud(svc, call, raw).await?;
    let name: String = b
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    Ok(ToolSpec {
        name: if name.is_empty() {
            format!("bud_{raw}")
        } else {
            name
        },
        description: b.description.clone(),
        input_schema: b
            .input_schema
            .clone()
            .unwrap_or_else(|| json!({"type": "object"})),
    })
}

/// Runs a bud inline as a tool: its executor, its config, the arguments as its input.
pub(crate) async fn call_bud(
    kit: &Kit,
    call: &StepCall,
    raw: &str,
    args: Value,
) -> Result<ToolAnswer, StepError> {
    let svc = kit.services()?;
    let b = bud(&svc, call, raw).await?;
    let executor = kit
        .inner
        .get()
        .and_then(|e| e.get(&b.kind))
        .ok_or_else(|| {
            StepError::fatal(
                "invalid_config",
                format!("a `{}` bud cannot be an agent's tool", b.kind),
            )
        })?;
    let mut inner = call.clone();
    inner.kind = b.kind.clone();
    inner.config = b.config.clone();
    inner.input = args;
    inner.idempotency_key = format!("{}:bud:{raw}", call.idempotency_key);
    match executor.execute(inner).await {
        Ok(o) => Ok(ToolAnswer {
            value: o.output,
            is_error: false,
            usage: o.usage,
        }),
        Err(e) if !e.retryable => Ok(ToolAnswer {
            value: e.to_json(),
            is_error: true,
            usage: e.usage.map(|b| *b),
        }),
        Err(e) => Err(e),
    }
}
