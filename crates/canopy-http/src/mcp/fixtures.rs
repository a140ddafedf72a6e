//! The fixtures the official MCP conformance suite (`@modelcontextprotocol/conformance`)
//! expects of a server under test: `test_*` tools, `test://` resources and `test_*` prompts.
//!
//! Served only by `canopy serve --conformance-fixtures`, which binds loopback addresses only
//! and then answers `/mcp` without a key and with nothing but these fixtures. They never
//! appear in the normal tool list. Fixture sessions live in this process's memory: the mode
//! is a test harness for one process, not a deployment.
//!
//! Tools that talk back during a call (log messages, progress, sampling and elicitation
//! requests) answer with a server-sent event stream; the client's answers to our requests
//! arrive as separate POSTs and are handed to the waiting call by [`Fixtures::deliver`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::methods::{Ctx, Reply};
use super::rpc::{self, RpcError};

/// A 1×1 red PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A tiny valid WAV file (44-byte header, two silent 8-bit samples).
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQIAAACAgA==";

/// Fixture-mode state: sessions, and our requests waiting for the client's answer.
#[derive(Default)]
pub struct Fixtures {
    sessions: Mutex<HashMap<String, String>>,
    pending: std::sync::Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>,
    next: std::sync::Arc<AtomicU64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fixtures {
    pub(crate) fn tool_count(&self) -> usize {
        tools().as_array().map_or(0, Vec::len)
    }

    pub(crate) fn session(&self, id: &str) -> Option<String> {
        lock(&self.sessions).get(id).cloned()
    }

    pub(crate) fn start_session(&self, version: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        lock(&self.sessions).insert(id.clone(), version.to_owned());
        id
    }

    pub(crate) fn end_session(&self, id: &str) -> bool {
        lock(&self.sessions).remove(id).is_some()
    }

    /// A client's answer to one of our requests.
    pub(crate) fn deliver(&self, id: &Value, body: Value) {
        let key = id
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| id.to_string());
        if let Some(tx) = lock(&self.pending).remove(&key) {
            let _ = tx.send(body);
        }
    }

    /// Answers a fixture method; `None` leaves it to the common methods (`initialize`, `ping`,
    /// `server/discover`).
    pub(crate) fn handle(
        &self,
        _cx: &Ctx<'_>,
        id: &Value,
        method: &str,
        params: &Value,
    ) -> Option<Result<Reply, RpcError>> {
        let v = match method {
            "tools/list" => json!({ "tools": tools() }),
            "tools/call" => return Some(self.call(id, params)),
            "resources/list" => json!({"resources": [
                {"uri": "test://static-text", "name": "static-text", "description": "A static text resource.", "mimeType": "text/plain"},
                {"uri": "test://static-binary", "name": "static-binary", "description": "A static binary resource (PNG).", "mimeType": "image/png"},
                {"uri": "test://watched-resource", "name": "watched-resource", "description": "A resource to subscribe to.", "mimeType": "text/plain"}
            ]}),
            "resources/templates/list" => json!({"resourceTemplates": [
                {"uriTemplate": "test://template/{id}/data", "name": "template-data", "description": "Data for an id.", "mimeType": "application/json"}
            ]}),
            "resources/read" => return Some(read(params).map(Reply::Value)),
            "resources/subscribe" | "resources/unsubscribe" | "logging/setLevel" => json!({}),
            "completion/complete" => {
                json!({"completion": {"values": [], "total": 0, "hasMore": false}})
            }
            "prompts/list" => json!({"prompts": [
                {"name": "test_simple_prompt", "description": "A simple prompt without arguments."},
                {"name": "test_prompt_with_arguments", "description": "A prompt with two arguments.", "arguments": [
                    {"name": "arg1", "description": "First test argument", "required": true},
                    {"name": "arg2", "description": "Second test argument", "required": true}
                ]},
                {"name": "test_prompt_with_embedded_resource", "description": "A prompt embedding a resource.", "arguments": [
                    {"name": "resourceUri", "description": "URI of the resource to embed", "required": true}
                ]},
                {"name": "test_prompt_with_image", "description": "A prompt with an image."}
            ]}),
            "prompts/get" => return Some(prompt(params).map(Reply::Value)),
            _ => return None,
        };
        Some(Ok(Reply::Value(v)))
    }

