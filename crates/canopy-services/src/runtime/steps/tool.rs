//! `tool`: one tool call. Config: `operation` (a Canopy operation name, run as the run's
//! client with read and write scopes) or `server_url` + `tool` (+ `headers`) of an external
//! MCP server; `arguments` (an object whose strings are templates).
//!
//! [`Target`] is also how an `agent` step's tools are resolved and called.

use std::sync::Arc;

use canopy_core::BudId;
use canopy_engine::{BoxFuture, StepCall, StepError, StepExecutor, StepOutput};
use canopy_runtime::providers::ToolSpec;
use serde_json::{Value, json};

use super::{Kit, run_principal, template_context, text};

pub(crate) struct ToolStep(pub Arc<Kit>);

impl StepExecutor for ToolStep {
    fn execute(&self, call: StepCall) -> BoxFuture<'_, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let c = &call.config;
            let ctx = template_context(&call);
            let args = match c.get("arguments") {
                None | Some(Value::Null) => call.input.clone(),
                Some(a) => canopy_runtime::template::render_value(a, &ctx)
                    .map_err(|m| StepError::fatal("template_error", format!("arguments: {m}")))?,
            };
            let target = if let Some(op) = text(c, "operation")? {
                Target::Operation(op.to_owned())
            } else if let Some(url) = text(c, "server_url")? {
                let tool = text(c, "tool")?.ok_or_else(|| {
                    StepError::fatal("invalid_config", "config.tool names the server's tool")
                })?;
                Target::Remote {
                    url: url.to_owned(),
                    headers: headers(c)?,
                    tool: tool.to_owned(),
                }
            } else {
                return Err(StepError::fatal(
                    "invalid_config",
                    "a tool step needs config.operation or config.server_url and config.tool",
                ));
            };
            let out = target.call(&self.0, &call, args).await?;
            if out.is_error {
                let e = StepError::fatal(
                    "tool_error",
                    format!("The tool answered with an error: {}", out.value),
                );
                return Err(match out.usage {
                    Some(u) => e.with_usage(u),
                    None => e,
                });
            }
            Ok(StepOutput {
                output: out.value,
                usage: out.usage,
            })
        })
    }
}

/// What a tool answered.
pub(crate) struct ToolAnswer {
    pub value: Value,
    pub is_error: bool,
    /// What a bud called as a tool consumed (an `llm` bud's tokens).
    pub usage: Option<Value>,
}

/// Something an agent or a tool step can call.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Operation(String),
    Bud(String),
    Remote {
        url: String,
        headers: Vec<(String, String)>,
        tool: String,
    },
}

pub(crate) fn headers(c: &Value) -> Result<Vec<(String, String)>, StepError> {
    match c.get("headers") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(StepError::fatal(
                    "invalid_config",
                    format!("header `{k}` must be text"),
                )),
            })
            .collect(),
        Some(_) => Err(StepError::fatal(
            "invalid_config",
            "config.headers is an object of text values",
        )),
    }
}

impl Target {
    pub async fn call(
        &self,
        kit: &Kit,
        call: &StepCall,
        args: Value,
    ) -> Result<ToolAnswer, StepError> {
        match self {
            Target::Operation(name) => {
                let svc = kit.services()?;
                let ops = svc.operations().ok_or_else(|| {
                    StepError::retryable("unavailable", "Operations are not available yet.")
                })?;
                let who = run_principal(call)?;
                match ops.call(&svc, &who, name, args).await {
                    Ok(v) => Ok(ToolAnswer {
                        value: v,
                        is_error: false,
                        usage: None,
                    }),
                    // A refused call is an answer the model (or the step) can act on.
                    Err(e) if e.status().is_client_error() => Ok(ToolAnswer {
                        value: json!({"error": {"code": e.code.as_str(), "message": e.message}}),
                        is_error: true,
                        usage: None,
                    }),
                    Err(e) => Err(StepError::retryable("tool_failed", e.message.to_string())),
                }
            }
            Target::Remote { url, headers, tool } => {
                let r = kit
                    .mcp
                    .call_tool(url, headers, tool, args)
                    .await
                    .map_err(|e| remote_error(&e))?;
                Ok(ToolAnswer {
                    value: r.structured_content.unwrap_or(r.content),
                    is_error: r.is_error,
                    usage: None,
                })
            }
            Target::Bud(id) => super::agent::call_bud(kit, call, id, args).await,
        }
    }
}

fn remote_error(e: &canopy_runtime::mcp_client::McpClientError) -> StepError {
    if e.retryable() {
        StepError::retryable(e.code(), e.to_string())
    } else {
        StepError::fatal(e.code(), e.to_string())
    }
}

/// The tools an agent's `config.tools` names, as the model sees them and as they are called.
/// Entries: an operation name (`"search_context"`), `"bud:<bud id>"`, or
/// `{server_url, headers?, tools?: [names]}` for an external MCP server's tools.
pub(crate) async fn resolve_tools(
    kit: &Kit,
    call: &StepCall,
) -> Result<Vec<(ToolSpec, Target)>, StepError> {
    let mut out = Vec::new();
    let list = match call.config.get("tools") {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(StepError::fatal("invalid_config", "config.tools is a list"));
        }
    };
    let svc = kit.services()?;
    for entry in list {
        match entry {
            Value::String(s) if s.starts_with("bud:") => {
                let id = &s["bud:".len()..];
                let spec = super::agent::bud_tool_spec(&svc, call, id).await?;
                out.push((spec, Target::Bud(id.to_owned())));
            }
            Value::String(name) => {
                let ops = svc.operations().ok_or_else(|| {
                    StepError::retryable("unavailable", "Operations are not available yet.")
                })?;
                let (description, schema) = ops.describe(name).ok_or_else(|| {
                    StepError::fatal("invalid_config", format!("no Canopy operation `{name}`"))
                })?;
                out.push((
                    ToolSpec {
                        name: name.clone(),
                        description,
                        input_schema: schema,
                    },
                    Target::Operation(name.clone()),
                ));
            }
            Value::Object(_) => {
                let url = text(entry, "server_url")?.ok_or_else(|| {
                    StepError::fatal("invalid_config", "an MCP tool entry needs server_url")
                })?;
                let hdrs = headers(entry)?;
                let only: Option<Vec<&str>> = entry
                    .get("tools")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect());
                let listed = kit
                    .mcp
                    .list_tools(url, &hdrs)
                    .await
                    .map_err(|e| remote_error(&e))?;
                for t in listed {
                    if only.as_ref().is_some_and(|o| !o.contains(&t.name.as_str())) {
                        continue;
                    }
                    out.push((
                        ToolSpec {
                            name: t.name.clone(),
                            description: t.description.clone().unwrap_or_default(),
                            input_schema: t.input_schema.clone(),
                        },
                        Target::Remote {
                            url: url.to_owned(),
                            headers: hdrs.clone(),
                            tool: t.name,
                        },
                    ));
                }
            }
            _ => {
                return Err(StepError::fatal(
                    "invalid_config",
                    "each entry of config.tools is an operation name, \"bud:<id>\" or {server_url}",
                ));
            }
        }
    }
    Ok(out)
}

/// A bud id in either form (`bud_…` or a plain UUID), as stored.
pub(crate) fn bud_db_id(raw: &str) -> Option<String> {
    BudId::parse(raw).map(|b| b.db())
}
