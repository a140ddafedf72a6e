//! The client MCP layer (seed 000 §8): a client's branches and buds as MCP tools, and
//! invoking one as a sync run. The REST routes and the `/v1/clients/{clientId}/mcp`
//! endpoint both come here.
//!
//! Tool names: the bud's or branch's name snake-cased (ASCII letters and digits lowercased,
//! any other run of characters one `_`, at most 64 characters; `bud` or `branch` when nothing
//! is left). Tools are named oldest first (by creation, then id): the first keeps the plain
//! name, a later one whose name is taken gets `_` and the last 8 hex digits of its id. So
//! assigning something new never renames a tool a client already knows.

use std::collections::HashSet;

use canopy_core::{BranchId, BudId, Data, Error, Scope};
use canopy_store::runtime::DefRow;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::authoring::{branch_not_found, bud_not_found};
use super::defs::{BranchSpec, BudSpec, KIND_BRANCH, KIND_BUD, show_id};
use super::runs::{Mode, client_branches, client_buds, start_branch, start_bud};
use super::view::RunView;
use crate::op::{Cx, Hints, Operation};
use crate::tenancy::clients::visible_client;

/// Longest tool name MCP clients accept.
const MAX_NAME: usize = 64;

/// One bud or branch as an MCP tool descriptor (plus `id` and `kind`, which MCP leaves out).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ClientTool {
    /// Unique within the client (see the module doc for the rule).
    pub name: String,
    /// The bud's or branch's name.
    pub title: String,
    pub description: String,
    /// The `input_schema` when it is an object schema, else `{"type": "object"}`.
    #[serde(rename = "inputSchema")]
    pub input_schema: Value,
    /// A bud's `output_schema`, when it is an object schema.
    #[serde(rename = "outputSchema", skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// `bud_…` or `brn_…`: also accepted as the tool id when invoking.
    pub id: String,
    /// `bud` or `branch`.
    pub kind: String,
}

/// `Summarize ticket (v2)` → `summarize_ticket_v2`.
fn base_name(name: &str, kind: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_end_matches('_');
    if trimmed.is_empty() {
        kind.to_owned()
    } else {
        trimmed.chars().take(MAX_NAME).collect()
    }
}

/// `base` with `_` and the id's last 8 hex digits, cut so the whole fits in 64 characters.
fn suffixed(base: &str, db_id: &str, digits: usize) -> String {
    let hex: String = db_id.chars().filter(char::is_ascii_hexdigit).collect();
    let tail = &hex[hex.len().saturating_sub(digits)..];
    let keep = MAX_NAME.saturating_sub(tail.len() + 1);
    let head: String = base.chars().take(keep).collect();
    format!("{}_{tail}", head.trim_end_matches('_'))
}

/// An object schema as it is, anything else (or nothing) as `{"type": "object"}`: MCP tool
/// arguments are always an object.
fn object_schema(s: Option<&Value>) -> Option<Value> {
    s.filter(|s| s.get("type").and_then(Value::as_str) == Some("object"))
        .cloned()
}

fn describe(row: &DefRow, name: String) -> Result<ClientTool, Error> {
    let (title, description, input, output) = if row.kind == KIND_BUD {
        let b: BudSpec = serde_json::from_str(&row.spec)?;
        let out = object_schema(b.output_schema.as_ref());
        (b.name, b.description, b.input_schema, out)
    } else {
        let b: BranchSpec = serde_json::from_str(&row.spec)?;
        (b.name, b.description, b.input_schema, None)
    };
    let description = if description.trim().is_empty() {
        format!("Runs the {} \"{title}\" and answers its output.", row.kind)
    } else {
        description
    };
    Ok(ClientTool {
        name,
        title,
        description,
        input_schema: object_schema(input.as_ref()).unwrap_or_else(|| json!({"type": "object"})),
        output_schema: output,
        id: show_id(&row.kind, &row.id),
        kind: row.kind.clone(),
    })
}

