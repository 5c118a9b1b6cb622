//! A POP3 session over a socket (RFC 1939 §3): the AUTHORIZATION state
//! (`authorization`), then TRANSACTION and UPDATE (`transaction`).
//!
//! STLS (RFC 2595 §4) is taken only in AUTHORIZATION; the TLS session then
//! starts over in AUTHORIZATION with nothing kept from before (the `USER`
//! given, say). pop3s starts with the handshake (RFC 8314).
//!
//! When the server stops ([`Settings::stop`]), a session waiting for a
//! command is told `-ERR [SYS/TEMP] Server shutting down.` and closed, as
//! Dovecot does: without QUIT there is no UPDATE state, so messages marked
//! with DELE stay (RFC 1939 §6). A command in progress is answered first.
//!
//! This file holds what a session runs with ([`Settings`], [`Connection`]);
//! the course of one session, from the greeting to the goodbye, is in
//! `serve`.

mod authorization;
pub mod handover;
pub(crate) mod io;
pub mod lock;
mod serve;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
mod transaction;

pub(crate) use serve::SHUTTING_DOWN;
pub use serve::{serve, serve_handed};

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postern_auth::Authenticator;
use tokio::sync::watch;

use crate::TlsConfig;
use lock::Locks;

/// Where a user's mail is: the server maps a login name (as the users
/// file writes it, `alice@example.org`) to its Maildir the way local
/// delivery does, so POP3 reads where SMTP delivered.
pub trait Mailboxes: Send + Sync + fmt::Debug {
    /// The Maildir directory of `login`, if the user has one here.
    fn maildir(&self, login: &str) -> Option<PathBuf>;

    /// The uid and gid that own `login`'s mail (a system account, a
    /// users-file entry with a uid): a root server opens, scans and
    /// updates the Maildir as them (`postern_auth::owner`), as Dovecot's
    /// pop3 runs as its user. `None`: as the server.
    fn owner(&self, _login: &str) -> Option<(u32, u32)> {
        None
    }
}

/// What every session of one POP3 service runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The greeting text after `+OK` (Dovecot: `Dovecot ready.`).
    pub greeting: String,
    /// How long a read or a write may wait. RFC 1939 §3: an autologout
    /// timer of at least 10 minutes.
    pub command_timeout: Duration,
    /// The longest command line accepted. RFC 2449 §4 caps commands at
    /// 255 octets; AUTH responses (base64 of a long password) need more.
    pub max_line: usize,
    /// Unknown or malformed commands after which the client is dropped
    /// (Dovecot's 20, a scanner's limit).
    pub max_bad_commands: u32,
    /// The certificate for STLS and pop3s; `None` offers no STLS.
    pub tls: Option<Arc<TlsConfig>>,
    /// pop3s: the session starts with the TLS handshake.
    pub implicit_tls: bool,
    /// The password database with its failure delays.
    pub auth: Arc<Authenticator>,
    /// Login name to Maildir.
    pub mailboxes: Arc<dyn Mailboxes>,
    /// The mailboxes that have a session; shared by pop3 and pop3s.
    pub locks: Arc<Locks>,
    /// The server's stop signal: `true` ends every session between
    /// commands. `None`: sessions end only by themselves.
    pub stop: Option<watch::Receiver<bool>>,
    /// Where logins of mailboxes that other uids own go on (a process of
    /// the owner's); `None`: here.
    pub handover: Option<Arc<dyn handover::Handover>>,
}

impl Settings {
    /// Settings with Dovecot's defaults for everything but the parts only
    /// the server knows.
    pub fn new(auth: Arc<Authenticator>, mailboxes: Arc<dyn Mailboxes>) -> Settings {
        Settings {
            greeting: "Postern ready.".to_owned(),
            command_timeout: Duration::from_secs(600),
            max_line: 4096,
            max_bad_commands: 20,
            tls: None,
            implicit_tls: false,
            auth,
            mailboxes,
            locks: Arc::new(Locks::new()),
            stop: None,
            handover: None,
        }
    }
}

/// The connection a session serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The client's address.
    pub peer: SocketAddr,
    /// Ours.
    pub local: SocketAddr,
}

impl Connection {
    /// Dovecot's `disable_plaintext_auth`: a password may travel in the
    /// clear only over loopback.
    fn loopback(&self) -> bool {
        match self.peer.ip() {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }
}

/// What a session knows about its own security.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) conn: Connection,
    /// TLS is active.
    pub(crate) tls: bool,
}

impl Context<'_> {
    /// Passwords may be sent: over TLS, or on loopback.
    pub(crate) fn secured(&self) -> bool {
        self.tls || self.conn.loopback()
    }

    /// STLS can be offered: a certificate, and no TLS yet.
    pub(crate) fn can_stls(&self) -> bool {
        !self.tls && self.settings.tls.is_some()
    }

    /// `, TLS` or `, secured` (loopback), as Dovecot ends its log lines.
    pub(crate) fn security(&self) -> &'static str {
        if self.tls {
            ", TLS"
        } else if self.secured() {
            ", secured"
        } else {
            ""
        }
    }

    /// `rip=.., lip=..` and the security word, as Dovecot logs them.
    pub(crate) fn log_fields(&self) -> String {
        format!(
            "rip={}, lip={}{}",
            self.conn.peer.ip(),
            self.conn.local.ip(),
            self.security()
        )
    }
}
