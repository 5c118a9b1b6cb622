//! Verdicts kept for a plugin that says what they depend on
//! (`host.cache-verdicts`, wit/policy.wit): postfwd's request cache, for
//! plugins in-process.
//!
//! A plugin whose verdict is a function of its entry's arguments, the
//! stage and a few attributes of the request (`permit_mynetworks` of
//! `trusted`, `check_client_access` of the client's address and names)
//! declares those attributes in `init`. The load-time `init` of its entry
//! hands the declaration to the host ([`CacheSpec`]), and the entry gets a
//! [`VerdictCache`]: a request of the same stage with the same attributes
//! is answered from it, without an instance or a call, for the declared
//! time. So that the declaration is true by construction, a call made
//! for such an entry sees every other field of the request empty
//! ([`CacheSpec::mask`]): a plugin that forgot an attribute fails its
//! own tests instead of serving one client's verdict to another.
//!
//! Not kept: the verdict of a call that failed, read or wrote `kv`, read
//! the time (`host.now`, WASI's wall clock), logged at `info` or above,
//! added a header, took the message or saw a DNS lookup fail with
//! anything but NXDOMAIN (`State::cacheable`); those depend on more than
//! the request, or would lose a line the operator reads. Nor any verdict
//! of an entry with a `data_dir`, whose files are read again at every
//! call (its declaration is refused with a warning). What masking and
//! these rules cannot see is left to the plugin's promise: memory kept in
//! its instance across calls, and random numbers.
//! Bounded: at most [`crate::Limits::verdict_cache`] verdicts an entry
//! (0: none; when full, the expired ones go, and if none had, all of
//! them: a cheap bound with no order to keep); every verdict goes with
//! its snapshot at a reload.
//!
//! Not here: which attributes a standard plugin declares (each plugin's
//! `init`, with the SDK's helpers) and the access maps' reading of their
//! table's results (`tables.results`, the SDK's `access` module).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use postern_mail::Verdict;

use crate::bindings::postern::policy::types::{Attribute, DomainClass, Request};

/// The longest a verdict may be kept, whatever the plugin asks: a day.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(86_400);

/// What a plugin's `init` declared: the attributes its verdicts depend on,
/// and for how long one may be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheSpec {
    /// In the order declared, without repeats.
    pub(crate) attributes: Vec<Attribute>,
    /// At most [`MAX_TTL`]; never zero.
    pub(crate) ttl: Duration,
}

impl CacheSpec {
    /// The declaration of a `cache-verdicts(attributes, ttl_seconds)`
    /// call; `None` for a TTL of 0, which keeps nothing.
    pub(crate) fn new(attributes: Vec<Attribute>, ttl_seconds: u32) -> Option<CacheSpec> {
        if ttl_seconds == 0 {
            return None;
        }
        let mut unique: Vec<Attribute> = Vec::with_capacity(attributes.len());
        for a in attributes {
            if !unique.contains(&a) {
                unique.push(a);
            }
        }
        Some(CacheSpec {
            attributes: unique,
            ttl: Duration::from_secs(u64::from(ttl_seconds)).min(MAX_TTL),
        })
    }

    /// The key of `request`: its stage and the declared attributes, each
    /// written with its length so that no two requests share one.
    pub(crate) fn key(&self, request: &Request) -> Vec<u8> {
        let mut key = Vec::with_capacity(64);
        key.push(request.stage as u8);
        for attribute in &self.attributes {
            key.push(*attribute as u8);
            write_attribute(&mut key, request, *attribute);
        }
        key
    }

    /// `request` as the plugin sees it: the stage and the declared
    /// attributes, every other field empty, 0, false or none.
    pub(crate) fn mask(&self, request: &Request) -> Request {
        let mut masked = Request {
            stage: request.stage,
            protocol_name: String::new(),
            instance: String::new(),
            queue_id: String::new(),
            client_address: String::new(),
            client_port: 0,
            client_name: String::new(),
            reverse_client_name: String::new(),
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
            sender_known: false,
            recipient_known: false,
        };
        for attribute in &self.attributes {
            copy_attribute(&mut masked, request, *attribute);
        }
        masked
    }
}

