//! Mounting operations as REST routes, and recording each route for the OpenAPI document.
//!
//! [`Api::op`] is the one way an operation gets a route: it adds the axum handler and a
//! [`RouteDoc`], so `/openapi.json` lists exactly the routes that exist. The handler builds the
//! operation's input from one JSON object: the body's members, then query parameters, then
//! path parameters (`{clientId}` → `client_id`), and hands it to `dispatch`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on};
use canopy_core::{Code, Error, Principal};
use canopy_services::op::{FileInput, FileOutput, Meta, OpInfo, Operation, dispatch};
use serde_json::{Map, Value};

use crate::AppState;
use crate::error::ApiError;

/// One mounted route, as the OpenAPI document describes it.
#[derive(Clone, Debug)]
pub struct RouteDoc {
    pub method: Method,
    pub path: &'static str,
    pub status: StatusCode,
    pub tag: &'static str,
    pub public: bool,
    pub media: Media,
    pub info: OpInfo,
}

/// What travels over the wire besides JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// JSON in, JSON out (and markdown out on request).
    Json,
    /// A `multipart/form-data` upload: a `file` part plus text fields.
    Upload,
    /// Raw file bytes out.
    Download,
    /// JSON, answered 200 when the work finished or 202 with the same body when it goes on
    /// (a run request).
    JsonOrAccepted,
    /// Server-sent events with `Accept: text/event-stream`, JSON otherwise (a run's events).
    EventStream,
}

/// Routes under construction: the router and the record of what it holds.
pub struct Api {
    pub router: Router<AppState>,
    pub routes: Vec<RouteDoc>,
    /// Every mounted operation as an MCP tool (the same declaration, the other door).
    pub tools: Vec<crate::mcp::Tool>,
    tag: &'static str,
}

/// How a query-string value is read, from the input schema's property type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Integer,
    Number,
    Boolean,
    /// A JSON array sent as text (multipart fields such as `tags`).
    Array,
}

impl Api {
    pub fn new(tag: &'static str) -> Api {
        Api {
            router: Router::new(),
            routes: Vec::new(),
            tools: Vec::new(),
            tag,
        }
    }

    /// Mounts operation `O` at `method path`, answering `status` on success.
    pub fn op<O: Operation>(self, method: Method, path: &'static str, status: StatusCode) -> Api {
        self.op_with::<O>(method, path, status, |_| None)
    }

    /// [`Api::op`] for an operation whose success status depends on its output (a run
    /// request answers 200 when it finished, 202 when it goes on): `pick` answers the
    /// status, or `None` for the declared one.
    pub fn op_with<O: Operation>(
        self,
        method: Method,
        path: &'static str,
        status: StatusCode,
        pick: StatusPick<O>,
    ) -> Api {
        let info = OpInfo::of::<O>();
        let kinds = Arc::new(query_kinds(&info.input_schema));
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
        let handler = move |State(st): State<AppState>, req: Request| {
            let kinds = kinds.clone();
            async move { rest::<O>(st, req, status, pick, &kinds).await }
        };
        self.custom::<O>(
            method,
            path,
            status,
            Media::JsonOrAccepted,
            on(filter, handler),
        )
    }

    /// Mounts a hand-written handler for operation `O` (one that still reaches it through
    /// `dispatch`), recording the route and the tool like [`Api::op`] does.
    pub fn custom<O: Operation>(
        mut self,
        method: Method,
        path: &'static str,
        status: StatusCode,
        media: Media,
        handler: axum::routing::MethodRouter<AppState>,
    ) -> Api {
        let info = OpInfo::of::<O>();
        self.router = self.router.route(path, handler);
        self.tools
            .push(crate::mcp::Tool::of::<O>(info.clone(), self.tag));
        self.routes.push(RouteDoc {
            method,
            path,
            status,
            tag: self.tag,
            public: false,
            media,
            info,
        });
        self
    }

