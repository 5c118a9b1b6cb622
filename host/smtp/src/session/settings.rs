//! What a session is told before it starts: the server's settings (shared
//! by every session of a listener) and the facts about one connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use postern_auth::{Authenticator, Ledger};
use tokio::sync::watch;

use super::tls::TlsConfig;
use crate::anvil::Anvil;
use crate::codec::BareNewline;

/// The smtpd parameters one session obeys, named after their Postfix
/// `main.cf` counterparts. The server crate builds one per listener from the
/// config and shares it (`Arc`) among that listener's sessions.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `myhostname`: the name in the EHLO/HELO reply, the Received header
    /// and the 421 replies, and the domain of a bare `<postmaster>`.
    pub hostname: String,
    /// `smtpd_banner`, already expanded: the text after `220 ` in the
    /// greeting. RFC 5321 §4.3.1 wants the host name first.
    pub banner: String,
    /// `message_size_limit` in bytes: announced in EHLO `SIZE`, checked
    /// against `SIZE=` at MAIL and enforced while the content arrives. The
    /// content is held in memory until it is queued, so this is also the
    /// bound on a session's memory; Postfix's `0` (no limit) has no meaning
    /// here and the server crate must map it to a finite value.
    pub message_size_limit: u64,
    /// `smtpd_timeout` (300s): how long to wait for a command, or for the
    /// client to read our replies, before `421 4.4.2` and a close. RFC 5321
    /// §4.5.3.2.7 asks for at least five minutes.
    pub command_timeout: Duration,
    /// How long to wait for each read of message content after `354`
    /// (RFC 5321 §4.5.3.2.6: 3 minutes per block at least). Postfix uses
    /// `smtpd_timeout` for this too, hence the same default.
    pub data_timeout: Duration,
    /// The longest command line accepted, CRLF included (RFC 5321
    /// §4.5.3.1.4 says 512; 1000 leaves room for ESMTP parameters). A
    /// longer one is answered `500 5.5.2 Error: line too long`; it is never
    /// buffered whole.
    pub max_command_line: usize,
    /// `smtpd_recipient_limit` (1000): recipients per transaction; past it
    /// RCPT gets `452 4.5.3 Error: too many recipients`, which RFC 5321
    /// §4.5.3.1.10 lets the client retry in a later transaction.
    pub recipient_limit: usize,
    /// `smtpd_helo_required` (false): refuse MAIL and VRFY until the client
    /// said HELO or EHLO.
    pub helo_required: bool,
    /// `smtpd_delay_reject` (true): the client, helo and sender lists are
    /// asked at each RCPT, beside the relay and recipient lists, so that a
    /// refusal names the recipient and reaches clients that ignore one at
    /// connect, HELO or MAIL. False: each list is asked at its own
    /// command, and a client refused at connect gets the refusal for a
    /// greeting and `503` for everything but QUIT (Postfix's behaviour).
    pub delay_reject: bool,
    /// `smtpd_forbid_bare_newline` (normalize): what a bare CR or LF in the
    /// content does. No mode lets one end the data.
    pub bare_newline: BareNewline,
    /// `smtpd_hard_error_limit` (20): after this many failed commands the
    /// client gets `421 4.7.0 ... Error: too many errors` and is
    /// disconnected, so a confused or hostile client cannot hold a session
    /// forever.
    pub hard_error_limit: u32,
    /// `smtpd_soft_error_limit` (10): once a client has made this many
    /// errors, every reply waits `error_sleep_time` first, as Postfix's
    /// "sleep on anything" slows down a client that keeps failing.
    pub soft_error_limit: u32,
    /// `smtpd_error_sleep_time` (1s): that wait.
    pub error_sleep_time: Duration,
    /// `header_size_limit` (102400): the most bytes one message header
    /// (with its continuation lines) keeps; the excess is discarded, as
    /// Postfix's cleanup(8) does.
    pub header_size_limit: usize,
    /// `smtpd_tls_security_level = encrypt`: MAIL is refused with
    /// `530 5.7.0 Must issue a STARTTLS command first` until TLS is on
    /// (RFC 3207 §4).
    pub tls_required: bool,
    /// Per-client limits (Postfix's anvil), counted in `anvil`.
    pub client_limits: ClientLimits,
    /// The service's per-client counters; no per-client limit without it.
    pub anvil: Option<Arc<Anvil>>,
    /// Tells sessions that the server is stopping.
    pub shutdown: Shutdown,
    /// Recent POP3/IMAP logins by address, for the policy request's
    /// `pop_before_smtp` (POP/IMAP-before-SMTP).
    pub pop_before_smtp: Option<Arc<Ledger>>,
    /// `smtpd_junk_command_limit` (100): HELO, EHLO, RSET, NOOP, VRFY,
    /// ETRN and HELP beyond this many count as errors, so that they too
    /// meet the hard error limit. The count restarts after each delivered
    /// message.
    pub junk_command_limit: u32,
    /// `disable_vrfy_command` (true here, where Postfix says no): VRFY
    /// tells a spammer which addresses exist; disabled, it answers
    /// `502 5.5.1 VRFY command is disabled`.
    pub disable_vrfy_command: bool,
    /// The certificate (`smtpd_tls_cert_file`, `smtpd_tls_key_file`):
    /// STARTTLS is offered when set (RFC 3207), and smtps needs it.
    pub tls: Option<Arc<TlsConfig>>,
    /// smtps (RFC 8314 §3.3): the handshake comes before the greeting.
    pub implicit_tls: bool,
    /// `smtpd_sasl_auth_enable`: the users to authenticate against; AUTH
    /// is offered only when set.
    pub auth: Option<Arc<Authenticator>>,
    /// `smtpd_tls_auth_only` (yes): AUTH only over TLS, so that passwords
    /// never cross the network in clear; a loopback client is exempt, as
    /// the password never leaves the machine.
    pub tls_auth_only: bool,
    /// Submission (RFC 6409 §4.3): MAIL needs a successful AUTH first,
    /// `530 5.7.0 Authentication required`.
    pub auth_required: bool,
    /// `smtpd_sender_login_maps` in its simplest form
    /// (`reject_sender_login_mismatch`): an authenticated client may only
    /// use its own login as MAIL FROM (or the null sender).
    pub sender_login_check: bool,
    /// `smtpd_sasl_authenticated_header` (no): name the AUTH user in the
    /// Received header, `(Authenticated sender: user)`, as Postfix does
    /// when set. Off by default: the header travels with the message.
    pub sasl_authenticated_header: bool,
}

