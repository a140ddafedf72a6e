//! Canopy's durable run engine: everything that executes (Stackmint buds and branches now;
//! runbooks, Stagent workflows and StackBilt flows later) runs here.
//!
//! A run executes a snapshot of a graph of steps. Its state lives in the database (through
//! `canopy_store::engine`; this crate writes no SQL and knows no HTTP): runs, step runs, an
//! append-only event log, and a queue of jobs that workers claim with a lease and a
//! heartbeat. Each transition is one transaction fenced by the lease, so it happens exactly
//! once even when workers crash or two nodes share one PostgreSQL database.
//!
//! Layout:
//! - [`model`]: definitions, runs, statuses, events;
//! - [`validate`]: graph checks (unknown dependency, cycle, duplicate id, bad expressions);
//! - [`expr`]: jq (jaq) for `when`, `for_each`, `transform` and input mappings;
//! - [`executor`]: the [`StepExecutor`] trait, the registry and the `transform` built-in;
//! - `builtin`: the `wait` and `approval` configurations;
//! - `state`: the state machine of one run inside one transaction; `ops`: the transactions;
//! - [`manual`]: manual runs (runbooks), moved on by their service, never by workers;
//! - `worker`: claim, heartbeat, timeout, complete; `wake`: in-process and cross-node wake-ups;
//! - [`engine`]: the [`Engine`] handle.
//!
//! docs/engine.md describes the model and the guarantees.

pub mod builtin;
#[cfg(test)]
mod chain_tests;
pub mod engine;
pub mod executor;
pub mod expr;
pub mod manual;
pub mod model;
mod ops;
mod state;
pub mod template;
pub mod usage;
pub mod validate;
mod view;
mod wake;
mod worker;

pub use engine::{Engine, EngineConfig, RunChanges};
pub use executor::{BoxFuture, Executors, StepCall, StepError, StepExecutor, StepOutput};
pub use manual::{ManualChange, ManualEnd, ManualEvent, ManualStep};
pub use model::{
    Decision, Definition, Event, RetryPolicy, Run, RunKind, RunSpec, RunStatus, StepDef, StepRun,
    StepStatus,
};
