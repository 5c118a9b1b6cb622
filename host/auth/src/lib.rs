//! Postern's user database and authentication: who has a mailbox here,
//! where it lives, and whether a login's password is right. Dovecot's auth
//! process, as a library.
//!
//! The users file is Dovecot's passwd-file format, read by Dovecot's
//! `passwd-file` userdb and passdb alike, so one file can serve both servers
//! while a site migrates. Each line is
//! `user[@domain]:{SCHEME}hash:uid:gid:gecos:home:shell:extra_fields`; a user
//! without `@domain` belongs to the local namespace (the `mydestination`
//! domains, as a Unix account would). Lookups fold the case of the whole
//! name, as Dovecot's default `auth_username_format = %Lu` does.
//!
//! Passwords are checked in the schemes Dovecot writes (ARGON2ID,
//! SHA512-CRYPT, BLF-CRYPT, PLAIN), after a SASL PLAIN or LOGIN exchange
//! decoded here without I/O; failed logins are delayed and counted per
//! client address. The protocols (SMTP AUTH, later IMAP and POP3) own the
//! sockets and the replies.
//!
//! The users file is also edited here as text (`postern user add|passwd|
//! del`), keeping comments and other lines as they were.
//!
//! Successful POP3 and IMAP logins are kept in a [`Ledger`] for a while,
//! so that the client's address may relay through SMTP
//! (POP/IMAP-before-SMTP).
//!
//! With `[auth] system_accounts = true`, a login the users file does not
//! know is checked against the system's accounts (`/etc/passwd` and
//! `/etc/shadow`, Dovecot's `shadow` passdb and `passwd` userdb), their
//! crypt(3) hashes verified in Rust ([`crypt`]); locked and expired
//! accounts and root are refused ([`system`]). A root daemon touches a
//! user's mail as that user ([`owner`]), for delivery, POP3 and IMAP.
//!
//! Not here yet: other SASL mechanisms (CRAM-MD5, SCRAM); PAM (only the
//! shadow file is read, so NSS sources such as LDAP do not log in).
//!
//! # Layout
//! - [`user`]: [`User`], one entry, and where its mailbox home is.
//! - [`passwd_file`]: the line parser and [`UsersFileError`].
//! - [`userdb`]: [`UserDb`], the loaded file and its lookups.
//! - [`scheme`]: password schemes: [`scheme::verify`], [`Scheme::hash`].
//! - [`crypt`]: crypt(3) hashes (`$y$`, `$6$`, `$5$`, `$2b$`, `$1$`).
//! - [`system`]: [`SystemAccounts`], the system's accounts as a passdb.
//! - [`owner`]: [`owner::as_owner`], mailbox work as the mailbox's owner.
//! - [`sasl`]: the PLAIN and LOGIN exchanges, [`Credentials`].
//! - [`passdb`]: [`Authenticator`]: credentials against the users file,
//!   and the failed-login delay and limit.
//! - [`edit`]: adding, changing and removing users in the file's text.
//! - [`ledger`]: [`Ledger`], recent mailbox logins by address.

pub mod crypt;
pub mod edit;
pub mod ledger;
pub mod owner;
pub mod passdb;
pub mod passwd_file;
pub mod sasl;
pub mod scheme;
pub mod system;
pub mod user;
pub mod userdb;

pub use edit::EditError;
pub use ledger::Ledger;
pub use passdb::{Authenticator, Check, FailurePolicy, Penalty};
pub use passwd_file::{LineError, UsersFileError};
pub use sasl::{Credentials, Exchange, Mechanism, SaslError, Step};
pub use scheme::{Scheme, SchemeError};
pub use system::{SystemAccounts, SystemCheck};
pub use user::User;
pub use userdb::UserDb;
