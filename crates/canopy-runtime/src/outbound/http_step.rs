//! The `http` step: one templated request through the guarded client.
//!
//! Config: `url` (template, required), `method` (default GET), `headers` (object of
//! templates), `body` (a string is rendered and sent as text; any other JSON is rendered
//! with [`crate::template::render_value`] and sent as JSON), `timeout_ms`, `expect`
//! (statuses; default any 2xx), `response` (`json`, `text` or `auto`: JSON when the content
//! type says so).
//!
//! Templates render over the step's context plus `step_input` (the step's resolved input),
//! as `transform` sees it. Every request carries `Idempotency-Key: <call.idempotency_key>`;
//! a takeover of an attempt cut short sends the same key, so the receiver can deduplicate.
//!
//! Output: `{status, headers: {<lower-case name>: value}, body}`.

use std::time::Duration;

use canopy_engine::{BoxFuture, StepCall, StepError, StepExecutor, StepOutput};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use super::{GuardedClient, OutboundError, OutboundPolicy, refused_in, too_many_redirects};
use crate::template::Context;

/// Bytes of response body read at most.
pub const MAX_RESPONSE: usize = 10 * 1024 * 1024;
/// Request timeout when the step sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest `timeout_ms` honoured (the step's own engine timeout still applies).
const MAX_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// Characters of body quoted in an `http_status` error.
const EXCERPT: usize = 200;

/// Executor of kind `http`.
pub struct HttpStep {
    client: GuardedClient,
}

impl HttpStep {
    /// A step with its own guarded client ([`DEFAULT_TIMEOUT`] per request).
    pub fn new(policy: OutboundPolicy) -> Result<Self, OutboundError> {
        Ok(HttpStep {
            client: GuardedClient::new(policy, DEFAULT_TIMEOUT)?,
        })
    }

    /// A step sharing a guarded client.
    pub fn with_client(client: GuardedClient) -> Self {
        HttpStep { client }
    }
}

impl StepExecutor for HttpStep {
    fn execute(&self, call: StepCall) -> BoxFuture<'_, Result<StepOutput, StepError>> {
        Box::pin(async move {
            self.run(call)
                .await
                .map(StepOutput::from)
                .map_err(StepError::from)
        })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Json,
    Text,
    Auto,
}

/// A failure inside this module; [`StepError`] is large (it may carry usage), and this keeps
/// the `Result`s of the helpers small.
#[derive(Debug)]
struct Fail {
    code: &'static str,
    message: String,
    retryable: bool,
}

impl Fail {
    fn fatal(code: &'static str, message: impl Into<String>) -> Self {
        Fail {
            code,
            message: message.into(),
            retryable: false,
        }
    }

    fn retryable(code: &'static str, message: impl Into<String>) -> Self {
        Fail {
            code,
            message: message.into(),
            retryable: true,
        }
    }
}

impl From<Fail> for StepError {
    fn from(f: Fail) -> Self {
        if f.retryable {
            StepError::retryable(f.code, f.message)
        } else {
            StepError::fatal(f.code, f.message)
        }
    }
}

fn invalid(msg: impl Into<String>) -> Fail {
    Fail::fatal("invalid_config", msg)
}

fn template_err(field: &str, e: String) -> Fail {
    Fail::fatal("template_error", format!("{field}: {e}"))
}

