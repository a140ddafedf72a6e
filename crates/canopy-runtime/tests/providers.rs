//! Providers over real HTTP against scripted local servers (axum on 127.0.0.1:0, plus one raw
//! TCP server that splits a stream at awkward byte boundaries), and the offline builtin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use canopy_runtime::providers::{
    ChatRequest, Message, Price, Prices, ProviderConfig, ProviderError, ProviderKind, Providers,
    ToolCall, ToolSpec, Usage,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---- scripted server -------------------------------------------------------------------

/// What the server saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Value,
}

/// Given the request number (0-based) and the request, the reply: status, content type, body.
type Script = dyn Fn(usize, &Seen) -> (u16, &'static str, String) + Send + Sync;

struct Server {
    script: Box<Script>,
    seen: Mutex<Vec<Seen>>,
}

async fn handle(
    State(s): State<Arc<Server>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        path: uri.path().to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let n = {
        let mut all = s.seen.lock().unwrap();
        all.push(seen.clone());
        all.len() - 1
    };
    let (status, ct, body) = (s.script)(n, &seen);
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, ct)],
        body,
    )
        .into_response()
}

/// Starts a server answering every POST with `script`; returns its base URL and state.
async fn serve(
    script: impl Fn(usize, &Seen) -> (u16, &'static str, String) + Send + Sync + 'static,
) -> (String, Arc<Server>) {
    let state = Arc::new(Server {
        script: Box::new(script),
        seen: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .fallback(axum::routing::post(handle))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), state)
}

fn seen(s: &Server) -> Vec<Seen> {
    s.seen.lock().unwrap().clone()
}

const JSON: &str = "application/json";
const SSE: &str = "text/event-stream";

/// `data:` lines for OpenAI-style streams.
fn sse_data(chunks: &[Value]) -> String {
    let mut s: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    s.push_str("data: [DONE]\n\n");
    s
}

/// `event:` + `data:` pairs for Anthropic-style streams (CRLF, to exercise that too).
fn sse_events(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "event: {}\r\ndata: {e}\r\n\r\n",
                e["type"].as_str().unwrap()
            )
        })
        .collect()
}

fn providers() -> Providers {
    Providers::new(Duration::from_secs(5))
}

fn cfg(kind: ProviderKind, base: &str) -> ProviderConfig {
    ProviderConfig {
        kind,
        api_key: Some("test-key-123".into()),
        base_url: Some(base.to_string()),
        organization: None,
        default_model: Some("test-model".into()),
    }
}

fn user(text: &str) -> Message {
    Message::User { text: text.into() }
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Weather for a city".into(),
        input_schema: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    }
}

/// Collects streamed pieces.
#[derive(Default, Clone)]
struct Pieces(Arc<Mutex<Vec<String>>>);

impl Pieces {
    fn cb(&self) -> impl Fn(&str) + Send + Sync + use<> {
        let inner = self.0.clone();
        move |s: &str| inner.lock().unwrap().push(s.to_string())
    }
    fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

// ---- OpenAI ---------------------------------------------------------------------------

#[tokio::test]
async fn openai_non_stream_text_and_usage() {
    let (base, srv) = serve(|_, _| {
        let body = json!({
            "id": "x", "model": "test-model-0613",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
        });
        (200, JSON, body.to_string())
    })
    .await;
    let mut c = cfg(ProviderKind::OpenAi, &format!("{base}/v1/"));
    c.organization = Some("org-7".into());
    let req = ChatRequest {
        system: Some("Be nice".into()),
        messages: vec![user("Hi")],
        temperature: Some(0.5),
        max_tokens: Some(64),
        json_mode: true,
        ..Default::default()
    };
    let r = providers().chat(&c, &req, None).await.unwrap();
    assert_eq!(r.provider, "openai");
    assert_eq!(r.text, "Hello there");
    assert_eq!(r.model, "test-model-0613");
    assert_eq!(r.stop_reason, "stop");
    assert!(r.tool_calls.is_empty());
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 12,
            output_tokens: 3
        }
    );

    let s = &seen(&srv)[0];
    assert_eq!(s.path, "/v1/chat/completions");
    assert_eq!(s.headers["authorization"], "Bearer test-key-123");
    assert_eq!(s.headers["openai-organization"], "org-7");
    assert_eq!(s.body["model"], "test-model");
    assert_eq!(
        s.body["messages"][0],
        json!({"role": "system", "content": "Be nice"})
    );
    assert_eq!(
        s.body["messages"][1],
        json!({"role": "user", "content": "Hi"})
    );
    assert_eq!(s.body["temperature"], 0.5);
    assert_eq!(s.body["max_tokens"], 64);
    assert_eq!(s.body["response_format"], json!({"type": "json_object"}));
    assert!(s.body.get("stream").is_none());
    assert!(s.body.get("tools").is_none());
}

