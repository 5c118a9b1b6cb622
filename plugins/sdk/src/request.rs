//! [`Request::empty`]: a request with nothing known yet, the start of
//! every plugin's unit tests (the WIT record has many fields, and a test
//! should name only those it is about).

use crate::{Request, Stage};

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
