//! The Anthropic Messages API.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::sse::SseParser;
use super::{
    ChatRequest, ChatResponse, Message, OnText, ProviderConfig, ProviderError, ToolCall, Usage,
};

const DEFAULT_BASE: &str = "https://api.anthropic.com";
const API_VERSION: &str = "2023-06-01";
/// The API requires `max_tokens`; this applies when the request sets none.
const DEFAULT_MAX_TOKENS: u32 = 1024;
/// There is no JSON mode in the API, so the system prompt asks for it.
const JSON_INSTRUCTION: &str =
    "Answer with exactly one JSON object and nothing else: no prose, no code fences.";

pub(super) async fn chat(
    http: &reqwest::Client,
    cfg: &ProviderConfig,
    req: &ChatRequest,
    on_text: OnText<'_>,
) -> Result<ChatResponse, ProviderError> {
    let model = super::pick_model(cfg, req)?;
    let url = format!("{}/v1/messages", super::base_url(cfg, DEFAULT_BASE));
    let mut rb = http
        .post(url)
        .header("anthropic-version", API_VERSION)
        .json(&body(&model, req));
    if let Some(key) = &cfg.api_key {
        // Sensitive: kept out of reqwest's Debug output.
        let mut v = reqwest::header::HeaderValue::from_str(key).map_err(|_| {
            ProviderError::Protocol("the api key is not a valid header value".into())
        })?;
        v.set_sensitive(true);
        rb = rb.header("x-api-key", v);
    }
    let resp = super::send(rb).await?;
    if req.stream && super::is_event_stream(&resp) {
        read_stream(resp, model, on_text).await
    } else {
        let v = super::read_json(resp).await?;
        parse_response(&v, model)
    }
}

fn body(model: &str, req: &ChatRequest) -> Value {
    let mut b = json!({
        "model": model,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages(&req.messages),
    });
    let system = req.system.as_deref().filter(|s| !s.is_empty());
    let system = match (system, req.json_mode) {
        (Some(s), true) => Some(format!("{s}\n\n{JSON_INSTRUCTION}")),
        (None, true) => Some(JSON_INSTRUCTION.to_string()),
        (s, false) => s.map(str::to_string),
    };
    if let Some(s) = system {
        b["system"] = json!(s);
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
        b["tools"] = Value::Array(tools);
    }
    if let Some(t) = req.temperature {
        b["temperature"] = json!(t);
    }
    if req.stream {
        b["stream"] = json!(true);
    }
    b
}

/// Messages as content blocks; consecutive blocks of the same role share one message, which
/// puts consecutive tool results (and a user turn after them) into one user message, as the
/// API's strict user/assistant alternation requires.
fn messages(msgs: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&str, Vec<Value>)> = Vec::new();
    for m in msgs {
        let (role, blocks) = match m {
            Message::User { text } => ("user", vec![json!({"type": "text", "text": text})]),
            Message::Assistant { text, tool_calls } => {
                let mut blocks = Vec::new();
                // Empty text blocks are rejected by the API.
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                for c in tool_calls {
                    blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(&c.arguments)}));
                }
                ("assistant", blocks)
            }
            Message::ToolResult {
                call_id,
                content,
                is_error,
                ..
            } => (
                "user",
                vec![
                    json!({"type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": is_error}),
                ],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

/// `input` must be an object; arguments that were not (unparsable text) are wrapped.
fn tool_input(v: &Value) -> Value {
    if v.is_object() {
        v.clone()
    } else {
        json!({"raw": v})
    }
}

fn parse_response(v: &Value, model: String) -> Result<ChatResponse, ProviderError> {
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::Protocol("response has no content array".into()))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(super::str_at(b, "/text").unwrap_or_default()),
            Some("tool_use") => tool_calls.push(ToolCall {
                id: super::str_at(b, "/id").unwrap_or_default().to_string(),
                name: super::str_at(b, "/name").unwrap_or_default().to_string(),
                arguments: b.get("input").cloned().unwrap_or_else(|| json!({})),
            }),
            _ => {} // thinking and other block kinds are not part of the answer
        }
    }
    Ok(ChatResponse {
        provider: "anthropic".into(),
        model: super::str_at(v, "/model")
            .map(str::to_string)
            .unwrap_or(model),
        text,
        tool_calls,
        stop_reason: super::str_at(v, "/stop_reason")
            .unwrap_or_default()
            .to_string(),
        usage: Usage {
            input_tokens: super::u64_at(v, "/usage/input_tokens").unwrap_or(0),
            output_tokens: super::u64_at(v, "/usage/output_tokens").unwrap_or(0),
        },
    })
}

struct PartialTool {
    id: String,
    name: String,
    json: String,
}

struct StreamState {
    model: String,
    text: String,
    tools: BTreeMap<u64, PartialTool>,
    stop_reason: String,
    usage: Usage,
    done: bool,
}