/// Names a client's buds and branches (see the module doc), oldest first.
fn name_tools(mut rows: Vec<DefRow>) -> Result<Vec<(ClientTool, DefRow)>, Error> {
    rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let base = base_name(&row.name, &row.kind);
        let name = [base.clone(), suffixed(&base, &row.id, 8)]
            .into_iter()
            .find(|n| !taken.contains(n))
            // Two ids ending alike: the whole id tells them apart.
            .unwrap_or_else(|| suffixed(&base, &row.id, 32));
        taken.insert(name.clone());
        out.push((describe(&row, name.clone())?, row));
    }
    Ok(out)
}

/// The client's tools with the rows they run, in naming order.
async fn tools_of(
    cx: &Cx<'_>,
    p: &canopy_store::projects::ProjectRow,
) -> Result<Vec<(ClientTool, DefRow)>, Error> {
    let mut rows = client_branches(cx, p).await?;
    rows.extend(client_buds(cx, p).await?);
    name_tools(rows)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListClientToolsInput {
    pub client_id: String,
}

pub struct ListClientTools;
impl Operation for ListClientTools {
    const NAME: &'static str = "list_client_tools";
    const SUMMARY: &'static str = "List a client's branches and runnable buds as MCP tool descriptors (name, title, description, inputSchema, outputSchema, id, kind).";
    const SCOPE: Option<Scope> = Some(Scope::Mcp);
    const HINTS: Hints = Hints::READ;
    type Input = ListClientToolsInput;
    type Output = Data<Vec<ClientTool>>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let p = visible_client(cx, &input.client_id).await?;
        let data = tools_of(cx, &p)
            .await?
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        Ok(Data { data })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct InvokeClientToolInput {
    pub client_id: String,
    /// The tool's name, or the bud's or branch's id.
    pub tool_id: String,
    /// The run's input, checked against the tool's inputSchema (`{}` when absent).
    #[serde(default)]
    pub arguments: Option<Value>,
    /// How long to wait for the run; default 30 000, at most 120 000. A run still going then
    /// answers `run_status` `running` (or `queued`, `waiting`) and keeps going.
    pub timeout_ms: Option<u64>,
}

/// One `content` block of a tool result.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TextContent {
    /// Always `text`.
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
}

/// An MCP `tools/call` result, plus the run it started.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ToolResult {
    /// One text block: the output (text as is, anything else as JSON), the run's error as
    /// JSON, or a note that the run is still going.
    pub content: Vec<TextContent>,
    /// The output, when the run succeeded with an object.
    #[serde(rename = "structuredContent", skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    /// The run failed or was cancelled.
    #[serde(rename = "isError")]
    pub is_error: bool,
    pub run_id: String,
    /// The run's status when the answer was made.
    pub run_status: String,
}

