//! The engine's tests, each on SQLite and (with `CANOPY_TEST_PG`) on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[macro_use]
mod common;
mod control;
mod durability;
mod failures;
mod graph;
mod manual;
mod perf;
mod waits;
