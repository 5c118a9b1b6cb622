//! The mailbox step of local delivery: from an address to its owner,
//! through the owner's `.forward` (each owner once, at most
//! [`MAX_FORWARDS`] of them) to their mailbox, files and commands, with
//! addresses at other domains sent on as one new message; or why there is
//! no mailbox. Apart from the agent in the parent module, which only
//! dispatches each destination, because it is the one part that loops.

use std::collections::VecDeque;

use postern_mail::{Address, DeliveryStatus, EnhancedCode, Envelope, Recipient};

use super::{LocalDelivery, combine, delivered_to};
use crate::expand::Destination;
use crate::resolve::Owner;
use crate::store::LockWait;

impl LocalDelivery {
    /// Delivers to the mailbox of `address` (see [`LocalDelivery::store`]),
    /// or where its owner's `.forward` says, or answers why not. Each
    /// owner is visited once: a `.forward` naming someone whose
    /// `.forward` names the first again ends there.
    pub(super) async fn deliver_mailbox(
        &self,
        envelope: &Envelope,
        address: &Address,
        recipient: &Recipient,
        content: &[u8],
    ) -> DeliveryStatus {
        let mut statuses = Vec::new();
        let mut visited: Vec<String> = Vec::new();
        let mut remote = Vec::new();
        let mut work = VecDeque::from([address.clone()]);
        while let Some(address) = work.pop_front() {
            let Some(owner) = self.owner(&address) else {
                if address != recipient.address && !self.is_ours(address.domain()) {
                    // Named by an alias or a .forward: sent on below.
                    if !remote.contains(&address) {
                        remote.push(address);
                    }
                } else {
                    statuses.push(self.nobody(&address));
                }
                continue;
            };
            let key = match &owner {
                Owner::User(user) | Owner::Account(user) => user.full_name().to_lowercase(),
                _ => "postmaster".to_owned(),
            };
            if visited.contains(&key) {
                continue;
            }
            visited.push(key);
            if visited.len() > MAX_FORWARDS {
                return DeliveryStatus::Bounced {
                    dsn: EnhancedCode::new(5, 4, 6),
                    detail: format!("mail forwarding loop for {address}: too many .forward hops"),
                };
            }
            let forward = match &owner {
                Owner::User(user) | Owner::Account(user) => {
                    self.forward_file(user, &address).map(|f| (user, f))
                }
                _ => None,
            };
            let Some((user, file)) = forward else {
                statuses.push(
                    self.store(
                        envelope,
                        &address,
                        &owner,
                        recipient,
                        content,
                        LockWait::Queue,
                    )
                    .await,
                );
                continue;
            };
            let destinations = match self.expand_forward(&file, &address, user.uid) {
                Ok(d) => d,
                Err(e) => {
                    statuses.push(DeliveryStatus::Bounced {
                        dsn: EnhancedCode::new(5, 4, 6),
                        detail: format!("{}: {e}", file.display()),
                    });
                    continue;
                }
            };
            let name = user.name.to_lowercase();
            let mut own = destinations.is_empty();
            for destination in destinations {
                match destination {
                    Destination::Mailbox(a)
                        if a.local_base(self.settings().recipient_delimiter)
                            .eq_ignore_ascii_case(&name)
                            && (self.is_local(a.domain()) || a.domain() == address.domain()) =>
                    {
                        own = true;
                    }
                    Destination::Mailbox(a) => {
                        if let Some(looped) = delivered_to(content, &a) {
                            statuses.push(looped);
                        } else {
                            work.push_back(a);
                        }
                    }
                    other => statuses.push(
                        self.deliver_external(other, envelope, recipient, content)
                            .await,
                    ),
                }
            }
            if own {
                statuses.push(
                    self.store(
                        envelope,
                        &address,
                        &owner,
                        recipient,
                        content,
                        LockWait::Queue,
                    )
                    .await,
                );
            }
        }
        if !remote.is_empty() {
            statuses.push(
                self.forward_remote(envelope, recipient, remote, content)
                    .await,
            );
        }
        if statuses.is_empty() && visited.len() > 1 {
            // `.forward` files that name each other and no mailbox.
            return DeliveryStatus::Bounced {
                dsn: EnhancedCode::new(5, 4, 6),
                detail: format!("mail forwarding loop for {address}"),
            };
        }
        combine(statuses)
    }

    /// Whether mailboxes at `domain` are ours: a local domain, or one of
    /// the users file.
    fn is_ours(&self, domain: &postern_mail::Domain) -> bool {
        self.is_local(domain) || self.has_users_at(domain)
    }

    /// Why there is no mailbox for `address`.
    fn nobody(&self, address: &Address) -> DeliveryStatus {
        let domain = address.domain();
        if !self.is_ours(domain) {
            // Routed here for a domain without mailboxes here (a
            // transport_maps `local:` entry, say): keep the message
            // queued for the operator rather than bounce it as unknown.
            return DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 4, 0),
                detail: format!(
                    "{domain} has no mailboxes here and is not delivered locally; \
                     the message stays queued"
                ),
            };
        }
        DeliveryStatus::Bounced {
            dsn: EnhancedCode::new(5, 1, 1),
            detail: format!("unknown user: \"{}\"", address.local().to_lowercase()),
        }
    }
}

/// How many owners one recipient's `.forward` files may lead through.
const MAX_FORWARDS: usize = 20;
