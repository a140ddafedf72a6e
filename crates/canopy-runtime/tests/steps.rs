//! The runtime's step kinds against local servers: `http` (with the SSRF guard), `script`,
//! and the MCP client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The modules live in steps/ (a crate root looks for modules beside itself).

#[path = "steps/common.rs"]
mod common;
#[path = "steps/http.rs"]
mod http;
#[path = "steps/mcp.rs"]
mod mcp;
#[path = "steps/script.rs"]
mod script;