#[tokio::test]
async fn openai_stream_text_deltas() {
    let (base, srv) = serve(|_, _| {
        let d = |t: &str| json!({"model": "m-1", "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]});
        let body = sse_data(&[
            json!({"model": "m-1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            d("Once "),
            d("upon "),
            d("a time"),
            json!({"model": "m-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            json!({"model": "m-1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 4}}),
        ]);
        (200, SSE, body)
    })
    .await;
    let pieces = Pieces::default();
    let cb = pieces.cb();
    let req = ChatRequest {
        model: Some("m".into()),
        messages: vec![user("Tell a story")],
        stream: true,
        ..Default::default()
    };
    let r = providers()
        .chat(&cfg(ProviderKind::OpenAi, &base), &req, Some(&cb))
        .await
        .unwrap();
    assert_eq!(r.text, "Once upon a time");
    assert_eq!(pieces.get(), vec!["Once ", "upon ", "a time"]);
    assert_eq!(pieces.get().concat(), r.text);
    assert_eq!(r.stop_reason, "stop");
    assert_eq!(r.model, "m-1");
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 5,
            output_tokens: 4
        }
    );
    let s = &seen(&srv)[0];
    assert_eq!(s.body["model"], "m");
    assert_eq!(s.body["stream"], true);
    assert_eq!(s.body["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn openai_tool_call_round_trip() {
    let (base, srv) = serve(|n, s| {
        if n == 0 {
            let tc = |v: Value| json!({"choices": [{"index": 0, "delta": {"tool_calls": [v]}}]});
            let body = sse_data(&[
                tc(json!({"index": 0, "id": "call_abc", "type": "function",
                          "function": {"name": "get_weather", "arguments": ""}})),
                tc(json!({"index": 0, "function": {"arguments": "{\"ci"}})),
                tc(json!({"index": 0, "function": {"arguments": "ty\": \"Par"}})),
                tc(json!({"index": 0, "function": {"arguments": "is\"}"}})),
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
                json!({"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 9}}),
            ]);
            return (200, SSE, body);
        }
        // Second turn: the tool result must come back as role `tool` for the right call.
        let msgs = s.body["messages"].as_array().cloned().unwrap_or_default();
        let ok = msgs.len() == 3
            && msgs[1]["role"] == "assistant"
            && msgs[1]["tool_calls"][0]["id"] == "call_abc"
            && msgs[1]["tool_calls"][0]["type"] == "function"
            && msgs[1]["tool_calls"][0]["function"]["name"] == "get_weather"
            && msgs[1]["tool_calls"][0]["function"]["arguments"].is_string()
            && msgs[2]["role"] == "tool"
            && msgs[2]["tool_call_id"] == "call_abc"
            && msgs[2]["content"] == "sunny, 21C";
        if !ok {
            let err = json!({"error": {"message": format!("bad second request: {}", s.body)}});
            return (400, JSON, err.to_string());
        }
        let body = json!({"choices": [{"message": {"role": "assistant", "content": "It is sunny in Paris."},
                          "finish_reason": "stop"}], "usage": {"prompt_tokens": 30, "completion_tokens": 6}});
        (200, JSON, body.to_string())
    })
    .await;
    let p = providers();
    let c = cfg(ProviderKind::OpenAi, &base);
    let mut req = ChatRequest {
        messages: vec![user("Weather in Paris?")],
        tools: vec![weather_tool()],
        stream: true,
        ..Default::default()
    };
    let r = p.chat(&c, &req, None).await.unwrap();
    assert_eq!(r.text, "");
    assert_eq!(r.stop_reason, "tool_calls");
    assert_eq!(
        r.tool_calls,
        vec![ToolCall {
            id: "call_abc".into(),
            name: "get_weather".into(),
            arguments: json!({"city": "Paris"})
        }]
    );
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 20,
            output_tokens: 9
        }
    );
    let first = &seen(&srv)[0];
    assert_eq!(first.body["tools"][0]["type"], "function");
    assert_eq!(first.body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        first.body["tools"][0]["function"]["parameters"]["type"],
        "object"
    );

    req.stream = false;
    req.messages.push(Message::Assistant {
        text: r.text,
        tool_calls: r.tool_calls.clone(),
    });
    req.messages.push(Message::ToolResult {
        call_id: r.tool_calls[0].id.clone(),
        name: "get_weather".into(),
        content: "sunny, 21C".into(),
        is_error: false,
    });
    let r2 = p.chat(&c, &req, None).await.unwrap();
    assert_eq!(r2.text, "It is sunny in Paris.");
    let second = &seen(&srv)[1];
    assert_eq!(
        serde_json::from_str::<Value>(
            second.body["messages"][1]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
        )
        .unwrap(),
        json!({"city": "Paris"})
    );
}

/// A raw TCP server writes the stream in small pieces with pauses, splitting lines, a
/// `\r\n` pair and a multi-byte character, so chunk handling is exercised over the wire.
#[tokio::test]
async fn openai_stream_survives_awkward_chunk_boundaries() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        // Read the request head and body (small; one or two reads).
        let mut buf = vec![0u8; 16 * 1024];
        let mut got = Vec::new();
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let len: usize = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if got.len() >= head_end + 4 + len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let d = |t: &str| json!({"choices": [{"index": 0, "delta": {"content": t}}]}).to_string();
        let body = format!(
            "data: {}\r\n\r\ndata: {}\r\n\r\ndata: {}\r\n\r\ndata: [DONE]\r\n\r\n",
            d("Grüße "),
            d("aus "),
            json!({"choices": [{"index": 0, "delta": {"content": "Köln"}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 2, "completion_tokens": 3}})
        );
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
        sock.write_all(head.as_bytes()).await.unwrap();
        let bytes = body.as_bytes();
        // Cut inside "data", inside the `ü`, between `\r` and `\n`, and elsewhere.
        let u = body.find('ü').unwrap() + 1;
        let cr = body.find("\r\n\r\n").unwrap() + 1;
        let mut cuts = vec![3, u, cr, cr + 2, bytes.len() - 5];
        cuts.sort();
        cuts.dedup();
        let mut start = 0;
        for end in cuts.into_iter().chain([bytes.len()]) {
            let piece = &bytes[start..end];
            let frame = [format!("{:x}\r\n", piece.len()).as_bytes(), piece, b"\r\n"].concat();
            sock.write_all(&frame).await.unwrap();
            sock.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            start = end;
        }
        sock.write_all(b"0\r\n\r\n").await.unwrap();
    });
    let pieces = Pieces::default();
    let cb = pieces.cb();
    let req = ChatRequest {
        messages: vec![user("hi")],
        stream: true,
        ..Default::default()
    };
    let r = providers()
        .chat(
            &cfg(ProviderKind::OpenAi, &format!("http://{addr}")),
            &req,
            Some(&cb),
        )
        .await
        .unwrap();
    assert_eq!(r.text, "Grüße aus Köln");
    assert_eq!(pieces.get(), vec!["Grüße ", "aus ", "Köln"]);
    assert_eq!(r.stop_reason, "stop");
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 2,
            output_tokens: 3
        }
    );
}

