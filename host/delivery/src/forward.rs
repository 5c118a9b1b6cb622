//! `.forward` files (Postfix's local(8) "forward" step): a user with a
//! home may redirect their own mail with a file in it, in the syntax of an
//! alias's values: addresses, local names, `/file`, `|command`,
//! `:include:/path`, one or more per line, `#` comments. The user's own
//! name (`\alice` or `alice`) keeps a copy in their mailbox.
//!
//! Where the file is comes from `forward_path`, whose items are expanded
//! with the recipient's attributes (`$home`, `$user`, `$local`,
//! `$domain`, `$extension`, `$recipient_delimiter`; `${name}` too) and
//! tried in order: the first file that exists is used. As in Postfix,
//! `$recipient_delimiter` is empty for an address without an extension,
//! so `.forward+list` serves `user+list` and `.forward` everyone else.
//!
//! An address at another domain, from a `.forward` or an alias, is sent
//! on as a new message through the queue ([`LocalDelivery::set_forwarder`]),
//! as Postfix's local(8) forwards through cleanup: same envelope sender,
//! a `Delivered-To:` of the local recipient on top (so a message that
//! comes back is bounced as a loop), logged `status=sent (forwarded as
//! ID)`.
//!
//! Files and commands in a `.forward` run as the file's owner (or
//! `default_privs` when root owns it), gated by the `forward` class of
//! `allow_mail_to_files` / `allow_mail_to_commands`. As Postfix's local(8)
//! (local/dotforward.c), a symbolic link or anything but a regular file,
//! a file owned by neither the user nor root, a file others may write and
//! one the daemon cannot open are ignored, with its warning (`file F is
//! world writable`...) logged: the mail goes to the mailbox, not to the
//! next `forward_path` file (the first that exists is the one). Group
//! write is allowed. At most 1 MiB is read
//! ([`postern_privsep::files::MAX_FORWARD`]); a file that is not text in
//! the `.forward` syntax bounces the mail.
//!
//! A daemon started as root runs as `mail_owner`, which may not enter a
//! home of mode 0700, nor read a `.forward` of mode 0600 in an open home:
//! such a file (`$home/.forward...`, one name) is read by the root helper
//! as the user (host/privsep `Forward`), with the same rules, as
//! Postfix's local(8) reads it as the recipient. A file the helper finds
//! local(8) would ignore (the rules above, or one the user may not open:
//! `cannot open file F: Permission denied`) is ignored the same way, with
//! the warning, and the mail goes to the mailbox. Any other answer of the
//! helper (a refused request, a failed read, none) defers the mail
//! (4.3.0): the forwarding is never dropped because the daemon could not
//! look ([`read`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postern_auth::User;
use postern_mail::{
    Address, DeliveryStatus, EnhancedCode, Enqueue, Envelope, Recipient, ReversePath,
};

use crate::expand::{Destination, ExpandError};
use crate::local::LocalDelivery;
use crate::settings::Class;

mod read;

use read::{Forward, ask_helper, read_forward};

/// A recipient's attributes for `forward_path`.
#[derive(Debug, Clone)]
pub(crate) struct Attributes<'a> {
    /// The user's home.
    pub home: &'a Path,
    /// The user's name (the local part without extension).
    pub user: &'a str,
    /// The address.
    pub address: &'a Address,
    /// The extension after the delimiter, if any.
    pub extension: Option<&'a str>,
    /// The delimiter in force.
    pub delimiter: Option<char>,
}

impl Attributes<'_> {
    fn value(&self, name: &str) -> Option<String> {
        Some(match name {
            "home" => self.home.display().to_string(),
            "user" => self.user.to_owned(),
            "local" => self.address.local().to_lowercase(),
            "domain" => self.address.domain().to_string(),
            "extension" => self.extension.unwrap_or_default().to_owned(),
            "recipient_delimiter" => match (self.extension, self.delimiter) {
                (Some(_), Some(d)) => d.to_string(),
                _ => String::new(),
            },
            _ => return None,
        })
    }

    /// One `forward_path` item with `$name` and `${name}` expanded;
    /// `None` when it names an attribute that does not exist.
    pub fn expand(&self, item: &str) -> Option<PathBuf> {
        let mut out = String::new();
        let mut rest = item.trim();
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
                let end = braced.find('}')?;
                (&braced[..end], &braced[end + 1..])
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            out.push_str(&self.value(name)?);
            rest = tail;
        }
        out.push_str(rest);
        (!out.is_empty()).then(|| PathBuf::from(out))
    }
}

/// The extension of `address` under `delimiter`, if it has one.
pub(crate) fn extension(address: &Address, delimiter: Option<char>) -> Option<&str> {
    let base = address.local_base(delimiter);
    address
        .local()
        .strip_prefix(base)
        .and_then(|rest| rest.get(1..))
        .filter(|e| !e.is_empty())
}

/// The queue, as the place forwarded mail is handed back to.
#[derive(Clone)]
pub(crate) struct Forwarder(Arc<dyn Enqueue>);

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Forwarder")
    }
}

impl LocalDelivery {
    /// Gives the agent the queue to send forwarded mail through. Without
    /// one, mail an alias or `.forward` sends to another domain is
    /// deferred. A second call changes nothing.
    pub fn set_forwarder(&self, queue: Arc<dyn Enqueue>) {
        let _ = self.forwarder.set(Forwarder(queue));
    }