impl HttpStep {
    async fn run(&self, call: StepCall) -> Result<Value, Fail> {
        let cfg = &call.config;
        let mut ctx = call.context;
        if let Value::Object(o) = &mut ctx {
            o.insert("step_input".to_owned(), call.input);
        }
        let ctx = Context::new(&ctx);

        let method = match cfg.get("method") {
            None | Some(Value::Null) => reqwest::Method::GET,
            Some(Value::String(m)) => {
                reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| invalid(format!("method: '{m}' is not an HTTP method")))?
            }
            Some(_) => return Err(invalid("method: expected a string")),
        };
        let url_src = cfg
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("url: required, a string"))?;
        let url_text = ctx.render(url_src).map_err(|e| template_err("url", e))?;
        let url = url::Url::parse(url_text.trim()).map_err(|e| {
            invalid(format!(
                "url: '{}' is not a URL ({e})",
                clip(&url_text, 200)
            ))
        })?;
        let host = url.host_str().unwrap_or_default().to_owned();

        let mut headers = headers(cfg.get("headers"), &ctx)?;
        headers.remove("idempotency-key");
        let timeout = match cfg.get("timeout_ms") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(ms) if ms > 0 => Some(Duration::from_millis(ms.min(MAX_TIMEOUT_MS))),
                _ => return Err(invalid("timeout_ms: expected a positive integer")),
            },
        };
        let expect = expect(cfg.get("expect"))?;
        let mode = match cfg.get("response") {
            None | Some(Value::Null) => Mode::Auto,
            Some(Value::String(m)) if m == "auto" => Mode::Auto,
            Some(Value::String(m)) if m == "json" => Mode::Json,
            Some(Value::String(m)) if m == "text" => Mode::Text,
            Some(other) => {
                return Err(invalid(format!(
                    "response: '{other}' is not one of json, text, auto"
                )));
            }
        };

        let mut req = self
            .client
            .request(method, &url)
            .map_err(|e| Fail::fatal(e.code(), e.to_string()))?;
        let has_content_type = headers.contains_key(CONTENT_TYPE);
        req = req.headers(headers);
        // The engine's key only: a configured one would not survive a takeover's dedupe.
        req = req.header("Idempotency-Key", call.idempotency_key.as_str());
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        match cfg.get("body") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                let text = ctx.render(s).map_err(|e| template_err("body", e))?;
                if !has_content_type {
                    req = req.header(CONTENT_TYPE, "text/plain; charset=utf-8");
                }
                req = req.body(text);
            }
            Some(v) => {
                let rendered = ctx.render_value(v).map_err(|e| template_err("body", e))?;
                let bytes =
                    serde_json::to_vec(&rendered).map_err(|e| invalid(format!("body: {e}")))?;
                if !has_content_type {
                    req = req.header(CONTENT_TYPE, "application/json");
                }
                req = req.body(bytes);
            }
        }

        let mut resp = req.send().await.map_err(|e| send_error(&e, &host))?;
        let status = resp.status().as_u16();
        let out_headers = header_object(resp.headers());
        let is_json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(is_json_type)
            .unwrap_or(false);
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE as u64)
        {
            return Err(too_large());
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| send_error(&e, &host))? {
            if body.len().saturating_add(chunk.len()) > MAX_RESPONSE {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }

        let ok = match &expect {
            Some(list) => list.contains(&status),
            None => (200..300).contains(&status),
        };
        if !ok {
            let excerpt = clip(&String::from_utf8_lossy(&body), EXCERPT);
            let msg = format!("{host} answered HTTP {status}: {excerpt}");
            return Err(if status == 408 || status == 429 || status >= 500 {
                Fail::retryable("http_status", msg)
            } else {
                Fail::fatal("http_status", msg)
            });
        }

        let body = decode(&body, mode, is_json)?;
        Ok(json!({"status": status, "headers": out_headers, "body": body}))
    }
}

fn headers(cfg: Option<&Value>, ctx: &Context) -> Result<HeaderMap, Fail> {
    let mut out = HeaderMap::new();
    let map = match cfg {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid("headers: expected an object")),
    };
    for (name, v) in map {
        let hname = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("headers: '{name}' is not a header name")))?;
        let text = match v {
            Value::String(s) => ctx
                .render(s)
                .map_err(|e| template_err(&format!("headers.{name}"), e))?,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(invalid(format!("headers.{name}: expected a string"))),
        };
        let value = HeaderValue::from_str(text.trim())
            .map_err(|_| invalid(format!("headers.{name}: not a valid header value")))?;
        out.append(hname, value);
    }
    Ok(out)
}