    /// Mounts an upload operation at `POST path`: multipart `file` plus text fields, or JSON
    /// with base64 `content` (the operation's own input).
    pub fn upload<O: Operation>(mut self, path: &'static str) -> Api
    where
        O::Input: FileInput,
    {
        let info = OpInfo::of::<O>();
        let kinds = Arc::new(query_kinds(&info.input_schema));
        let handler = move |State(st): State<AppState>, req: Request| {
            let kinds = kinds.clone();
            async move { crate::upload::receive::<O>(st, req, &kinds).await }
        };
        self.router = self.router.route(path, axum::routing::post(handler));
        self.tools
            .push(crate::mcp::Tool::of::<O>(info.clone(), self.tag));
        self.routes.push(RouteDoc {
            method: Method::POST,
            path,
            status: StatusCode::CREATED,
            tag: self.tag,
            public: false,
            media: Media::Upload,
            info,
        });
        self
    }

    /// Mounts an operation whose output is a file at `GET path`, answering the raw bytes.
    pub fn download<O: Operation>(mut self, path: &'static str) -> Api
    where
        O::Output: FileOutput,
    {
        let info = OpInfo::of::<O>();
        let handler = move |State(st): State<AppState>, req: Request| async move {
            crate::upload::send::<O>(st, req).await
        };
        self.router = self.router.route(path, get(handler));
        self.tools
            .push(crate::mcp::Tool::of::<O>(info.clone(), self.tag));
        self.routes.push(RouteDoc {
            method: Method::GET,
            path,
            status: StatusCode::OK,
            tag: self.tag,
            public: false,
            media: Media::Download,
            info,
        });
        self
    }

    pub fn merge(mut self, other: Api) -> Api {
        self.router = self.router.merge(other.router);
        self.routes.extend(other.routes);
        self.tools.extend(other.tools);
        self
    }
}

/// Picks a success status from an operation's output (`None`: the declared one).
pub type StatusPick<O> = fn(&<O as Operation>::Output) -> Option<StatusCode>;

pub(crate) async fn rest<O: Operation>(
    st: AppState,
    req: Request,
    status: StatusCode,
    pick: StatusPick<O>,
    kinds: &HashMap<String, Kind>,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = Caller::of(&st, &mut parts).await?;
    let bytes = axum::body::to_bytes(body, st.http.max_body_bytes)
        .await
        .map_err(body_error)?;

    let mut obj = body_object(&bytes)?;
    if let Some(q) = parts.uri.query() {
        for (k, v) in form_urlencoded_pairs(q) {
            let value = coerce(kinds.get(&k).copied(), v);
            obj.entry(k).or_insert(value);
        }
    }
    caller.add_path_params(&mut obj);
    let input: O::Input =
        serde_path_to_error::deserialize(Value::Object(obj)).map_err(input_error)?;
    let output = dispatch::<O>(&st.svc, &caller.principal, caller.meta(), input).await?;
    let status = pick(&output).unwrap_or(status);
    respond::<O>(status, caller.accept.as_deref(), output)
}

/// Answers an operation's output as JSON, or as markdown when the caller asked for it.
pub(crate) fn respond<O: Operation>(
    status: StatusCode,
    accept: Option<&str>,
    output: O::Output,
) -> Result<Response, ApiError> {
    if crate::markdown::wants_markdown(accept) {
        let value = serde_json::to_value(&output).map_err(Error::from)?;
        let body = crate::markdown::render(O::SUMMARY, &value);
        return Ok((
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/markdown; charset=utf-8",
            )],
            body,
        )
            .into_response());
    }
    Ok((status, axum::Json(output)).into_response())
}

/// Who calls and what the request says besides its input.
pub(crate) struct Caller {
    pub principal: Principal,
    pub request_id: Option<String>,
    pub project: Option<String>,
    pub accept: Option<String>,
    pub params: RawPathParams,
}

