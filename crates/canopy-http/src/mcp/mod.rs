//! The MCP door: `/mcp`, Streamable HTTP, JSON-RPC 2.0, every operation as a tool.
//!
//! Hand-written over axum rather than built on an SDK (rmcp): we serve the stateless
//! 2026-07-28 revision beside the handshake revisions (2025-11-25 back to 2024-11-05),
//! negotiated per request; sessions live in the database so any node continues a session
//! another node started; and the tools come from our own operation registry, one declaration
//! serving REST and MCP alike. An SDK would own sessions in process memory and want tools
//! declared its own way.
//!
//! Layout:
//! - [`rpc`]: JSON-RPC messages and error codes.
//! - [`tools`]: the registry of type-erased operations; [`schema`]: trimming their schemas.
//! - [`methods`]: the MCP methods over the registry (`initialize`, `tools/*`, …);
//!   [`knowledge`]: context entries and documents as resources, agents as prompts.
//! - [`transport`]: the HTTP side: revisions, headers, sessions, batches, status codes.
//! - [`fixtures`]: the conformance suite's fixtures (`canopy serve --conformance-fixtures`).
//! - [`client`]: `/v1/clients/{clientId}/mcp`, the same protocol over one client's buds and
//!   branches (seed 000 §8).
//!
//! Every tool call goes through `dispatch`, so scopes, the agent header, credits, caps and
//! audit are exactly those of the REST route. No SQL here; sessions and reads are asked of
//! `canopy_services::mcp`.

mod client;
pub mod fixtures;
mod knowledge;
mod methods;
pub mod rpc;
pub mod schema;
mod step_ops;
pub mod tools;
mod transport;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use canopy_services::mcp::McpTracker;
use canopy_services::op::{Hints, OpInfo};
use serde_json::{Value, json};

use crate::AppState;
use crate::api::{Media, RouteDoc};
pub use step_ops::StepOperations;
pub use tools::{Registry, Tool};

/// The revision that needs no handshake.
pub const MODERN: &str = "2026-07-28";
/// Revisions reached through `initialize`, newest first.
pub const HANDSHAKE: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// Every revision served, newest first.
pub const SUPPORTED: &[&str] = &[
    MODERN,
    "2025-11-25",
    "2025-06-18",
    "2025-03-26",
    "2024-11-05",
];
/// What a request without a version header or session speaks (the transport spec's rule).
pub const ASSUMED: &str = "2025-03-26";
/// `tools/list` (and other lists) page size.
pub const PAGE: usize = 100;

/// What the MCP door keeps for the life of the server.
pub struct McpShared {
    pub registry: Registry,
    pub tracker: McpTracker,
    /// Set in conformance-fixture mode: `/mcp` then serves only the fixtures, without a key.
    pub fixtures: Option<fixtures::Fixtures>,
}

/// `/mcp` (behind the normal auth layer, or keyless in fixture mode), `/mcp/info`, and
/// `/v1/clients/{clientId}/mcp` (always behind the auth layer).
pub fn routes(state: &AppState) -> Router<AppState> {
    let client = Router::new()
        .route(
            "/v1/clients/{clientId}/mcp",
            axum::routing::post(transport::client_post)
                .get(transport::client_get)
                .delete(transport::client_delete),
        )
        .route_layer(from_fn_with_state(state.clone(), crate::auth::require_auth))
        .route_layer(axum::middleware::from_fn(transport::www_authenticate));
    let endpoint = Router::new().route(
        "/mcp",
        axum::routing::post(transport::post)
            .get(transport::get)
            .delete(transport::delete),
    );
    let endpoint = if state.mcp.fixtures.is_some() {
        endpoint
    } else {
        endpoint
            .route_layer(from_fn_with_state(state.clone(), crate::auth::require_auth))
            .route_layer(axum::middleware::from_fn(transport::www_authenticate))
    };
    Router::new()
        .route("/mcp/info", get(info))
        .merge(endpoint)
        .merge(client)
}

