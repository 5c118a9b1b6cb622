//! The SMTP server session over real loopback TCP: a tokio listener on
//! 127.0.0.1:0 runs `serve` with tiny in-test Policy, Directory and Enqueue
//! implementations, and a plain client talks to it byte by byte as real
//! clients (and attackers) do.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "session/delay_reject.rs"]
mod delay_reject;
#[path = "session/errors.rs"]
mod errors;
#[path = "session/harness.rs"]
mod harness;
#[path = "session/limits.rs"]
mod limits;
#[path = "session/pipelining.rs"]
mod pipelining;
#[path = "session/policy.rs"]
mod policy;
#[path = "session/smuggling.rs"]
mod smuggling;
#[path = "session/tls_auth.rs"]
mod tls_auth;
#[path = "session/transaction.rs"]
mod transaction;
