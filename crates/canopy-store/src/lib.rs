//! Canopy persistence: the only crate that writes SQL.
//!
//! One [`Store`] serves both backends. Every query is written once, with `$1…$n` placeholders
//! (which SQLite accepts too) and portable types (ids and JSON as TEXT, times as BIGINT Unix
//! milliseconds), and the [`on_db!`]/[`on_tx!`] macros run it against whichever pool is open.
//! We avoid `sqlx::Any` on purpose: it loses type support and hides which backend ran.
//!
//! Layout: [`db`] opens pools and runs migrations; one module per table family below it.
//! Writes that must commit together (a change and its audit record) take a [`Tx`].

#[macro_use]
mod db;
#[macro_use]
pub mod args;
pub mod agents;
pub mod audit;
pub mod blobs;
pub mod bootstrap;
pub mod changelog;
pub mod context;
pub mod credentials;
pub mod documents;
pub mod engine;
pub mod feedback;
pub mod idempotency;
pub mod keys;
pub mod limits;
pub mod mcp;
pub mod orgs;
pub mod projects;
mod run_writes;
pub mod runbooks;
pub mod runtime;
pub mod settings;
pub mod styleguide;
pub mod tasks;
pub mod teams;
pub mod usage;

pub use db::{Backend, InlineTx, Store, Tx, db_error};
