//! Postern's user database: who has a mailbox here, where it lives, and the
//! password field that (later) authenticates them.
//!
//! The users file is Dovecot's passwd-file format, read by Dovecot's
//! `passwd-file` userdb and passdb alike, so one file can serve both servers
//! while a site migrates. Each line is
//! `user[@domain]:{SCHEME}hash:uid:gid:gecos:home:shell:extra_fields`; a user
//! without `@domain` belongs to the local namespace (the `mydestination`
//! domains, as a Unix account would). Lookups fold the case of the whole
//! name, as Dovecot's default `auth_username_format = %Lu` does.
//!
//! This crate does not yet verify passwords (the `{SCHEME}` field is kept
//! as written), speak SASL (PLAIN, LOGIN), write the users file
//! (`postern user add`), or keep the POP/IMAP-before-SMTP ledger.
//!
//! # Layout
//! - [`user`]: [`User`], one entry, and where its mailbox home is.
//! - [`passwd_file`]: the line parser and [`UsersFileError`].
//! - [`userdb`]: [`UserDb`], the loaded file and its lookups.

pub mod passwd_file;
pub mod user;
pub mod userdb;

pub use passwd_file::{LineError, UsersFileError};
pub use user::User;
pub use userdb::UserDb;