impl Default for SessionSettings {
    fn default() -> SessionSettings {
        SessionSettings {
            hostname: "localhost".to_owned(),
            banner: "localhost ESMTP Postern".to_owned(),
            message_size_limit: 10_240_000,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(300),
            max_command_line: 1000,
            recipient_limit: 1000,
            helo_required: false,
            delay_reject: true,
            bare_newline: BareNewline::Normalize,
            hard_error_limit: 20,
            junk_command_limit: 100,
            soft_error_limit: 10,
            error_sleep_time: Duration::from_secs(1),
            header_size_limit: 102_400,
            tls_required: false,
            client_limits: ClientLimits::default(),
            anvil: None,
            shutdown: Shutdown::default(),
            pop_before_smtp: None,
            disable_vrfy_command: true,
            tls: None,
            implicit_tls: false,
            auth: None,
            tls_auth_only: true,
            auth_required: false,
            sender_login_check: false,
            sasl_authenticated_header: false,
        }
    }
}

/// Postfix's per-client limits, each `0` for none. Rates count per
/// `anvil_rate_time_unit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientLimits {
    /// `smtpd_client_connection_count_limit` (50): connections open at once
    /// from one address.
    pub connection_count: u32,
    /// `smtpd_client_connection_rate_limit` (0): connections per time unit.
    pub connection_rate: u32,
    /// `smtpd_client_message_rate_limit` (0): MAIL commands per time unit.
    pub message_rate: u32,
}

/// The server's stop signal as a session sees it: a session waiting for a
/// command with no transaction open is told `421 4.3.2` and closed; one in
/// a transaction finishes it first.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Option<watch::Receiver<bool>>);

impl Shutdown {
    /// Follows `receiver`: `true` means stop.
    pub fn new(receiver: watch::Receiver<bool>) -> Shutdown {
        Shutdown(Some(receiver))
    }

    /// Whether the stop was signalled.
    pub fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|r| *r.borrow())
    }

    /// Resolves when the stop is signalled; never, without a sender.
    pub async fn wait(&mut self) {
        if let Some(r) = &mut self.0
            && r.wait_for(|stop| *stop).await.is_ok()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}

/// What the listener knows about one accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The client's address and port.
    pub peer: SocketAddr,
    /// The local address and port the client connected to.
    pub local: SocketAddr,
    /// The client's forward-confirmed host name, or `unknown` (as Postfix
    /// logs it) until DNS lookups are added.
    pub client_name: String,
    /// Whether the client is in `mynetworks`: computed by the caller, handed
    /// to the policy (`permit_mynetworks`).
    pub trusted: bool,
    /// The master.cf service name (`smtp`, `submission`), for logs.
    pub service: String,
    /// In `smtpd_client_event_limit_exceptions` (default `$mynetworks`):
    /// the per-client limits do not apply.
    pub limits_exempt: bool,
}

impl Connection {
    /// A connection from `peer` to `local`: client name `unknown`, not
    /// trusted, service `smtp`.
    pub fn new(peer: SocketAddr, local: SocketAddr) -> Connection {
        Connection {
            peer,
            local,
            client_name: "unknown".to_owned(),
            trusted: false,
            service: "smtp".to_owned(),
            limits_exempt: false,
        }
    }

    /// The client's IP, an IPv4-mapped IPv6 address shown as IPv4 as
    /// Postfix does on a dual-stack socket.
    pub fn client_ip(&self) -> IpAddr {
        self.peer.ip().to_canonical()
    }

    /// `name[ip]`, the client as every Postfix log line names it.
    pub fn client(&self) -> String {
        format!("{}[{}]", self.client_name, self.client_ip())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn client_is_logged_as_name_and_ip() {
        let c = Connection::new(
            "[::ffff:192.0.2.7]:4000".parse().unwrap(),
            "127.0.0.1:25".parse().unwrap(),
        );
        assert_eq!(c.client(), "unknown[192.0.2.7]");
        let c = Connection::new(
            "[2001:db8::1]:4000".parse().unwrap(),
            "[::1]:25".parse().unwrap(),
        );
        assert_eq!(c.client(), "unknown[2001:db8::1]");
    }

    #[test]
    fn defaults_follow_postfix() {
        let s = SessionSettings::default();
        assert_eq!(s.message_size_limit, 10_240_000);
        assert_eq!(s.command_timeout, Duration::from_secs(300));
        assert_eq!(s.recipient_limit, 1000);
        assert_eq!(s.hard_error_limit, 20);
        assert_eq!(s.bare_newline, BareNewline::Normalize);
    }
}
