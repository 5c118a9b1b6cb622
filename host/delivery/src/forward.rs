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
//! `allow_mail_to_files` / `allow_mail_to_commands`. A symbolic link or
//! a file others may write is refused, as Postfix refuses it.
//!
//! A daemon started as root runs as `mail_owner`, which may not enter a
//! home of mode 0700: a `.forward` there (`$home/.forward...`, one name)
//! is read by the root helper as the user (host/privsep `Forward`), as
//! Postfix's local(8) reads it as the recipient. Any answer of the helper
//! other than the file or "there is none" defers the mail (4.3.0): the
//! forwarding is never dropped because the daemon could not look.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postern_auth::User;
use postern_mail::{
    Address, DeliveryStatus, EnhancedCode, Enqueue, Envelope, Recipient, ReversePath,
};

use crate::aliases::{Origin, Target, parse_values};
use crate::expand::{Destination, ExpandError};
use crate::local::LocalDelivery;
use crate::settings::Class;

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

/// Reads a `.forward` file: its targets and its origin (owner). Refuses a
/// symbolic link and a file that others than its owner may write.
pub(crate) fn read(path: &Path) -> Result<(Vec<Target>, Origin), String> {
    let shown = path.display();
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if meta.file_type().is_symlink() || !meta.is_file() {
        return Err(format!("{shown}: not a regular file"));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("{shown}: writable by group or others"));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    parse(path, bytes, meta.uid(), meta.gid())
}

/// The targets of a `.forward`'s `bytes`, from `path` owned by `uid`:`gid`.
fn parse(path: &Path, bytes: Vec<u8>, uid: u32, gid: u32) -> Result<(Vec<Target>, Origin), String> {
    let shown = path.display();
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown}: not UTF-8 text"))?;
    let mut targets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // `\user` is sendmail's "my own mailbox, no further forwarding";
        // here the user's own name means that already.
        let unescaped: Vec<&str> = line
            .split(',')
            .map(|item| item.trim().strip_prefix('\\').unwrap_or(item.trim()))
            .collect();
        let values = parse_values(&unescaped.join(","))
            .map_err(|what| format!("{shown}:{}: {what}", n + 1))?;
        targets.extend(values);
    }
    Ok((
        targets,
        Origin {
            file: path.to_owned(),
            line: 0,
            uid,
            gid,
        },
    ))
}

/// What reading a `.forward` gave.
enum Forward {
    /// Its targets and origin.
    Read(Vec<Target>, Origin),
    /// There is none (any more).
    Missing,
    /// It may not be used: why (bounced).
    Refused(String),
    /// It could not be read now: why (deferred).
    Deferred(String),
}

/// Asks the root helper for the `.forward` at `path` of the user `uid`,
/// read as that user: `None` when there is no helper (the daemon was not
/// started as root), no uid, or `path` is not one name in a home.
/// Blocking, briefly: the helper reads one small file.
fn ask_helper(uid: Option<u32>, path: &Path) -> Option<io::Result<postern_privsep::Response>> {
    let client = postern_privsep::installed()?;
    let name = path.file_name()?.to_str()?.to_owned();
    let request = postern_privsep::Request::Forward { uid: uid?, name };
    Some(client.call(&request))
}

/// Reads the `.forward` at `path` of the user `uid`: directly, or, where
/// the daemon may not enter the home, through the root helper.
fn read_forward(path: &Path, uid: Option<u32>) -> Forward {
    // Only a home the daemon may not enter goes to the helper: there the
    // path is `$home/NAME` (forward_file checked), the file the helper
    // finds for the uid. A file the daemon sees but may not read is
    // refused as before, with the kernel's reason.
    let denied = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Forward::Missing,
        _ => {
            return match read(path) {
                Ok((targets, origin)) => Forward::Read(targets, origin),
                Err(why) => Forward::Refused(why),
            };
        }
    };
    let shown = path.display();
    use postern_privsep::Response;
    match ask_helper(uid, path) {
        None => Forward::Refused(format!("{shown}: {denied}")),
        Some(Ok(Response::File { uid, gid, contents })) => match parse(path, contents, uid, gid) {
            Ok((targets, origin)) => Forward::Read(targets, origin),
            Err(why) => Forward::Refused(why),
        },
        Some(Ok(Response::Missing)) => Forward::Missing,
        Some(Ok(Response::Refused(why) | Response::Failed(why))) => {
            Forward::Deferred(format!("{shown}: the privileged helper: {why}"))
        }
        Some(Ok(other)) => Forward::Deferred(format!(
            "{shown}: an unexpected answer from the privileged helper: {other:?}"
        )),
        Some(Err(e)) => Forward::Deferred(format!("{shown}: {e}")),
    }
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
    /// `owner` uid known, a file someone else owns is refused.
    pub(crate) fn expand_forward(
        &self,
        path: &Path,
        address: &Address,
        owner: Option<u32>,
    ) -> Result<Vec<Destination>, ExpandError> {
        let read = match read_forward(path, owner) {
            Forward::Read(targets, origin) => match owner {
                // The user's own file, or root's: not someone else's.
                Some(uid) if origin.uid != uid && origin.uid != 0 => Err(format!(
                    "{}: owned by uid {}, not by the user ({uid}) or root",
                    path.display(),
                    origin.uid
                )),
                _ => Ok((targets, origin)),
            },
            Forward::Refused(why) => Err(why),
            // Gone since it was found: the user's own mailbox.
            Forward::Missing => return Ok(Vec::new()),
            Forward::Deferred(why) => {
                return Ok(vec![Destination::Deferred {
                    reason: format!("cannot read forward file: {why}"),
                }]);
            }
        };
        let (targets, origin) = match read {
            Ok(t) => t,
            Err(reason) => {
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

    #[test]
    fn reads_targets_and_refuses_unsafe_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".forward");
        std::fs::write(
            &path,
            "# keep a copy\n\\alice, bob@example.net\n\"|/usr/bin/procmail -f-\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (targets, origin) = read(&path).unwrap();
        assert_eq!(
            targets,
            [
                Target::Local("alice".to_owned()),
                Target::Address(Address::parse("bob@example.net").unwrap()),
                Target::Command("/usr/bin/procmail -f-".to_owned()),
            ]
        );
        assert_eq!(origin.file, path);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(read(&path).unwrap_err().contains("writable"));
        std::fs::write(dir.path().join("bad"), "a b c\n").unwrap();
        let err = read(&dir.path().join("bad")).unwrap_err();
        assert!(err.contains("bad:1: "), "{err}");
    }
}
