//! The `postern` binary's library: the configuration, the daemon that wires
//! the crates together, and the command line.
//!
//! Postfix counterparts: `master` (listeners and supervision), `postconf`
//! (the config reader and `postern config`), `postfix start|check`. This
//! crate holds no protocol or storage logic of its own: SMTP lives in
//! `postern-smtp`, policy in `postern-policy`, the spool in `postern-queue`,
//! delivery in `postern-delivery`. It reads the config, builds those
//! pieces, binds the sockets and hands connections over.
//!
//! # Layout
//! - [`config`]: the TOML file with Postfix's names, `$name` expansion and
//!   `file:line: key:` errors.
//! - [`directory`]: the domain classes and known recipients, over the
//!   config and the users file.
//! - [`daemon`]: start-up, listeners, signals, shutdown.
//! - [`listener`]: the accept loops for SMTP and POP3 services.
//! - [`log`]: the maillog line format.
//! - [`tls`]: the server certificate (or a self-signed one) and the
//!   per-service SMTP settings: STARTTLS, smtps, AUTH, submission.
//! - [`users_cli`]: `postern user add|passwd|del|list`.
//! - [`queue_cli`]: `postern queue ...`, `postern flush`, `postern aliases`.
//! - [`table_cli`]: `postern table query NAME KEY` (postmap -q).
//! - [`plugin_cli`]: `postern plugin list|test`.

pub mod config;
pub mod daemon;
pub mod directory;
pub mod listener;
pub mod log;
pub mod plugin_cli;
pub mod queue_cli;
pub mod table_cli;
pub mod tls;
pub mod users_cli;
