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
mod bdat;
mod config;
mod crash;
mod crash_soak;
mod delay_warning;
mod delivery;
mod dns;
mod dsn;
mod esmtp;
mod forward;
mod full_disk;
mod imap;
mod limits;
mod mbox;
mod pflogsumm;
mod plugin_cli;
mod policy_dns;
mod policy_sandbox;
mod policy_tables;
mod pop3;
mod pop_before_smtp;
mod queue_bounce;
mod queue_commands;
mod reload;
mod reload_load;
mod remote_lmtp;
mod remote_smtp;
mod remote_tls;
mod sendmail;
mod service_overrides;
mod smtp_errors;
mod smtputf8;
mod smuggling;
mod stop;
mod support;
mod tls_auth;
mod tls_files;
mod users_reload;
