//! The HTTP side of `/mcp` (Streamable HTTP): which revision a request speaks, sessions,
//! batches, notifications, status codes and headers.
//!
//! A request's revision is, in order: its `MCP-Protocol-Version` header, the
//! `io.modelcontextprotocol/protocolVersion` of its `params._meta` (2026-07-28), its session's
//! negotiated revision, else 2025-03-26 (what the transport spec tells servers to assume).
//! Sessions are optional: a handshake client gets an `Mcp-Session-Id` from `initialize` and
//! must send it back, but a request without one is served statelessly.
//!
//! The same handling serves `/v1/clients/{clientId}/mcp` (a client's buds and branches as
//! tools, [`super::client`]): the handlers take the client id, `None` for `/mcp`. Fixture
//! mode never applies there.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use canopy_core::{Code, Error, Principal, Scope};
use canopy_services::op::Meta;
use serde_json::{Value, json};

use super::client::{self, ClientSource};
use super::fixtures::Fixtures;
use super::methods::{self, Ctx, Reply, Tools};
use super::rpc::{self, Message, RpcError};
use super::{ASSUMED, MODERN, SUPPORTED};
use crate::AppState;
use crate::error::ApiError;

const SESSION: &str = "mcp-session-id";
const VERSION: &str = "mcp-protocol-version";
const VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
/// Revisions that allow a JSON-RPC batch in one POST.
const BATCHING: &[&str] = &["2025-03-26", "2024-11-05"];

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// A JSON-RPC answer with `status`.
fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn rpc_error_response(status: StatusCode, id: &Value, e: &RpcError) -> Response {
    json_response(status, rpc::error(id, e).to_string())
}

fn unsupported(requested: &str) -> RpcError {
    RpcError::new(
        rpc::UNSUPPORTED_VERSION,
        format!("Unsupported protocol version: {requested}"),
    )
    .with_data(json!({"supported": SUPPORTED, "requested": requested}))
}

/// Adds `WWW-Authenticate: Bearer` to the 401 of a missing or bad credential on `/mcp`.
pub(crate) async fn www_authenticate(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    if res.status() == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}

fn is_loopback_host(host: &str) -> bool {
    // `host[:port]`, `[::1]:port`.
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn origin_host(origin: &str) -> &str {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    rest.split('/').next().unwrap_or("")
}

/// DNS-rebinding protection: a browser page of another site must not reach `/mcp`. In fixture
/// mode (no key) the Host and Origin must be loopback; otherwise an Origin, when sent, must
/// be this server's own host or a loopback one.
fn origin_refused(h: &HeaderMap, fixtures: bool) -> Option<Response> {
    let host = header(h, "host").unwrap_or("");
    let origin = header(h, "origin").map(origin_host);
    let ok = if fixtures {
        is_loopback_host(host) && origin.is_none_or(is_loopback_host)
    } else {
        origin.is_none_or(|o| o.eq_ignore_ascii_case(host) || is_loopback_host(o))
    };
    (!ok).then(|| {
        ApiError(Error::forbidden(
            "This Host or Origin may not use /mcp (DNS-rebinding protection).",
        ))
        .into_response()
    })
}

/// Who calls `/mcp`: the principal of the auth layer, with the `mcp` scope; `None` in
/// fixture mode.
fn caller(
    fixtures: bool,
    parts: &mut axum::http::request::Parts,
) -> Result<Option<Principal>, Error> {
    if fixtures {
        return Ok(None);
    }
    let mut p = parts
        .extensions
        .remove::<Principal>()
        .ok_or_else(canopy_services::auth::missing_credential)?;
    if !p.scopes.allows(Scope::Mcp) {
        return Err(Error::forbidden(
            "This key lacks the 'mcp' scope needed for MCP (grant mcp, mcp.run or admin).",
        ));
    }
    let h = &parts.headers;
    p.agent = header(h, "x-minolith-agent")
        .or_else(|| header(h, "x-canopy-agent"))
        .map(str::to_owned);
    Ok(Some(p))
}

/// A session as a request sees it.
struct Live {
    version: String,
}

async fn find_session(
    st: &AppState,
    fixtures: Option<&Fixtures>,
    who: Option<&Principal>,
    id: &str,
) -> Result<Option<Live>, Error> {
    if let Some(f) = fixtures {
        return Ok(f.session(id).map(|version| Live { version }));
    }
    let Some(who) = who else { return Ok(None) };
    Ok(st
        .mcp
        .tracker
        .session(&st.svc, who, id)
        .await?
        .map(|s| Live {
            version: s.protocol_version,
        }))
}

fn session_not_found() -> Response {
    rpc_error_response(
        StatusCode::NOT_FOUND,
        &Value::Null,
        &RpcError::new(
            -32001,
            "Session not found: it ended or never existed. Start a new one with initialize.",
        ),
    )
}

/// The docs base of error envelopes: the public URL, else this request's host.
fn docs_base(st: &AppState, h: &HeaderMap) -> String {
    match st.http.public_url.as_deref() {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => format!("http://{}", header(h, "host").unwrap_or("localhost")),
    }
}

/// The fixtures a request may reach: only `/mcp`'s, in fixture mode.
fn fixtures_of<'a>(st: &'a AppState, client: Option<&str>) -> Option<&'a Fixtures> {
    st.mcp.fixtures.as_ref().filter(|_| client.is_none())
}