// ---- Anthropic ------------------------------------------------------------------------

fn assert_anthropic_headers(s: &Seen) {
    assert_eq!(s.path, "/v1/messages");
    assert_eq!(s.headers["x-api-key"], "test-key-123");
    assert_eq!(s.headers["anthropic-version"], "2023-06-01");
    assert!(s.headers.get("authorization").is_none());
}

#[tokio::test]
async fn anthropic_non_stream_text_and_usage() {
    let (base, srv) = serve(|_, _| {
        let body = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test-20250101",
            "content": [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 11, "output_tokens": 2}
        });
        (200, JSON, body.to_string())
    })
    .await;
    let req = ChatRequest {
        system: Some("Be nice".into()),
        messages: vec![user("Hi")],
        temperature: Some(0.2),
        ..Default::default()
    };
    let r = providers()
        .chat(
            &cfg(ProviderKind::Anthropic, &format!("{base}/")),
            &req,
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.provider, "anthropic");
    assert_eq!(r.text, "Hello, world");
    assert_eq!(r.model, "claude-test-20250101");
    assert_eq!(r.stop_reason, "end_turn");
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 11,
            output_tokens: 2
        }
    );
    let s = &seen(&srv)[0];
    assert_anthropic_headers(s);
    assert_eq!(s.body["model"], "test-model");
    assert_eq!(s.body["max_tokens"], 1024);
    assert_eq!(s.body["system"], "Be nice");
    assert_eq!(s.body["temperature"], 0.2);
    assert_eq!(
        s.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
    );
}

