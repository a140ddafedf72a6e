//! The `/v1` surface: Stackmint (clients, admin) and Minolith routes, plus Canopy's own.

pub mod agents;
pub mod audit;
pub mod changelog;
pub mod clients;
pub mod context;
pub mod documents;
pub mod feedback;
pub mod run_events;
pub mod runbooks;
pub mod runtime;
pub mod styleguide;
pub mod tasks;
pub mod usage;
