//! OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, llama.cpp, …).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::sse::SseParser;
use super::{
    ChatRequest, ChatResponse, Message, OnText, ProviderConfig, ProviderError, ToolCall, Usage,
};

const DEFAULT_BASE: &str = "https://api.openai.com/v1";

pub(super) async fn chat(
    http: &reqwest::Client,
    cfg: &ProviderConfig,
    req: &ChatRequest,
    on_text: OnText<'_>,
) -> Result<ChatResponse, ProviderError> {
    let model = super::pick_model(cfg, req)?;
    let url = format!("{}/chat/completions", super::base_url(cfg, DEFAULT_BASE));
    let mut rb = http.post(url).json(&body(&model, req));
    if let Some(key) = &cfg.api_key {
        rb = rb.bearer_auth(key);
    }
    if let Some(org) = &cfg.organization {
        rb = rb.header("OpenAI-Organization", org);
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
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
        messages.push(json!({"role": "system", "content": system}));
    }
    for m in &req.messages {
        messages.push(message(m));
    }
    let mut b = json!({"model": model, "messages": messages});
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.input_schema,
                }})
            })
            .collect();
        b["tools"] = Value::Array(tools);
    }
    if let Some(t) = req.temperature {
        b["temperature"] = json!(t);
    }
    // `max_tokens` rather than OpenAI's newer `max_completion_tokens`: every compatible
    // server understands it.
    if let Some(n) = req.max_tokens {
        b["max_tokens"] = json!(n);
    }
    if req.json_mode {
        b["response_format"] = json!({"type": "json_object"});
    }
    if req.stream {
        b["stream"] = json!(true);
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}

fn message(m: &Message) -> Value {
    match m {
        Message::User { text } => json!({"role": "user", "content": text}),
        Message::Assistant { text, tool_calls } => {
            let mut v = json!({"role": "assistant", "content": text});
            if !tool_calls.is_empty() {
                // Content may be null next to tool calls; some servers reject "".
                if text.is_empty() {
                    v["content"] = Value::Null;
                }
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function", "function": {
                            "name": c.name, "arguments": arguments_text(&c.arguments),
                        }})
                    })
                    .collect();
                v["tool_calls"] = Value::Array(calls);
            }
            v
        }
        Message::ToolResult {
            call_id,
            content,
            is_error,
            ..
        } => {
            // The API has no error flag, so the model is told in the content.
            let content = if *is_error {
                format!("error: {content}")
            } else {
                content.clone()
            };
            json!({"role": "tool", "tool_call_id": call_id, "content": content})
        }
    }
}

/// Arguments go over the wire as JSON text; a string value is text the model produced that
/// did not parse, so it is sent back unchanged rather than quoted again.
fn arguments_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_response(v: &Value, model: String) -> Result<ChatResponse, ProviderError> {
    let choice = v
        .pointer("/choices/0")
        .ok_or_else(|| ProviderError::Protocol("response has no choices".into()))?;
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let text = msg
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut tool_calls = Vec::new();
    if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
        for (i, c) in calls.iter().enumerate() {
            tool_calls.push(ToolCall {
                id: super::str_at(c, "/id")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("call_{}", i + 1)),
                name: super::str_at(c, "/function/name")
                    .unwrap_or_default()
                    .to_string(),
                arguments: match c.pointer("/function/arguments") {
                    Some(Value::String(s)) => super::parse_arguments(s),
                    // Some servers send an object already.
                    Some(other) => other.clone(),
                    None => json!({}),
                },
            });
        }
    }
    Ok(ChatResponse {
        provider: "openai".into(),
        model: super::str_at(v, "/model")
            .map(str::to_string)
            .unwrap_or(model),
        text,
        tool_calls,
        stop_reason: super::str_at(choice, "/finish_reason")
            .unwrap_or_default()
            .to_string(),
        usage: usage(v),
    })
}

