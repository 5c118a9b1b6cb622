//! What the SMTP server asks the restriction chains, and what they answer.
//!
//! These types mirror the `postern:policy` WIT package (`wit/policy.wit`)
//! on the host side, so that the SMTP server never sees wasmtime. The names
//! are Postfix's: the stages are its restriction lists, the request carries
//! its policy-delegation attributes (SMTPD_POLICY_README), the verdict its
//! access(5) actions.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use crate::address::Address;
use crate::reply::{EnhancedCode, Reply};

/// A restriction stage: one list of `[smtpd.restrictions]`, named after
/// Postfix's `smtpd_*_restrictions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Stage {
    /// `smtpd_client_restrictions`: at connect.
    Client,
    /// `smtpd_helo_restrictions`: at HELO/EHLO.
    Helo,
    /// `smtpd_sender_restrictions`: at MAIL FROM.
    Sender,
    /// `smtpd_relay_restrictions`: at RCPT TO, before `recipient`.
    Relay,
    /// `smtpd_recipient_restrictions`: at RCPT TO.
    Recipient,
    /// `smtpd_data_restrictions`: at DATA.
    Data,
    /// `smtpd_end_of_data_restrictions`: after the final dot.
    EndOfData,
}

impl Stage {
    /// Every stage, in the order a transaction meets them.
    pub const ALL: [Stage; 7] = [
        Stage::Client,
        Stage::Helo,
        Stage::Sender,
        Stage::Relay,
        Stage::Recipient,
        Stage::Data,
        Stage::EndOfData,
    ];

    /// The config key under `[smtpd.restrictions]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Client => "client",
            Stage::Helo => "helo",
            Stage::Sender => "sender",
            Stage::Relay => "relay",
            Stage::Recipient => "recipient",
            Stage::Data => "data",
            Stage::EndOfData => "end_of_data",
        }
    }

    /// Postfix's `protocol_state` attribute for this stage.
    pub fn protocol_state(self) -> &'static str {
        match self {
            Stage::Client => "CONNECT",
            Stage::Helo => "EHLO",
            Stage::Sender => "MAIL",
            Stage::Relay | Stage::Recipient => "RCPT",
            Stage::Data => "DATA",
            Stage::EndOfData => "END-OF-MESSAGE",
        }
    }

    /// The SMTP command a NOQUEUE log line names (`reject: RCPT from ...`).
    pub fn command(self) -> &'static str {
        match self {
            Stage::Client => "CONNECT",
            Stage::Helo => "HELO",
            Stage::Sender => "MAIL",
            Stage::Relay | Stage::Recipient => "RCPT",
            Stage::Data => "DATA",
            Stage::EndOfData => "END-OF-MESSAGE",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the server treats the recipient's domain: the question behind
/// `permit_auth_destination` and `reject_unauth_destination`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DomainClass {
    /// Listed in `mydestination`: delivered here, one local namespace.
    Local,
    /// A virtual mailbox domain: delivered here, per-domain users.
    Virtual,
    /// Listed in `relay_domains`: accepted and passed on.
    Relay,
    /// Anything else: relaying there needs a trusted or authenticated client.
    Other,
}

/// The attributes a restriction sees, as Postfix hands them to a policy
/// server. Empty strings mean "not known yet" as in Postfix's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRequest {
    /// Which list is being evaluated.
    pub stage: Stage,
    /// `SMTP` or `ESMTP`.
    pub protocol_name: String,
    /// A token that is the same for every request of one transaction.
    pub instance: String,
    /// The queue id, once MAIL FROM was accepted.
    pub queue_id: String,
    /// The client's IP address.
    pub client_address: Option<IpAddr>,
    /// The client's TCP port.
    pub client_port: u16,
    /// Forward-confirmed host name, or `unknown`.
    pub client_name: String,
    /// The PTR name without forward confirmation, or `unknown`.
    pub reverse_client_name: String,
    /// HELO/EHLO argument.
    pub helo_name: String,
    /// MAIL FROM address; empty for the null sender.
    pub sender: String,
    /// RCPT TO address at the recipient stage.
    pub recipient: String,
    /// Recipients accepted so far.
    pub recipient_count: u32,
    /// Message size: from SIZE= at MAIL, the real size at end of data.
    pub size: u64,
    /// SASL mechanism if the client authenticated.
    pub sasl_method: String,
    /// SASL user name if the client authenticated.
    pub sasl_username: String,
    /// TLS protocol, such as `TLSv1.3`, if the session is encrypted.
    pub encryption_protocol: String,
    /// TLS cipher suite, if the session is encrypted.
    pub encryption_cipher: String,
    /// The local address the client connected to.
    pub server_address: Option<IpAddr>,
    /// The local port the client connected to.
    pub server_port: u16,
    /// The TLS server name indication, if any.
    pub tls_sni: String,
    /// Whether the client address is in `mynetworks`.
    pub trusted: bool,
    /// The class of the recipient's domain, at the relay and recipient stages.
    pub recipient_class: Option<DomainClass>,
    /// The client address logged in over POP3 or IMAP recently
    /// (POP/IMAP-before-SMTP, `pop_before_smtp_timeout`).
    pub pop_before_smtp: bool,
    /// The client sent commands ahead of a reply where RFC 2920 §3.1
    /// forbids it, at any time in this session (Postfix's
    /// `SMTPD_FLAG_ILL_PIPELINING`).
    pub illegal_pipelining: bool,
    /// The class of the sender's domain, from MAIL FROM on; `None` for
    /// the null sender.
    pub sender_class: Option<DomainClass>,
    /// Whether the sender has a mailbox here ([`Directory::recipient_exists`]):
    /// meaningful at a local or virtual sender domain, `true` elsewhere
    /// and without a sender.
    ///
    /// [`Directory::recipient_exists`]: crate::Directory::recipient_exists
    pub sender_known: bool,
    /// The same for the recipient, when there is one.
    pub recipient_known: bool,
    /// The message as received (header and body, CRLF line ends, dots
    /// unstuffed, before the server's own Received header), at the
    /// end-of-data stage only.
    pub message: Option<MessageContent>,
}

