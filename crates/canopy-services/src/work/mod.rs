//! Minolith's work services (seed 003): tasks with their notes, workflow and team feed; teams
//! (members, roles, invitations).
//!
//! - [`tasks`]: create, list, `mine`, read, update, delete;
//! - [`notes`]: status changes, assignments, comments, commits, and the team feed;
//! - [`workflow`]: each project's ordered statuses;
//! - [`teams`]: members, roles per project, invitations that answer a member's key.

pub mod bootstrap;
pub mod notes;
pub mod tasks;
pub mod teams;
pub mod workflow;