impl StreamState {
    fn apply(&mut self, ev: &Value, on_text: OnText<'_>) -> Result<(), ProviderError> {
        let index = super::u64_at(ev, "/index").unwrap_or(0);
        match ev.get("type").and_then(Value::as_str).unwrap_or_default() {
            "message_start" => {
                if let Some(m) = super::str_at(ev, "/message/model") {
                    self.model = m.to_string();
                }
                if let Some(n) = super::u64_at(ev, "/message/usage/input_tokens") {
                    self.usage.input_tokens = n;
                }
                if let Some(n) = super::u64_at(ev, "/message/usage/output_tokens") {
                    self.usage.output_tokens = n;
                }
            }
            "content_block_start" => match super::str_at(ev, "/content_block/type") {
                Some("tool_use") => {
                    let tool = PartialTool {
                        id: super::str_at(ev, "/content_block/id")
                            .unwrap_or_default()
                            .to_string(),
                        name: super::str_at(ev, "/content_block/name")
                            .unwrap_or_default()
                            .to_string(),
                        json: String::new(),
                    };
                    self.tools.insert(index, tool);
                }
                Some("text") => {
                    let t = super::str_at(ev, "/content_block/text").unwrap_or_default();
                    self.push_text(t, on_text);
                }
                _ => {}
            },
            "content_block_delta" => match super::str_at(ev, "/delta/type") {
                Some("text_delta") => {
                    let t = super::str_at(ev, "/delta/text").unwrap_or_default();
                    self.push_text(t, on_text);
                }
                Some("input_json_delta") => {
                    let part = super::str_at(ev, "/delta/partial_json").unwrap_or_default();
                    if let Some(tool) = self.tools.get_mut(&index) {
                        tool.json.push_str(part);
                    }
                }
                _ => {} // thinking / signature deltas
            },
            "message_delta" => {
                if let Some(r) = super::str_at(ev, "/delta/stop_reason") {
                    self.stop_reason = r.to_string();
                }
                // Counts here are cumulative, so they replace rather than add.
                if let Some(n) = super::u64_at(ev, "/usage/output_tokens") {
                    self.usage.output_tokens = n;
                }
                if let Some(n) = super::u64_at(ev, "/usage/input_tokens") {
                    self.usage.input_tokens = n;
                }
            }
            "message_stop" => self.done = true,
            "error" => return Err(stream_error(ev)),
            _ => {} // ping, content_block_stop
        }
        Ok(())
    }

    fn push_text(&mut self, t: &str, on_text: OnText<'_>) {
        if t.is_empty() {
            return;
        }
        self.text.push_str(t);
        if let Some(cb) = on_text {
            cb(t);
        }
    }

    fn finish(self) -> ChatResponse {
        let tool_calls = self
            .tools
            .into_values()
            .map(|t| ToolCall {
                id: t.id,
                name: t.name,
                arguments: super::parse_arguments(&t.json),
            })
            .collect();
        ChatResponse {
            provider: "anthropic".into(),
            model: self.model,
            text: self.text,
            tool_calls,
            stop_reason: self.stop_reason,
            usage: self.usage,
        }
    }
}

/// An `error` event mid-stream; the kinds that have an HTTP equivalent become `Status` so
/// that retrying works as for a non-streamed answer.
fn stream_error(ev: &Value) -> ProviderError {
    let message = super::str_at(ev, "/error/message")
        .unwrap_or("error event in stream")
        .to_string();
    let status = match super::str_at(ev, "/error/type") {
        Some("overloaded_error") => 529,
        Some("rate_limit_error") => 429,
        Some("api_error") => 500,
        Some("invalid_request_error") => 400,
        _ => return ProviderError::Protocol(message),
    };
    ProviderError::Status { status, message }
}

async fn read_stream(
    mut resp: reqwest::Response,
    model: String,
    on_text: OnText<'_>,
) -> Result<ChatResponse, ProviderError> {
    let mut parser = SseParser::new();
    let mut st = StreamState {
        model,
        text: String::new(),
        tools: BTreeMap::new(),
        stop_reason: String::new(),
        usage: Usage::default(),
        done: false,
    };
    let mut ended = false;
    while !st.done && !ended {
        let events = match resp.chunk().await.map_err(super::transport)? {
            Some(bytes) => parser.push(&bytes),
            None => {
                ended = true;
                parser.finish()
            }
        };
        for ev in events {
            if ev.data.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&ev.data)
                .map_err(|e| ProviderError::Protocol(format!("stream event is not JSON: {e}")))?;
            st.apply(&v, on_text)?;
            if st.done {
                break;
            }
        }
    }
    if !st.done {
        // The API always ends with message_stop, so this is a cut connection: worth a retry.
        return Err(ProviderError::Transport(
            "stream ended before message_stop".into(),
        ));
    }
    Ok(st.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_merge_into_one_user_message() {
        let msgs = vec![
            Message::User { text: "q".into() },
            Message::Assistant {
                text: "using tools".into(),
                tool_calls: vec![
                    ToolCall {
                        id: "a".into(),
                        name: "f".into(),
                        arguments: json!({}),
                    },
                    ToolCall {
                        id: "b".into(),
                        name: "g".into(),
                        arguments: json!("{bad"),
                    },
                ],
            },
            Message::ToolResult {
                call_id: "a".into(),
                name: "f".into(),
                content: "1".into(),
                is_error: false,
            },
            Message::ToolResult {
                call_id: "b".into(),
                name: "g".into(),
                content: "no".into(),
                is_error: true,
            },
        ];
        let m = messages(&msgs);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1]["content"][2]["input"], json!({"raw": "{bad"}));
        assert_eq!(m[2]["role"], "user");
        assert_eq!(m[2]["content"][0]["tool_use_id"], "a");
        assert_eq!(m[2]["content"][1]["is_error"], true);
    }

    #[test]
    fn json_mode_extends_system_and_max_tokens_defaults() {
        let req = ChatRequest {
            system: Some("sys".into()),
            json_mode: true,
            ..Default::default()
        };
        let b = body("m", &req);
        assert_eq!(b["max_tokens"], 1024);
        let sys = b["system"].as_str().unwrap_or_default();
        assert!(sys.starts_with("sys\n\n") && sys.contains("JSON object"));
    }

    #[test]
    fn stream_error_kinds() {
        let e = stream_error(
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
        assert!(e.retryable());
        assert!(matches!(e, ProviderError::Status { status: 529, .. }));
        let e = stream_error(&json!({"type": "error", "error": {"type": "weird", "message": "x"}}));
        assert!(matches!(e, ProviderError::Protocol(_)));
    }
}
