//! Canopy's shared vocabulary, used by every layer above it.
//!
//! - [`error`]: the one error type and the table of error codes (status, docs anchor).
//! - [`ids`]: typed, prefixed resource ids (`prj_…`) that also accept plain UUIDs.
//! - [`scope`] and [`principal`]: who is calling and what they may do.
//! - [`page`]: cursor pagination types shared by the store and the surfaces.
//! - [`suggest`]: "did you mean" for enum mistakes.
//!
//! This crate does no IO: no tokio, no database, no web framework (only the `http` crate for
//! status codes), so the store, services, HTTP layer and tests can all share it.

pub mod error;
pub mod ids;
pub mod page;
pub mod principal;
pub mod scope;
pub mod suggest;
pub mod time;

pub use error::{Code, Error, Result};
pub use ids::*;
pub use page::{Cursor, Data, Deleted, PageRequest, Paged, Pagination};
pub use principal::{CredentialKind, Principal};
pub use scope::{Scope, Scopes};
