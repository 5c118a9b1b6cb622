//! Delivery straight into a mailbox, without `alias_maps` or `.forward`:
//! what the LMTP server (`postern-lmtp`) asks for each recipient, as
//! Dovecot's LMTP writes into its mail storage once the sending MTA has
//! expanded aliases itself; and what the queue asks before it writes a
//! queue file when `immediate_local_delivery` is on
//! ([`LocalDelivery::deliver_at_once`]), for the recipients whose whole
//! local delivery is that one store.

use postern_mail::{DeliveryStatus, EnhancedCode, Envelope, Recipient};

use crate::local::{LocalDelivery, delivered_to};
use crate::resolve::Owner;
use crate::store::LockWait;

impl LocalDelivery {
    /// Stores `content` in the mailbox of `recipient.address` as
    /// [`postern_mail::Deliver::deliver`] would once aliases are expanded:
    /// Maildir, mbox or `mailbox_command`, with `Return-Path:` and
    /// `Delivered-To:` (the address with its extension) prepended, on disk
    /// before `Sent`. An address without a mailbox here (a user removed
    /// since RCPT) is bounced 5.1.1; a message that already went through
    /// this mailbox (`Delivered-To:`) 5.4.6; an I/O error is deferred.
    pub async fn deliver_to_mailbox(
        &self,
        envelope: &Envelope,
        recipient: &Recipient,
        content: &[u8],
    ) -> DeliveryStatus {
        let address = &recipient.address;
        if let Some(looped) = delivered_to(content, address) {
            return looped;
        }
        let Some(owner) = self.owner(address) else {
            return DeliveryStatus::Bounced {
                dsn: EnhancedCode::new(5, 1, 1),
                detail: format!("unknown user: \"{}\"", address.local().to_lowercase()),
            };
        };
        self.store(
            envelope,
            address,
            &owner,
            recipient,
            content,
            LockWait::Queue,
        )
        .await
    }

