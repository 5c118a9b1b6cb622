//! Accept loops: one task per listening socket, one task per connection.
//!
//! Postfix's `master` accepts and hands each connection to an `smtpd` or
//! (Dovecot) `pop3` process; here each accepted stream becomes a task
//! running the protocol crate's session. The per-service session cap
//! (`default_process_limit`, Postfix's maxproc) is a semaphore: when it
//! is full the listener stops accepting and the kernel's backlog holds
//! new clients, as a busy Postfix does. At stop the slots taken tell how
//! many sessions are still open ([`MailboxSessions`] for POP3 and IMAP).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use postern_delivery::LocalDelivery;
use postern_mail::{Directory, Enqueue, Policy};
use postern_smtp::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// One SMTP service (`smtp`, `submission`, `smtps`) and what its sessions
/// share.
pub struct Smtp {
    /// The service name from `[[service]]`, as logged and as the policy
    /// request's `instance`.
    pub name: String,
    /// This service's session settings (TLS, AUTH, limits) and client
    /// networks, as a reload leaves them.
    pub state: crate::services::ServiceHandle,
    /// The restriction chains.
    pub policy: Arc<dyn Policy>,
    /// Domain classes and known recipients.
    pub directory: Arc<dyn Directory>,
    /// Where accepted messages go.
    pub enqueue: Arc<dyn Enqueue>,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Smtp {
    /// Accepts SMTP clients on `listener` while `sessions` has room.
    pub async fn serve(self, listener: TcpListener, sessions: Arc<Semaphore>) {
        accept(listener, sessions, move |stream, peer, local| {
            let state = self.state.current();
            let conn = Connection {
                peer,
                local,
                client_name: "unknown".to_owned(),
                trusted: trusted(&state.mynetworks, peer.ip()),
                service: self.name.clone(),
                limits_exempt: trusted(&state.limit_exceptions, peer.ip()),
            };
            let (settings, policy, directory, enqueue) = (
                state.settings.clone(),
                self.policy.clone(),
                self.directory.clone(),
                self.enqueue.clone(),
            );
            postern_smtp::serve(stream, conn, settings, policy, directory, enqueue)
        })
        .await;
    }
}

/// Accepts clients on `listener` while `sessions` has room, and runs the
/// session `session` makes for each (given the stream, the peer and the
/// local address) in its own task, which holds a slot until it ends.
pub(crate) async fn accept<F, S>(listener: TcpListener, sessions: Arc<Semaphore>, session: F)
where
    F: Fn(TcpStream, SocketAddr, SocketAddr) -> S,
    S: Future<Output = ()> + Send + 'static,
{
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    loop {
        let Ok(permit) = sessions.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and kin: wait rather than spin.
                tracing::warn!(target: "postern/master", "accept on {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A listener bound to one address accepts only on it: the
        // getsockname(2) per connection is needed for a wildcard alone.
        let local = if addr.ip().is_unspecified() {
            stream.local_addr().unwrap_or(addr)
        } else {
            addr
        };
        let task = session(stream, peer, local);
        tokio::spawn(async move {
            task.await;
            drop(permit);
        });
    }
}

/// Whether `ip` is in `mynetworks` (IPv4-mapped IPv6 counts as IPv4).
fn trusted(networks: &[IpNet], ip: std::net::IpAddr) -> bool {
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    };
    networks.iter().any(|n| n.contains(&ip))
}

/// The session slots of the POP3 and IMAP services, counted at stop: a
/// slot taken is a session open.
#[derive(Debug, Default)]
pub struct MailboxSessions(Vec<(Arc<Semaphore>, usize)>);

impl MailboxSessions {
    /// Counts the sessions of a service with `limit` slots.
    pub fn add(&mut self, slots: &Arc<Semaphore>, limit: usize) {
        self.0.push((Arc::clone(slots), limit));
    }