    fn call(&self, id: &Value, params: &Value) -> Result<Reply, RpcError> {
        let name = params["name"].as_str().unwrap_or_default();
        let args = &params["arguments"];
        let text = |t: &str| json!({"content": [{"type": "text", "text": t}]});
        let v = match name {
            "test_simple_text" => text("This is a simple text response for testing."),
            "test_image_content" => {
                json!({"content": [{"type": "image", "data": PNG, "mimeType": "image/png"}]})
            }
            "test_audio_content" => {
                json!({"content": [{"type": "audio", "data": WAV, "mimeType": "audio/wav"}]})
            }
            "test_embedded_resource" => json!({"content": [{"type": "resource", "resource": {
                "uri": "test://embedded-resource", "mimeType": "text/plain",
                "text": "This is an embedded resource content."
            }}]}),
            "test_multiple_content_types" => json!({"content": [
                {"type": "text", "text": "Multiple content types test:"},
                {"type": "image", "data": PNG, "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "test://mixed-content-resource", "mimeType": "application/json", "text": "{\"test\":\"data\",\"value\":123}"}}
            ]}),
            "test_error_handling" => json!({
                "content": [{"type": "text", "text": "This tool intentionally returns an error for testing"}],
                "isError": true
            }),
            "json_schema_2020_12_tool" => text(&format!("Received: {args}")),
            "test_tool_with_logging" => return Ok(self.stream(id, Talk::Logging)),
            "test_tool_with_progress" => {
                let token = params["_meta"]["progressToken"].clone();
                return Ok(self.stream(id, Talk::Progress(token)));
            }
            "test_sampling" => {
                let prompt = args["prompt"].as_str().unwrap_or("").to_owned();
                return Ok(self.stream(
                    id,
                    Talk::Ask(
                        "sampling/createMessage",
                        json!({"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}], "maxTokens": 100}),
                        "LLM response",
                    ),
                ));
            }
            "test_elicitation" => {
                let message = args["message"].as_str().unwrap_or("").to_owned();
                return Ok(self.stream(
                    id,
                    Talk::Ask(
                        "elicitation/create",
                        json!({"message": message, "requestedSchema": {
                            "type": "object",
                            "properties": {
                                "username": {"type": "string", "description": "User's response"},
                                "email": {"type": "string", "description": "User's email address"}
                            },
                            "required": ["username", "email"]
                        }}),
                        "User response",
                    ),
                ));
            }
            "test_elicitation_sep1034_defaults" => {
                return Ok(self.stream(
                    id,
                    Talk::Ask(
                        "elicitation/create",
                        json!({"message": "Please review the defaults.", "requestedSchema": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string", "default": "John Doe"},
                                "age": {"type": "integer", "default": 30},
                                "score": {"type": "number", "default": 95.5},
                                "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
                                "verified": {"type": "boolean", "default": true}
                            }
                        }}),
                        "Elicitation completed",
                    ),
                ));
            }
            "test_elicitation_sep1330_enums" => {
                return Ok(self.stream(
                    id,
                    Talk::Ask(
                        "elicitation/create",
                        json!({"message": "Please choose.", "requestedSchema": {
                            "type": "object",
                            "properties": {
                                "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                                "titledSingle": {"type": "string", "oneOf": [
                                    {"const": "value1", "title": "First Option"},
                                    {"const": "value2", "title": "Second Option"},
                                    {"const": "value3", "title": "Third Option"}
                                ]},
                                "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                                "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                                "titledMulti": {"type": "array", "items": {"anyOf": [
                                    {"const": "value1", "title": "First Choice"},
                                    {"const": "value2", "title": "Second Choice"},
                                    {"const": "value3", "title": "Third Choice"}
                                ]}}
                            }
                        }}),
                        "Elicitation completed",
                    ),
                ));
            }
            other => {
                return Err(RpcError::invalid_params(format!("Unknown tool: {other}")));
            }
        };
        Ok(Reply::Value(v))
    }

    /// Runs a talking tool on its own task, its messages and result on an event stream.
    fn stream(&self, id: &Value, talk: Talk) -> Reply {
        let (tx, rx) = mpsc::channel::<Value>(16);
        let id = id.clone();
        let pending = self.pending.clone();
        let next = self.next.clone();
        tokio::spawn(async move {
            let pause = || tokio::time::sleep(Duration::from_millis(50));
            let result = match talk {
                Talk::Logging => {
                    for (i, m) in [
                        "Tool execution started",
                        "Tool processing data",
                        "Tool execution completed",
                    ]
                    .iter()
                    .enumerate()
                    {
                        if i > 0 {
                            pause().await;
                        }
                        let note = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "logger": "conformance", "data": m}});
                        if tx.send(note).await.is_err() {
                            return;
                        }
                    }
                    json!({"content": [{"type": "text", "text": "Tool with logging executed successfully"}]})
                }
                Talk::Progress(token) => {
                    for (i, p) in [0, 50, 100].iter().enumerate() {
                        if i > 0 {
                            pause().await;
                        }
                        if token.is_null() {
                            continue;
                        }
                        let note = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": p, "total": 100}});
                        if tx.send(note).await.is_err() {
                            return;
                        }
                    }
                    json!({"content": [{"type": "text", "text": "Tool with progress executed successfully"}]})
                }
                Talk::Ask(method, params, label) => {
                    let rid = format!("canopy-{}", next.fetch_add(1, Ordering::Relaxed));
                    let (answer_tx, answer_rx) = oneshot::channel();
                    lock(&pending).insert(rid.clone(), answer_tx);
                    let ask =
                        json!({"jsonrpc": "2.0", "id": rid, "method": method, "params": params});
                    if tx.send(ask).await.is_err() {
                        lock(&pending).remove(&rid);
                        return;
                    }
                    match tokio::time::timeout(Duration::from_secs(20), answer_rx).await {
                        Ok(Ok(body)) => match body.get("result") {
                            Some(r) => {
                                let shown = r
                                    .get("content")
                                    .and_then(|c| c.get("text"))
                                    .cloned()
                                    .unwrap_or_else(|| r.clone());
                                let summary = match (r.get("action"), r.get("content")) {
                                    (Some(a), c) => format!(
                                        "{label}: action={}, content={}",
                                        a.as_str().unwrap_or(""),
                                        c.cloned().unwrap_or(json!({}))
                                    ),
                                    _ => format!(
                                        "{label}: {}",
                                        shown
                                            .as_str()
                                            .map(str::to_owned)
                                            .unwrap_or(shown.to_string())
                                    ),
                                };
                                json!({"content": [{"type": "text", "text": summary}]})
                            }
                            None => {
                                json!({"content": [{"type": "text", "text": format!("The client refused {method}: {}", body.get("error").cloned().unwrap_or(Value::Null))}], "isError": true})
                            }
                        },
                        _ => {
                            lock(&pending).remove(&rid);
                            json!({"content": [{"type": "text", "text": format!("No answer to {method} in time.")}], "isError": true})
                        }
                    }
                }
            };
            let _ = tx.send(rpc::ok(&id, result)).await;
        });
        Reply::Stream(rx)
    }
}