#[tokio::test]
async fn anthropic_stream_text_deltas() {
    let (base, srv) = serve(|_, _| {
        let delta = |t: &str| json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}});
        let body = sse_events(&[
            json!({"type": "message_start", "message": {"id": "m", "model": "claude-s", "content": [],
                   "usage": {"input_tokens": 25, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "ping"}),
            delta("Roses "),
            delta("are "),
            delta("red"),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}),
            json!({"type": "message_stop"}),
        ]);
        (200, SSE, body)
    })
    .await;
    let pieces = Pieces::default();
    let cb = pieces.cb();
    let req = ChatRequest {
        messages: vec![user("A poem")],
        max_tokens: Some(50),
        json_mode: true,
        stream: true,
        ..Default::default()
    };
    let r = providers()
        .chat(&cfg(ProviderKind::Anthropic, &base), &req, Some(&cb))
        .await
        .unwrap();
    assert_eq!(r.text, "Roses are red");
    assert_eq!(pieces.get(), vec!["Roses ", "are ", "red"]);
    assert_eq!(pieces.get().concat(), r.text);
    assert_eq!(r.stop_reason, "end_turn");
    assert_eq!(r.model, "claude-s");
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 25,
            output_tokens: 7
        }
    );
    let s = &seen(&srv)[0];
    assert_anthropic_headers(s);
    assert_eq!(s.body["stream"], true);
    assert_eq!(s.body["max_tokens"], 50);
    assert!(s.body["system"].as_str().unwrap().contains("JSON object"));
}

#[tokio::test]
async fn anthropic_tool_call_round_trip() {
    let (base, srv) = serve(|n, s| {
        if n == 0 {
            let body = sse_events(&[
                json!({"type": "message_start", "message": {"model": "claude-s", "usage": {"input_tokens": 40, "output_tokens": 1}}}),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking."}}),
                json!({"type": "content_block_stop", "index": 0}),
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Pa"}}),
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "ris\"}"}}),
                json!({"type": "content_block_stop", "index": 1}),
                json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}}}),
                json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Oslo\"}"}}),
                json!({"type": "content_block_stop", "index": 2}),
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}}),
                json!({"type": "message_stop"}),
            ]);
            return (200, SSE, body);
        }
        // Second turn: both results inside ONE user message, after the assistant's tool_use.
        let m = &s.body["messages"];
        let ok = m.as_array().map(Vec::len) == Some(3)
            && m[1]["role"] == "assistant"
            && m[1]["content"][0] == json!({"type": "text", "text": "Checking."})
            && m[1]["content"][1]["type"] == "tool_use"
            && m[1]["content"][1]["id"] == "toolu_1"
            && m[1]["content"][1]["input"] == json!({"city": "Paris"})
            && m[2]["role"] == "user"
            && m[2]["content"][0]["type"] == "tool_result"
            && m[2]["content"][0]["tool_use_id"] == "toolu_1"
            && m[2]["content"][0]["content"] == "sunny"
            && m[2]["content"][0]["is_error"] == false
            && m[2]["content"][1]["tool_use_id"] == "toolu_2"
            && m[2]["content"][1]["is_error"] == true
            && s.body["tools"][0]["input_schema"]["type"] == "object";
        if !ok {
            let err = json!({"type": "error", "error": {"type": "invalid_request_error", "message": format!("bad second request: {}", s.body)}});
            return (400, JSON, err.to_string());
        }
        let body = json!({"model": "claude-s", "content": [{"type": "text", "text": "Paris sunny, Oslo unknown."}],
                          "stop_reason": "end_turn", "usage": {"input_tokens": 80, "output_tokens": 8}});
        (200, JSON, body.to_string())
    })
    .await;
    let p = providers();
    let c = cfg(ProviderKind::Anthropic, &base);
    let mut req = ChatRequest {
        messages: vec![user("Weather in Paris and Oslo?")],
        tools: vec![weather_tool()],
        stream: true,
        ..Default::default()
    };
    let r = p.chat(&c, &req, None).await.unwrap();
    assert_eq!(r.text, "Checking.");
    assert_eq!(r.stop_reason, "tool_use");
    assert_eq!(r.tool_calls.len(), 2);
    assert_eq!(
        r.tool_calls[0],
        ToolCall {
            id: "toolu_1".into(),
            name: "get_weather".into(),
            arguments: json!({"city": "Paris"})
        }
    );
    assert_eq!(r.tool_calls[1].arguments, json!({"city": "Oslo"}));
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 40,
            output_tokens: 30
        }
    );

    req.stream = false;
    req.messages.push(Message::Assistant {
        text: r.text.clone(),
        tool_calls: r.tool_calls.clone(),
    });
    req.messages.push(Message::ToolResult {
        call_id: "toolu_1".into(),
        name: "get_weather".into(),
        content: "sunny".into(),
        is_error: false,
    });
    req.messages.push(Message::ToolResult {
        call_id: "toolu_2".into(),
        name: "get_weather".into(),
        content: "station offline".into(),
        is_error: true,
    });
    let r2 = p.chat(&c, &req, None).await.unwrap();
    assert_eq!(r2.text, "Paris sunny, Oslo unknown.");
    assert_anthropic_headers(&seen(&srv)[1]);
}

