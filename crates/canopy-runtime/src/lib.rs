//! What the run engine's step kinds reach out with, kept apart from the engine (which only
//! schedules) and from services (which decide who may do what):
//!
//! - [`providers`]: LLM chat over OpenAI-compatible chat completions and the Anthropic
//!   Messages API, plus a deterministic offline `builtin` provider; usage and cost.
//! - [`outbound`]: the HTTP client user-defined steps use, refusing private, loopback and
//!   link-local targets unless configuration allows them; the `http` step.
//! - [`mcp_client`]: calling tools on external MCP servers (streamable HTTP).
//! - [`script`]: the `script` step, rhai with operation, memory and time limits.
//! - [`template`]: minijinja templates with fuel, for prompts, URLs, bodies and mappings.

pub mod mcp_client;
pub mod outbound;
pub mod providers;
pub mod script;
/// minijinja templates live in the engine (step input mappings use them too).
pub use canopy_engine::template;

/// Installs the process-wide TLS crypto provider (ring) once; every outbound client calls it.
pub fn init_tls() {
    // Err means another provider is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
