//! Delivery straight into a mailbox, without `alias_maps` or `.forward`:
//! what the LMTP server (`postern-lmtp`) asks for each recipient, as
//! Dovecot's LMTP writes into its mail storage once the sending MTA has
//! expanded aliases itself.

use postern_mail::{DeliveryStatus, EnhancedCode, Envelope, Recipient};

use crate::local::{LocalDelivery, delivered_to};

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
        self.store(envelope, address, &owner, recipient, content)
            .await
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
}