fn expect(cfg: Option<&Value>) -> Result<Option<Vec<u16>>, Fail> {
    let status = |v: &Value| {
        v.as_u64()
            .filter(|n| (100..=599).contains(n))
            .map(|n| n as u16)
            .ok_or_else(|| invalid("expect: statuses are integers from 100 to 599"))
    };
    match cfg {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items.iter().map(status).collect::<Result<_, _>>().map(Some),
        Some(v) => Ok(Some(vec![status(v)?])),
    }
}

fn is_json_type(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

fn decode(body: &[u8], mode: Mode, is_json: bool) -> Result<Value, Fail> {
    if body.is_empty() && mode != Mode::Text {
        return Ok(Value::Null);
    }
    let text = || Value::String(String::from_utf8_lossy(body).into_owned());
    match mode {
        Mode::Text => Ok(text()),
        Mode::Json => serde_json::from_slice(body).map_err(|e| {
            Fail::fatal(
                "invalid_response",
                format!("the response body is not JSON: {e}"),
            )
        }),
        // A server that labels text as JSON gets its text back rather than a failed step.
        Mode::Auto if is_json => Ok(serde_json::from_slice(body).unwrap_or_else(|_| text())),
        Mode::Auto => Ok(text()),
    }
}

fn header_object(h: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in h {
        let Ok(v) = value.to_str() else { continue };
        match out.get_mut(name.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(v);
            }
            _ => {
                out.insert(name.as_str().to_owned(), Value::String(v.to_owned()));
            }
        }
    }
    Value::Object(out)
}

fn too_large() -> Fail {
    Fail::fatal(
        "response_too_large",
        format!("the response body is over {MAX_RESPONSE} bytes"),
    )
}

/// Maps a send or body-read failure. The URL is left out of messages: it is rendered from
/// templates and may carry secrets; the host is named instead.
fn send_error(e: &reqwest::Error, host: &str) -> Fail {
    if let Some(refused) = refused_in(e) {
        return Fail::fatal(refused.code(), refused.to_string());
    }
    if too_many_redirects(e) {
        return Fail::fatal(
            "transport",
            format!(
                "request to {host}: more than {} redirects",
                super::MAX_REDIRECTS
            ),
        );
    }
    if e.is_timeout() {
        return Fail::retryable("timeout", format!("request to {host} timed out"));
    }
    Fail::retryable(
        "transport",
        format!("request to {host} failed: {}", chain(e)),
    )
}

/// An error and its causes, each once, without the `for url (...)` reqwest adds.
fn chain(e: &reqwest::Error) -> String {
    let top = e.to_string();
    let top = top.find(" for url (").map_or(top.as_str(), |i| &top[..i]);
    let mut parts: Vec<String> = vec![top.to_owned()];
    let mut cur = std::error::Error::source(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// At most `n` characters of `s`.
fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn small_helpers() {
        assert!(is_json_type("application/json; charset=utf-8"));
        assert!(is_json_type("application/problem+json"));
        assert!(!is_json_type("text/plain"));
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("hi", 5), "hi");
        assert_eq!(
            expect(Some(&json!([200, 201]))).unwrap(),
            Some(vec![200, 201])
        );
        assert_eq!(expect(Some(&json!(204))).unwrap(), Some(vec![204]));
        assert!(expect(Some(&json!(["x"]))).is_err());
        assert_eq!(
            decode(b"{\"a\":1}", Mode::Auto, true).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            decode(b"{\"a\":1}", Mode::Auto, false).unwrap(),
            json!("{\"a\":1}")
        );
        assert_eq!(decode(b"nope", Mode::Auto, true).unwrap(), json!("nope"));
        assert_eq!(
            decode(b"nope", Mode::Json, false).unwrap_err().code,
            "invalid_response"
        );
    }
}