/// What a talking tool sends during its call.
enum Talk {
    Logging,
    Progress(Value),
    /// A request to the client (method, params) and the label of the answer it reports.
    Ask(&'static str, Value, &'static str),
}

fn tools() -> Value {
    let none = json!({"type": "object", "properties": {}});
    let tool = |name: &str, description: &str, schema: &Value| json!({"name": name, "description": description, "inputSchema": schema});
    let one = |arg: &str, about: &str| json!({"type": "object", "properties": {arg: {"type": "string", "description": about}}, "required": [arg]});
    json!([
        tool("test_simple_text", "Returns simple text.", &none),
        tool("test_image_content", "Returns an image.", &none),
        tool("test_audio_content", "Returns audio.", &none),
        tool("test_embedded_resource", "Returns an embedded resource.", &none),
        tool("test_multiple_content_types", "Returns text, an image and a resource.", &none),
        tool("test_tool_with_logging", "Sends log messages while it runs.", &none),
        tool("test_tool_with_progress", "Reports progress while it runs.", &none),
        tool("test_error_handling", "Always fails.", &none),
        tool("test_sampling", "Asks the client's LLM.", &one("prompt", "The prompt to send to the LLM")),
        tool("test_elicitation", "Asks the user.", &one("message", "The message to show the user")),
        tool("test_elicitation_sep1034_defaults", "Asks the user, with defaults.", &none),
        tool("test_elicitation_sep1330_enums", "Asks the user to choose.", &none),
        {
            "name": "json_schema_2020_12_tool",
            "description": "Tool with JSON Schema 2020-12 features",
            "inputSchema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {"address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
                "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
                "additionalProperties": false
            }
        }
    ])
}

