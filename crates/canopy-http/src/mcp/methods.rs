//! The MCP methods over the tool registry. The transport has already settled the revision,
//! the session and who is calling; this answers one request.

use base64::Engine as _;
use canopy_core::{Code, Error, Principal};
use canopy_services::op::Meta;
use serde_json::{Map, Value, json};

use super::rpc::{self, RpcError};
use super::tools::Entry;
use super::{HANDSHAKE, MODERN, PAGE, SUPPORTED};
use crate::AppState;

/// Where a request's tools come from.
#[derive(Clone, Copy)]
pub(crate) enum Tools<'a> {
    /// `/mcp`: every operation.
    Operations,
    /// `/v1/clients/{clientId}/mcp`: that client's buds and branches.
    Client(&'a super::client::ClientSource),
}

/// One request's circumstances.
pub(crate) struct Ctx<'a> {
    pub st: &'a AppState,
    pub tools: Tools<'a>,
    /// `None` only in conformance-fixture mode.
    pub who: Option<&'a Principal>,
    /// The key's `mcp_tools`.
    pub key_tools: &'a [String],
    pub meta: Meta<'a>,
    /// The revision this request speaks.
    pub version: &'a str,
    /// Base URL of `docs` links in error envelopes.
    pub base: &'a str,
}

impl Ctx<'_> {
    pub fn modern(&self) -> bool {
        self.version == MODERN
    }

    pub(crate) fn who(&self) -> Result<&Principal, RpcError> {
        self.who
            .ok_or_else(|| RpcError::new(rpc::INTERNAL_ERROR, "No caller."))
    }

    /// The error envelope, as REST renders it.
    pub fn envelope(&self, e: Error) -> Value {
        if e.status().is_server_error() {
            tracing::error!(request_id = self.meta.request_id.unwrap_or(""), code = e.code.as_str(), error = ?e, "MCP request failed");
        }
        let path = match self.tools {
            Tools::Operations => "/mcp",
            // Stackmint's codes (`invalid_input`), as on the client's REST routes.
            Tools::Client(_) => "/v1/clients/{clientId}/mcp",
        };
        crate::error::envelope(self.base, path, e)
    }

    /// A Canopy error met outside a tool call: −32000 carrying the envelope (−32603 for 5xx).
    pub fn server_error(&self, e: Error) -> RpcError {
        let code = if e.status().is_server_error() {
            rpc::INTERNAL_ERROR
        } else {
            rpc::SERVER_ERROR
        };
        let message = e.message.to_string();
        RpcError::new(code, message).with_data(self.envelope(e))
    }

    /// Runs a tool by name for the caller (resources and prompts go through the read tools).
    pub async fn call_tool(&self, name: &str, args: Value) -> Result<Value, Error> {
        let text = self.call_tool_text(name, args).await?;
        serde_json::from_str(&text).map_err(Error::from)
    }

    async fn call_tool_text(&self, name: &str, args: Value) -> Result<String, Error> {
        let who = self
            .who
            .ok_or_else(|| Error::internal("an MCP call without a caller"))?;
        let entry = self
            .st
            .mcp
            .registry
            .get(name)
            .ok_or_else(|| Error::new(Code::NotSupported, format!("No operation '{name}'.")))?;
        (entry.tool.call)(&self.st.svc, who, self.meta, args).await
    }
}

/// The answer to one request.
pub(crate) enum Reply {
    Value(Value),
    /// A result already rendered as JSON text (tool listings are kept rendered).
    Raw(String),
    /// Messages streamed as server-sent events, the result last (fixtures only).
    Stream(tokio::sync::mpsc::Receiver<Value>),
}

pub(crate) fn server_info() -> Value {
    json!({"name": "canopy", "title": "Canopy", "version": env!("CARGO_PKG_VERSION")})
}

/// [`server_info`] as JSON text, rendered once.
fn server_info_json() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| server_info().to_string())
}

/// `text` as a JSON string literal.
fn quoted(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

pub(crate) fn capabilities(fixtures: bool) -> Value {
    if fixtures {
        return json!({
            "tools": {"listChanged": false},
            "resources": {"subscribe": true, "listChanged": false},
            "prompts": {"listChanged": false},
            "logging": {},
            "completions": {}
        });
    }
    json!({"tools": {"listChanged": false}, "resources": {}, "prompts": {}})
}

const INSTRUCTIONS: &str = "Canopy: project memory and operations for coding agents. Read before you write (list or search first) to avoid duplicates.";

/// The revision to answer an `initialize` asking for `requested`.
pub(crate) fn negotiate(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| HANDSHAKE.iter().find(|v| **v == r))
        .copied()
        .unwrap_or(HANDSHAKE[0])
}