/// One entry's kept verdicts.
pub(crate) struct VerdictCache {
    spec: CacheSpec,
    /// The most verdicts kept; 0: none.
    max: usize,
    kept: Mutex<HashMap<Vec<u8>, (Verdict, Instant)>>,
}

impl std::fmt::Debug for VerdictCache {
    /// The declaration and how many verdicts are kept, not the verdicts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.kept.lock().map_or(0, |k| k.len());
        f.debug_struct("VerdictCache")
            .field("spec", &self.spec)
            .field("max", &self.max)
            .field("kept", &kept)
            .finish()
    }
}

impl VerdictCache {
    /// An empty cache of at most `max` verdicts. With 0 (the operator
    /// turned keeping off for the plugin) nothing is kept, and the plugin
    /// still sees only what it declared: its verdicts do not depend on
    /// the setting.
    pub(crate) fn new(spec: CacheSpec, max: usize) -> VerdictCache {
        VerdictCache {
            spec,
            max,
            kept: Mutex::default(),
        }
    }

    /// What the plugin declared.
    pub(crate) fn spec(&self) -> &CacheSpec {
        &self.spec
    }

    /// The verdict kept for `key`, if it is younger than the TTL at `now`.
    pub(crate) fn get(&self, key: &[u8], now: Instant) -> Option<Verdict> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let (verdict, at) = kept.get(key)?;
        (now.saturating_duration_since(*at) < self.spec.ttl).then(|| verdict.clone())
    }

    /// Keeps `verdict` for `key`, made at `now`.
    pub(crate) fn put(&self, key: Vec<u8>, verdict: Verdict, now: Instant) {
        if self.max == 0 {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() >= self.max && !kept.contains_key(&key) {
            let ttl = self.spec.ttl;
            kept.retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
            if kept.len() >= self.max {
                kept.clear();
            }
        }
        kept.insert(key, (verdict, now));
    }

    /// How many verdicts are kept now, expired ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The WIT name of `a`, as `postern plugin test` shows it.
pub(crate) fn attribute_name(a: Attribute) -> &'static str {
    match a {
        Attribute::ProtocolName => "protocol-name",
        Attribute::ClientAddress => "client-address",
        Attribute::ClientPort => "client-port",
        Attribute::ClientName => "client-name",
        Attribute::ReverseClientName => "reverse-client-name",
        Attribute::HeloName => "helo-name",
        Attribute::Sender => "sender",
        Attribute::Recipient => "recipient",
        Attribute::RecipientCount => "recipient-count",
        Attribute::Size => "size",
        Attribute::SaslMethod => "sasl-method",
        Attribute::SaslUsername => "sasl-username",
        Attribute::EncryptionProtocol => "encryption-protocol",
        Attribute::EncryptionCipher => "encryption-cipher",
        Attribute::ServerAddress => "server-address",
        Attribute::ServerPort => "server-port",
        Attribute::TlsSni => "tls-sni",
        Attribute::Trusted => "trusted",
        Attribute::RecipientClass => "recipient-class",
        Attribute::PopBeforeSmtp => "pop-before-smtp",
        Attribute::IllegalPipelining => "illegal-pipelining",
        Attribute::SenderClass => "sender-class",
        Attribute::SenderKnown => "sender-known",
        Attribute::RecipientKnown => "recipient-known",
    }
}

