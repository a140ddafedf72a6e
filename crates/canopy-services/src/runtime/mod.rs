//! Stackmint's runtime (seed 000): buds and branches authored by org admins, assigned to
//! clients, and run by clients on the shared run engine (`canopy_engine`).
//!
//! - [`defs`]: the bud and branch documents, their checks, and how they become an engine
//!   [`canopy_engine::Definition`];
//! - [`authoring`]: the admin operations on buds and branches (versioned);
//! - [`assign`]: assigning buds and branches to clients;
//! - [`runs`]: what a client sees and runs; [`view`]: runs as the API shows them;
//! - [`client_tools`]: a client's buds and branches as MCP tools (seed 000 §8).

pub mod assign;
pub mod authoring;
pub mod client_tools;
pub mod control;
pub mod credentials;
pub mod defs;
pub mod runs;
pub mod schema;
pub mod steps;
pub mod view;
