//! LLM chat providers behind one request/response shape.
//!
//! - `openai`: any OpenAI-compatible chat-completions API (OpenAI, vLLM, Ollama, llama.cpp).
//! - `anthropic`: the Anthropic Messages API.
//! - `builtin`: a deterministic offline provider for tests, demos and air-gapped installs.
//!
//! `stop_reason` is passed through as each provider spells it (OpenAI `stop`/`tool_calls`/
//! `length`, Anthropic `end_turn`/`tool_use`/`max_tokens`); callers should look at
//! `tool_calls` rather than at the reason to decide whether tools were requested.
//! The API key never appears in logs or errors.

mod anthropic;
mod builtin;
mod openai;
mod prices;
pub mod sse;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use prices::{Price, Prices};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProviderKind {
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "builtin")]
    Builtin,
}

impl ProviderKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "openai" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            "builtin" => Some(Self::Builtin),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Builtin => "builtin",
        }
    }
}

// Debug is written by hand so a config printed in a log never shows the key.
#[derive(Clone, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub default_model: Option<String>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("organization", &self.organization)
            .field("default_model", &self.default_model)
            .finish()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatRequest {
    pub model: Option<String>,
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub json_mode: bool,
    pub stream: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    User {
        text: String,
    },
    Assistant {
        #[serde(default)]
        text: String,
        #[serde(default)]
        tool_calls: Vec<ToolCall>,
    },
    ToolResult {
        call_id: String,
        name: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub input_schema: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub provider: String,
    pub model: String,
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub stop_reason: String,
    pub usage: Usage,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("no model given and the provider has no default model")]
    MissingModel,
    #[error("provider returned HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("provider unreachable: {0}")]
    Transport(String),
    #[error("provider timed out")]
    Timeout,
    #[error("unexpected provider response: {0}")]
    Protocol(String),
}

impl ProviderError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingModel => "missing_model",
            Self::Status { .. } => "provider_status",
            Self::Transport(_) => "provider_transport",
            Self::Timeout => "provider_timeout",
            Self::Protocol(_) => "provider_protocol",
        }
    }

    /// Rate limits, server errors and network trouble may pass; anything else will not.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Transport(_) | Self::Timeout => true,
            Self::MissingModel | Self::Protocol(_) => false,
        }
    }
}

/// Text callback for streamed deltas.
pub(crate) type OnText<'a> = Option<&'a (dyn Fn(&str) + Send + Sync)>;

/// The chat client: one shared connection pool for every provider config.
#[derive(Debug, Clone)]
pub struct Providers {
    http: reqwest::Client,
}

impl Providers {
    pub fn new(request_timeout: Duration) -> Providers {
        crate::init_tls();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(request_timeout)
            .build()
            .unwrap_or_else(|e| {
                // Only fails if TLS cannot initialise, which init_tls rules out; stay usable.
                tracing::error!(error = %e, "building the provider HTTP client failed");
                reqwest::Client::new()
            });
        Providers { http }
    }

    /// `on_text` receives each streamed text delta (only when `req.stream`).
    pub async fn chat(
        &self,
        cfg: &ProviderConfig,
        req: &ChatRequest,
        on_text: Option<&(dyn Fn(&str) + Send + Sync)>,
    ) -> Result<ChatResponse, ProviderError> {
        let on_text = if req.stream { on_text } else { None };
        let result = match cfg.kind {
            ProviderKind::OpenAi => openai::chat(&self.http, cfg, req, on_text).await,
            ProviderKind::Anthropic => anthropic::chat(&self.http, cfg, req, on_text).await,
            ProviderKind::Builtin => Ok(builtin::chat(cfg, req, on_text)),
        };
        if let Err(e) = &result {
            tracing::debug!(provider = cfg.kind.as_str(), code = e.code(), error = %e, "chat failed");
        }
        result
    }
}

/// Model from the request, else the config's default.
fn pick_model(cfg: &ProviderConfig, req: &ChatRequest) -> Result<String, ProviderError> {
    req.model
        .as_deref()
        .or(cfg.default_model.as_deref())
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .ok_or(ProviderError::MissingModel)
}

fn base_url<'a>(cfg: &'a ProviderConfig, default: &'a str) -> &'a str {
    cfg.base_url
        .as_deref()
        .filter(|u| !u.is_empty())
        .unwrap_or(default)
        .trim_end_matches('/')
}

fn transport(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout
    } else {
        ProviderError::Transport(e.to_string())
    }
}

/// Sends the request; a non-2xx answer becomes `Status` with the provider's message.
async fn send(rb: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
    let resp = rb.send().await.map_err(transport)?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = read_limited(resp, 64 * 1024).await.unwrap_or_default();
    Err(ProviderError::Status {
        status: status.as_u16(),
        message: error_message(&body),
    })
}

// Error bodies are only read for a message, so a huge one is cut off rather than buffered.
async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, ProviderError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        out.extend_from_slice(&chunk);
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    Ok(out)
}

/// `error.message` (OpenAI and Anthropic both use it), else the body cut to 500 characters.
fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let msg = v
            .pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .and_then(|m| m.as_str());
        if let Some(m) = msg {
            return m.to_string();
        }
    }
    truncate(String::from_utf8_lossy(body).trim(), 500)
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Reads a whole JSON response body.
async fn read_json(resp: reqwest::Response) -> Result<serde_json::Value, ProviderError> {
    let bytes = resp.bytes().await.map_err(transport)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ProviderError::Protocol(format!("response is not JSON: {e}")))
}

/// True when a streamed request was answered with an event stream (some servers ignore
/// `stream` and answer with one JSON document, which is then parsed as non-streamed).
fn is_event_stream(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"))
}

/// Tool-call arguments text → JSON; empty means no arguments, unparsable text is kept as a
/// JSON string so nothing the model said is lost.
fn parse_arguments(text: &str) -> serde_json::Value {
    if text.trim().is_empty() {
        return serde_json::json!({});
    }
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

fn u64_at(v: &serde_json::Value, pointer: &str) -> Option<u64> {
    v.pointer(pointer).and_then(serde_json::Value::as_u64)
}

fn str_at<'a>(v: &'a serde_json::Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(serde_json::Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_prefers_error_message_field() {
        assert_eq!(
            error_message(br#"{"error":{"message":"slow down"}}"#),
            "slow down"
        );
        assert_eq!(error_message(br#"{"error":"bad"}"#), "bad");
        assert_eq!(error_message(b"  plain text  "), "plain text");
        let long = "x".repeat(600);
        assert_eq!(error_message(long.as_bytes()).chars().count(), 501);
    }

    #[test]
    fn kind_round_trips() {
        for k in [
            ProviderKind::OpenAi,
            ProviderKind::Anthropic,
            ProviderKind::Builtin,
        ] {
            assert_eq!(ProviderKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).ok(),
                Some(serde_json::json!(k.as_str()))
            );
        }
        assert_eq!(ProviderKind::parse("gemini"), None);
    }

    #[test]
    fn debug_hides_api_key() {
        let cfg = ProviderConfig {
            kind: ProviderKind::OpenAi,
            api_key: Some("sk-secret".into()),
            base_url: None,
            organization: None,
            default_model: None,
        };
        assert!(!format!("{cfg:?}").contains("sk-secret"));
    }

    #[test]
    fn arguments_parse_or_stay_text() {
        assert_eq!(parse_arguments(r#"{"a":1}"#), serde_json::json!({"a":1}));
        assert_eq!(parse_arguments(""), serde_json::json!({}));
        assert_eq!(parse_arguments("{oops"), serde_json::json!("{oops"));
    }
}
