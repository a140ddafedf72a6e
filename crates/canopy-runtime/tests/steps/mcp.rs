use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use canopy_runtime::mcp_client::{McpClient, McpClientError};
use canopy_runtime::outbound::{GuardedClient, OutboundPolicy};
use serde_json::{Value, json};

use crate::common::serve;

#[derive(Clone, Default)]
struct Server {
    /// Answer with text/event-stream instead of application/json.
    sse: bool,
    /// Methods seen, in order.
    seen: Arc<Mutex<Vec<String>>>,
    deleted: Arc<Mutex<bool>>,
}

fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

async fn handle(State(s): State<Server>, headers: HeaderMap, body: String) -> Response {
    let msg: Value = serde_json::from_str(&body).unwrap();
    let method = msg["method"].as_str().unwrap_or_default().to_owned();
    s.seen.lock().unwrap().push(method.clone());
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
        return (StatusCode::NOT_ACCEPTABLE, "accept both").into_response();
    }
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some("Bearer t")
    {
        return (StatusCode::UNAUTHORIZED, "who are you").into_response();
    }
    if method != "initialize" {
        let sid = headers.get("mcp-session-id").and_then(|v| v.to_str().ok());
        let ver = headers
            .get("mcp-protocol-version")
            .and_then(|v| v.to_str().ok());
        if sid != Some("sess-1") || ver != Some("2025-06-18") {
            return (StatusCode::BAD_REQUEST, "missing session headers").into_response();
        }
    }
    let id = msg["id"].clone();
    let answer = match method.as_str() {
        "initialize" => {
            assert_eq!(msg["params"]["protocolVersion"], "2025-06-18");
            assert_eq!(msg["params"]["clientInfo"]["name"], "canopy");
            result(
                &id,
                json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "t", "version": "1"}}),
            )
        }
        "notifications/initialized" => return StatusCode::ACCEPTED.into_response(),
        "tools/list" => match msg["params"]["cursor"].as_str() {
            None => result(
                &id,
                json!({"tools": [{"name": "echo", "description": "Echoes", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}], "nextCursor": "page2"}),
            ),
            Some("page2") => result(&id, json!({"tools": [{"name": "fail"}]})),
            Some(other) => panic!("unknown cursor {other}"),
        },
        "tools/call" => match msg["params"]["name"].as_str() {
            Some("echo") => result(
                &id,
                json!({"content": [{"type": "text", "text": msg["params"]["arguments"]["text"]}], "structuredContent": {"echo": msg["params"]["arguments"]["text"]}}),
            ),
            Some("fail") => result(
                &id,
                json!({"content": [{"type": "text", "text": "it broke"}], "isError": true}),
            ),
            _ => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": "Unknown tool"}})
            }
        },
        _ => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}})
        }
    };
    let mut resp = if s.sse {
        // A server notification first, then the response; CRLF line endings.
        let note = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "working"}});
        let text = format!(
            ": keepalive\r\n\r\nevent: message\r\ndata: {note}\r\n\r\nid: 7\r\ndata: {answer}\r\n\r\n"
        );
        ([(header::CONTENT_TYPE, "text/event-stream")], text).into_response()
    } else {
        axum::Json(answer).into_response()
    };
    if method == "initialize" {
        resp.headers_mut()
            .insert("mcp-session-id", "sess-1".parse().unwrap());
    }
    resp
}

async fn start(sse: bool) -> (String, Server) {
    let state = Server {
        sse,
        ..Server::default()
    };
    let deleted = state.deleted.clone();
    let app = Router::new()
        .route(
            "/mcp",
            post(handle).delete(move || async move {
                *deleted.lock().unwrap() = true;
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(state.clone());
    let addr = serve(app).await;
    (format!("http://{addr}/mcp"), state)
}

fn client() -> McpClient {
    let policy = OutboundPolicy {
        allow_private: true,
        allow_hosts: vec![],
    };
    McpClient::new(GuardedClient::new(policy, Duration::from_secs(5)).unwrap())
}

async fn list_and_call(sse: bool) {
    let (url, server) = start(sse).await;
    let c = client();
    let headers = vec![("Authorization".to_owned(), "Bearer t".to_owned())];

    let tools = c.list_tools(&url, &headers).await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["echo", "fail"]);
    assert_eq!(tools[0].description.as_deref(), Some("Echoes"));
    assert_eq!(
        tools[0].input_schema["properties"]["text"]["type"],
        "string"
    );
    assert_eq!(tools[1].input_schema, json!({"type": "object"}));
    assert_eq!(
        server.seen.lock().unwrap().clone(),
        [
            "initialize",
            "notifications/initialized",
            "tools/list",
            "tools/list"
        ]
    );

    let r = c
        .call_tool(&url, &headers, "echo", json!({"text": "hi"}))
        .await
        .unwrap();
    assert!(!r.is_error);
    assert_eq!(r.content, json!([{"type": "text", "text": "hi"}]));
    assert_eq!(r.structured_content, Some(json!({"echo": "hi"})));

    let r = c
        .call_tool(&url, &headers, "fail", json!({}))
        .await
        .unwrap();
    assert!(r.is_error);
    assert_eq!(r.content[0]["text"], "it broke");
    assert_eq!(r.structured_content, None);

    let e = c
        .call_tool(&url, &headers, "nope", json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        McpClientError::Rpc {
            code: -32602,
            message: "Unknown tool".into()
        }
    );
    assert_eq!(e.code(), "mcp_error");
    assert!(!e.retryable());

    // The session is ended with a DELETE (sent in the background).
    for _ in 0..50 {
        if *server.deleted.lock().unwrap() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no DELETE of the session");
}

#[tokio::test]
async fn json_server() {
    list_and_call(false).await;
}

#[tokio::test]
async fn sse_server() {
    list_and_call(true).await;
}

#[tokio::test]
async fn failures_are_classified() {
    let c = client();
    // Refused by the guard under the default policy.
    let strict = McpClient::new(
        GuardedClient::new(OutboundPolicy::default(), Duration::from_secs(5)).unwrap(),
    );
    let (url, _) = start(false).await;
    let e = strict.list_tools(&url, &[]).await.unwrap_err();
    assert_eq!(e.code(), "ssrf_refused", "{e:?}");

    // Not an MCP endpoint: HTTP 404, not retryable; 503 is.
    let app = Router::new()
        .route(
            "/down",
            post(|| async { (StatusCode::SERVICE_UNAVAILABLE, "busy") }),
        )
        .route(
            "/html",
            post(|| async { ([(header::CONTENT_TYPE, "text/html")], "<p>") }),
        );
    let addr = serve(app).await;
    let e = c
        .list_tools(&format!("http://{addr}/missing"), &[])
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.retryable()), ("http_status", false), "{e:?}");
    let e = c
        .list_tools(&format!("http://{addr}/down"), &[])
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.retryable()), ("http_status", true), "{e:?}");
    assert!(e.to_string().contains("busy"), "{e}");
    let e = c
        .list_tools(&format!("http://{addr}/html"), &[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), "mcp_protocol", "{e:?}");
    let e = c.list_tools("not a url", &[]).await.unwrap_err();
    assert_eq!(e.code(), "invalid_config");
    let e = c
        .list_tools(&url, &[("bad header".into(), "x".into())])
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_config");
}