/// The content of a message handed to the end-of-data list: shared, not
/// copied, so that the SMTP session gets its buffer back once the list is
/// done ([`MessageContent::into_inner`]).
#[derive(Clone, PartialEq, Eq)]
pub struct MessageContent(Arc<Vec<u8>>);

impl MessageContent {
    /// Wraps the received bytes.
    pub fn new(bytes: Vec<u8>) -> MessageContent {
        MessageContent(Arc::new(bytes))
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The buffer back, without a copy when nothing else holds it (the
    /// policy drops its references when a check ends).
    pub fn into_inner(self) -> Vec<u8> {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }
}

impl fmt::Debug for MessageContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageContent({} bytes)", self.0.len())
    }
}

impl PolicyRequest {
    /// An empty request for `stage`.
    pub fn new(stage: Stage) -> PolicyRequest {
        PolicyRequest {
            stage,
            protocol_name: "SMTP".to_owned(),
            instance: String::new(),
            queue_id: String::new(),
            client_address: None,
            client_port: 0,
            client_name: "unknown".to_owned(),
            reverse_client_name: "unknown".to_owned(),
            helo_name: String::new(),
            sender: String::new(),
            recipient: String::new(),
            recipient_count: 0,
            size: 0,
            sasl_method: String::new(),
            sasl_username: String::new(),
            encryption_protocol: String::new(),
            encryption_cipher: String::new(),
            server_address: None,
            server_port: 0,
            tls_sni: String::new(),
            trusted: false,
            recipient_class: None,
            pop_before_smtp: false,
            illegal_pipelining: false,
            sender_class: None,
            sender_known: true,
            recipient_known: true,
            message: None,
        }
    }
}

/// What one restriction answers: the access(5) actions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// No opinion: the next entry of the list decides.
    Dunno,
    /// Accept at this stage; the rest of this list is skipped.
    Permit,
    /// Refuse with a 5xx (or 4xx) reply.
    Reject(Reply),
    /// Refuse for now with a 4xx reply.
    Defer(Reply),
    /// Defer if a later restriction would permit (Postfix DEFER_IF_PERMIT).
    DeferIfPermit(Reply),
    /// Defer if a later restriction would reject (Postfix DEFER_IF_REJECT).
    DeferIfReject(Reply),
    /// Accept, but keep the message in the hold queue.
    Hold(String),
    /// Accept and throw the message away; ends the list as a permit does,
    /// and the session asks no more lists for the transaction.
    Discard(String),
    /// Prepend this header line to the message.
    Prepend(String),
    /// Deliver to this address instead of the recipients.
    Redirect(Address),
    /// Send a blind copy to this address too.
    Bcc(Address),
    /// Deliver the message through this content filter
    /// (`transport:destination`, Postfix's FILTER action and
    /// `content_filter`) instead of to the recipients' destinations.
    Filter(String),
    /// Log this warning and go on.
    Warn(String),
    /// Log this text (Postfix's INFO action) and go on.
    Info(String),
    /// Close the connection with this `421` reply (Postfix's HANGUP);
    /// ends the list as a reject does, and is logged as `hangup:`.
    Hangup(Reply),
    /// Evaluate these restriction classes in place (one or more names,
    /// separated by commas or spaces): an access map's answer that names
    /// a class of `smtpd_restriction_classes`. The `policy` crate expands
    /// it while it evaluates a list; a session never sees one.
    Restriction(String),
}

impl Verdict {
    /// The default reply for `reject` with no text: Postfix's
    /// `access_map_reject_code` (554) with 5.7.1.
    pub fn reject_default() -> Verdict {
        Verdict::Reject(Reply::new(554, EnhancedCode::new(5, 7, 1), "Access denied"))
    }

