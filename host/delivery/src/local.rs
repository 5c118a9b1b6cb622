//! The local delivery agent: one recipient into one Maildir.

use std::sync::Arc;

use arc_swap::ArcSwap;
use postern_mail::{
    Address, BoxFuture, Deliver, DeliveryStatus, EnhancedCode, Envelope, QueueId, Recipient,
};
use postern_mailbox::Maildir;

use crate::aliases::AliasMap;
use crate::expand::Destination;
use crate::pipe;
use crate::settings::LocalSettings;

/// Delivers to users of the users file, into their Maildirs (Postfix's
/// local(8) and virtual(8) with `home_mailbox = Maildir/`). Logs as
/// `postern/local`.
#[derive(Debug)]
pub struct LocalDelivery {
    settings: LocalSettings,
    /// `alias_maps` in force: `settings.aliases` at first, swapped by
    /// [`LocalDelivery::replace_aliases`] on reload. A delivery expands
    /// against one snapshot.
    aliases: ArcSwap<AliasMap>,
}

impl LocalDelivery {
    /// An agent with `settings`.
    pub fn new(settings: LocalSettings) -> LocalDelivery {
        LocalDelivery {
            aliases: ArcSwap::new(Arc::clone(&settings.aliases)),
            settings,
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

    /// The settings it runs with.
    pub fn settings(&self) -> &LocalSettings {
        &self.settings
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
        let (settings, envelope, recipient) =
            (self.settings().clone(), envelope.clone(), recipient.clone());
        match destination {
            Destination::Mailbox(address) => {
                if address != recipient.address
                    && let Some(looped) = delivered_to(content, &address)
                {
                    return looped;
                }
                self.deliver_mailbox(&envelope, &address, content).await
            }
            Destination::Refused { reason } => DeliveryStatus::Bounced {
                dsn: EnhancedCode::new(5, 7, 1),
                detail: reason,
            },
            Destination::File { path, origin } => {
                let content = content.to_vec();
                blocking(move || {
                    pipe::deliver_file(&path, &origin, &settings, &envelope, &recipient, &content)
                })
                .await
            }
            Destination::Command { command, origin } => {
                let content = content.to_vec();
                blocking(move || {
                    pipe::deliver_command(
                        &command, &origin, &settings, &envelope, &recipient, &content,
                    )
                })
                .await
            }
        }
    }

    /// Delivers to the Maildir of `address`, or answers why not.
    async fn deliver_mailbox(
        &self,
        envelope: &Envelope,
        address: &Address,
        content: &[u8],
    ) -> DeliveryStatus {
        let home_mailbox = &self.settings.home_mailbox;
        if !home_mailbox.ends_with('/') {
            return DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 3, 0),
                detail: format!(
                    "mbox delivery is not supported yet (home_mailbox = {home_mailbox:?}); \
                     use a Maildir ending in \"/\""
                ),
            };
        }
        let Some(path) = self.resolve(address) else {
            let domain = address.domain();
            let ours = self.is_local(domain)
                || self
                    .settings
                    .users
                    .iter()
                    .any(|u| u.domain.as_ref() == Some(domain));
            if !ours {
                // A trusted client relayed to another domain, or an alias
                // forwards there. Remote delivery (MX, relayhost) is not
                // built yet: keep the message in the queue rather than
                // bounce it as unknown.
                return DeliveryStatus::Deferred {
                    dsn: EnhancedCode::new(4, 4, 0),
                    detail: format!(
                        "remote delivery to {domain} is not available in this version; \
                         the message stays queued"
                    ),
                };
            }
            return DeliveryStatus::Bounced {
                dsn: EnhancedCode::new(5, 1, 1),
                detail: format!("unknown user: \"{}\"", address.local().to_lowercase()),
            };
        };
        // Addresses hold no CR or LF (Address::parse refuses control
        // characters), so these lines cannot be split or extended.
        let trace = format!(
            "Return-Path: <{}>\r\nDelivered-To: {}\r\n",
            envelope.sender, address
        );
        // The blocking thread needs its own copy of the message.
        let content = content.to_vec();
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || {
            Maildir::create(&target)?.deliver_parts(&[trace.as_bytes(), &content])
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match written {
            Ok(_) => DeliveryStatus::Sent {
                dsn: EnhancedCode::new(2, 0, 0),
                detail: "delivered to maildir".to_owned(),
            },
            Err(e) => DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 3, 0),
                detail: format!("maildir delivery failed: {}: {e}", path.display()),
            },
        }
    }
}

/// Runs a blocking delivery off the async threads.
async fn blocking<F>(f: F) -> DeliveryStatus
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

