//! Black-box tests: a real server per test, spoken to over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod harness;

mod agents;
mod bootstrap;
mod changelog;
mod cli;
mod client_mcp;
mod context;
mod credits;
mod documents;
mod feedback;
mod foundation;
mod mcp;
mod run_control;
mod runbooks;
mod runtime;
mod sink;
mod steps;
mod styleguide;
mod tasks;
