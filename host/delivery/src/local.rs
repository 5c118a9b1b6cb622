//! The local delivery agent: one recipient into one Maildir.

use postern_mail::{
    BoxFuture, Deliver, DeliveryStatus, EnhancedCode, Envelope, QueueId, Recipient,
};
use postern_mailbox::Maildir;

use crate::settings::LocalSettings;

/// Delivers to users of the users file, into their Maildirs (Postfix's
/// local(8) and virtual(8) with `home_mailbox = Maildir/`). Logs as
/// `postern/local`.
#[derive(Debug, Clone)]
pub struct LocalDelivery {
    settings: LocalSettings,
}

impl LocalDelivery {
    /// An agent with `settings`.
    pub fn new(settings: LocalSettings) -> LocalDelivery {
        LocalDelivery { settings }
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

    /// Resolves the recipient, prepends `Return-Path:` and `Delivered-To:`,
    /// and delivers into the Maildir (created on first use) on a blocking
    /// thread. Unknown user: bounced 5.1.1. Any I/O error: deferred 4.3.0
    /// with the error, so the queue tries again.
    fn deliver<'a>(
        &'a self,
        _id: &'a QueueId,
        envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, DeliveryStatus> {
        Box::pin(async move {
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
            let Some(path) = self.resolve(&recipient.address) else {
                let domain = recipient.address.domain();
                let ours = self.is_local(domain)
                    || self
                        .settings
                        .users
                        .iter()
                        .any(|u| u.domain.as_ref() == Some(domain));
                if !ours {
                    // A trusted client relayed to another domain. Remote
                    // delivery (MX, relayhost) is not built yet: keep the
                    // message in the queue rather than bounce it as unknown.
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
                    detail: format!(
                        "unknown user: \"{}\"",
                        recipient.address.local().to_lowercase()
                    ),
                };
            };
            // Addresses hold no CR or LF (Address::parse refuses control
            // characters), so these lines cannot be split or extended.
            let trace = format!(
                "Return-Path: <{}>\r\nDelivered-To: {}\r\n",
                envelope.sender, recipient.address
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
        })
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
