//! Minolith's work services (seed 003): tasks with their notes, workflow and team feed; teams
//! (members, roles, invitations); runbooks and their runs on the engine.
//!
//! - [`tasks`]: create, list, `mine`, read, update, delete;
//! - [`notes`]: status changes, assignments, comments, commits, and the team feed;
//! - [`workflow`]: each project's ordered statuses;
//! - [`runbooks`]: templates of manual steps, runs on the shared engine;
//! - [`teams`]: members, roles per project, invitations that answer a member's key.

pub mod bootstrap;
pub mod fields;
pub mod notes;
pub mod runbooks;
pub mod tasks;
pub mod teams;
pub mod workflow;
