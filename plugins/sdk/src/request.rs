//! [`Request::empty`]: a request with nothing known yet, the start of
//! every plugin's unit tests (the WIT record has many fields, and a test
//! should name only those it is about); [`Attribute::from_name`], the
//! fields by their WIT names.

use crate::{Attribute, Request, Stage};

impl Attribute {
    /// The attribute of the WIT name `name` (`client-address`, `trusted`,
    /// ...; `_` for `-` too), for a plugin that takes the attributes its
    /// verdicts depend on as an argument.
    pub fn from_name(name: &str) -> Option<Attribute> {
        Some(match name.trim().replace('_', "-").as_str() {
            "protocol-name" => Attribute::ProtocolName,
            "client-address" => Attribute::ClientAddress,
            "client-port" => Attribute::ClientPort,
            "client-name" => Attribute::ClientName,
            "reverse-client-name" => Attribute::ReverseClientName,
            "helo-name" => Attribute::HeloName,
            "sender" => Attribute::Sender,
            "recipient" => Attribute::Recipient,
            "recipient-count" => Attribute::RecipientCount,
            "size" => Attribute::Size,
            "sasl-method" => Attribute::SaslMethod,
            "sasl-username" => Attribute::SaslUsername,
            "encryption-protocol" => Attribute::EncryptionProtocol,
            "encryption-cipher" => Attribute::EncryptionCipher,
            "server-address" => Attribute::ServerAddress,
            "server-port" => Attribute::ServerPort,
            "tls-sni" => Attribute::TlsSni,
            "trusted" => Attribute::Trusted,
            "recipient-class" => Attribute::RecipientClass,
            "pop-before-smtp" => Attribute::PopBeforeSmtp,
            "illegal-pipelining" => Attribute::IllegalPipelining,
            "sender-class" => Attribute::SenderClass,
            "sender-known" => Attribute::SenderKnown,
            "recipient-known" => Attribute::RecipientKnown,
            _ => return None,
        })
    }

    /// The attributes of a comma-separated list of names (`"sender,
    /// client-address"`); the first unknown name is the error.
    pub fn list(names: &str) -> Result<Vec<Attribute>, String> {
        names
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(|n| Attribute::from_name(n).ok_or_else(|| format!("unknown attribute {n:?}")))
            .collect()
    }
}

impl Request {
    /// A request for `stage` with every attribute "not known": empty
    /// strings, zeros, no classes, and the host's defaults for the facts
    /// (`unknown` client names, sender and recipient "known", no illegal
    /// pipelining). Tests set what they are about:
    /// `Request { sender: "a@b".into(), ..Request::empty(Stage::Sender) }`.
    pub fn empty(stage: Stage) -> Request {
        Request {
            stage,
            protocol_name: "ESMTP".to_owned(),
            instance: String::new(),
            queue_id: String::new(),
            client_address: String::new(),
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
            server_address: String::new(),
            server_port: 0,
            tls_sni: String::new(),
            trusted: false,
            recipient_class: None,
            pop_before_smtp: false,
            illegal_pipelining: false,
            sender_class: None,
            sender_known: true,
            recipient_known: true,
        }
    }
}
