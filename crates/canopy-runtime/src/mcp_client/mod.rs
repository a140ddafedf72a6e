//! Tools of external MCP servers over streamable HTTP (protocol 2025-06-18).
//!
//! Every operation is one short session: `initialize`, `notifications/initialized`, the
//! method (`tools/list`, following `nextCursor` up to [`MAX_PAGES`] pages, or `tools/call`),
//! then a best-effort `DELETE` of the session. The `Mcp-Session-Id` the server hands out is
//! sent on every later request, and so is `MCP-Protocol-Version` (the negotiated version).
//! Answers may be `application/json` or `text/event-stream`; from a stream the JSON-RPC
//! response with the request's id is taken and server notifications before it are skipped.
//!
//! Requests go through the caller's [`GuardedClient`], so the SSRF policy applies to the
//! server's URL, its resolved addresses and redirects.

mod sse;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::outbound::{GuardedClient, MAX_RESPONSE, OutboundError, refused_in};
use canopy_engine::StepError;

/// The protocol version offered in `initialize`.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// Pages of `tools/list` followed at most.
pub const MAX_PAGES: usize = 50;
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// Characters of an error body quoted in [`McpClientError::Status`].
const EXCERPT: usize = 200;

/// A tool an MCP server offers.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteTool {
    pub name: String,
    pub description: Option<String>,
    /// The tool's `inputSchema` (`{"type": "object"}` when the server gives none).
    pub input_schema: Value,
}

/// What a `tools/call` returned.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteResult {
    /// The `content` array (empty when absent).
    pub content: Value,
    pub structured_content: Option<Value>,
    /// The tool reported a failure (`isError`); the call itself worked.
    pub is_error: bool,
}

/// Why an MCP operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum McpClientError {
    #[error("invalid MCP server configuration: {0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(OutboundError),
    #[error("the MCP server at {0} did not answer in time")]
    Timeout(String),
    #[error("could not reach the MCP server at {host}: {message}")]
    Transport { host: String, message: String },
    #[error("the MCP server at {host} answered HTTP {status}: {excerpt}")]
    Status {
        host: String,
        status: u16,
        excerpt: String,
    },
    #[error("the MCP server broke the protocol: {0}")]
    Protocol(String),
    #[error("the MCP server returned error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("the MCP server's answer is over {MAX_RESPONSE} bytes")]
    TooLarge,
}

impl McpClientError {
    /// A short snake_case code, like the step errors'.
    pub fn code(&self) -> &'static str {
        match self {
            McpClientError::Invalid(_) => "invalid_config",
            McpClientError::Refused(e) => e.code(),
            McpClientError::Timeout(_) => "timeout",
            McpClientError::Transport { .. } => "transport",
            McpClientError::Status { .. } => "http_status",
            McpClientError::Protocol(_) => "mcp_protocol",
            McpClientError::Rpc { .. } => "mcp_error",
            McpClientError::TooLarge => "response_too_large",
        }
    }

    /// Whether trying again later may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            McpClientError::Timeout(_) | McpClientError::Transport { .. } => true,
            McpClientError::Status { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500
            }
            _ => false,
        }
    }
}

impl From<McpClientError> for StepError {
    fn from(e: McpClientError) -> Self {
        if e.retryable() {
            StepError::retryable(e.code(), e.to_string())
        } else {
            StepError::fatal(e.code(), e.to_string())
        }
    }
}

/// Calls tools on MCP servers through a guarded client.
#[derive(Clone, Debug)]
pub struct McpClient {
    http: GuardedClient,
}

impl McpClient {
    pub fn new(http: GuardedClient) -> Self {
        McpClient { http }
    }