    /// The default reply for `defer` with no text: 450 4.7.1.
    pub fn defer_default() -> Verdict {
        Verdict::Defer(Reply::new(
            450,
            EnhancedCode::new(4, 7, 1),
            "Try again later",
        ))
    }

    /// Whether this verdict ends the evaluation of a list.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Verdict::Permit
                | Verdict::Reject(_)
                | Verdict::Defer(_)
                | Verdict::Discard(_)
                | Verdict::Hangup(_)
        )
    }
}

/// The outcome of one list: the verdict, the entry that gave it (named in
/// logs), and the non-final actions collected on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Permit, Reject or Defer (or Dunno when the list ran out: which
    /// Postfix treats as permit).
    pub verdict: Verdict,
    /// The entry that gave the final verdict, as written in the config.
    pub decided_by: Option<String>,
    /// Hold, Discard, Prepend, Redirect, Bcc, Filter, Warn and Info
    /// actions met on the way.
    pub actions: Vec<Verdict>,
}

impl Decision {
    /// The decision of an empty list: permit.
    pub fn permit() -> Decision {
        Decision {
            verdict: Verdict::Permit,
            decided_by: None,
            actions: Vec::new(),
        }
    }

    /// The reply to send if the list refused the request.
    pub fn refusal(&self) -> Option<&Reply> {
        match &self.verdict {
            Verdict::Reject(r) | Verdict::Defer(r) | Verdict::Hangup(r) => Some(r),
            _ => None,
        }
    }

    /// Whether the list ends the connection (HANGUP): the refusal is
    /// logged as `hangup:`, and its `421` closes the session.
    pub fn hangs_up(&self) -> bool {
        matches!(self.verdict, Verdict::Hangup(_))
    }
}

/// A boxed future, so that the traits stay object safe (`Arc<dyn Policy>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The restriction chains, as the SMTP server sees them. Implemented by the
/// `policy` crate over WebAssembly components, and by simple closures in
/// tests of the SMTP session.
pub trait Policy: Send + Sync {
    /// Evaluates the list for `request.stage` left to right, with Postfix
    /// semantics: the first permit, reject or defer ends it, the end of the
    /// list permits. A plugin failure applies the entry's `on_error`; it
    /// is never an error of this call.
    fn check<'a>(&'a self, request: &'a PolicyRequest) -> BoxFuture<'a, Decision>;

    /// [`Policy::check`] within an SMTP session: what the policy keeps for
    /// the session between checks (the `policy` crate keeps each plugin's
    /// instance there, and the snapshot the transaction is evaluated
    /// against) lives in `session`, until [`PolicySession::release`].
    /// Without an override, a check keeps nothing.
    fn check_in<'a>(
        &'a self,
        session: &'a mut PolicySession,
        request: &'a PolicyRequest,
    ) -> BoxFuture<'a, Decision> {
        let _ = session;
        self.check(request)
    }
}

/// What a [`Policy`] keeps for one SMTP session, opaque to the server: it
/// makes one per session, hands it to every [`Policy::check_in`], and
/// releases it where a transaction ends (the final dot, RSET, a new
/// HELO/EHLO or MAIL, STARTTLS) and after checks made outside a
/// transaction (connect, HELO), so that an idle session holds nothing.
#[derive(Default)]
pub struct PolicySession {
    /// In a mutex only so that the session stays `Sync` (plugin stores are
    /// `Send` but not `Sync`); it is reached through `&mut self` alone, so
    /// never locked.
    state: Option<Mutex<Box<dyn Any + Send>>>,
}

impl PolicySession {
    /// An empty session state.
    pub fn new() -> PolicySession {
        PolicySession::default()
    }

    /// Takes the policy's state of type `T` out for a check (made with
    /// `Default` when there is none, or one of another type); give it
    /// back with [`PolicySession::keep`]. A check that is cut off never
    /// gives it back, which releases it.
    pub fn take<T: Any + Send + Default>(&mut self) -> Box<T> {
        self.state
            .take()
            .map(|state| state.into_inner().unwrap_or_else(PoisonError::into_inner))
            .and_then(|state| state.downcast::<T>().ok())
            .unwrap_or_default()
    }

    /// Puts the state back after a check.
    pub fn keep<T: Any + Send>(&mut self, state: Box<T>) {
        self.state = Some(Mutex::new(state));
    }

    /// Drops whatever the policy keeps (instances, the pinned snapshot).
    pub fn release(&mut self) {
        self.state = None;
    }

    /// Whether the policy keeps anything now.
    pub fn is_empty(&self) -> bool {
        self.state.is_none()
    }
}

impl fmt::Debug for PolicySession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicySession")
            .field("held", &self.state.is_some())
            .finish()
    }
}
