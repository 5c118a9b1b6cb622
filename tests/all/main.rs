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

mod access_actions;
mod access_maps;
mod aliases;
mod bdat;
mod config;
mod connection_cache;
mod content_filter;
mod crash;
mod crash_flush;
mod crash_soak;
mod delay_reject;
mod delay_warning;
mod delivery;
mod dns;
mod dns_checks;
mod dovecot;
mod dovecot_interop;
mod dsn;
mod esmtp;
mod fault_dns;
mod fault_plugins;
mod fault_remote;
mod fetch_clients;
mod forward;
mod full_disk;
mod greylist;
mod identity_checks;
mod imap;
mod imap_append;
mod imap_condstore;
mod immediate_delivery;
mod import_postfix;
mod limits;
mod lmtp;
mod lmtp_socket;
mod mail_clients;
mod maildrop;
mod main_cf_lists;
mod mbox;
mod metrics_ops;
mod open_relay;
mod operations;
mod pflogsumm;
mod plugin_cli;
mod plugin_python;
mod policy_dns;
mod policy_sandbox;
mod policy_session;
mod policy_tables;
mod pop3;
mod pop_before_smtp;
mod postfix_side_by_side;
mod private_postfix;
mod privileges;
mod privileges_mail;
mod privileges_mail_log;
mod privileges_ops;
mod privileges_reload;
mod queue_bounce;
mod queue_commands;
mod queue_fairness;
mod queue_memory;
mod ratelimit;
mod registry;
mod registry_auth;
mod registry_hostile;
mod reload;
mod reload_limits;
mod reload_load;
mod remote_concurrency;
mod remote_dsn;
mod remote_lmtp;
mod remote_smtp;
mod remote_tls;
mod restriction_classes;
mod sendmail;
mod sendmail_modes;
mod service_overrides;
mod sink;
mod smtp_details;
mod smtp_errors;
mod smtputf8;
mod smuggling;
mod spf;
mod stop;
mod support;
mod syslog;
mod system_accounts;
mod system_login;
mod tls_auth;
mod tls_files;
mod users_reload;
