//! Canopy's HTTP surfaces. Routers map requests onto operations and answers back; they own
//! no business logic and write no SQL.
//!
//! - [`api`]: mounting an operation as a route (and recording it for OpenAPI).
//! - [`error`]: the error envelope, rendered in one place.
//! - [`auth`], [`idempotency`]: the layers of protected routes.
//! - [`openapi`], [`observe`]: `/openapi.json`, `/docs`, health, metrics.
//! - One module per API family: [`v1`] (Stackmint, Minolith, Canopy), [`architect`] (StackBilt).
//! - [`mcp`]: the MCP door, every operation above as a tool.

pub mod api;
pub mod architect;
pub mod auth;
pub mod error;
pub mod idempotency;
pub mod markdown;
pub mod mcp;
pub mod observe;
pub mod openapi;
pub mod public;
pub(crate) mod upload;
pub mod v1;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use canopy_services::Services;
use canopy_services::op::{Hints, OpInfo, schema_of};
use serde_json::{Value, json};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::api::{Api, RouteDoc};

/// HTTP settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Base URL used in `docs` links; the request's Host header when unset.
    pub public_url: Option<String>,
    /// Test-only: `/mcp` serves the conformance suite's fixtures without a key.
    pub mcp_conformance_fixtures: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 2 * 1024 * 1024,
            public_url: None,
            mcp_conformance_fixtures: false,
        }
    }
}

/// What every handler and layer shares: one `Arc`, so handing it to a layer per request is a
/// single reference-count bump.
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

pub struct AppShared {
    pub svc: Services,
    pub http: Arc<HttpConfig>,
    pub spec: Arc<Value>,
    /// The MCP tool registry and session tracking, built once at startup.
    pub mcp: mcp::McpShared,
}

impl std::ops::Deref for AppState {
    type Target = AppShared;
    fn deref(&self) -> &AppShared {
        &self.0
    }
}

/// Every operation route of every surface.
fn protected() -> Api {
    v1::clients::routes()
        .merge(v1::audit::routes())
        .merge(v1::context::routes())
        .merge(v1::usage::routes())
        .merge(v1::agents::routes())
        .merge(v1::changelog::routes())
        .merge(v1::feedback::routes())
        .merge(v1::styleguide::routes())
        .merge(v1::documents::routes())
        .merge(v1::runtime::routes())
        .merge(v1::tasks::routes())
        .merge(v1::runbooks::routes())
        .merge(architect::keys::routes())
}

/// The routes that need no credential, as OpenAPI records.
fn public_docs() -> Vec<RouteDoc> {
    let doc =
        |path: &'static str, name: &'static str, summary: &'static str, output: Value| RouteDoc {
            method: Method::GET,
            path,
            status: StatusCode::OK,
            tag: "platform",
            public: true,
            media: api::Media::Json,
            info: OpInfo {
                name,
                summary,
                scope: None,
                hints: Hints::READ,
                credits: 0,
                input_schema: json!({"type": "object"}),
                output_schema: output,
            },
        };
    let accept = RouteDoc {
        method: Method::POST,
        path: "/v1/team/invites/{token}/accept",
        status: StatusCode::CREATED,
        tag: "team",
        public: true,
        media: api::Media::Json,
        info: OpInfo {
            name: "accept_team_invite",
            summary: "Accept an invitation by its one-time token (no key needed): answers the member and their API key, once.",
            scope: None,
            hints: Hints::WRITE,
            credits: 0,
            input_schema: json!({"type": "object"}),
            output_schema: schema_of::<canopy_core::Data<canopy_services::work::teams::Accepted>>(),
        },
    };
    let mut docs = vec![
        doc(
            "/v1/health",
            "health",
            "Liveness: answers while the server runs. No auth.",
            schema_of::<observe::Health>(),
        ),
        doc(
            "/.well-known/jwks.json",
            "jwks",
            "Public keys that verify tokens from POST /api/auth/token.",
            json!({"type": "object"}),
        ),
        doc(
            "/openapi.json",
            "openapi",
            "This document.",
            json!({"type": "object"}),
        ),
        doc(
            "/metrics",
            "metrics",
            "Prometheus metrics (text format).",
            json!({"type": "string"}),
        ),
        doc(
            "/public/{project}/changelog",
            "public_changelog",
            "A project's published changelog: an HTML page, or JSON with Accept: application/json. No auth.",
            schema_of::<canopy_services::knowledge::changelog::PublicChangelog>(),
        ),
        doc(
            "/public/{project}/changelog.rss",
            "public_changelog_rss",
            "A project's published changelog as RSS 2.0. No auth.",
            json!({"type": "string"}),
        ),
        doc(
            "/widget/feedback.js",
            "feedback_widget_script",
            "The embeddable feedback widget (JavaScript). No auth.",
            json!({"type": "string"}),
        ),
        RouteDoc {
            method: Method::POST,
            path: "/public/{project}/feedback",
            status: StatusCode::CREATED,
            tag: "platform",
            public: true,
            media: api::Media::Json,
            info: OpInfo {
                name: "submit_widget_feedback",
                summary: "Feedback from the embeddable widget: no key, CORS, 5 attempts a minute per client address; only while the project's widget is enabled.",
                scope: None,
                hints: Hints::WRITE,
                credits: 1,
                input_schema: schema_of::<canopy_services::knowledge::feedback::SubmitFeedbackInput>(
                ),
                output_schema: schema_of::<
                    canopy_core::Data<canopy_services::knowledge::feedback::FeedbackItem>,
                >(),
            },
        },
    ];
    docs.push(accept);
    docs
}