/// Appends attribute `a` of `r` to `key`.
fn write_attribute(key: &mut Vec<u8>, r: &Request, a: Attribute) {
    let text = |key: &mut Vec<u8>, s: &str| {
        // A request's fields come from SMTP lines, far below 4 GiB.
        key.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
        key.extend_from_slice(s.as_bytes());
    };
    let class = |c: Option<DomainClass>| c.map_or(0, |c| c as u8 + 1);
    match a {
        Attribute::ProtocolName => text(key, &r.protocol_name),
        Attribute::ClientAddress => text(key, &r.client_address),
        Attribute::ClientPort => key.extend_from_slice(&r.client_port.to_le_bytes()),
        Attribute::ClientName => text(key, &r.client_name),
        Attribute::ReverseClientName => text(key, &r.reverse_client_name),
        Attribute::HeloName => text(key, &r.helo_name),
        Attribute::Sender => text(key, &r.sender),
        Attribute::Recipient => text(key, &r.recipient),
        Attribute::RecipientCount => key.extend_from_slice(&r.recipient_count.to_le_bytes()),
        Attribute::Size => key.extend_from_slice(&r.size.to_le_bytes()),
        Attribute::SaslMethod => text(key, &r.sasl_method),
        Attribute::SaslUsername => text(key, &r.sasl_username),
        Attribute::EncryptionProtocol => text(key, &r.encryption_protocol),
        Attribute::EncryptionCipher => text(key, &r.encryption_cipher),
        Attribute::ServerAddress => text(key, &r.server_address),
        Attribute::ServerPort => key.extend_from_slice(&r.server_port.to_le_bytes()),
        Attribute::TlsSni => text(key, &r.tls_sni),
        Attribute::Trusted => key.push(u8::from(r.trusted)),
        Attribute::RecipientClass => key.push(class(r.recipient_class)),
        Attribute::PopBeforeSmtp => key.push(u8::from(r.pop_before_smtp)),
        Attribute::IllegalPipelining => key.push(u8::from(r.illegal_pipelining)),
        Attribute::SenderClass => key.push(class(r.sender_class)),
        Attribute::SenderKnown => key.push(u8::from(r.sender_known)),
        Attribute::RecipientKnown => key.push(u8::from(r.recipient_known)),
    }
}

/// Copies attribute `a` of `from` into `to`.
fn copy_attribute(to: &mut Request, from: &Request, a: Attribute) {
    match a {
        Attribute::ProtocolName => to.protocol_name.clone_from(&from.protocol_name),
        Attribute::ClientAddress => to.client_address.clone_from(&from.client_address),
        Attribute::ClientPort => to.client_port = from.client_port,
        Attribute::ClientName => to.client_name.clone_from(&from.client_name),
        Attribute::ReverseClientName => {
            to.reverse_client_name.clone_from(&from.reverse_client_name);
        }
        Attribute::HeloName => to.helo_name.clone_from(&from.helo_name),
        Attribute::Sender => to.sender.clone_from(&from.sender),
        Attribute::Recipient => to.recipient.clone_from(&from.recipient),
        Attribute::RecipientCount => to.recipient_count = from.recipient_count,
        Attribute::Size => to.size = from.size,
        Attribute::SaslMethod => to.sasl_method.clone_from(&from.sasl_method),
        Attribute::SaslUsername => to.sasl_username.clone_from(&from.sasl_username),
        Attribute::EncryptionProtocol => {
            to.encryption_protocol.clone_from(&from.encryption_protocol);
        }
        Attribute::EncryptionCipher => to.encryption_cipher.clone_from(&from.encryption_cipher),
        Attribute::ServerAddress => to.server_address.clone_from(&from.server_address),
        Attribute::ServerPort => to.server_port = from.server_port,
        Attribute::TlsSni => to.tls_sni.clone_from(&from.tls_sni),
        Attribute::Trusted => to.trusted = from.trusted,
        Attribute::RecipientClass => to.recipient_class = from.recipient_class,
        Attribute::PopBeforeSmtp => to.pop_before_smtp = from.pop_before_smtp,
        Attribute::IllegalPipelining => to.illegal_pipelining = from.illegal_pipelining,
        Attribute::SenderClass => to.sender_class = from.sender_class,
        Attribute::SenderKnown => to.sender_known = from.sender_known,
        Attribute::RecipientKnown => to.recipient_known = from.recipient_known,
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "tests")]
#[path = "verdicts/tests.rs"]
mod tests;
