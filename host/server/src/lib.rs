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
//! - [`privilege`]: dropping a root start to `mail_owner`, and
//!   [`privilege_helper`], the root helper that does what needs another uid;
//!   [`privilege_files`], what it reads for a reload and `.forward`.
//! - [`control`]: the control socket under the queue directory, its
//!   `reload`, `plugins` and `status` commands, and `postern reload`.
//! - [`status`]: what `postern status` reports of the running daemon.
//! - [`import_postfix`]: `postern import-postfix`, a config from a Postfix
//!   (+ Dovecot) setup and what could not be carried over.
//! - [`notify`]: systemd's `Type=notify` (READY, RELOADING, STOPPING).
//! - [`metrics`]: the optional Prometheus endpoint (`[metrics] listen`).
//! - [`listener`]: the accept loops for SMTP and POP3 services.
//! - [`lmtp`]: the `lmtp` service's settings, mailboxes and UNIX socket.
//! - [`log`]: the maillog line format.
//! - [`tls`]: the server certificate (or a self-signed one) and the
//!   per-service SMTP settings: STARTTLS, smtps, AUTH, submission.
//! - [`users_cli`]: `postern user add|passwd|del|list`.
//! - [`remote`]: remote delivery and the router from the config.
//! - [`queue_cli`]: `postern queue ...`, `postern flush`, `postern aliases`.
//! - [`sendmail`]: `postern sendmail` and the binary called `sendmail`:
//!   options, modes, the hand-over to the daemon or the maildrop;
//!   [`sendmail_message`] reads the message, [`sendmail_smtp`] is `-bs`.
//! - [`services`]: what each SMTP `[[service]]` runs with: its overrides,
//!   per-client counters, process limit, own restriction lists; the
//!   drain at stop.
//! - [`table_cli`]: `postern table query NAME KEY` (postmap -q).
//! - [`plugin_cli`]: `postern plugin list|test`.
//! - [`registry_cli`]: `postern plugin publish|install|update|remove|
//!   verify|sign|keygen`, and `oci://` chain entries through plugins.lock;
//!   [`registry_install`]: install, update, remove.

pub mod config;
pub mod control;
pub mod daemon;
pub mod directory;
pub mod import_postfix;
pub mod listener;
pub mod lmtp;
pub mod log;
pub mod mail_session;
pub mod metrics;
pub mod notify;
pub mod plugin_cli;
pub mod privilege;
pub mod privilege_files;
pub mod privilege_helper;
pub mod queue_cli;
pub mod registry_cli;
pub mod registry_install;
pub mod remote;
pub mod sendmail;
pub mod sendmail_message;
pub mod sendmail_smtp;
pub mod services;
pub mod status;
pub mod table_cli;
pub mod tls;
pub mod users_cli;