    /// Every tool the server at `url` lists; `headers` go on each request (authorization).
    pub async fn list_tools(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Vec<RemoteTool>, McpClientError> {
        let mut session = Session::open(self, url, headers).await?;
        let result = list_pages(&mut session).await;
        session.close();
        result
    }

    /// Calls tool `name` with `arguments` (a JSON object).
    pub async fn call_tool(
        &self,
        url: &str,
        headers: &[(String, String)],
        name: &str,
        arguments: Value,
    ) -> Result<RemoteResult, McpClientError> {
        let mut session = Session::open(self, url, headers).await?;
        let result = session
            .request("tools/call", json!({"name": name, "arguments": arguments}))
            .await
            .and_then(parse_call);
        session.close();
        result
    }
}

async fn list_pages(session: &mut Session<'_>) -> Result<Vec<RemoteTool>, McpClientError> {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let result = session.request("tools/list", params).await?;
        let page = result
            .get("tools")
            .and_then(Value::as_array)
            .ok_or_else(|| McpClientError::Protocol("tools/list without a tools array".into()))?;
        for t in page {
            tools.push(parse_tool(t)?);
        }
        match result.get("nextCursor").and_then(Value::as_str) {
            Some(next) if !next.is_empty() && cursor.as_deref() != Some(next) => {
                cursor = Some(next.to_owned());
            }
            _ => return Ok(tools),
        }
    }
    Err(McpClientError::Protocol(format!(
        "tools/list goes on for more than {MAX_PAGES} pages"
    )))
}

fn parse_tool(t: &Value) -> Result<RemoteTool, McpClientError> {
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| McpClientError::Protocol("a listed tool has no name".into()))?;
    Ok(RemoteTool {
        name: name.to_owned(),
        description: t
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        input_schema: t
            .get("inputSchema")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object"})),
    })
}