    /// Stores `content` in the mailbox of `recipient` now, when that is
    /// all its local delivery would do: the same store as
    /// [`postern_mail::Deliver::deliver`], on disk before `Sent`.
    /// `None`, without touching anything, when the delivery would be more
    /// or other than that, and the queue takes the recipient as usual:
    /// an alias names it, its owner has a `.forward`, `mailbox_command` is
    /// set (a command may run for minutes), it has no mailbox here (the
    /// queue bounces it with the usual notice), or it is a forwarding
    /// loop (the same). The client waits for its reply meanwhile, so an
    /// mbox's locks are waited for a second at most (`LockWait::AtOnce`):
    /// a mailbox locked longer fails this store, and the queue, which
    /// waits Postfix's 20 s, takes the recipient.
    pub async fn deliver_at_once(
        &self,
        envelope: &Envelope,
        recipient: &Recipient,
        content: &[u8],
    ) -> Option<DeliveryStatus> {
        let address = &recipient.address;
        if self.settings().mailbox_command.is_some()
            || self.alias_of(&self.aliases(), address).is_some()
            || delivered_to(content, address).is_some()
        {
            return None;
        }
        let owner = self.owner(address)?;
        if let Owner::User(user) | Owner::Account(user) = &owner
            && self.forward_file(user, address).is_some()
        {
            return None;
        }
        Some(
            self.store(
                envelope,
                address,
                &owner,
                recipient,
                content,
                LockWait::AtOnce,
            )
            .await,
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use postern_auth::UserDb;
    use postern_mail::{Address, Domain, ReversePath};

    use super::*;
    use crate::settings::LocalSettings;

    async fn deliver(agent: &LocalDelivery, rcpt: &str, content: &[u8]) -> DeliveryStatus {
        let envelope = Envelope::new(ReversePath::Address(
            Address::parse("bob@sender.example").unwrap(),
        ));
        let recipient = Recipient::new(Address::parse(rcpt).unwrap());
        agent
            .deliver_to_mailbox(&envelope, &recipient, content)
            .await
    }

    #[tokio::test]
    async fn into_the_mailbox_with_the_extension_and_no_alias() {
        let base = tempfile::tempdir().unwrap();
        let users = Arc::new(UserDb::parse("alice@example.org:{PLAIN}x\n", "users").unwrap());
        let mut s =
            LocalSettings::new(base.path(), Domain::parse("mx.example.com").unwrap(), users);
        s.recipient_delimiter = Some('+');
        let agent = LocalDelivery::new(s);
        let status = deliver(
            &agent,
            "alice+lists@example.org",
            b"Subject: x\r\n\r\nhi\r\n",
        )
        .await;
        assert_eq!(status.word(), "sent", "{status:?}");
        let new = base.path().join("example.org/alice/Maildir/new");
        let files: Vec<_> = std::fs::read_dir(&new).unwrap().collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert_eq!(
            text,
            "Return-Path: <bob@sender.example>\r\nDelivered-To: alice+lists@example.org\r\n\
             Subject: x\r\n\r\nhi\r\n"
        );
        // The copy it made is a loop the second time round.
        let status = deliver(&agent, "alice+lists@example.org", text.as_bytes()).await;
        assert_eq!(status.dsn(), EnhancedCode::new(5, 4, 6));
        let status = deliver(&agent, "nobody@example.org", b"\r\n").await;
        assert_eq!(status.dsn(), EnhancedCode::new(5, 1, 1));
    }

    /// `deliver_at_once` of `rcpt`: its answer, and whether a message
    /// file appeared anywhere under `base`.
    async fn at_once(
        agent: &LocalDelivery,
        base: &std::path::Path,
        rcpt: &str,
        content: &[u8],
    ) -> (Option<&'static str>, usize) {
        let envelope = Envelope::new(ReversePath::Address(
            Address::parse("bob@sender.example").unwrap(),
        ));
        let recipient = Recipient::new(Address::parse(rcpt).unwrap());
        let status = agent.deliver_at_once(&envelope, &recipient, content).await;
        let files = walk(base);
        (status.map(|s| s.word()), files)
    }

    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .map(|e| e.unwrap().path())
                .map(|p| if p.is_dir() { walk(&p) } else { 1 })
                .sum()
        })
    }

    #[tokio::test]
    async fn at_once_only_a_plain_mailbox() {
        let base = tempfile::tempdir().unwrap();
        let mail = base.path().join("mail");
        let home = base.path().join("home/dave");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".forward"), "\\dave\n").unwrap();
        std::fs::write(base.path().join("aliases"), "team: alice\n").unwrap();
        let users = format!(
            "alice@mx.example.com:{{PLAIN}}x\ndave@mx.example.com:{{PLAIN}}x::::{}\n",
            home.display()
        );
        let users = Arc::new(UserDb::parse(&users, "users").unwrap());
        let host = Domain::parse("mx.example.com").unwrap();
        let mut s = LocalSettings::new(&mail, host, users);
        s.aliases = Arc::new(crate::AliasMap::load(&[base.path().join("aliases")]).unwrap());
        let agent = LocalDelivery::new(s);
        let plain = b"Subject: x\r\n\r\nhi\r\n";
        // Aliased, forwarded, unknown, looping: left alone, nothing written.
        assert_eq!(
            at_once(&agent, &mail, "team@mx.example.com", plain).await,
            (None, 0)
        );
        assert_eq!(
            at_once(&agent, &mail, "dave@mx.example.com", plain).await,
            (None, 0)
        );
        assert_eq!(
            at_once(&agent, &mail, "nobody@mx.example.com", plain).await,
            (None, 0)
        );
        let looped = b"Delivered-To: alice@mx.example.com\r\n\r\nhi\r\n";
        assert_eq!(
            at_once(&agent, &mail, "alice@mx.example.com", looped).await,
            (None, 0)
        );
        // A plain mailbox: stored, on disk before the answer.
        assert_eq!(
            at_once(&agent, &mail, "alice@mx.example.com", plain).await,
            (Some("sent"), 1)
        );
        // Dave's mailbox once his .forward is gone.
        std::fs::remove_file(home.join(".forward")).unwrap();
        assert_eq!(
            at_once(&agent, &home, "dave@mx.example.com", plain).await,
            (Some("sent"), 1)
        );
        // With mailbox_command, no store is plain.
        let mut s = LocalSettings::clone(&agent.settings());
        s.mailbox_command = Some("cat > /dev/null".to_owned());
        let agent = LocalDelivery::new(s);
        assert_eq!(
            at_once(&agent, &mail, "alice@mx.example.com", plain).await,
            (None, 1)
        );
    }
}
