//! Where the SMTP server asks "is this domain ours, and does this user
//! exist?" (Postfix's address class lookup and `smtpd_reject_unlisted_recipient`).

use crate::address::{Address, Domain};
use crate::policy::DomainClass;

/// The recipient side of the configuration, as the SMTP server sees it.
/// The server crate implements it over `mydestination`, `relay_domains`,
/// the virtual mailbox domains and the users file.
pub trait Directory: Send + Sync {
    /// The class of `domain`: local (`mydestination`), virtual, relay or other.
    fn domain_class(&self, domain: &Domain) -> DomainClass;

    /// For a local or virtual domain: whether `recipient` has a mailbox
    /// here. `postmaster` at a local domain always exists (RFC 5321 §4.5.1).
    /// Answers `true` for relay and other domains, which are not ours to
    /// verify.
    fn recipient_exists(&self, recipient: &Address) -> bool;
}
