//! End-to-end tests: the real `postern` binary, real sockets, real clients
//! (swaks, Python's smtplib), the real standard plugins embedded in it.
//!
//! One test binary mounting a module per area, as wasmtime's `tests/all`.
//! Every server runs in its own temporary directory on 127.0.0.1 with an
//! ephemeral port, and every wait is bounded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

mod aliases;
mod config;
mod crash;
mod delivery;
mod plugin_cli;
mod policy_dns;
mod policy_sandbox;
mod policy_tables;
mod pop3;
mod queue_bounce;
mod queue_commands;
mod reload;
mod smtp_errors;
mod smuggling;
mod support;
mod tls_auth;
mod tls_files;
