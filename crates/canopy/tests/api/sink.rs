//! A local stand-in for the outside world that steps talk to, on `127.0.0.1:0`:
//! - `/v1/chat/completions`: a scripted OpenAI-compatible model (JSON or streamed);
//! - `/anthropic/v1/messages`: a scripted Anthropic Messages model;
//! - `/mcp`: a one-tool MCP server (`echo`);
//! - `/hit/{name}`: counts requests and idempotency keys, echoes the body.
//!
//! The models' script: with tools offered and no tool result yet, ask for the first tool with
//! `{"text": "ping"}`; with a tool result, answer `done: <result>`; otherwise answer
//! `hello from <model>`. Usage is always 7 tokens in and 3 out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Default)]
pub struct Seen {
    /// Every model request: (path, authorization or x-api-key header, body).
    pub model_calls: Vec<(String, String, Value)>,
    /// `/hit/{name}` requests by name.
    pub hits: HashMap<String, usize>,
    /// Idempotency keys seen on `/hit`, with how often each came.
    pub keys: HashMap<String, usize>,
    pub mcp_calls: Vec<Value>,
}

#[derive(Clone)]
pub struct Sink {
    pub base: String,
    pub port: u16,
    pub seen: Arc<Mutex<Seen>>,
}

impl Sink {
    pub async fn start() -> Sink {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/anthropic/v1/messages", post(anthropic))
            .route("/mcp", post(mcp))
            .route("/hit/{name}", post(hit))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sink {
            base: format!("http://127.0.0.1:{port}"),
            port,
            seen,
        }
    }

    /// The address steps may reach: this sink's port only, not loopback in general.
    pub fn allow(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn hits(&self, name: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .hits
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    pub fn model_calls(&self) -> Vec<(String, String, Value)> {
        self.seen.lock().unwrap().model_calls.clone()
    }
}

type Shared = State<Arc<Mutex<Seen>>>;

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The scripted answer: `Ok(text)` or `Err(tool name)` to call.
fn script(
    model: &str,
    last_tool_result: Option<String>,
    first_tool: Option<String>,
) -> Result<String, String> {
    match (last_tool_result, first_tool) {
        (Some(r), _) => Ok(format!("done: {r}")),
        (None, Some(t)) => Err(t),
        (None, None) => Ok(format!("hello from {model}")),
    }
}

async fn openai(State(seen): Shared, h: HeaderMap, Json(body): Json<Value>) -> Response {
    seen.lock().unwrap().model_calls.push((
        "openai".into(),
        header(&h, "authorization"),
        body.clone(),
    ));
    let model = body["model"].as_str().unwrap_or("?").to_owned();
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let last_tool = msgs
        .last()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned());
    let first_tool = body["tools"][0]["function"]["name"]
        .as_str()
        .map(str::to_owned);
    let usage = json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10});
    let answer = script(&model, last_tool, first_tool);
    if body["stream"] == true {
        let mut events = Vec::new();
        match &answer {
            Ok(text) => {
                let (a, b) = text.split_at(text.len() / 2);
                for piece in [a, b] {
                    events.push(json!({"choices": [{"index": 0, "delta": {"content": piece}}]}));
                }
                events
                    .push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
            }
            Err(tool) => {
                events.push(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": tool, "arguments": "{\"text\":"}}]}}]}));
                events.push(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": " \"ping\"}"}}]}}]}));
                events.push(
                    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
                );
            }
        }
        events.push(json!({"choices": [], "usage": usage}));
        let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        text.push_str("data: [DONE]\n\n");
        return ([("content-type", "text/event-stream")], text).into_response();
    }
    let message = match answer {
        Ok(text) => json!({"role": "assistant", "content": text}),
        Err(tool) => json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": tool, "arguments": "{\"text\": \"ping\"}"}}
        ]}),
    };
    let finish = if message["tool_calls"].is_array() {
        "tool_calls"
    } else {
        "stop"
    };
    Json(json!({
        "id": "cmpl-1", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage
    }))
    .into_response()
}

async fn anthropic(State(seen): Shared, h: HeaderMap, Json(body): Json<Value>) -> Response {
    seen.lock().unwrap().model_calls.push((
        "anthropic".into(),
        header(&h, "x-api-key"),
        body.clone(),
    ));
    if header(&h, "anthropic-version").is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({"type": "error", "error": {"type": "invalid_request_error", "message": "anthropic-version missing"}}))).into_response();
    }
    let model = body["model"].as_str().unwrap_or("?").to_owned();
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    // A tool result comes back as a `tool_result` block inside a user message.
    let last_tool = msgs.last().and_then(|m| {
        m["content"].as_array().and_then(|blocks| {
            blocks
                .iter()
                .find(|b| b["type"] == "tool_result")
                .map(|b| match &b["content"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
        })
    });
    let first_tool = body["tools"][0]["name"].as_str().map(str::to_owned);
    let content = match script(&model, last_tool, first_tool) {
        Ok(text) => json!([{"type": "text", "text": text}]),
        Err(tool) => {
            json!([{"type": "tool_use", "id": "toolu_1", "name": tool, "input": {"text": "ping"}}])
        }
    };
    let stop = if content[0]["type"] == "tool_use" {
        "tool_use"
    } else {
        "end_turn"
    };
    Json(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop,
        "usage": {"input_tokens": 7, "output_tokens": 3}
    }))
    .into_response()
}

async fn mcp(State(seen): Shared, Json(req): Json<Value>) -> Response {
    let id = req.get("id").cloned();
    let method = req["method"].as_str().unwrap_or_default();
    let result = match method {
        "initialize" => json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "sink", "version": "1"}
        }),
        "tools/list" => json!({"tools": [{
            "name": "echo",
            "description": "Echoes its arguments.",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}
        }]}),
        "tools/call" => {
            seen.lock().unwrap().mcp_calls.push(req["params"].clone());
            let args = req["params"]["arguments"].clone();
            json!({
                "content": [{"type": "text", "text": format!("echo {args}")}],
                "structuredContent": {"echo": args},
                "isError": false
            })
        }
        _ => json!({}),
    };
    match id {
        // Notifications get no answer.
        None => StatusCode::ACCEPTED.into_response(),
        Some(id) => Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response(),
    }
}

async fn hit(
    State(seen): Shared,
    Path(name): Path<String>,
    h: HeaderMap,
    body: String,
) -> Response {
    {
        let mut s = seen.lock().unwrap();
        *s.hits.entry(name.clone()).or_default() += 1;
        let key = header(&h, "idempotency-key");
        *s.keys.entry(key).or_default() += 1;
    }
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    Json(json!({"name": name, "got": body})).into_response()
}
