//! The one place an [`Error`] becomes an HTTP response.
//!
//! Handlers return [`ApiError`]. Its response carries the error in an extension and no body;
//! the [`render_errors`] middleware, which sees the request's host and path, writes the
//! envelope `{"error": {code, message, field?, suggestion?, docs, …}}`. That keeps the docs link
//! absolute and lets a surface rename codes to its API's vocabulary in one spot.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use canopy_core::{Code, Error};
use serde_json::{Map, Value, json};

/// An error on its way out of a handler.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// What [`render_errors`] needs of an error (cloneable, without the private source).
#[derive(Clone, Debug)]
pub struct PendingError {
    /// For 5xx: the full error with its private source, for the log only.
    pub cause: Option<String>,
    pub code: Code,
    pub message: String,
    pub field: Option<String>,
    pub suggestion: Option<String>,
    pub extra: Map<String, Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            // Logged by `render_errors`, which knows the request id.
        } else {
            tracing::debug!(code = self.0.code.as_str(), message = %self.0.message, "request refused");
        }
        let cause = status.is_server_error().then(|| format!("{:?}", self.0));
        let e = self.0.into_inner();
        let pending = PendingError {
            cause,
            code: e.code,
            message: e.message.into_owned(),
            field: e.field,
            suggestion: e.suggestion,
            extra: e.extra,
        };
        let mut res = status.into_response();
        if let Some(secs) = pending.extra.get("retry_after").and_then(Value::as_i64)
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if pending.code == Code::PayloadTooLarge {
            // The rest of the body may be unread: tell the client this connection ends here,
            // so it does not send its next request into a socket about to close.
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res.extensions_mut().insert(pending);
        res
    }
}

/// Renders pending errors into the envelope. Outermost layer but for request ids.
pub async fn render_errors(req: Request, next: Next) -> Response {
    render_errors_at(None, req, next).await
}

/// [`render_errors`] with docs links on `public_url` (already without a trailing `/`) when
/// given. A successful answer costs a few reference-count bumps: the request's path, host and
/// id are kept as they are and only turned into text when there is an error to render.
pub(crate) async fn render_errors_at(
    public_url: Option<&str>,
    req: Request,
    next: Next,
) -> Response {
    let public = req.extensions().get::<PublicUrl>().cloned();
    let host = req.headers().get(header::HOST).cloned();
    let uri = req.uri().clone();
    let request_id = req.headers().get("x-request-id").cloned();
    let mut res = next.run(req).await;
    let Some(p) = res.extensions_mut().remove::<PendingError>() else {
        return res;
    };
    let base = match (public_url, public) {
        (Some(url), _) => url.to_owned(),
        (None, Some(p)) => p.0,
        (None, None) => {
            let host = host
                .as_ref()
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    let path = uri.path();
    if let Some(cause) = &p.cause {
        let request_id = request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::error!(%request_id, %path, code = p.code.as_str(), error = %cause, "request failed");
    }
    let body = envelope_body(&base, path, p);
    let bytes = serde_json::to_vec(&json!({ "error": body })).unwrap_or_default();
    let (mut parts, _) = res.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The `{"error": {...}}` envelope of an error, with docs links on `base`, as REST renders
/// it (MCP puts the same JSON in an `isError` tool result).
pub(crate) fn envelope(base: &str, path: &str, e: Error) -> Value {
    let e = e.into_inner();
    let p = PendingError {
        cause: None,
        code: e.code,
        message: e.message.into_owned(),
        field: e.field,
        suggestion: e.suggestion,
        extra: e.extra,
    };
    json!({ "error": envelope_body(base, path, p) })
}

fn envelope_body(base: &str, path: &str, p: PendingError) -> Map<String, Value> {
    let code = surface_code(path, p.code);
    let mut body = Map::new();
    body.insert("code".into(), json!(code));
    body.insert("message".into(), json!(p.message));
    if let Some(f) = p.field {
        body.insert("field".into(), json!(f));
    }
    body.insert(
        "docs".into(),
        json!(format!("{base}/docs/errors#{}", p.code.as_str())),
    );
    if let Some(s) = p.suggestion {
        body.insert("suggestion".into(), json!(s));
    }
    for (k, v) in p.extra {
        body.entry(k).or_insert(v);
    }
    body
}

/// Stackmint's routes use that API's names for two codes (seed 000 §9).
fn surface_code(path: &str, code: Code) -> &'static str {
    let stackmint = path.starts_with("/v1/clients") || path.starts_with("/v1/admin");
    match code {
        Code::RateLimitExceeded if stackmint => "rate_limited",
        Code::ValidationError if stackmint => "invalid_input",
        c => c.as_str(),
    }
}

/// The server's public base URL when configured (`public_url`), set on each request.
#[derive(Clone, Debug)]
pub struct PublicUrl(pub String);

pub async fn not_found() -> ApiError {
    ApiError(Error::new(
        Code::NotFound,
        "No route matches this path. See /docs for the routes.",
    ))
}

pub async fn method_not_allowed() -> ApiError {
    ApiError(Error::new(
        Code::MethodNotAllowed,
        "This route does not accept this method. See /docs for the routes.",
    ))
}

/// The backstop for a panic in a handler: a generic 500 in the envelope.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError(Error::new(
        Code::Internal,
        "Something unexpected went wrong. It has been logged.",
    ))
    .into_response()
}
