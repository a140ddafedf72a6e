//! Black-box tests: a real server per test, spoken to over HTTP.

mod harness;

mod foundation;