/// The headers' request id and project, as operations take them.
fn meta_of(h: &HeaderMap) -> Meta<'_> {
    Meta {
        request_id: header(h, "x-request-id"),
        project: header(h, "x-canopy-project"),
    }
}

/// Who calls, and for a client's endpoint that client's tools (a client the key cannot see
/// answers 404, as its REST routes do).
async fn admit(
    st: &AppState,
    client: Option<&str>,
    parts: &mut axum::http::request::Parts,
) -> Result<(Option<Principal>, Option<ClientSource>), Response> {
    let fixtures = fixtures_of(st, client);
    if let Some(r) = origin_refused(&parts.headers, fixtures.is_some()) {
        return Err(r);
    }
    let who = caller(fixtures.is_some(), parts).map_err(|e| ApiError(e).into_response())?;
    let source = match (client, &who) {
        (Some(id), Some(p)) => Some(
            client::open(st, p, meta_of(&parts.headers), id)
                .await
                .map_err(|e| ApiError(e).into_response())?,
        ),
        _ => None,
    };
    Ok((who, source))
}

/// `POST /mcp`.
pub(crate) async fn post(State(st): State<AppState>, req: Request) -> Response {
    serve(&st, None, req).await
}

/// `POST /v1/clients/{clientId}/mcp`.
pub(crate) async fn client_post(
    State(st): State<AppState>,
    Path(client): Path<String>,
    req: Request,
) -> Response {
    serve(&st, Some(&client), req).await
}

