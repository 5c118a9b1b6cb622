//! The local delivery agent: one recipient, through its aliases and
//! `.forward`, into its mailboxes (`store`), files and commands.

use std::sync::Arc;

use arc_swap::ArcSwap;
use postern_mail::{
    Address, BoxFuture, Deliver, DeliveryStatus, Domain, EnhancedCode, Envelope, QueueId, Recipient,
};

use crate::aliases::AliasMap;
use crate::expand::Destination;
use crate::pipe;
use crate::resolve::Users;
use crate::settings::LocalSettings;

mod mailbox;

/// Delivers to users of the users file, into their Maildirs or mbox files
/// or through `mailbox_command` (Postfix's local(8) and virtual(8)). Logs
/// as `postern/local`.
#[derive(Debug)]
pub struct LocalDelivery {
    /// The settings in force: swapped by [`LocalDelivery::reload_settings`]
    /// (its users, aliases and local domains are only those of the start;
    /// the ones in force are swapped below).
    settings: ArcSwap<LocalSettings>,
    /// `alias_maps` in force: `settings.aliases` at first, swapped by
    /// [`LocalDelivery::replace_aliases`] on reload. A delivery expands
    /// against one snapshot.
    aliases: ArcSwap<AliasMap>,
    /// The users file in force: `settings.users` at first, swapped by
    /// [`LocalDelivery::replace_users`] on reload. Each lookup reads one
    /// version; the SMTP server's recipient checks ask through
    /// [`LocalDelivery::exists`], so they follow the same swap.
    pub(crate) users: ArcSwap<Users>,
    /// The local domains (`mydestination`) in force: `settings.local_domains`
    /// at first, swapped by [`LocalDelivery::replace_local_domains`] on
    /// reload, together with the SMTP server's address classes.
    pub(crate) local_domains: ArcSwap<Vec<Domain>>,
    /// Where mail that an alias or `.forward` sends to another domain is
    /// queued again as a new message (Postfix's local(8) forwards through
    /// cleanup the same way); set once the queue exists.
    pub(crate) forwarder: std::sync::OnceLock<crate::forward::Forwarder>,
}

impl LocalDelivery {
    /// An agent with `settings`.
    pub fn new(settings: LocalSettings) -> LocalDelivery {
        LocalDelivery {
            aliases: ArcSwap::new(Arc::clone(&settings.aliases)),
            users: ArcSwap::from_pointee(Users::new(Arc::clone(&settings.users))),
            local_domains: ArcSwap::from_pointee(settings.local_domains.clone()),
            settings: ArcSwap::from_pointee(settings),
            forwarder: std::sync::OnceLock::new(),
        }
    }

    /// The aliases in force.
    pub fn aliases(&self) -> Arc<AliasMap> {
        self.aliases.load_full()
    }

    /// Swaps in re-read aliases (`postern reload`); deliveries under way
    /// finish with the ones they started with.
    pub fn replace_aliases(&self, aliases: Arc<AliasMap>) {
        self.aliases.store(aliases);
    }

    /// The users file in force.
    pub fn users(&self) -> Arc<postern_auth::UserDb> {
        Arc::clone(&self.users.load().db)
    }

    /// Swaps in a re-read users file (`postern reload`): new users get
    /// mail from the next lookup on, removed ones are unknown (5.1.1).
    /// A delivery under way finishes with the user it looked up.
    pub fn replace_users(&self, users: Arc<postern_auth::UserDb>) {
        self.users.store(Arc::new(Users::new(users)));
    }

    /// The local domains in force.
    pub fn local_domains(&self) -> Arc<Vec<Domain>> {
        self.local_domains.load_full()
    }

    /// Swaps in re-read local domains (`postern reload` of a changed
    /// `mydestination`): from the next lookup on, `user@new.domain` is
    /// the local user, and a domain dropped is no longer local. A
    /// delivery under way finishes with the owner it looked up.
    pub fn replace_local_domains(&self, domains: Vec<Domain>) {
        self.local_domains.store(Arc::new(domains));
    }

    /// The settings in force (`users`, `aliases` and `local_domains` as
    /// at start: the ones in force are [`LocalDelivery::users`],
    /// [`LocalDelivery::aliases`] and [`LocalDelivery::local_domains`]).
    pub fn settings(&self) -> Arc<LocalSettings> {
        self.settings.load_full()
    }

    /// Puts the settings of a reloaded config in force from the next
    /// delivery on, as `postfix reload` does for local(8):
    /// `recipient_delimiter`, `forward_path`, `mailbox_command`,
    /// `allow_mail_to_files`, `allow_mail_to_commands` and
    /// `command_time_limit`. A delivery under way finishes with the
    /// settings it started with. Where mailboxes are
    /// (`virtual_mailbox_base`, `home_mailbox`, `mail_spool_directory`),
    /// `myhostname`, `default_privs` and the system accounts stay as at
    /// start: the mail sessions, the privileged helper and the logins
    /// were made with them, and they take a restart. Users, aliases and
    /// local domains have their own `replace_*`.
    pub fn reload_settings(&self, settings: &LocalSettings) {
        self.settings.rcu(|now| LocalSettings {
            recipient_delimiter: settings.recipient_delimiter,
            forward_path: settings.forward_path.clone(),
            mailbox_command: settings.mailbox_command.clone(),
            allow_mail_to_files: settings.allow_mail_to_files,
            allow_mail_to_commands: settings.allow_mail_to_commands,
            command_time_limit: settings.command_time_limit,
            ..LocalSettings::clone(now)
        });
    }
}

