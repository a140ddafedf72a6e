//! The knowledge base as MCP resources (context entries, documents) and agent definitions as
//! prompts. Everything goes through the read operations (`get_context`, `get_context_entry`,
//! `list_documents`, `download_document`, `list_agents`, `get_agent`), so scopes, project
//! isolation and the agent header hold as on REST.

use base64::Engine as _;
use canopy_core::{Code, Error};
use serde_json::{Value, json};

use super::methods::Ctx;
use super::rpc::{self, RpcError};

const CONTEXT: &str = "canopy://context/";
const DOCUMENTS: &str = "canopy://documents/";

/// `resources/templates/list`.
pub(crate) fn templates() -> Value {
    json!({"resourceTemplates": [
        {"uriTemplate": "canopy://context/{id}", "name": "context-entry", "title": "Context entry", "description": "A context entry of the project, as markdown.", "mimeType": "text/markdown"},
        {"uriTemplate": "canopy://documents/{id}", "name": "document", "title": "Document", "description": "A document of the project: its file (text, or base64 for binary types)."}
    ]})
}

/// Where a `resources/list` page starts: which kind, and that kind's own cursor.
#[derive(serde::Serialize, serde::Deserialize)]
struct Position {
    /// 0: context entries, 1: documents.
    k: u8,
    c: Option<String>,
}

fn encode_position(p: &Position) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!(p).to_string())
}

fn decode_position(params: &Value) -> Result<Position, RpcError> {
    let Some(c) = params.get("cursor").filter(|c| !c.is_null()) else {
        return Ok(Position { k: 0, c: None });
    };
    c.as_str()
        .and_then(|s| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Position>(&b).ok())
        .ok_or_else(|| RpcError::invalid_params("Invalid cursor: pass nextCursor back unchanged."))
}

/// `resources/list`: context entries newest first, then documents newest first.
pub(crate) async fn list_resources(cx: &Ctx<'_>, params: &Value) -> Result<Value, RpcError> {
    let pos = decode_position(params)?;
    let (tool, prefix) = if pos.k == 0 {
        ("get_context", CONTEXT)
    } else {
        ("list_documents", DOCUMENTS)
    };
    let mut args = json!({"limit": super::PAGE});
    if let Some(c) = &pos.c {
        args["cursor"] = json!(c);
    }
    let page = cx
        .call_tool(tool, args)
        .await
        .map_err(|e| cx.server_error(e))?;
    let resources: Vec<Value> = page["data"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|it| {
                    let id = it["id"].as_str().unwrap_or_default();
                    let mut r = json!({
                        "uri": format!("{prefix}{id}"),
                        "name": it["title"],
                        "mimeType": if pos.k == 0 { json!("text/markdown") } else { it["mime_type"].clone() },
                    });
                    if pos.k == 0 {
                        r["description"] = json!(format!("{} ({})", it["type"].as_str().unwrap_or(""), it["scope"].as_str().unwrap_or("")));
                    } else {
                        r["description"] = json!(format!("{} ({} bytes)", it["filename"].as_str().unwrap_or(""), it["size_bytes"]));
                        r["size"] = it["size_bytes"].clone();
                    }
                    r
                })
                .collect()
        })
        .unwrap_or_default();
    let more = page["pagination"]["has_more"].as_bool().unwrap_or(false);
    let next = match (more, page["pagination"]["next_cursor"].as_str()) {
        (true, Some(c)) => Some(Position {
            k: pos.k,
            c: Some(c.to_owned()),
        }),
        _ if pos.k == 0 => Some(Position { k: 1, c: None }),
        _ => None,
    };
    let mut out = json!({ "resources": resources });
    if let Some(n) = next {
        out["nextCursor"] = json!(encode_position(&n));
    }
    Ok(out)
}

fn uri_of(params: &Value) -> Result<&str, RpcError> {
    params
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("resources/read needs a \"uri\"."))
}