    /// Queues a copy of the message for `addresses` (other domains),
    /// from the same sender, with `Delivered-To:` of the local recipient.
    pub(crate) async fn forward_remote(
        &self,
        envelope: &Envelope,
        recipient: &Recipient,
        addresses: Vec<Address>,
        content: &[u8],
    ) -> DeliveryStatus {
        let Some(Forwarder(queue)) = self.forwarder.get() else {
            return DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 3, 0),
                detail: "cannot forward to another domain: no queue to send it through".to_owned(),
            };
        };
        let mut copy = Envelope::new(match &envelope.sender {
            ReversePath::Address(a) => ReversePath::Address(a.clone()),
            _ => ReversePath::Null,
        });
        copy.recipients = addresses.into_iter().map(Recipient::new).collect();
        copy.client_name = "localhost".to_owned();
        copy.protocol = "local".to_owned();
        copy.ret = envelope.ret;
        copy.envid = envelope.envid.clone();
        copy.smtputf8 = envelope.smtputf8;
        copy.eight_bit_mime = envelope.eight_bit_mime;
        // Addresses hold no CR or LF: one header line.
        let mut message = format!("Delivered-To: {}\r\n", recipient.address).into_bytes();
        message.extend_from_slice(content);
        let id = queue.new_id();
        match queue.enqueue(id.clone(), copy, message).await {
            Ok(()) => DeliveryStatus::Sent {
                dsn: EnhancedCode::new(2, 0, 0),
                detail: format!("forwarded as {id}"),
            },
            Err(e) => DeliveryStatus::Deferred {
                dsn: EnhancedCode::new(4, 3, 0),
                detail: format!("cannot forward: {e}"),
            },
        }
    }

    /// The first `forward_path` file of `user` that exists, for mail to
    /// `address`; `None` for a user without a home in the users file.
    pub(crate) fn forward_file(&self, user: &User, address: &Address) -> Option<PathBuf> {
        let home = user.home.as_deref()?;
        let delimiter = self.settings().recipient_delimiter;
        let attributes = Attributes {
            home,
            user: &user.name.to_lowercase(),
            address,
            extension: extension(address, delimiter),
            delimiter,
        };
        self.settings()
            .forward_path
            .iter()
            .filter_map(|item| attributes.expand(item))
            .find(|path| match std::fs::symlink_metadata(path) {
                Ok(_) => true,
                // A home mail_owner may not enter: the helper looks, as
                // the user; anything but "none there" is looked at again
                // when it is read.
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    path.parent() == Some(home)
                        && !matches!(
                            ask_helper(user.uid, path),
                            None | Some(Ok(postern_privsep::Response::Missing))
                        )
                }
                Err(_) => false,
            })
    }

    /// Where the `.forward` at `path` sends mail for `address`: its
    /// targets expanded as an alias's are (aliases of local names apply),
    /// with the user's own name meaning their mailbox. With the user's
    /// `owner` uid known, a file someone else owns is ignored (logged).
    pub(crate) fn expand_forward(
        &self,
        path: &Path,
        address: &Address,
        owner: Option<u32>,
    ) -> Result<Vec<Destination>, ExpandError> {
        let read = match read_forward(path, owner) {
            // The user's own file, or root's: not someone else's.
            Forward::Read(_, origin)
                if owner.is_some_and(|uid| origin.uid != uid && origin.uid != 0) =>
            {
                Forward::Ignored(format!(
                    "file {} has bad owner uid {}",
                    path.display(),
                    origin.uid
                ))
            }
            other => other,
        };
        let (targets, origin) = match read {
            Forward::Read(targets, origin) => (targets, origin),
            // As local(8): a warning, and the user's own mailbox.
            Forward::Ignored(warning) => {
                tracing::warn!(target: "postern/local", "{warning}");
                return Ok(Vec::new());
            }
            // Gone since it was found: the user's own mailbox.
            Forward::Missing => return Ok(Vec::new()),
            Forward::Deferred(why) => {
                return Ok(vec![Destination::Deferred {
                    reason: format!("cannot read forward file: {why}"),
                }]);
            }
            Forward::Refused(reason) => {
                return Ok(vec![Destination::Refused {
                    reason: format!("cannot use forward file: {reason}"),
                }]);
            }
        };
        let name = address
            .local_base(self.settings().recipient_delimiter)
            .to_lowercase();
        let mut chain = vec![name.clone()];
        let mut out = Vec::new();
        self.expand_targets(
            &self.aliases(),
            &name,
            &targets,
            &origin,
            Class::Forward,
            &mut chain,
            &mut out,
        )?;
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn forward_path_expansion() {
        let address = Address::parse("Alice+list@example.org").unwrap();
        let with = Attributes {
            home: Path::new("/home/alice"),
            user: "alice",
            address: &address,
            extension: extension(&address, Some('+')),
            delimiter: Some('+'),
        };
        assert_eq!(
            with.expand("$home/.forward${recipient_delimiter}${extension}")
                .unwrap(),
            Path::new("/home/alice/.forward+list")
        );
        assert_eq!(
            with.expand("/var/forward/$domain/$user").unwrap(),
            Path::new("/var/forward/example.org/alice")
        );
        assert_eq!(with.expand("$nothing/x"), None);
        let plain = Address::parse("alice@example.org").unwrap();
        let without = Attributes {
            extension: extension(&plain, Some('+')),
            address: &plain,
            ..with
        };
        assert_eq!(
            without
                .expand("$home/.forward${recipient_delimiter}${extension}")
                .unwrap(),
            Path::new("/home/alice/.forward")
        );
    }
}