/// `GET /mcp/info`: what this server speaks. No auth.
async fn info(State(st): State<AppState>) -> Json<Value> {
    Json(json!({
        "name": "canopy",
        "version": env!("CARGO_PKG_VERSION"),
        "protocol_versions": SUPPORTED,
        "transports": ["streamable-http"],
        "tool_count": match &st.mcp.fixtures {
            Some(f) => f.tool_count(),
            None => st.mcp.registry.len(),
        },
    }))
}

/// `/mcp`, `/mcp/info` and `/v1/clients/{clientId}/mcp` for the OpenAPI document.
pub fn docs() -> Vec<RouteDoc> {
    let rpc = json!({
        "type": "object",
        "description": "A JSON-RPC 2.0 request or notification (or, at 2024-11-05 and 2025-03-26, a batch).",
        "properties": {
            "jsonrpc": {"const": "2.0"},
            "id": {"type": ["string", "integer"]},
            "method": {"type": "string"},
            "params": {"type": "object"}
        },
        "required": ["jsonrpc", "method"]
    });
    let doc = |method: Method, path: &'static str, name, summary, public, input, output| RouteDoc {
        method,
        path,
        status: StatusCode::OK,
        tag: "mcp",
        public,
        media: Media::Json,
        info: OpInfo {
            name,
            summary,
            scope: if public {
                None
            } else {
                Some(canopy_core::Scope::Mcp)
            },
            hints: Hints::READ,
            credits: 0,
            input_schema: input,
            output_schema: output,
        },
    };
    vec![
        doc(
            Method::POST,
            "/mcp",
            "mcp",
            "MCP over Streamable HTTP (JSON-RPC 2.0): initialize, ping, server/discover, tools/list, tools/call, resources/*, prompts/*. Needs the mcp scope; each tool also needs its operation's scope. See docs/mcp.md.",
            false,
            rpc.clone(),
            json!({"type": "object", "description": "A JSON-RPC 2.0 response (202 with no body for notifications)."}),
        ),
        doc(
            Method::DELETE,
            "/mcp",
            "mcp_end_session",
            "End the MCP session named by the Mcp-Session-Id header (handshake revisions).",
            false,
            json!({"type": "object"}),
            json!({"type": "object"}),
        ),
        doc(
            Method::POST,
            "/v1/clients/{clientId}/mcp",
            "client_mcp",
            "MCP over Streamable HTTP for one client (seed 000 §8): initialize, ping, server/discover, tools/list (the client's branches and buds), tools/call (runs one, sync). Needs the mcp scope; tools/call needs mcp.run. See docs/runtime.md.",
            false,
            rpc,
            json!({"type": "object", "description": "A JSON-RPC 2.0 response (202 with no body for notifications)."}),
        ),
        doc(
            Method::DELETE,
            "/v1/clients/{clientId}/mcp",
            "client_mcp_end_session",
            "End the MCP session named by the Mcp-Session-Id header on a client's MCP endpoint.",
            false,
            json!({"type": "object"}),
            json!({"type": "object"}),
        ),
        doc(
            Method::GET,
            "/mcp/info",
            "mcp_info",
            "The MCP server's name, version, protocol revisions, transports and tool count. No auth.",
            true,
            json!({"type": "object"}),
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "protocol_versions": {"type": "array", "items": {"type": "string"}},
                    "transports": {"type": "array", "items": {"type": "string"}},
                    "tool_count": {"type": "integer"}
                }
            }),
        ),
    ]
}

/// The `tools/list` result listing every tool (the bench measures its tokens). `only`
/// restricts it to the named tools when given.
pub fn tools_list_result(registry: &Registry, only: Option<&[&str]>) -> Value {
    let tools: Vec<Value> = registry
        .entries()
        .iter()
        .filter(|e| only.is_none_or(|o| o.contains(&e.tool.info.name)))
        .filter_map(|e| serde_json::from_str(&e.listing).ok())
        .collect();
    json!({ "tools": tools })
}