#[tokio::test]
async fn anthropic_stream_error_event_is_retryable_status() {
    let (base, _srv) = serve(|_, _| {
        let body = sse_events(&[
            json!({"type": "message_start", "message": {"model": "claude-s", "usage": {"input_tokens": 1}}}),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ]);
        (200, SSE, body)
    })
    .await;
    let req = ChatRequest {
        messages: vec![user("x")],
        stream: true,
        ..Default::default()
    };
    let e = providers()
        .chat(&cfg(ProviderKind::Anthropic, &base), &req, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Status { status: 529, message } if message == "Overloaded"),
        "{e:?}"
    );
    assert!(e.retryable());
}

#[tokio::test]
async fn anthropic_stream_cut_before_message_stop_is_transport() {
    let (base, _srv) = serve(|_, _| {
        let body = sse_events(&[
            json!({"type": "message_start", "message": {"model": "claude-s", "usage": {"input_tokens": 1}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial"}}),
        ]);
        (200, SSE, body)
    })
    .await;
    let req = ChatRequest {
        messages: vec![user("x")],
        stream: true,
        ..Default::default()
    };
    let e = providers()
        .chat(&cfg(ProviderKind::Anthropic, &base), &req, None)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Transport(_)), "{e:?}");
    assert!(e.retryable());
}

// ---- errors ---------------------------------------------------------------------------

#[tokio::test]
async fn status_errors_carry_message_and_retryability() {
    let (base, _srv) = serve(|n, _| match n {
        0 => (429, JSON, json!({"error": {"message": "Rate limit reached", "type": "requests"}}).to_string()),
        1 => (500, "text/plain", "upstream exploded".to_string()),
        _ => (400, JSON, json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens too large"}}).to_string()),
    })
    .await;
    let p = providers();
    let req = ChatRequest {
        messages: vec![user("x")],
        ..Default::default()
    };

    let e = p
        .chat(&cfg(ProviderKind::OpenAi, &base), &req, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Status { status: 429, message } if message == "Rate limit reached"),
        "{e:?}"
    );
    assert!(e.retryable());
    assert_eq!(e.code(), "provider_status");

    let e = p
        .chat(&cfg(ProviderKind::OpenAi, &base), &req, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Status { status: 500, message } if message == "upstream exploded"),
        "{e:?}"
    );
    assert!(e.retryable());

    let e = p
        .chat(&cfg(ProviderKind::Anthropic, &base), &req, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Status { status: 400, message } if message == "max_tokens too large"),
        "{e:?}"
    );
    assert!(!e.retryable());
    assert!(!e.to_string().contains("test-key-123"));
}