/// Answers one request whose method is not handled by the fixtures.
pub(crate) async fn handle(cx: &Ctx<'_>, method: &str, params: &Value) -> Result<Reply, RpcError> {
    if let Tools::Client(c) = cx.tools {
        return super::client::handle(cx, c, method, params).await;
    }
    let fixtures = cx.st.mcp.fixtures.is_some();
    let v = match method {
        "initialize" => {
            let requested = params.get("protocolVersion").and_then(Value::as_str);
            json!({
                "protocolVersion": negotiate(requested),
                "capabilities": capabilities(fixtures),
                "serverInfo": server_info(),
                "instructions": INSTRUCTIONS,
            })
        }
        "ping" => json!({}),
        "server/discover" => json!({
            "supportedVersions": SUPPORTED,
            "capabilities": capabilities(fixtures),
            "serverInfo": server_info(),
            "instructions": INSTRUCTIONS,
        }),
        _ if fixtures => return Err(not_found(method)),
        "tools/list" => return list_tools(cx, params).await.map(Reply::Raw),
        "tools/call" => return call_tool(cx, params).await,
        "resources/list" => super::knowledge::list_resources(cx, params).await?,
        "resources/read" => super::knowledge::read_resource(cx, params).await?,
        "resources/templates/list" => super::knowledge::templates(),
        "prompts/list" => super::knowledge::list_prompts(cx, params).await?,
        "prompts/get" => super::knowledge::get_prompt(cx, params).await?,
        _ => return Err(not_found(method)),
    };
    Ok(Reply::Value(v))
}

pub(crate) fn not_found(method: &str) -> RpcError {
    RpcError::new(rpc::METHOD_NOT_FOUND, format!("Method not found: {method}"))
}

/// Page position ↔ opaque cursor.
pub(crate) fn encode_cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o{offset}"))
}

pub(crate) fn decode_cursor(params: &Value) -> Result<usize, RpcError> {
    let Some(c) = params.get("cursor").filter(|c| !c.is_null()) else {
        return Ok(0);
    };
    c.as_str()
        .and_then(|s| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix('o').and_then(|n| n.parse().ok()))
        .ok_or_else(|| RpcError::invalid_params("Invalid cursor: pass nextCursor back unchanged."))
}

/// `tools/list`: of the tools the caller's scopes allow, the agent's `tools_allowed`, else
/// the key's `mcp_tools`, else all; protected tools always. Rendered from the listings kept
/// since startup.
async fn list_tools(cx: &Ctx<'_>, params: &Value) -> Result<String, RpcError> {
    let who = cx.who()?;
    let agent_selection = match &who.agent {
        Some(agent) => canopy_services::mcp::agent_tools(&cx.st.svc, who, cx.meta, agent)
            .await
            .map_err(|e| cx.server_error(e))?,
        None => None,
    };
    let selection = agent_selection.as_deref().unwrap_or(cx.key_tools);
    let entries = cx.st.mcp.registry.selected(selection, who.scopes);
    let offset = decode_cursor(params)?;
    let page: Vec<&&Entry> = entries.iter().skip(offset).take(PAGE).collect();
    let mut out =
        String::with_capacity(page.iter().map(|e| e.listing.len() + 1).sum::<usize>() + 128);
    out.push_str("{\"tools\":[");
    for (i, e) in page.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&e.listing);
    }
    out.push(']');
    if offset + PAGE < entries.len() {
        out.push_str(&format!(
            ",\"nextCursor\":\"{}\"",
            encode_cursor(offset + PAGE)
        ));
    }
    if cx.modern() {
        out.push_str(",\"resultType\":\"complete\",\"cacheScope\":\"private\",\"ttlMs\":0");
        out.push_str(",\"_meta\":{\"io.modelcontextprotocol/serverInfo\":");
        out.push_str(server_info_json());
        out.push('}');
    }
    out.push('}');
    Ok(out)
}