/// The whole application.
pub fn app(svc: Services, http: HttpConfig) -> Router {
    // Install the metrics recorder before the first request is counted.
    let _ = observe::prometheus();
    let mut ops = protected();
    let mut docs = ops.routes.clone();
    docs.extend(public_docs());
    docs.extend(mcp::docs());
    svc.install_operations(Arc::new(mcp::StepOperations::new(&ops.tools)));
    let registry = mcp_registry(std::mem::take(&mut ops.tools), svc.config());
    let fixtures = http
        .mcp_conformance_fixtures
        .then(mcp::fixtures::Fixtures::default);
    let state = AppState(Arc::new(AppShared {
        svc,
        http: Arc::new(http),
        spec: Arc::new(openapi::document(&docs)),
        mcp: mcp::McpShared {
            registry,
            tracker: Default::default(),
            fixtures,
        },
    }));

    // `require_auth` runs the idempotency step itself, right after it lets a request in (one
    // layer instead of two on every protected request).
    let protected = ops
        .router
        .route_layer(from_fn_with_state(state.clone(), auth::require_auth));
    let public = Router::new()
        .route("/v1/health", get(observe::health))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs_page))
        .route("/docs/errors", get(openapi::errors_page))
        .route("/metrics", get(observe::metrics_text))
        .route("/.well-known/jwks.json", get(observe::jwks))
        .route("/public/{project}/changelog", get(public::changelog::page))
        .route(
            "/public/{project}/changelog.rss",
            get(public::changelog::rss),
        )
        .route("/widget/feedback.js", get(public::feedback::script))
        .route(
            "/v1/team/invites/{token}/accept",
            post(public::team::accept),
        )
        .merge(
            // Called from other sites' pages: any origin may post, without credentials.
            Router::new()
                .route(
                    "/public/{project}/feedback",
                    post(public::feedback::submit)
                        // An explicit OPTIONS route, so the CORS layer answers preflights (the
                        // router-wide 405 fallback would otherwise take them).
                        .options(|| async { axum::http::StatusCode::NO_CONTENT }),
                )
                .layer(
                    tower_http::cors::CorsLayer::new()
                        .allow_origin(tower_http::cors::Any)
                        .allow_methods([Method::POST])
                        .allow_headers([axum::http::header::CONTENT_TYPE]),
                ),
        );

    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // A debug span: at the default `info` level it costs nothing per request; 5xx are
        // logged with their request id by `error::render_errors` either way.
        tracing::debug_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path(),
            request_id,
            key_id = tracing::field::Empty,
            org = tracing::field::Empty,
        )
    });

    let routes = Router::new()
        .merge(public)
        .merge(protected)
        .merge(mcp::routes(&state))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .route_layer(from_fn(observe::track))
        .with_state(state.clone());
    // The layers every request passes, outermost first, wrapped once around the routed app
    // (`Router::layer` would wrap each route and box every layer's future per request).
    let stack = tower::ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(observe::RequestIds))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(trace)
        .layer(from_fn_with_state(state, with_public_url))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .service(routes);
    Router::new().fallback_service(stack)
}

/// Renders error envelopes, with docs links on the configured public URL when there is one.
async fn with_public_url(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let url = st
        .http
        .public_url
        .as_deref()
        .map(|u| u.trim_end_matches('/'));
    error::render_errors_at(url, req, next).await
}

/// The OpenAPI document without building a server (for `canopy openapi` and tests).
pub fn openapi_document() -> Value {
    let mut docs = protected().routes;
    docs.extend(public_docs());
    docs.extend(mcp::docs());
    openapi::document(&docs)
}

fn mcp_registry(tools: Vec<mcp::Tool>, config: &canopy_services::Config) -> mcp::Registry {
    mcp::Registry::build(tools, |op, declared| config.price(op, declared))
}

/// Every operation as an MCP tool, as `tools/list` shows them with no selection (for the
/// token-footprint bench), without building a server.
pub fn mcp_tool_registry(config: &canopy_services::Config) -> mcp::Registry {
    mcp_registry(protected().tools, config)
}