    /// POP3 and IMAP sessions open now.
    pub fn open(&self) -> usize {
        self.0
            .iter()
            .map(|(slots, limit)| limit.saturating_sub(slots.available_permits()))
            .sum()
    }
}

/// A POP3 login's Maildir: where local delivery puts that user's mail
/// (`LocalDelivery::resolve`), a login without a domain being a user of
/// the local namespace (`name@$myhostname`).
#[derive(Debug)]
struct DeliveryMailboxes(Arc<LocalDelivery>);

impl DeliveryMailboxes {
    fn address(&self, login: &str) -> Option<postern_mail::Address> {
        if login.contains('@') {
            postern_mail::Address::parse(login).ok()
        } else {
            let myhostname = self.0.settings().myhostname.clone();
            Some(postern_mail::Address::new(login, myhostname))
        }
    }
}

impl postern_pop3::Mailboxes for DeliveryMailboxes {
    fn maildir(&self, login: &str) -> Option<PathBuf> {
        self.0.resolve(&self.address(login)?)
    }

    /// A system account's ids, or a users-file entry's uid and gid: the
    /// ones local delivery writes the Maildir as.
    fn owner(&self, login: &str) -> Option<(u32, u32)> {
        let owner = self.0.owner(&self.address(login)?)?;
        let user = owner.user()?;
        Some((user.uid?, user.gid.or(user.uid)?))
    }
}

impl postern_imap::Mailboxes for DeliveryMailboxes {
    fn maildir(&self, login: &str) -> Option<PathBuf> {
        postern_pop3::Mailboxes::maildir(self, login)
    }

    fn owner(&self, login: &str) -> Option<(u32, u32)> {
        postern_pop3::Mailboxes::owner(self, login)
    }
}

/// What the imap and imaps services share. A literal (an APPEND) may be
/// as large as a message SMTP accepts.
pub fn imap_settings(
    auth: &Arc<postern_auth::Authenticator>,
    delivery: &Arc<LocalDelivery>,
    tls: &Arc<postern_tls::TlsConfig>,
    message_size_limit: u64,
) -> postern_imap::Settings {
    let mut settings = postern_imap::Settings::new(
        Arc::clone(auth),
        Arc::new(DeliveryMailboxes(Arc::clone(delivery))),
    );
    settings.tls = Some(Arc::clone(tls));
    // Other uids' mailboxes are served by a process of theirs.
    settings.handover = Some(Arc::new(crate::mail_session::SessionHandover));
    settings.max_literal = crate::services::max_literal(message_size_limit);
    settings
}

/// Accepts IMAP clients on `listener` while `sessions` has room; each
/// runs with the settings in force when it connects.
pub async fn serve_imap(
    listener: TcpListener,
    settings: crate::services::Swappable<postern_imap::Settings>,
    sessions: Arc<Semaphore>,
) {
    accept(listener, sessions, move |stream, peer, local| {
        metrics::counter!("postern_imap_sessions_total").increment(1);
        let conn = postern_imap::Connection { peer, local };
        postern_imap::serve(stream, conn, settings.load_full())
    })
    .await;
}

/// What the pop3 and pop3s services share: one lock table, so that a
/// mailbox has one POP3 session whichever port it came through.
pub fn pop3_settings(
    auth: &Arc<postern_auth::Authenticator>,
    delivery: &Arc<LocalDelivery>,
    tls: &Arc<postern_tls::TlsConfig>,
) -> postern_pop3::Settings {
    postern_pop3::Settings {
        tls: Some(Arc::clone(tls)),
        // Other uids' mailboxes are served by a process of theirs.
        handover: Some(Arc::new(crate::mail_session::SessionHandover)),
        ..postern_pop3::Settings::new(
            Arc::clone(auth),
            Arc::new(DeliveryMailboxes(Arc::clone(delivery))),
        )
    }
}

/// Accepts POP3 clients on `listener` while `sessions` has room.
pub async fn serve_pop3(
    listener: TcpListener,
    settings: Arc<postern_pop3::Settings>,
    sessions: Arc<Semaphore>,
) {
    accept(listener, sessions, move |stream, peer, local| {
        metrics::counter!("postern_pop3_sessions_total").increment(1);
        let conn = postern_pop3::Connection { peer, local };
        postern_pop3::serve(stream, conn, settings.clone())
    })
    .await;
}
