//! The recipient side of the config as the SMTP server asks for it:
//! which domains are ours (Postfix's address classes) and which users exist
//! (`smtpd_reject_unlisted_recipient`).
//!
//! The users file's part of both answers is asked of the local delivery
//! agent each time, and the domain classes are swapped with the agent's
//! local domains and the router's, so that a `postern reload` that adds
//! or removes users, virtual domains or `mydestination` domains changes
//! what RCPT accepts at once, exactly as it changes what delivery
//! delivers.

use std::collections::BTreeSet;
use std::sync::Arc;

use arc_swap::ArcSwap;
use postern_delivery::LocalDelivery;
use postern_mail::{Address, Directory, Domain, DomainClass};

use crate::config::Main;

/// Domain classes from `mydestination`, `virtual_mailbox_domains` (plus the
/// domains of the users-file entries in force) and `relay_domains`;
/// recipients from the local delivery agent's own resolution, so that what
/// the SMTP server accepts is exactly what delivery can deliver. The
/// classes are swapped whole by a reload ([`ConfigDirectory::replace`],
/// with the local agent's and the router's domains: `crate::remote::Routes`);
/// each RCPT reads one version.
#[derive(Debug)]
pub struct ConfigDirectory {
    classes: ArcSwap<Classes>,
    delivery: Arc<LocalDelivery>,
}

/// The domain classes of one config.
#[derive(Debug)]
struct Classes {
    local: BTreeSet<Domain>,
    virtual_domains: BTreeSet<Domain>,
    relay: Vec<Domain>,
}

impl Classes {
    fn new(main: &Main) -> Classes {
        let local: BTreeSet<Domain> = main.mydestination.iter().cloned().collect();
        let virtual_domains = main
            .virtual_mailbox_domains
            .iter()
            .filter(|d| !local.contains(*d))
            .cloned()
            .collect();
        Classes {
            local,
            virtual_domains,
            relay: main.relay_domains.clone(),
        }
    }
}

impl ConfigDirectory {
    /// Builds the classes from the config; the users file is `delivery`'s.
    pub fn new(main: &Main, delivery: Arc<LocalDelivery>) -> ConfigDirectory {
        ConfigDirectory {
            classes: ArcSwap::from_pointee(Classes::new(main)),
            delivery,
        }
    }

    /// Puts the classes of a re-read config in force, for the RCPTs from
    /// now on (`postern reload`).
    pub fn replace(&self, main: &Main) {
        self.classes.store(Arc::new(Classes::new(main)));
    }
}

impl Directory for ConfigDirectory {
    fn domain_class(&self, domain: &Domain) -> DomainClass {
        let classes = self.classes.load();
        if classes.local.contains(domain) {
            DomainClass::Local
        } else if classes.virtual_domains.contains(domain) || self.delivery.has_users_at(domain) {
            DomainClass::Virtual
        } else if classes.relay.iter().any(|r| domain.is_within(r)) {
            // parent_domain_matches_subdomains includes relay_domains in Postfix.
            DomainClass::Relay
        } else {
            DomainClass::Other
        }
    }

    fn recipient_exists(&self, recipient: &Address) -> bool {
        match self.domain_class(recipient.domain()) {
            DomainClass::Local | DomainClass::Virtual => self.delivery.exists(recipient),
            _ => true,
        }
    }
}