/// `tools/call`: the operation through `dispatch`; its failures are `isError` results.
async fn call_tool(cx: &Ctx<'_>, params: &Value) -> Result<Reply, RpcError> {
    let who = cx.who()?;
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("tools/call needs a tool \"name\"."))?;
    let entry = cx
        .st
        .mcp
        .registry
        .get(name)
        .ok_or_else(|| RpcError::invalid_params(format!("Unknown tool: {name}")))?;
    let args = match params.get("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(a @ Value::Object(_)) => a.clone(),
        Some(_) => return Err(RpcError::invalid_params("\"arguments\" must be an object.")),
    };
    let tracker = &cx.st.mcp.tracker;
    let svc = &cx.st.svc;
    let service = entry.tool.tag;
    let read_only = entry.tool.info.hints.read_only;
    let read_first = cx.st.mcp.registry.read_first(service);
    // Checked before the write, which must not count as its own read.
    let unread = match (read_only, read_first) {
        (false, Some(_)) => tracker.unread(svc, who, service).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not check MCP reads");
            false
        }),
        _ => false,
    };
    let output = match (entry.tool.call)(svc, who, cx.meta, args).await {
        Ok(text) => text,
        Err(e) => {
            let envelope = cx.envelope(e);
            return Ok(Reply::Value(json!({
                "content": [{"type": "text", "text": envelope.to_string()}],
                "structuredContent": envelope,
                "isError": true,
            })));
        }
    };
    if read_only && let Err(e) = tracker.note_read(svc, who, service).await {
        tracing::warn!(error = %e, "could not record an MCP read");
    }
    let warning = match (unread, read_first) {
        (true, Some(first)) => Some(quoted(&format!(
            "Warning: you have not read {service} in the last 30 minutes; call {first} first to avoid duplicates."
        ))),
        _ => None,
    };
    // Rendered by hand: the output's JSON goes in twice and is never parsed back.
    let text = quoted(&output);
    let mut r = String::with_capacity(text.len() + output.len() + 256);
    r.push_str("{\"content\":[{\"type\":\"text\",\"text\":");
    r.push_str(&text);
    r.push('}');
    if let Some(w) = &warning {
        r.push_str(",{\"type\":\"text\",\"text\":");
        r.push_str(w);
        r.push('}');
    }
    r.push(']');
    if entry.structured {
        r.push_str(",\"structuredContent\":");
        r.push_str(&output);
    }
    r.push_str(",\"isError\":false");
    if warning.is_some() || cx.modern() {
        r.push_str(",\"_meta\":{");
        if let Some(w) = &warning {
            r.push_str("\"canopy/warning\":");
            r.push_str(w);
        }
        if cx.modern() {
            if warning.is_some() {
                r.push(',');
            }
            r.push_str("\"io.modelcontextprotocol/serverInfo\":");
            r.push_str(server_info_json());
        }
        r.push('}');
    }
    if cx.modern() {
        r.push_str(",\"resultType\":\"complete\"");
    }
    r.push('}');
    Ok(Reply::Raw(r))
}

/// Adds what results at the 2026-07-28 revision carry: `resultType`, caching hints on lists
/// and reads, and the server's identity.
pub(crate) fn stamp_modern(method: &str, result: &mut Value) {
    let Value::Object(m) = result else { return };
    m.entry("resultType").or_insert(json!("complete"));
    let cacheable = matches!(
        method,
        "tools/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "prompts/list"
            | "server/discover"
    );
    if cacheable {
        m.entry("cacheScope").or_insert(json!("private"));
        m.entry("ttlMs").or_insert(json!(0));
    }
    let meta = m.entry("_meta").or_insert_with(|| json!({}));
    if let Value::Object(meta) = meta {
        meta.entry("io.modelcontextprotocol/serverInfo")
            .or_insert_with(server_info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = encode_cursor(100);
        assert_eq!(decode_cursor(&json!({"cursor": c})).ok(), Some(100));
        assert!(decode_cursor(&json!({"cursor": "nope"})).is_err());
        assert_eq!(decode_cursor(&json!({})).ok(), Some(0));
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("2024-11-05")), "2024-11-05");
        assert_eq!(negotiate(Some("1999-01-01")), "2025-11-25");
        assert_eq!(negotiate(Some(MODERN)), "2025-11-25");
        assert_eq!(negotiate(None), "2025-11-25");
    }
}