/// One POST of JSON-RPC to `/mcp` (`client` `None`) or to a client's endpoint.
async fn serve(st: &AppState, client: Option<&str>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let fixtures = fixtures_of(st, client);
    let (who, source) = match admit(st, client, &mut parts).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let tools = match &source {
        Some(c) => Tools::Client(c),
        None => Tools::Operations,
    };
    let key_tools = parts
        .extensions
        .get::<crate::auth::McpTools>()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| Vec::new().into());
    let h = &parts.headers;
    let header_version = header(h, VERSION);
    if let Some(v) = header_version
        && !SUPPORTED.contains(&v)
    {
        return rpc_error_response(StatusCode::BAD_REQUEST, &Value::Null, &unsupported(v));
    }
    let session_id = header(h, SESSION);
    let session = match session_id {
        Some(id) => match find_session(st, fixtures, who.as_ref(), id).await {
            Ok(Some(s)) => Some(s),
            Ok(None) => return session_not_found(),
            Err(e) => return ApiError(e).into_response(),
        },
        None => None,
    };
    let bytes = match axum::body::to_bytes(body, st.http.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return crate::api::body_error(e).into_response(),
    };
    let era = header_version
        .or(session.as_ref().map(|s| s.version.as_str()))
        .unwrap_or(ASSUMED);
    let error_status = |e: &RpcError| {
        if era == MODERN {
            StatusCode::from_u16(e.modern_status()).unwrap_or(StatusCode::OK)
        } else {
            StatusCode::OK
        }
    };
    let decoded: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            let err = RpcError::new(rpc::PARSE_ERROR, format!("Parse error: {e}"));
            return rpc_error_response(error_status(&err), &Value::Null, &err);
        }
    };
    let (messages, batch) = match decoded {
        Value::Array(a) => {
            let refusal = if a.is_empty() {
                Some("An empty batch is not a request.".to_owned())
            } else if !BATCHING.contains(&era) {
                Some(format!(
                    "JSON-RPC batches are not part of protocol revision {era}; send one message per POST."
                ))
            } else {
                None
            };
            if let Some(why) = refusal {
                let err = RpcError::invalid_request(why);
                return rpc_error_response(error_status(&err), &Value::Null, &err);
            }
            (a, true)
        }
        v => (vec![v], false),
    };

    let base = docs_base(st, h);
    let meta = meta_of(h);
    // (id, answer, whether the request spoke 2026-07-28)
    let mut answers: Vec<(Value, Result<Reply, RpcError>, bool)> = Vec::new();
    let mut new_session: Option<String> = None;
    for m in messages {
        match rpc::classify(m) {
            Message::Request { id, method, params } => {
                let checked = check_request(h, header_version, &method, &params);
                let version = match checked {
                    Ok(v) => v.unwrap_or(era).to_owned(),
                    Err(e) => {
                        answers.push((id, Err(e), era == MODERN));
                        continue;
                    }
                };
                let cx = Ctx {
                    st,
                    tools,
                    who: who.as_ref(),
                    key_tools: &key_tools,
                    meta,
                    version: &version,
                    base: &base,
                };
                let mut reply = match fixtures {
                    Some(f) => match f.handle(&cx, &id, &method, &params) {
                        Some(r) => r,
                        None => methods::handle(&cx, &method, &params).await,
                    },
                    None => methods::handle(&cx, &method, &params).await,
                };
                if method == "initialize"
                    && let Ok(Reply::Value(result)) = &reply
                {
                    let negotiated = result["protocolVersion"].as_str().unwrap_or(ASSUMED);
                    match start_session(st, fixtures, who.as_ref(), negotiated, &params).await {
                        Ok(id) => new_session = Some(id),
                        Err(e) => reply = Err(cx.server_error(e)),
                    }
                }
                if version == MODERN
                    && let Ok(Reply::Value(v)) = &mut reply
                {
                    methods::stamp_modern(&method, v);
                }
                answers.push((id, reply, version == MODERN));
            }
            Message::Notification { .. } => {}
            Message::Response { id, body } => {
                if let Some(f) = fixtures {
                    f.deliver(&id, body);
                }
            }
            Message::Invalid { id, why } => {
                answers.push((id, Err(RpcError::invalid_request(why)), era == MODERN));
            }
        }
    }

    let mut res = if answers.is_empty() {
        StatusCode::ACCEPTED.into_response()
    } else if !batch {
        let Some((id, reply, modern)) = answers.pop() else {
            return StatusCode::ACCEPTED.into_response();
        };
        match reply {
            Ok(Reply::Stream(rx)) => sse(rx),
            Ok(r) => json_response(StatusCode::OK, render_ok(&id, r)),
            Err(e) => {
                let status = if modern {
                    StatusCode::from_u16(e.modern_status()).unwrap_or(StatusCode::OK)
                } else {
                    StatusCode::OK
                };
                rpc_error_response(status, &id, &e)
            }
        }
    } else {
        let parts: Vec<String> = answers
            .into_iter()
            .map(|(id, reply, _)| match reply {
                Ok(Reply::Stream(_)) => rpc::error(
                    &id,
                    &RpcError::invalid_request("This method cannot be batched."),
                )
                .to_string(),
                Ok(r) => render_ok(&id, r),
                Err(e) => rpc::error(&id, &e).to_string(),
            })
            .collect();
        json_response(StatusCode::OK, format!("[{}]", parts.join(",")))
    };
    if let Some(id) = new_session
        && let Ok(v) = HeaderValue::from_str(&id)
    {
        res.headers_mut().insert(SESSION, v);
    }
    res
}

/// The JSON text of a successful answer.
fn render_ok(id: &Value, reply: Reply) -> String {
    match reply {
        Reply::Value(v) => rpc::ok(id, v).to_string(),
        Reply::Raw(result) => format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{result}}}"),
        Reply::Stream(_) => String::new(),
    }
}