fn usage(v: &Value) -> Usage {
    Usage {
        input_tokens: super::u64_at(v, "/usage/prompt_tokens").unwrap_or(0),
        output_tokens: super::u64_at(v, "/usage/completion_tokens").unwrap_or(0),
    }
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Accumulates a streamed completion chunk by chunk.
struct StreamState {
    model: String,
    text: String,
    calls: BTreeMap<u64, PartialCall>,
    stop_reason: String,
    usage: Usage,
    done: bool,
}

impl StreamState {
    fn apply(&mut self, chunk: &Value, on_text: OnText<'_>) -> Result<(), ProviderError> {
        if let Some(err) = chunk.get("error") {
            let msg = err
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| err.to_string());
            return Err(ProviderError::Protocol(format!("error in stream: {msg}")));
        }
        if let Some(m) = super::str_at(chunk, "/model").filter(|m| !m.is_empty()) {
            self.model = m.to_string();
        }
        if chunk.get("usage").is_some_and(Value::is_object) {
            self.usage = usage(chunk);
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return Ok(()); // the usage-only chunk has no choices
        };
        if let Some(delta) = super::str_at(choice, "/delta/content").filter(|d| !d.is_empty()) {
            self.text.push_str(delta);
            if let Some(cb) = on_text {
                cb(delta);
            }
        }
        if let Some(calls) = choice
            .pointer("/delta/tool_calls")
            .and_then(Value::as_array)
        {
            for (pos, c) in calls.iter().enumerate() {
                // `index` is in the spec; servers that omit it send whole calls in order.
                let index = super::u64_at(c, "/index").unwrap_or((self.calls.len() + pos) as u64);
                let call = self.calls.entry(index).or_default();
                if let Some(id) = super::str_at(c, "/id").filter(|s| !s.is_empty()) {
                    call.id = id.to_string();
                }
                if let Some(name) = super::str_at(c, "/function/name") {
                    call.name.push_str(name);
                }
                match c.pointer("/function/arguments") {
                    Some(Value::String(s)) => call.arguments.push_str(s),
                    Some(v) if !v.is_null() => call.arguments.push_str(&v.to_string()),
                    _ => {}
                }
            }
        }
        if let Some(reason) = super::str_at(choice, "/finish_reason") {
            self.stop_reason = reason.to_string();
        }
        Ok(())
    }

    fn finish(self) -> ChatResponse {
        let tool_calls = self
            .calls
            .into_values()
            .enumerate()
            .map(|(i, c)| ToolCall {
                id: if c.id.is_empty() {
                    format!("call_{}", i + 1)
                } else {
                    c.id
                },
                name: c.name,
                arguments: super::parse_arguments(&c.arguments),
            })
            .collect();
        ChatResponse {
            provider: "openai".into(),
            model: self.model,
            text: self.text,
            tool_calls,
            stop_reason: self.stop_reason,
            usage: self.usage,
        }
    }
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
        calls: BTreeMap::new(),
        stop_reason: String::new(),
        usage: Usage::default(),
        done: false,
    };
    while !st.done {
        let events = match resp.chunk().await.map_err(super::transport)? {
            Some(bytes) => parser.push(&bytes),
            None => {
                // A stream that ends without `[DONE]` is accepted with what arrived.
                st.done = true;
                parser.finish()
            }
        };
        for ev in events {
            let data = ev.data.trim();
            if data == "[DONE]" {
                st.done = true;
                break;
            }
            if data.is_empty() {
                continue;
            }
            let chunk: Value = serde_json::from_str(data)
                .map_err(|e| ProviderError::Protocol(format!("stream chunk is not JSON: {e}")))?;
            st.apply(&chunk, on_text)?;
        }
    }
    Ok(st.finish())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::providers::ToolSpec;

    #[test]
    fn body_shapes_messages_and_tools() {
        let req = ChatRequest {
            system: Some("be brief".into()),
            messages: vec![
                Message::User { text: "hi".into() },
                Message::Assistant {
                    text: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "add".into(),
                        arguments: json!({"a": 1}),
                    }],
                },
                Message::ToolResult {
                    call_id: "c1".into(),
                    name: "add".into(),
                    content: "2".into(),
                    is_error: false,
                },
            ],
            tools: vec![ToolSpec {
                name: "add".into(),
                description: "adds".into(),
                input_schema: json!({"type": "object"}),
            }],
            json_mode: true,
            stream: true,
            ..Default::default()
        };
        let b = body("m", &req);
        assert_eq!(
            b["messages"][0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(b["messages"][2]["content"], Value::Null);
        assert_eq!(
            b["messages"][2]["tool_calls"][0]["function"]["arguments"],
            json!(r#"{"a":1}"#)
        );
        assert_eq!(b["messages"][3]["role"], "tool");
        assert_eq!(b["messages"][3]["tool_call_id"], "c1");
        assert_eq!(
            b["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        assert_eq!(b["response_format"]["type"], "json_object");
        assert_eq!(b["stream_options"]["include_usage"], true);
    }

    #[test]
    fn unparsable_arguments_survive_as_string() {
        let v = json!({"choices": [{"message": {"content": null, "tool_calls": [
            {"id": "x", "type": "function", "function": {"name": "f", "arguments": "{bad"}}
        ]}, "finish_reason": "tool_calls"}]});
        let r = parse_response(&v, "m".into()).unwrap();
        assert_eq!(r.text, "");
        assert_eq!(r.tool_calls[0].arguments, json!("{bad"));
        assert_eq!(arguments_text(&r.tool_calls[0].arguments), "{bad");
        assert_eq!(r.model, "m");
    }
}
