//! Minolith runbooks (seed 003): templates of ordered manual steps, and runs of them on the
//! shared run engine (docs/runbooks.md).
//!
//! - [`model`]: variables and steps of a template, their checks, `{variable}` substitution;
//! - [`templates`]: create (5 credits), list, read, update, delete;
//! - [`routing`]: where a run goes from its active step (pure functions);
//! - [`view`]: the engine run seen as a runbook run;
//! - [`runs`]: start, list, read, current step, event log;
//! - [`control`]: advance, skip, fail, gate decisions, pause, resume, cancel.

pub mod control;
pub mod model;
pub mod routing;
pub mod runs;
pub mod templates;
pub mod view;