/// A stream of JSON-RPC messages as server-sent events.
fn sse(rx: tokio::sync::mpsc::Receiver<Value>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let v = rx.recv().await?;
        let frame = Bytes::from(format!("event: message\ndata: {v}\n\n"));
        Some((Ok::<_, Infallible>(frame), rx))
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The 2026-07-28 checks of one request: `params._meta`'s revision (which must agree with the
/// header), and the `Mcp-Method` / `Mcp-Name` headers (which must agree with the body).
/// Answers the request's own revision when its `_meta` names one.
fn check_request<'a>(
    h: &HeaderMap,
    header_version: Option<&str>,
    method: &str,
    params: &'a Value,
) -> Result<Option<&'a str>, RpcError> {
    let meta_version = params
        .get("_meta")
        .and_then(|m| m.get(VERSION_META))
        .and_then(Value::as_str);
    if let Some(v) = meta_version {
        if header_version.is_some_and(|hv| hv != v) {
            return Err(RpcError::invalid_request(
                "The MCP-Protocol-Version header does not match params._meta's protocol version.",
            ));
        }
        if !SUPPORTED.contains(&v) {
            return Err(unsupported(v));
        }
    }
    if let Some(m) = header(h, "mcp-method")
        && m != method
    {
        return Err(RpcError::invalid_request(format!(
            "The Mcp-Method header ('{m}') does not match the body's method ('{method}')."
        )));
    }
    let name_key = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let (Some(k), Some(given)) = (name_key, header(h, "mcp-name")) {
        let body = params.get(k).and_then(Value::as_str);
        if body.is_some_and(|b| b != decode_header_value(given)) {
            return Err(RpcError::invalid_request(format!(
                "The Mcp-Name header does not match the body's '{k}'."
            )));
        }
    }
    Ok(meta_version)
}

/// `=?base64?…?=` header values carry text that is not plain ASCII.
fn decode_header_value(v: &str) -> String {
    use base64::Engine as _;
    v.strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| v.to_owned())
}

async fn start_session(
    st: &AppState,
    fixtures: Option<&Fixtures>,
    who: Option<&Principal>,
    version: &str,
    params: &Value,
) -> Result<String, Error> {
    let client = params.get("clientInfo").cloned().unwrap_or(json!({}));
    if let Some(f) = fixtures {
        return Ok(f.start_session(version));
    }
    let who = who.ok_or_else(|| Error::internal("an MCP session without a caller"))?;
    Ok(st
        .mcp
        .tracker
        .start_session(&st.svc, who, version, &client)
        .await?
        .id)
}

/// `GET /mcp`: the SSE stream of earlier revisions. Canopy sends no server-initiated
/// messages, so there is no stream to open (405, as the transport allows).
pub(crate) async fn get(State(st): State<AppState>, req: Request) -> Response {
    no_stream(&st, None, req).await
}

/// `GET /v1/clients/{clientId}/mcp`: as `GET /mcp`.
pub(crate) async fn client_get(
    State(st): State<AppState>,
    Path(client): Path<String>,
    req: Request,
) -> Response {
    no_stream(&st, Some(&client), req).await
}

async fn no_stream(st: &AppState, client: Option<&str>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    if let Err(r) = admit(st, client, &mut parts).await {
        return r;
    }
    let mut res = ApiError(Error::new(
        Code::MethodNotAllowed,
        "Canopy sends no server-initiated messages: there is no SSE stream to open. POST JSON-RPC requests to this endpoint.",
    ))
    .into_response();
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
    res
}

/// `DELETE /mcp`: ends the session named by `Mcp-Session-Id`.
pub(crate) async fn delete(State(st): State<AppState>, req: Request) -> Response {
    end_session(&st, None, req).await
}

/// `DELETE /v1/clients/{clientId}/mcp`: as `DELETE /mcp`.
pub(crate) async fn client_delete(
    State(st): State<AppState>,
    Path(client): Path<String>,
    req: Request,
) -> Response {
    end_session(&st, Some(&client), req).await
}

async fn end_session(st: &AppState, client: Option<&str>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let who = match admit(st, client, &mut parts).await {
        Ok((w, _)) => w,
        Err(r) => return r,
    };
    let Some(id) = header(&parts.headers, SESSION) else {
        return ApiError(
            Error::new(
                Code::BadRequest,
                "Name the session to end with the Mcp-Session-Id header.",
            )
            .with_field(SESSION),
        )
        .into_response();
    };
    let ended = match (fixtures_of(st, client), &who) {
        (Some(f), _) => Ok(f.end_session(id)),
        (None, Some(who)) => st.mcp.tracker.end(&st.svc, who, id).await,
        (None, None) => Ok(false),
    };
    match ended {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => session_not_found(),
        Err(e) => ApiError(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("localhost:3000"));
        assert!(is_loopback_host("127.0.0.1:8080"));
        assert!(is_loopback_host("[::1]:8080"));
        assert!(is_loopback_host("LOCALHOST"));
        assert!(!is_loopback_host("evil.example.com"));
        assert!(!is_loopback_host("evil.example.com:80"));
        assert_eq!(origin_host("http://localhost:3000/x"), "localhost:3000");
    }

    #[test]
    fn header_values_decode() {
        assert_eq!(decode_header_value("plain"), "plain");
        assert_eq!(decode_header_value("=?base64?aMOp?="), "hé");
    }
}