#[tokio::test]
async fn missing_model_fails_before_any_request() {
    let (base, srv) = serve(|_, _| (200, JSON, "{}".into())).await;
    let req = ChatRequest {
        messages: vec![user("x")],
        ..Default::default()
    };
    for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
        let mut c = cfg(kind, &base);
        c.default_model = None;
        let e = providers().chat(&c, &req, None).await.unwrap_err();
        assert!(matches!(e, ProviderError::MissingModel), "{e:?}");
        assert_eq!(e.code(), "missing_model");
        assert!(!e.retryable());
    }
    assert!(seen(&srv).is_empty());
}

#[tokio::test]
async fn slow_server_times_out_and_closed_port_is_transport() {
    // Accepts the connection and then says nothing for longer than the client waits.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (_sock, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    let req = ChatRequest {
        messages: vec![user("x")],
        ..Default::default()
    };
    let e = Providers::new(Duration::from_millis(20))
        .chat(&cfg(ProviderKind::OpenAi, &base), &req, None)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Timeout), "{e:?}");
    assert_eq!(e.code(), "provider_timeout");
    assert!(e.retryable());

    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let e = providers()
        .chat(
            &cfg(ProviderKind::Anthropic, &format!("http://{closed}")),
            &req,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Transport(_)), "{e:?}");
    assert!(e.retryable());
    assert!(!e.to_string().contains("test-key-123"));
}

#[tokio::test]
async fn malformed_success_body_is_protocol_error() {
    let (base, _srv) = serve(|_, _| (200, JSON, "<html>not json</html>".into())).await;
    let req = ChatRequest {
        messages: vec![user("x")],
        ..Default::default()
    };
    let e = providers()
        .chat(&cfg(ProviderKind::OpenAi, &base), &req, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "provider_protocol");
    assert!(!e.retryable());
}

// ---- builtin --------------------------------------------------------------------------

fn builtin() -> ProviderConfig {
    ProviderConfig {
        kind: ProviderKind::Builtin,
        api_key: None,
        base_url: None,
        organization: None,
        default_model: None,
    }
}

#[tokio::test]
async fn builtin_is_deterministic_and_labelled() {
    let p = providers();
    let req = ChatRequest {
        system: Some("two words".into()),
        messages: vec![
            user("first"),
            Message::Assistant {
                text: "ok".into(),
                tool_calls: vec![],
            },
            user("hello  there world"),
        ],
        ..Default::default()
    };
    let a = p.chat(&builtin(), &req, None).await.unwrap();
    let b = p.chat(&builtin(), &req, None).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.provider, "builtin");
    assert_eq!(a.model, "builtin");
    assert_eq!(a.text, "[builtin] hello  there world");
    assert_eq!(a.stop_reason, "end_turn");
    // in: 2 (system) + 1 + 1 + 3; out: "[builtin]" + 3
    assert_eq!(
        a.usage,
        Usage {
            input_tokens: 7,
            output_tokens: 4
        }
    );

    let named = ChatRequest {
        model: Some("tiny-echo".into()),
        ..req.clone()
    };
    assert_eq!(
        p.chat(&builtin(), &named, None).await.unwrap().model,
        "tiny-echo"
    );
}

#[tokio::test]
async fn builtin_parses_tool_calls_and_answers_tool_results() {
    let p = providers();
    let mut req = ChatRequest {
        messages: vec![user(
            "please\ncall get_weather {\"city\": \"Paris\"}\ncall unknown_tool {\"x\": 1}\ncall get_weather {\"city\": \"Oslo\"}\ncall get_weather not-json",
        )],
        tools: vec![weather_tool()],
        ..Default::default()
    };
    let r = p.chat(&builtin(), &req, None).await.unwrap();
    assert_eq!(r.text, "");
    assert_eq!(r.stop_reason, "tool_use");
    assert_eq!(
        r.tool_calls,
        vec![
            ToolCall {
                id: "call_1".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Paris"})
            },
            ToolCall {
                id: "call_2".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Oslo"})
            },
        ]
    );
    assert_eq!(p.chat(&builtin(), &req, None).await.unwrap(), r);

    // Without tools offered the same text is just echoed.
    let no_tools = ChatRequest {
        tools: vec![],
        ..req.clone()
    };
    let echo = p.chat(&builtin(), &no_tools, None).await.unwrap();
    assert!(echo.tool_calls.is_empty());
    assert!(echo.text.starts_with("[builtin] please\ncall get_weather"));

    req.messages.push(Message::Assistant {
        text: String::new(),
        tool_calls: r.tool_calls.clone(),
    });
    req.messages.push(Message::ToolResult {
        call_id: "call_1".into(),
        name: "get_weather".into(),
        content: "sunny".into(),
        is_error: false,
    });
    req.messages.push(Message::ToolResult {
        call_id: "call_2".into(),
        name: "get_weather".into(),
        content: "rain".into(),
        is_error: false,
    });
    let r = p.chat(&builtin(), &req, None).await.unwrap();
    assert!(r.tool_calls.is_empty());
    assert_eq!(
        r.text,
        "[builtin] tool results: get_weather: sunny; get_weather: rain"
    );
}