impl ToolResult {
    fn of(run: &RunView) -> ToolResult {
        let status = run.status.as_str();
        let (text, structured, is_error) = match status {
            "succeeded" => {
                let out = run.output.clone().unwrap_or(Value::Null);
                let text = match &out {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                (text, out.is_object().then_some(out), false)
            }
            "failed" | "cancelled" => {
                let error = run.error.clone().unwrap_or_else(
                    || json!({"code": status, "message": format!("The run was {status}.")}),
                );
                (json!({ "error": error }).to_string(), None, true)
            }
            _ => (
                format!(
                    "Run {} is still {status}; read GET /v1/clients/{}/runs/{} for its result.",
                    run.id, run.client_id, run.id
                ),
                None,
                false,
            ),
        };
        ToolResult {
            content: vec![TextContent {
                kind: "text".into(),
                text,
            }],
            structured_content: structured,
            is_error,
            run_id: run.id.to_string(),
            run_status: status.to_owned(),
        }
    }
}

/// A tool named by `raw`, or the not-found error of what it looks like.
fn not_found(raw: &str) -> Error {
    let e = if raw.starts_with("brn_") {
        branch_not_found()
    } else {
        bud_not_found()
    };
    Error::new(e.code, format!("No tool '{raw}' for this client."))
}

/// Whether `raw` names this tool: its name, or its id in either form.
fn names(tool: &ClientTool, row: &DefRow, raw: &str) -> bool {
    tool.name == raw
        || tool.id == raw
        || match row.kind.as_str() {
            KIND_BUD => BudId::parse(raw).is_some_and(|i| i.db() == row.id),
            KIND_BRANCH => BranchId::parse(raw).is_some_and(|i| i.db() == row.id),
            _ => false,
        }
}

pub struct InvokeClientTool;
impl Operation for InvokeClientTool {
    const NAME: &'static str = "invoke_client_tool";
    const SUMMARY: &'static str = "Invoke a client's tool (a branch or bud, by tool name or id) as a sync run; answers an MCP tool result with the run id.";
    const SCOPE: Option<Scope> = Some(Scope::McpRun);
    const HINTS: Hints = Hints::WRITE;
    type Input = InvokeClientToolInput;
    type Output = ToolResult;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let p = visible_client(cx, &input.client_id).await?;
        let raw = input.tool_id.trim();
        let (_, row) = tools_of(cx, &p)
            .await?
            .into_iter()
            .find(|(t, r)| names(t, r, raw))
            .ok_or_else(|| not_found(raw))?;
        if input.arguments.as_ref().is_some_and(|a| !a.is_object()) {
            return Err(Error::validation(
                "arguments",
                "arguments is a JSON object.",
            ));
        }
        let request = (input.arguments, Mode::Sync, input.timeout_ms);
        let answer = if row.kind == KIND_BRANCH {
            start_branch(cx, &p, &row, request).await?
        } else {
            start_bud(cx, &p, &row, request).await?
        };
        Ok(ToolResult::of(&answer.run))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, kind: &str, name: &str, created_at: i64) -> DefRow {
        let spec = if kind == KIND_BUD {
            json!({"name": name, "kind": "transform", "config": {"jq": "."}})
        } else {
            json!({"name": name, "steps": []})
        };
        DefRow {
            id: id.into(),
            org_id: "o".into(),
            kind: kind.into(),
            name: name.into(),
            version: 1,
            spec: spec.to_string(),
            created_at,
            updated_at: created_at,
        }
    }

    #[test]
    fn base_names() {
        assert_eq!(
            base_name("Summarize ticket (v2)", "bud"),
            "summarize_ticket_v2"
        );
        assert_eq!(base_name("  --Héllo--  ", "bud"), "h_llo");
        assert_eq!(base_name("日本", "branch"), "branch");
        assert_eq!(base_name(&"a".repeat(100), "bud").len(), 64);
    }

    #[test]
    fn collisions_keep_the_oldest_plain() {
        let a = "0190f0e0-a0b0-7c3d-8e9f-0a1b2c3d4e5f";
        let b = "0190f0e0-a0b0-7c3d-8e9f-0a1b2c3d4e60";
        let named = name_tools(vec![
            row(b, KIND_BUD, "Echo", 2),
            row(a, KIND_BRANCH, "echo!", 1),
        ])
        .unwrap_or_default();
        let names: Vec<&str> = named.iter().map(|(t, _)| t.name.as_str()).collect();
        assert_eq!(names, ["echo", "echo_2c3d4e60"]);
        assert_eq!(named[1].0.id, BudId::show(b));
        let long = suffixed(&"x".repeat(64), a, 8);
        assert_eq!(long.len(), 64);
        assert!(long.ends_with("_2c3d4e5f"));
    }

    #[test]
    fn schemas() {
        assert_eq!(object_schema(Some(&json!({"type": "integer"}))), None);
        let s = json!({"type": "object", "required": ["n"]});
        assert_eq!(object_schema(Some(&s)), Some(s));
    }
}