fn parse_call(result: Value) -> Result<RemoteResult, McpClientError> {
    let Value::Object(mut o) = result else {
        return Err(McpClientError::Protocol(
            "tools/call result is not an object".into(),
        ));
    };
    Ok(RemoteResult {
        content: o.remove("content").unwrap_or_else(|| json!([])),
        structured_content: o.remove("structuredContent").filter(|v| !v.is_null()),
        is_error: o.get("isError").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// One session with one server.
struct Session<'a> {
    client: &'a McpClient,
    url: url::Url,
    host: String,
    headers: HeaderMap,
    session_id: Option<HeaderValue>,
    protocol: Option<HeaderValue>,
    next_id: u64,
}

impl<'a> Session<'a> {
    async fn open(
        client: &'a McpClient,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Session<'a>, McpClientError> {
        let url = url::Url::parse(url)
            .map_err(|e| McpClientError::Invalid(format!("'{url}' is not a URL ({e})")))?;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| McpClientError::Invalid(format!("'{name}' is not a header name")))?;
            let v = HeaderValue::from_str(value).map_err(|_| {
                McpClientError::Invalid(format!("header {name}: not a valid header value"))
            })?;
            map.append(n, v);
        }
        let mut s = Session {
            client,
            host: url.host_str().unwrap_or_default().to_owned(),
            url,
            headers: map,
            session_id: None,
            protocol: None,
            next_id: 1,
        };
        let init = s
            .request(
                "initialize",
                json!({
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "canopy", "version": env!("CARGO_PKG_VERSION")},
                }),
            )
            .await?;
        let version = init
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(PROTOCOL_VERSION);
        s.protocol = Some(HeaderValue::from_str(version).map_err(|_| {
            McpClientError::Protocol(format!("unusable protocol version '{version}'"))
        })?);
        s.post(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            None,
        )
        .await?;
        Ok(s)
    }

    /// Sends request `method` and returns its `result`.
    async fn request(&mut self, method: &str, params: Value) -> Result<Value, McpClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer = self
            .post(msg, Some(id))
            .await?
            .ok_or_else(|| McpClientError::Protocol(format!("no response to {method}")))?;
        if let Some(err) = answer.get("error") {
            return Err(McpClientError::Rpc {
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("(no message)")
                    .to_owned(),
            });
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| McpClientError::Protocol(format!("{method}: response without a result")))
    }

    /// POSTs one message; with `id`, waits for the response carrying it.
    async fn post(&mut self, msg: Value, id: Option<u64>) -> Result<Option<Value>, McpClientError> {
        let mut req = self
            .client
            .http
            .request(reqwest::Method::POST, &self.url)
            .map_err(refused)?
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream");
        if let Some(sid) = &self.session_id {
            req = req.header(SESSION_HEADER, sid.clone());
        }
        if let Some(v) = &self.protocol {
            req = req.header(VERSION_HEADER, v.clone());
        }
        let body = serde_json::to_vec(&msg).map_err(|e| McpClientError::Invalid(e.to_string()))?;
        let mut resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| self.send_error(&e))?;
        if let Some(sid) = resp.headers().get(SESSION_HEADER) {
            self.session_id = Some(sid.clone());
        }
        let status = resp.status();
        if !status.is_success() {
            let body = read_capped(&mut resp, 4096, self).await.unwrap_or_default();
            return Err(McpClientError::Status {
                host: self.host.clone(),
                status: status.as_u16(),
                excerpt: clip(&String::from_utf8_lossy(&body), EXCERPT),
            });
        }
        let Some(id) = id else {
            return Ok(None);
        };
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match content_type.as_str() {
            "application/json" => {
                let body = read_capped(&mut resp, MAX_RESPONSE, self).await?;
                let v: Value = serde_json::from_slice(&body).map_err(|e| {
                    McpClientError::Protocol(format!("the answer is not JSON: {e}"))
                })?;
                let found = match v {
                    Value::Array(batch) => batch.into_iter().find(|m| has_id(m, id)),
                    m if has_id(&m, id) => Some(m),
                    _ => None,
                };
                found.map(Some).ok_or_else(|| {
                    McpClientError::Protocol(format!("no response with id {id} in the answer"))
                })
            }
            "text/event-stream" => self.read_stream(&mut resp, id).await.map(Some),
            other => Err(McpClientError::Protocol(format!(
                "unexpected content type '{other}'"
            ))),
        }
    }

    /// Reads events until the response with `id`; the rest of the stream is dropped.
    async fn read_stream(
        &self,
        resp: &mut reqwest::Response,
        id: u64,
    ) -> Result<Value, McpClientError> {
        let mut parser = sse::SseParser::default();
        let mut read = 0usize;
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.send_error(&e))? {
            read = read.saturating_add(chunk.len());
            if read > MAX_RESPONSE {
                return Err(McpClientError::TooLarge);
            }
            for data in parser.push(&chunk) {
                if data.trim().is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(&data)
                    .map_err(|e| McpClientError::Protocol(format!("an event is not JSON: {e}")))?;
                if has_id(&v, id) && (v.get("result").is_some() || v.get("error").is_some()) {
                    return Ok(v);
                }
            }
        }
        Err(McpClientError::Protocol(format!(
            "the stream ended without the response to request {id}"
        )))
    }

    fn send_error(&self, e: &reqwest::Error) -> McpClientError {
        if let Some(r) = refused_in(e) {
            return McpClientError::Refused(r.clone());
        }
        if e.is_timeout() {
            return McpClientError::Timeout(self.host.clone());
        }
        let text = e.to_string();
        let text = text
            .find(" for url (")
            .map_or(text.as_str(), |i| &text[..i]);
        let mut message = text.to_owned();
        let mut cur = std::error::Error::source(e);
        while let Some(s) = cur {
            let part = s.to_string();
            if !message.contains(&part) {
                message.push_str(": ");
                message.push_str(&part);
            }
            cur = s.source();
        }
        McpClientError::Transport {
            host: self.host.clone(),
            message,
        }
    }

    /// Ends the session on the server (spec: clients SHOULD), without waiting for it.
    fn close(self) {
        let Some(sid) = self.session_id else { return };
        let Ok(mut req) = self.client.http.request(reqwest::Method::DELETE, &self.url) else {
            return;
        };
        req = req.headers(self.headers).header(SESSION_HEADER, sid);
        if let Some(v) = self.protocol {
            req = req.header(VERSION_HEADER, v);
        }
        // Outside a tokio runtime there is nowhere to send it from; the session expires.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            // Servers may refuse (405); the session then simply expires.
            let _ = req.send().await;
        });
    }
}

fn refused(e: OutboundError) -> McpClientError {
    match e {
        OutboundError::Refused { .. } => McpClientError::Refused(e),
        other => McpClientError::Invalid(other.to_string()),
    }
}

/// Whether message `m` carries JSON-RPC id `id` (a string id of the same digits counts).
fn has_id(m: &Value, id: u64) -> bool {
    match m.get("id") {
        Some(Value::Number(n)) => n.as_u64() == Some(id),
        Some(Value::String(s)) => s.parse::<u64>().ok() == Some(id),
        _ => false,
    }
}

async fn read_capped(
    resp: &mut reqwest::Response,
    cap: usize,
    session: &Session<'_>,
) -> Result<Vec<u8>, McpClientError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| session.send_error(&e))? {
        if body.len().saturating_add(chunk.len()) > cap {
            if cap < MAX_RESPONSE {
                // An excerpt: keep what fits.
                let room = cap - body.len();
                body.extend_from_slice(&chunk[..room.min(chunk.len())]);
                return Ok(body);
            }
            return Err(McpClientError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