/// Bounced 5.4.6 when the header of `content` already has
/// `Delivered-To: address` (Postfix's local(8) loop detection): this
/// message went round and came back.
fn delivered_to(content: &[u8], address: &Address) -> Option<DeliveryStatus> {
    let wanted = address.to_string();
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
        if name.eq_ignore_ascii_case("Delivered-To") && value.trim().eq_ignore_ascii_case(&wanted) {
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
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use postern_auth::UserDb;
    use postern_mail::{Address, Domain, ReversePath};

    use super::*;

    fn agent(base: &Path, users: &str) -> LocalDelivery {
        let users = Arc::new(UserDb::parse(users, "users").unwrap());
        let mut s = LocalSettings::new(base, Domain::parse("mx.example.com").unwrap(), users);
        s.recipient_delimiter = Some('+');
        LocalDelivery::new(s)
    }

    fn envelope(sender: Option<&str>) -> Envelope {
        Envelope::new(match sender {
            Some(s) => ReversePath::Address(Address::parse(s).unwrap()),
            None => ReversePath::Null,
        })
    }

    async fn deliver(
        agent: &LocalDelivery,
        env: &Envelope,
        rcpt: &str,
        body: &[u8],
    ) -> DeliveryStatus {
        let id = QueueId::parse("ABCDEF123456").unwrap();
        let rcpt = Recipient::new(Address::parse(rcpt).unwrap());
        agent.deliver(&id, env, &rcpt, body).await
    }

    /// The messages in `maildir/new`.
    fn new_messages(maildir: &Path) -> Vec<Vec<u8>> {
        fs::read_dir(maildir.join("new"))
            .unwrap()
            .map(|e| fs::read(e.unwrap().path()).unwrap())
            .collect()
    }

    fn body() -> Vec<u8> {
        let mut b = b"Subject: hi\r\n\r\n.\r\nline\r\n".to_vec();
        b.extend(0u8..=255);
        b
    }

    #[tokio::test]
    async fn lands_in_new_with_trace_headers() {
        let base = tempfile::tempdir().unwrap();
        let a = agent(base.path(), "alice@example.org:{PLAIN}x\n");
        let status = deliver(
            &a,
            &envelope(Some("bob@example.net")),
            "alice@example.org",
            &body(),
        )
        .await;
        assert_eq!(
            status,
            DeliveryStatus::Sent {
                dsn: EnhancedCode::new(2, 0, 0),
                detail: "delivered to maildir".to_owned()
            }
        );
        let maildir = base.path().join("example.org/alice/Maildir");
        let mut expected =
            b"Return-Path: <bob@example.net>\r\nDelivered-To: alice@example.org\r\n".to_vec();
        expected.extend(body());
        assert_eq!(new_messages(&maildir), [expected]);
        assert!(maildir.join("cur").is_dir() && maildir.join("tmp").is_dir());
    }

    #[tokio::test]
    async fn null_sender_and_delimiter() {
        let base = tempfile::tempdir().unwrap();
        let a = agent(base.path(), "alice@example.org:{PLAIN}x\n");
        let status = deliver(&a, &envelope(None), "alice+tag@example.org", b"x").await;
        assert_eq!(status.word(), "sent");
        let got = new_messages(&base.path().join("example.org/alice/Maildir"));
        assert_eq!(
            got,
            [b"Return-Path: <>\r\nDelivered-To: alice+tag@example.org\r\nx".to_vec()]
        );
    }

    #[tokio::test]
    async fn postmaster_has_a_mailbox() {
        let base = tempfile::tempdir().unwrap();
        let a = agent(base.path(), "");
        let status = deliver(&a, &envelope(None), "postmaster@mx.example.com", b"x").await;
        assert_eq!(status.word(), "sent");
        let maildir = base.path().join("mx.example.com/postmaster/Maildir");
        assert_eq!(new_messages(&maildir).len(), 1);
    }

    #[tokio::test]
    async fn unknown_user_bounces() {
        let base = tempfile::tempdir().unwrap();
        let a = agent(base.path(), "alice@example.org:{PLAIN}x\n");
        let status = deliver(&a, &envelope(None), "Nobody@example.org", b"x").await;
        assert_eq!(
            status,
            DeliveryStatus::Bounced {
                dsn: EnhancedCode::new(5, 1, 1),
                detail: "unknown user: \"nobody\"".to_owned()
            }
        );
        assert!(!a.exists(&Address::parse("nobody@example.org").unwrap()));
        assert!(a.exists(&Address::parse("ALICE@example.org").unwrap()));
    }

    #[tokio::test]
    async fn other_domains_stay_queued_until_remote_delivery_exists() {
        let base = tempfile::tempdir().unwrap();
        let a = agent(base.path(), "alice@example.org:{PLAIN}x\n");
        let status = deliver(&a, &envelope(None), "friend@elsewhere.example", b"x").await;
        assert_eq!(status.word(), "deferred");
        assert_eq!(status.dsn(), EnhancedCode::new(4, 4, 0));
    }

    #[tokio::test]
    async fn io_error_defers() {
        let base = tempfile::tempdir().unwrap();
        // The user's home is a file: no Maildir can be made under it.
        let home = base.path().join("home");
        fs::write(&home, b"").unwrap();
        let users = format!("alice@example.org:{{PLAIN}}x::::{}\n", home.display());
        let a = agent(base.path(), &users);
        let status = deliver(&a, &envelope(None), "alice@example.org", b"x").await;
        assert_eq!(status.word(), "deferred");
        assert_eq!(status.dsn(), EnhancedCode::new(4, 3, 0));
        assert!(status.detail().contains(&home.display().to_string()));
    }

    #[tokio::test]
    async fn mbox_is_not_supported_yet() {
        let base = tempfile::tempdir().unwrap();
        let mut a = agent(base.path(), "alice@example.org:{PLAIN}x\n");
        a.settings.home_mailbox = "Mailbox".to_owned();
        let status = deliver(&a, &envelope(None), "alice@example.org", b"x").await;
        assert_eq!(status.dsn(), EnhancedCode::new(4, 3, 0));
        assert!(status.detail().contains("mbox"));
        let nothing: Vec<PathBuf> = fs::read_dir(base.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(nothing.is_empty());
    }
}