impl Caller {
    pub async fn of(
        st: &AppState,
        parts: &mut axum::http::request::Parts,
    ) -> Result<Caller, ApiError> {
        let mut principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError(canopy_services::auth::missing_credential()))?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        // The acting agent, checked against the project's definitions by `dispatch`.
        principal.agent = header("x-minolith-agent").or_else(|| header("x-canopy-agent"));
        let request_id = header("x-request-id");
        let project = header("x-canopy-project");
        let accept = header("accept");
        let params = {
            use axum::extract::FromRequestParts;
            RawPathParams::from_request_parts(parts, st)
                .await
                .map_err(|_| Error::internal("path parameters unavailable"))?
        };
        Ok(Caller {
            principal,
            request_id,
            project,
            accept,
            params,
        })
    }

    pub fn meta(&self) -> Meta<'_> {
        Meta {
            request_id: self.request_id.as_deref(),
            project: self.project.as_deref(),
        }
    }

    /// Path parameters join the input under snake_case names, overriding the body.
    pub fn add_path_params(&self, obj: &mut Map<String, Value>) {
        for (k, v) in self.params.iter() {
            obj.insert(snake_case(k), Value::String(v.to_owned()));
        }
    }
}

/// Maps a failure to read the body: over the limit → 413, anything else → 400.
pub fn body_error(e: axum::Error) -> ApiError {
    let inner = e.into_inner();
    let too_large = inner.is::<http_body_util::LengthLimitError>()
        || std::error::Error::source(&*inner)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
    if too_large {
        ApiError(Error::new(
            Code::PayloadTooLarge,
            "The request body is larger than this server accepts.",
        ))
    } else {
        ApiError(Error::new(
            Code::BadRequest,
            "The request body could not be read.",
        ))
    }
}

/// The body as a JSON object; empty means `{}`.
pub(crate) fn body_object(bytes: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError(Error::new(
            Code::InvalidJson,
            "The request body must be a JSON object.",
        ))),
        Err(e) => Err(ApiError(Error::new(
            Code::InvalidJson,
            format!(
                "The request body is not valid JSON: {e} (line {}, column {}).",
                e.line(),
                e.column()
            ),
        ))),
    }
}

/// Turns a serde failure on the merged input into 422 naming the field.
pub(crate) fn input_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    let field = if path == "." {
        // "missing field `name`" carries the name in the message.
        inner.split('`').nth(1).map(str::to_owned)
    } else {
        Some(path)
    };
    let message = match &field {
        Some(f) => format!("Invalid value for '{f}': {inner}."),
        None => format!("Invalid input: {inner}."),
    };
    let mut err = Error::new(Code::ValidationError, message);
    if let Some(f) = field {
        err = err.with_field(f);
    }
    ApiError(err)
}

pub(crate) fn coerce(kind: Option<Kind>, v: String) -> Value {
    match kind {
        Some(Kind::Integer) => v
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(v)),
        Some(Kind::Number) => v
            .parse::<f64>()
            .ok()
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            .unwrap_or(Value::String(v)),
        Some(Kind::Boolean) => match v.as_str() {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => Value::String(v),
        },
        Some(Kind::Array) => match serde_json::from_str::<Value>(&v) {
            Ok(a @ Value::Array(_)) => a,
            _ => Value::String(v),
        },
        None => Value::String(v),
    }
}

/// Property name → kind, for the input's integer, number and boolean properties.
pub(crate) fn query_kinds(schema: &Value) -> HashMap<String, Kind> {
    let mut out = HashMap::new();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return out;
    };
    for (name, prop) in props {
        let types: Vec<&str> = match prop.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let kind = if types.contains(&"integer") {
            Some(Kind::Integer)
        } else if types.contains(&"number") {
            Some(Kind::Number)
        } else if types.contains(&"boolean") {
            Some(Kind::Boolean)
        } else if types.contains(&"array") {
            Some(Kind::Array)
        } else {
            None
        };
        if let Some(k) = kind {
            out.insert(name.clone(), k);
        }
    }
    out
}

/// `clientId` → `client_id`.
pub fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes `a=1&b=x%20y`.
pub(crate) fn form_urlencoded_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake() {
        assert_eq!(snake_case("clientId"), "client_id");
        assert_eq!(snake_case("id"), "id");
    }

    #[test]
    fn query_pairs() {
        let pairs: Vec<_> = form_urlencoded_pairs("a=x%20y&b=1+2&c").collect();
        assert_eq!(
            pairs,
            vec![
                ("a".into(), "x y".into()),
                ("b".into(), "1 2".into()),
                ("c".into(), String::new())
            ]
        );
    }
}