impl Deliver for LocalDelivery {
    fn agent(&self) -> &'static str {
        "local"
    }

    /// Expands aliases of a local-domain recipient, then delivers to each
    /// destination: a Maildir (with `Return-Path:` and `Delivered-To:`
    /// prepended, created on first use), a file or a command (see
    /// `pipe`). Unknown user: bounced 5.1.1. A message that already holds
    /// `Delivered-To:` for a mailbox, or an alias loop: bounced 5.4.6. Any
    /// I/O error: deferred 4.3.0 with the error, so the queue tries again.
    /// Several destinations answer as one: deferred if any deferred, else
    /// bounced if any bounced (the reason of the first), else sent.
    fn deliver<'a>(
        &'a self,
        _id: &'a QueueId,
        envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, DeliveryStatus> {
        Box::pin(async move {
            if let Some(looped) = delivered_to(content, &recipient.address) {
                return looped;
            }
            let destinations = match self.expand(&recipient.address) {
                Ok(d) => d,
                Err(e) => {
                    return DeliveryStatus::Bounced {
                        dsn: EnhancedCode::new(5, 4, 6),
                        detail: e.to_string(),
                    };
                }
            };
            let mut statuses = Vec::with_capacity(destinations.len());
            for destination in destinations {
                statuses.push(
                    self.deliver_one(destination, envelope, recipient, content)
                        .await,
                );
            }
            combine(statuses)
        })
    }
}

impl LocalDelivery {
    /// One destination of an expanded recipient.
    async fn deliver_one(
        &self,
        destination: Destination,
        envelope: &Envelope,
        recipient: &Recipient,
        content: &[u8],
    ) -> DeliveryStatus {
        match destination {
            Destination::Mailbox(address) => {
                if address != recipient.address
                    && let Some(looped) = delivered_to(content, &address)
                {
                    return looped;
                }
                self.deliver_mailbox(envelope, &address, recipient, content)
                    .await
            }
            other => {
                self.deliver_external(other, envelope, recipient, content)
                    .await
            }
        }
    }

    /// A destination that is not a mailbox: a file, a command, or a
    /// refusal.
    async fn deliver_external(
        &self,
        destination: Destination,
        envelope: &Envelope,
        recipient: &Recipient,
        content: &[u8],
    ) -> DeliveryStatus {
        let (settings, envelope, recipient) =
            (self.settings().clone(), envelope.clone(), recipient.clone());
        let content = content.to_vec();
        match destination {
            Destination::File { path, origin } => {
                blocking(move || {
                    pipe::deliver_file(&path, &origin, &settings, &envelope, &recipient, &content)
                })
                .await
            }
            Destination::Command { command, origin } => {
                blocking(move || {
                    pipe::deliver_command(
                        &command, &origin, &settings, &envelope, &recipient, &content, None,
                    )
                })
                .await
            }
            Destination::Refused { reason } => DeliveryStatus::Bounced {
                dsn: EnhancedCode::new(5, 7, 1),
                detail: reason,
            },
            Destination::Deferred { reason } => DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 3, 0),
                detail: reason,
            },
            Destination::Mailbox(address) => DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 3, 0),
                detail: format!("internal error: mailbox {address} handed to the wrong step"),
            },
        }
    }
}

/// Runs a blocking delivery off the async threads.
pub(crate) async fn blocking<F>(f: F) -> DeliveryStatus
where
    F: FnOnce() -> DeliveryStatus + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| DeliveryStatus::Deferred {
            dsn: EnhancedCode::new(4, 3, 0),
            detail: format!("delivery task failed: {e}"),
        })
}

/// Postfix's `hopcount_limit` (50): a message with this many
/// `Delivered-To:` lines has been forwarded round in circles, whatever
/// the addresses were.
const HOPCOUNT_LIMIT: usize = 50;

/// Bounced 5.4.6 when the header of `content` already has
/// `Delivered-To: address` (Postfix's local(8) loop detection): this
/// message went round and came back. Also when it has
/// [`HOPCOUNT_LIMIT`] of them.
pub(crate) fn delivered_to(content: &[u8], address: &Address) -> Option<DeliveryStatus> {
    let wanted = address.to_string();
    let mut hops = 0;
    for line in content.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        if !name.eq_ignore_ascii_case("Delivered-To") {
            continue;
        }
        hops += 1;
        if value.trim().eq_ignore_ascii_case(&wanted) || hops >= HOPCOUNT_LIMIT {
            return Some(DeliveryStatus::Bounced {
                dsn: EnhancedCode::new(5, 4, 6),
                detail: format!("mail forwarding loop for {wanted}"),
            });
        }
    }
    None
}

/// One answer for several destinations.
fn combine(statuses: Vec<DeliveryStatus>) -> DeliveryStatus {
    if let Some(d) = statuses.iter().find(|s| s.word() == "deferred") {
        return d.clone();
    }
    if let Some(b) = statuses.iter().find(|s| s.word() == "bounced") {
        return b.clone();
    }
    match statuses.len() {
        1 => statuses.into_iter().next().unwrap_or_else(nothing),
        0 => nothing(),
        n => DeliveryStatus::Sent {
            dsn: EnhancedCode::new(2, 0, 0),
            detail: format!("delivered via alias to {n} destinations"),
        },
    }
}

/// An alias that expands to nothing.
fn nothing() -> DeliveryStatus {
    DeliveryStatus::Bounced {
        dsn: EnhancedCode::new(5, 1, 1),
        detail: "alias expands to no recipient".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