/// `resources/read`: a context entry as markdown; a document's file as text or base64.
pub(crate) async fn read_resource(cx: &Ctx<'_>, params: &Value) -> Result<Value, RpcError> {
    let uri = uri_of(params)?;
    let missing = |e: Error| {
        if e.code == Code::NotFound {
            RpcError::new(
                rpc::RESOURCE_NOT_FOUND,
                format!("Resource not found: {uri}"),
            )
            .with_data(cx.envelope(e))
        } else {
            cx.server_error(e)
        }
    };
    if let Some(id) = uri.strip_prefix(CONTEXT) {
        let v = cx
            .call_tool("get_context_entry", json!({"id": id}))
            .await
            .map_err(missing)?;
        let e = &v["data"];
        return Ok(json!({"contents": [{
            "uri": uri,
            "mimeType": "text/markdown",
            "text": entry_markdown(e),
        }]}));
    }
    if let Some(id) = uri.strip_prefix(DOCUMENTS) {
        let v = cx
            .call_tool("download_document", json!({"id": id}))
            .await
            .map_err(missing)?;
        let mime = v["document"]["mime_type"]
            .as_str()
            .unwrap_or("application/octet-stream")
            .to_owned();
        let b64 = v["content"].as_str().unwrap_or_default();
        let mut content = json!({"uri": uri, "mimeType": mime});
        let text = is_text(&mime)
            .then(|| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        match text {
            Some(t) => content["text"] = json!(t),
            None => content["blob"] = json!(b64),
        }
        return Ok(json!({ "contents": [content] }));
    }
    Err(RpcError::new(
        rpc::RESOURCE_NOT_FOUND,
        format!(
            "Resource not found: {uri} (Canopy serves canopy://context/{{id}} and canopy://documents/{{id}})"
        ),
    ))
}

fn is_text(mime: &str) -> bool {
    let base = mime.split(';').next().unwrap_or("").trim();
    base.starts_with("text/")
        || matches!(
            base,
            "application/json" | "application/xml" | "application/x-yaml" | "application/yaml"
        )
        || base.ends_with("+json")
        || base.ends_with("+xml")
}

/// A context entry as a markdown document.
fn entry_markdown(e: &Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("").to_owned();
    let tags: Vec<&str> = e["tags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut md = format!("# {}\n\n", s("title"));
    md.push_str(&format!(
        "- id: {}\n- type: {}\n- scope: {}\n- priority: {}\n",
        s("id"),
        s("type"),
        s("scope"),
        s("priority")
    ));
    if !tags.is_empty() {
        md.push_str(&format!("- tags: {}\n", tags.join(", ")));
    }
    md.push_str(&format!(
        "- updated: {}\n\n{}\n",
        s("updated_at"),
        s("body")
    ));
    md
}

/// `prompts/list`: the project's agent definitions.
pub(crate) async fn list_prompts(cx: &Ctx<'_>, params: &Value) -> Result<Value, RpcError> {
    let mut args = json!({"limit": super::PAGE});
    if let Some(c) = params.get("cursor").and_then(Value::as_str) {
        args["cursor"] = json!(c);
    }
    let page = cx
        .call_tool("list_agents", args)
        .await
        .map_err(|e| cx.server_error(e))?;
    let prompts: Vec<Value> = page["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|ag| {
                    let description = [&ag["description"], &ag["role"]]
                        .iter()
                        .filter_map(|v| v.as_str())
                        .find(|s| !s.is_empty())
                        .unwrap_or("An agent definition of this project.")
                        .to_owned();
                    json!({"name": ag["name"], "description": description, "arguments": []})
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = json!({ "prompts": prompts });
    if page["pagination"]["has_more"].as_bool() == Some(true)
        && let Some(c) = page["pagination"]["next_cursor"].as_str()
    {
        out["nextCursor"] = json!(c);
    }
    // The agents list's own cursors are opaque already; they pass through unchanged.
    Ok(out)
}

/// `prompts/get`: an agent's system prompt as a user message.
pub(crate) async fn get_prompt(cx: &Ctx<'_>, params: &Value) -> Result<Value, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("prompts/get needs a prompt \"name\"."))?;
    let v = cx
        .call_tool("get_agent", json!({"id": name}))
        .await
        .map_err(|e| {
            if e.code == Code::NotFound {
                RpcError::invalid_params(format!("Unknown prompt: {name}"))
                    .with_data(cx.envelope(e))
            } else {
                cx.server_error(e)
            }
        })?;
    let ag = &v["data"];
    let mut text = ag["prompt"].as_str().unwrap_or("").to_owned();
    if text.is_empty() {
        text = ag["role"].as_str().unwrap_or("").to_owned();
    }
    Ok(json!({
        "description": ag["description"].as_str().filter(|s| !s.is_empty()).or(ag["role"].as_str()).unwrap_or(""),
        "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
    }))
}