#[tokio::test]
async fn builtin_json_mode_output_parses() {
    let p = providers();
    let req = ChatRequest {
        messages: vec![user("say \"hi\"")],
        json_mode: true,
        ..Default::default()
    };
    let r = p.chat(&builtin(), &req, None).await.unwrap();
    let v: Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(v, json!({"provider": "builtin", "echo": "say \"hi\""}));

    let req = ChatRequest {
        messages: vec![
            user("x"),
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![],
            },
            Message::ToolResult {
                call_id: "c".into(),
                name: "t".into(),
                content: "42".into(),
                is_error: false,
            },
        ],
        json_mode: true,
        ..Default::default()
    };
    let v: Value =
        serde_json::from_str(&p.chat(&builtin(), &req, None).await.unwrap().text).unwrap();
    assert_eq!(v["provider"], "builtin");
    assert_eq!(v["tool_results"], json!([{"name": "t", "content": "42"}]));
}

#[tokio::test]
async fn builtin_streams_in_pieces_only_when_asked() {
    let p = providers();
    let pieces = Pieces::default();
    let cb = pieces.cb();
    let mut req = ChatRequest {
        messages: vec![user("stream me please")],
        ..Default::default()
    };
    let r = p.chat(&builtin(), &req, Some(&cb)).await.unwrap();
    assert!(
        pieces.get().is_empty(),
        "non-stream request must not call on_text"
    );
    req.stream = true;
    let r2 = p.chat(&builtin(), &req, Some(&cb)).await.unwrap();
    assert_eq!(r, r2);
    assert!(pieces.get().len() > 1);
    assert_eq!(pieces.get().concat(), r2.text);
}

// ---- prices ---------------------------------------------------------------------------

#[test]
fn prices_cost_math() {
    let mut prices = Prices::default();
    prices.set(
        "gpt-4o",
        Price {
            input_per_mtok_usd: 2.5,
            output_per_mtok_usd: 10.0,
        },
    );
    prices.set(
        "anthropic/claude-x",
        Price {
            input_per_mtok_usd: 3.0,
            output_per_mtok_usd: 15.0,
        },
    );
    let u = Usage {
        input_tokens: 1_000_000,
        output_tokens: 500_000,
    };
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);

    assert!(close(prices.cost_usd("openai", "gpt-4o", u), 2.5 + 5.0));
    assert!(close(
        prices.cost_usd(
            "openai",
            "gpt-4o",
            Usage {
                input_tokens: 2000,
                output_tokens: 100
            }
        ),
        0.005 + 0.001
    ));
    // Dated names returned by the provider use the undated price.
    assert!(close(
        prices.cost_usd("openai", "gpt-4o-2024-08-06", u),
        7.5
    ));
    assert!(close(
        prices.cost_usd("anthropic", "claude-x-20250101", u),
        3.0 + 7.5
    ));
    // A provider-qualified price does not apply to another provider; unknown models have none.
    assert_eq!(prices.cost_usd("openai", "claude-x", u), None);
    assert_eq!(prices.cost_usd("openai", "gpt-4o-mini", u), None);
    assert_eq!(prices.cost_usd("builtin", "anything", u), Some(0.0));
    assert!(close(
        prices.cost_usd("openai", "gpt-4o", Usage::default()),
        0.0
    ));
}
