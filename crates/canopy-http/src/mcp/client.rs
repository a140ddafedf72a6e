//! `/v1/clients/{clientId}/mcp` (seed 000 §8): the protocol of `/mcp` (same transport,
//! revisions, sessions and error mapping) over another tool source, one client's branches and
//! buds. Listing and calling go through the `list_client_tools` and `invoke_client_tool`
//! operations, so scopes, audit and input checks are those of the REST routes.

use canopy_core::{Error, Principal};
use canopy_services::op::{Meta, dispatch};
use canopy_services::runtime::client_tools::{
    ClientTool, InvokeClientTool, InvokeClientToolInput, ListClientTools, ListClientToolsInput,
};
use serde_json::{Map, Value, json};

use super::PAGE;
use super::methods::{Ctx, Reply, decode_cursor, encode_cursor, negotiate, not_found, server_info};
use super::rpc::RpcError;
use crate::AppState;

const INSTRUCTIONS: &str = "Each tool runs one of this client's branches or buds with the arguments as its input and answers the run's output. A run still going after the timeout answers its run id (_meta canopy/run_id) to poll.";

/// `_meta` key of `tools/call` params: how long to wait for the run, milliseconds.
const TIMEOUT_META: &str = "canopy/timeout_ms";

/// The client a request reaches, and its tools as they were when the request came in.
pub(crate) struct ClientSource {
    pub id: String,
    pub tools: Vec<ClientTool>,
}

/// Opens a client's endpoint for a caller: its tools through `list_client_tools`, which
/// also refuses a client the key cannot see (404) or a key without the `mcp` scope (403).
pub(crate) async fn open(
    st: &AppState,
    who: &Principal,
    meta: Meta<'_>,
    client: &str,
) -> Result<ClientSource, Error> {
    let input = ListClientToolsInput {
        client_id: client.to_owned(),
    };
    let tools = dispatch::<ListClientTools>(&st.svc, who, meta, input)
        .await?
        .data;
    Ok(ClientSource {
        id: client.to_owned(),
        tools,
    })
}

fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

/// Answers one request on a client's endpoint.
pub(crate) async fn handle(
    cx: &Ctx<'_>,
    client: &ClientSource,
    method: &str,
    params: &Value,
) -> Result<Reply, RpcError> {
    let v = match method {
        "initialize" => json!({
            "protocolVersion": negotiate(params.get("protocolVersion").and_then(Value::as_str)),
            "capabilities": capabilities(),
            "serverInfo": server_info(),
            "instructions": INSTRUCTIONS,
        }),
        "ping" => json!({}),
        "server/discover" => json!({
            "supportedVersions": super::SUPPORTED,
            "capabilities": capabilities(),
            "serverInfo": server_info(),
            "instructions": INSTRUCTIONS,
        }),
        "tools/list" => list(client, params)?,
        "tools/call" => call(cx, client, params).await?,
        _ => return Err(not_found(method)),
    };
    Ok(Reply::Value(v))
}

/// A tool as `tools/list` shows it: the REST descriptor, with id and kind under `_meta`.
fn listing(t: &ClientTool) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(t.name));
    m.insert("title".into(), json!(t.title));
    m.insert("description".into(), json!(t.description));
    m.insert("inputSchema".into(), t.input_schema.clone());
    if let Some(o) = &t.output_schema {
        m.insert("outputSchema".into(), o.clone());
    }
    m.insert(
        "_meta".into(),
        json!({"canopy/id": t.id, "canopy/kind": t.kind}),
    );
    Value::Object(m)
}

fn list(client: &ClientSource, params: &Value) -> Result<Value, RpcError> {
    let offset = decode_cursor(params)?;
    let tools: Vec<Value> = client
        .tools
        .iter()
        .skip(offset)
        .take(PAGE)
        .map(listing)
        .collect();
    let mut out = json!({ "tools": tools });
    if offset + PAGE < client.tools.len() {
        out["nextCursor"] = json!(encode_cursor(offset + PAGE));
    }
    Ok(out)
}

/// `tools/call`: `invoke_client_tool`; its failures (scope, input, a run that failed) are
/// `isError` results, an unknown tool a JSON-RPC error, as on `/mcp`.
async fn call(cx: &Ctx<'_>, client: &ClientSource, params: &Value) -> Result<Value, RpcError> {
    let who = cx.who()?;
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("tools/call needs a tool \"name\"."))?;
    if !client.tools.iter().any(|t| t.name == name || t.id == name) {
        return Err(RpcError::invalid_params(format!("Unknown tool: {name}")));
    }
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(a @ Value::Object(_)) => a.clone(),
        Some(_) => return Err(RpcError::invalid_params("\"arguments\" must be an object.")),
    };
    let timeout_ms = params
        .get("_meta")
        .and_then(|m| m.get(TIMEOUT_META))
        .and_then(Value::as_u64);
    let input = InvokeClientToolInput {
        client_id: client.id.clone(),
        tool_id: name.to_owned(),
        arguments: Some(arguments),
        timeout_ms,
    };
    match dispatch::<InvokeClientTool>(&cx.st.svc, who, cx.meta, input).await {
        Ok(r) => {
            let mut out = json!({
                "content": r.content,
                "isError": r.is_error,
                "_meta": {"canopy/run_id": r.run_id, "canopy/run_status": r.run_status},
            });
            if let Some(s) = r.structured_content {
                out["structuredContent"] = s;
            }
            Ok(out)
        }
        Err(e) => {
            let envelope = cx.envelope(e);
            Ok(json!({
                "content": [{"type": "text", "text": envelope.to_string()}],
                "structuredContent": envelope,
                "isError": true,
            }))
        }
    }
}
