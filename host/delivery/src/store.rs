//! Where a local user's mail is stored (Postfix's local(8) mailbox
//! step): through `mailbox_command` for users at local domains when it is
//! set, else a Maildir (`home_mailbox` ending in `/`), an mbox file in the
//! home, or the mbox `mail_spool_directory/USER` when `home_mailbox` is
//! empty. The message gets `Return-Path:` and `Delivered-To:` first.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use postern_mail::{Address, DeliveryStatus, EnhancedCode, Envelope, Recipient};
use postern_mailbox::{Maildir, Mbox};

use crate::aliases::Origin;
use crate::local::{LocalDelivery, blocking};
use crate::local_owner::{as_owner, make_home_for};
use crate::pipe;
use crate::resolve::Owner;

/// How long a store waits for an mbox's locks (a Maildir takes none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockWait {
    /// For the queue: as long as Postfix's local(8) (20 tries a second
    /// apart), after which the recipient is deferred.
    Queue,
    /// For a client waiting on its reply (immediate delivery): a moment,
    /// enough for another writer's append; a mailbox locked longer (a
    /// mail reader's, a stale lock) is left to the queue, which waits the
    /// full time without keeping anyone waiting.
    AtOnce,
}

impl LockWait {
    fn duration(self) -> Duration {
        match self {
            LockWait::Queue => postern_mailbox::mbox::LOCK_WAIT,
            LockWait::AtOnce => Duration::from_secs(1),
        }
    }
}

impl LocalDelivery {
    /// Stores one message for `owner` as Postfix's local(8) would:
    /// through `mailbox_command` for a user at a local domain when one is
    /// set; else into the Maildir (`home_mailbox` ending in `/`), the mbox
    /// file `home_mailbox` in the home, or with an empty `home_mailbox`
    /// the mbox `mail_spool_directory/USER` (`DIR/DOMAIN/USER` for a
    /// virtual domain). `Return-Path:` and `Delivered-To:` come first.
    pub(crate) async fn store(
        &self,
        envelope: &Envelope,
        address: &Address,
        owner: &Owner,
        recipient: &Recipient,
        content: &[u8],
        lock_wait: LockWait,
    ) -> DeliveryStatus {
        let settings = self.settings();
        let user = owner.user();
        let name = user.map_or_else(|| "postmaster".to_owned(), |u| u.name.to_lowercase());
        let home = match user {
            Some(u) => u.home_or(&settings.virtual_mailbox_base),
            None => settings
                .virtual_mailbox_base
                .join(settings.myhostname.as_str())
                .join("postmaster"),
        };
        let ids = user.and_then(|u| Some((u.uid?, u.gid.or(u.uid)?)));
        if let Some(command) = &settings.mailbox_command
            && self.is_local(address.domain())
        {
            // Run as the user when the users file names a uid, else as
            // default_privs (an Origin owned by root means that).
            let origin = Origin {
                file: PathBuf::from("mailbox_command"),
                line: 0,
                uid: ids.map_or(0, |i| i.0),
                gid: ids.map_or(0, |i| i.1),
            };
            let (settings, envelope, command) =
                (settings.clone(), envelope.clone(), command.clone());
            let mut recipient = recipient.clone();
            recipient.address = address.clone();
            let content = content.to_vec();
            return blocking(move || {
                pipe::deliver_command(
                    &command,
                    &origin,
                    &settings,
                    &envelope,
                    &recipient,
                    &content,
                    Some(&home),
                )
            })
            .await;
        }
        // Addresses hold no CR or LF (Address::parse refuses control
        // characters), so these lines cannot be split or extended.
        let trace = format!(
            "Return-Path: <{}>\r\nDelivered-To: {}\r\n",
            envelope.sender, address
        );
        let home_mailbox = &settings.home_mailbox;
        if home_mailbox.ends_with('/') {
            // Written as the owner: a system account, or a users-file
            // entry with a uid (Dovecot's passwd-file `uid:gid`), whose
            // home a root daemon makes for it first when it is missing.
            let make_home = matches!(owner, Owner::User(_)).then(|| home.clone());
            return self
                .store_maildir(home.join(home_mailbox), make_home, trace, content, ids)
                .await;
        }
        let path = if home_mailbox.is_empty() {
            let spool = &settings.mail_spool_directory;
            match user.and_then(|u| u.domain.as_ref()) {
                Some(domain) if !self.is_local(domain) => spool.join(domain.as_str()).join(&name),
                _ => spool.join(&name),
            }
        } else {
            home.join(home_mailbox)
        };
        let sender = envelope
            .sender
            .address()
            .map(ToString::to_string)
            .unwrap_or_default();
        let content = content.to_vec();
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || {
            // Dropped to mail_owner: the root helper writes as the owner.
            let parts = [trace.as_bytes(), &content];
            if let Some(done) =
                crate::local_privsep::mbox(ids, &target, &sender, lock_wait.duration(), &parts)
            {
                return done.map(|()| 0);
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    let why = postern_mail::io_reason(&e);
                    format!("cannot create {}: {why}", parent.display())
                })?;
            }
            let date = postern_mail::date::asctime(SystemTime::now());
            Mbox::new(&target)
                .with_owner(ids)
                .with_lock_wait(lock_wait.duration())
                .deliver(&sender, &date, &parts)
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match written {
            Ok(_) => DeliveryStatus::Sent {
                dsn: EnhancedCode::new(2, 0, 0),
                detail: "delivered to mailbox".to_owned(),
            },
            Err(e) => DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 2, 0),
                detail: format!(
                    "cannot update mailbox {} for user {name}: {e}",
                    path.display()
                ),
            },
        }
    }

    /// Delivers into the Maildir at `path`, created when missing; as
    /// `owner` (uid, gid) when given (`local_owner`), after making
    /// `make_home` for the owner if it is missing.
    async fn store_maildir(
        &self,
        path: PathBuf,
        make_home: Option<PathBuf>,
        trace: String,
        content: &[u8],
        owner: Option<(u32, u32)>,
    ) -> DeliveryStatus {
        // The blocking thread needs its own copy of the message.
        let content = content.to_vec();
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || {
            // Dropped to mail_owner: the root helper writes as the owner.
            if let Some(done) = crate::local_privsep::maildir(
                owner,
                make_home.clone(),
                &target,
                &[trace.as_bytes(), &content],
            ) {
                return done.map(|()| target);
            }
            if let Some(home) = make_home {
                make_home_for(&home, owner)?;
            }
            // Made only when the delivery finds it missing: the Maildir
            // of a user who already has mail costs no mkdir or stat.
            as_owner(owner, move || {
                Maildir::deliver_creating(&target, &[trace.as_bytes(), &content])
            })
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
                detail: format!(
                    "maildir delivery failed: {}: {}",
                    path.display(),
                    postern_mail::io_reason(&e)
                ),
            },
        }
    }
}
