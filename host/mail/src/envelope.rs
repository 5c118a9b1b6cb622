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
}

impl Recipient {
    /// A recipient whose address is the one the client gave.
    pub fn new(address: Address) -> Recipient {
        Recipient {
            original: address.clone(),
            address,
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
        }
    }
}
