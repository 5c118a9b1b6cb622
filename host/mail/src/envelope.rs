//! The envelope of one message: who sent it, to whom, and how it arrived.

use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

use crate::address::{Address, ReversePath};

/// A queue id: uppercase hexadecimal like Postfix's short ids, unique for
/// the life of a queue directory. It names the queue file, and starts every
/// log line about the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(String);

impl QueueId {
    /// Parses a queue id: 6 to 32 characters of `[0-9A-Za-z]`, so that it
    /// is always a safe file name.
    pub fn parse(s: &str) -> Option<QueueId> {
        ((6..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| QueueId(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One envelope recipient with what the SMTP client said of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address delivery is for (after any policy REDIRECT).
    pub address: Address,
    /// The address exactly as given in RCPT TO, for DSN ORCPT and logs.
    pub original: Address,
    /// RFC 3461 §4.1 `NOTIFY=`: which outcomes the sender wants to hear
    /// of; `None` when the client did not say (failures are reported).
    pub notify: Option<Notify>,
    /// RFC 3461 §4.2 `ORCPT=`: the recipient as the first MTA saw it,
    /// xtext-decoded, for the `Original-Recipient` field of a DSN.
    pub orcpt: Option<Orcpt>,
}

impl Recipient {
    /// A recipient whose address is the one the client gave, without DSN
    /// parameters.
    pub fn new(address: Address) -> Recipient {
        Recipient {
            original: address.clone(),
            address,
            notify: None,
            orcpt: None,
        }
    }

    /// Whether a failure (bounce or expiry) of this recipient is to be
    /// reported: yes unless `NOTIFY` was given without `FAILURE`.
    pub fn notify_failure(&self) -> bool {
        self.notify.is_none_or(|n| n.failure)
    }

    /// Whether a successful delivery is to be reported (`NOTIFY=SUCCESS`).
    pub fn notify_success(&self) -> bool {
        self.notify.is_some_and(|n| n.success)
    }
}

/// RFC 3461 §4.1 `NOTIFY=NEVER` or a list of `SUCCESS`, `FAILURE`,
/// `DELAY`. `NEVER` is all three false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Notify {
    /// `SUCCESS`: a DSN on delivery (or relay to a non-DSN MTA).
    pub success: bool,
    /// `FAILURE`: a DSN when delivery fails for good.
    pub failure: bool,
    /// `DELAY`: a DSN when delivery is delayed (not sent by this version).
    pub delay: bool,
}

impl Notify {
    /// `NEVER`, or the keywords joined by commas, as in the parameter.
    pub fn keywords(&self) -> String {
        let mut words = Vec::new();
        if self.success {
            words.push("SUCCESS");
        }
        if self.failure {
            words.push("FAILURE");
        }
        if self.delay {
            words.push("DELAY");
        }
        if words.is_empty() {
            "NEVER".to_owned()
        } else {
            words.join(",")
        }
    }
}

/// RFC 3461 §4.2 `ORCPT=addr-type;xtext`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orcpt {
    /// The address type, `rfc822` (or `utf-8`, RFC 6533) as a rule.
    pub addr_type: String,
    /// The address, xtext-decoded.
    pub address: String,
}

impl fmt::Display for Orcpt {
    /// `type;address` as RFC 3464 §2.3.1 `Original-Recipient` wants it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};{}", self.addr_type, self.address)
    }
}

/// RFC 3461 §4.3 `RET=`: what a DSN returns of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// `RET=FULL`: the whole message.
    Full,
    /// `RET=HDRS`: its header section only.
    Headers,
}

impl Ret {
    /// The keyword, as in the parameter.
    pub fn keyword(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Headers => "HDRS",
        }
    }
}

/// Everything the queue keeps about a message besides its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// MAIL FROM.
    pub sender: ReversePath,
    /// RCPT TO, in the order given, without duplicates.
    pub recipients: Vec<Recipient>,
    /// The client's address and port.
    pub client: Option<SocketAddr>,
    /// The client's verified host name, or `unknown` as Postfix logs it.
    pub client_name: String,
    /// HELO/EHLO argument.
    pub helo: Option<String>,
    /// `SMTP` or `ESMTP` (or `ESMTPS`/`ESMTPA` variants later).
    pub protocol: String,
    /// When the message was accepted.
    pub arrival: SystemTime,
    /// Set by a policy HOLD verdict: the message waits in the hold queue.
    pub hold: bool,
    /// RFC 3461 §4.3 `RET=` from MAIL FROM.
    pub ret: Option<Ret>,
    /// RFC 3461 §4.4 `ENVID=` from MAIL FROM, xtext-decoded: returned in
    /// every DSN so the sender can match it to what it sent.
    pub envid: Option<String>,
    /// RFC 6531 `SMTPUTF8`: the envelope or headers may hold UTF-8, so
    /// the next hop must announce SMTPUTF8 too.
    pub smtputf8: bool,
    /// RFC 6152 `BODY=8BITMIME`: the content may hold 8-bit bytes.
    pub eight_bit_mime: bool,
    /// Postfix's content filter, `transport:destination` (such as
    /// `smtp:[127.0.0.1]:10025`): set by a policy FILTER action or the
    /// service's `content_filter`; when set, every recipient is delivered
    /// there in one delivery instead of to its own destination, and the
    /// filter re-injects the mail on a service without one.
    pub content_filter: Option<String>,
}

impl Envelope {
    /// An empty envelope for `sender`, arriving now.
    pub fn new(sender: ReversePath) -> Envelope {
        Envelope {
            sender,
            recipients: Vec::new(),
            client: None,
            client_name: "unknown".to_owned(),
            helo: None,
            protocol: "ESMTP".to_owned(),
            arrival: SystemTime::now(),
            hold: false,
            ret: None,
            envid: None,
            smtputf8: false,
            eight_bit_mime: false,
            content_filter: None,
        }
    }
}