fn read(params: &Value) -> Result<Value, RpcError> {
    let uri = params["uri"].as_str().unwrap_or_default();
    let content = match uri {
        "test://static-text" => {
            json!({"uri": uri, "mimeType": "text/plain", "text": "This is the content of the static text resource."})
        }
        "test://static-binary" => json!({"uri": uri, "mimeType": "image/png", "blob": PNG}),
        "test://watched-resource" => {
            json!({"uri": uri, "mimeType": "text/plain", "text": "Watched resource content."})
        }
        _ => match uri
            .strip_prefix("test://template/")
            .and_then(|r| r.strip_suffix("/data"))
        {
            Some(id) if !id.is_empty() && !id.contains('/') => json!({
                "uri": uri,
                "mimeType": "application/json",
                "text": json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")}).to_string()
            }),
            _ => {
                return Err(RpcError::new(
                    rpc::RESOURCE_NOT_FOUND,
                    format!("Resource not found: {uri}"),
                ));
            }
        },
    };
    Ok(json!({ "contents": [content] }))
}

fn prompt(params: &Value) -> Result<Value, RpcError> {
    let args = &params["arguments"];
    let user = |content: Value| json!({"role": "user", "content": content});
    let messages = match params["name"].as_str().unwrap_or_default() {
        "test_simple_prompt" => vec![user(
            json!({"type": "text", "text": "This is a simple prompt for testing."}),
        )],
        "test_prompt_with_arguments" => {
            let a = args["arg1"].as_str().unwrap_or("");
            let b = args["arg2"].as_str().unwrap_or("");
            vec![user(
                json!({"type": "text", "text": format!("Prompt with arguments: arg1='{a}', arg2='{b}'")}),
            )]
        }
        "test_prompt_with_embedded_resource" => {
            let uri = args["resourceUri"]
                .as_str()
                .unwrap_or("test://example-resource");
            vec![
                user(
                    json!({"type": "resource", "resource": {"uri": uri, "mimeType": "text/plain", "text": "Embedded resource content for testing."}}),
                ),
                user(
                    json!({"type": "text", "text": "Please process the embedded resource above."}),
                ),
            ]
        }
        "test_prompt_with_image" => vec![
            user(json!({"type": "image", "data": PNG, "mimeType": "image/png"})),
            user(json!({"type": "text", "text": "Please analyze the image above."})),
        ],
        other => return Err(RpcError::invalid_params(format!("Unknown prompt: {other}"))),
    };
    Ok(json!({ "messages": messages }))
}
