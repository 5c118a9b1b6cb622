//! The `lmtp` service (RFC 2033, `postern-lmtp`): its settings from the
//! service's parameters, the mailboxes it delivers into (local delivery,
//! straight into the mailbox), and its listeners: TCP through the common
//! accept loop, or a UNIX socket as Dovecot's `unix_listener lmtp`.
//!
//! A UNIX socket is made under a temporary name, given its owner and
//! mode, then renamed over the configured path, so no client ever finds
//! it with looser permissions, and a stale socket left by a crash is
//! replaced.
//!
//! Started as root, the daemon binds the socket before it drops to
//! `mail_owner`, and the socket is that user's and group's unless the
//! service sets `user` or `group`: as Postfix's master(8) makes its
//! `private/` and `public/` sockets as `mail_owner`, and as Dovecot's
//! `unix_listener` takes `user`, `group` and `mode` (here `0660` by
//! default, so the MTA is let in by putting it in the group or naming its
//! group). Directories made for the socket are `mail_owner`'s too, so that
//! the daemon, no longer root, can remove its socket at stop.
//! A path where another server still answers, or that is not a socket,
//! stops start-up with the reason. The socket file is removed when its
//! listener closes at stop.

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use postern_delivery::LocalDelivery;
use postern_mail::{Address, BoxFuture, DeliveryStatus, Envelope, QueueId, Recipient};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};

use crate::config::{Service, UnixListen};
use crate::services::Swappable;

/// The users' mailboxes as local delivery finds them: a recipient exists
/// when it has a mailbox (users file, `postmaster`, extensions), not when
/// it is only an alias; delivery skips aliases and `.forward`.
#[derive(Debug)]
struct DeliveryMailboxes(Arc<LocalDelivery>);

impl postern_lmtp::Mailboxes for DeliveryMailboxes {
    fn exists(&self, address: &Address) -> bool {
        self.0.owner(address).is_some()
    }

    fn deliver<'a>(
        &'a self,
        _id: &'a QueueId,
        envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, DeliveryStatus> {
        Box::pin(self.0.deliver_to_mailbox(envelope, recipient, content))
    }
}

/// What the sessions of one `lmtp` entry run with: its own
/// `message_size_limit`, `line_length_limit`, `smtpd_recipient_limit`,
/// `smtpd_timeout`, `smtpd_hard_error_limit` and
/// `smtpd_forbid_bare_newline` (the file's unless the entry sets them).
pub fn settings(
    service: &Service,
    delivery: &Arc<LocalDelivery>,
    stop: watch::Receiver<bool>,
) -> postern_lmtp::Settings {
    let m = &service.main;
    let mut settings = postern_lmtp::Settings::new(
        m.myhostname.clone(),
        Arc::new(DeliveryMailboxes(Arc::clone(delivery))),
        postern_queue::id::next_id,
    );
    apply_limits(&mut settings, m);
    settings.stop = Some(stop);
    settings
}

/// Sets the limits of `settings` from the parameters `m` (an entry's, its
/// overrides applied): at start, and again at each reload
/// ([`crate::services::ServiceLimits`]).
pub fn apply_limits(settings: &mut postern_lmtp::Settings, m: &crate::config::Main) {
    settings.message_size_limit = m.message_size_limit;
    // As for SMTP: RFC 5321 §4.5.3.1.4's 512 is the floor.
    settings.line_length_limit =
        usize::try_from(m.line_length_limit.max(512)).unwrap_or(usize::MAX);
    settings.recipient_limit = usize::try_from(m.smtpd_recipient_limit).unwrap_or(usize::MAX);
    settings.timeout = m.smtpd_timeout;
    settings.hard_error_limit = u32::try_from(m.smtpd_hard_error_limit).unwrap_or(u32::MAX);
    settings.bare_newline = if m.smtpd_forbid_bare_newline == "reject" {
        postern_smtp::BareNewline::Reject
    } else {
        postern_smtp::BareNewline::Normalize
    };
}

/// Accepts LMTP clients on a TCP `listener` while `sessions` has room;
/// each runs with the settings in force when it connects.
pub async fn serve_tcp(
    listener: TcpListener,
    settings: Swappable<postern_lmtp::Settings>,
    sessions: Arc<Semaphore>,
) {
    crate::listener::accept(listener, sessions, move |stream, peer, _local| {
        postern_lmtp::serve(
            stream,
            postern_lmtp::Connection::tcp(peer),
            settings.load_full(),
        )
    })
    .await;
}

/// A bound UNIX socket; its file is removed when this is dropped (the
/// listener task ends at stop), unless another file has replaced it.
#[derive(Debug)]
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
    /// The socket file's inode, to remove only our own.
    ino: u64,
}

impl UnixSocket {
    /// The socket's path, as logged.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the UNIX socket `unix` with its mode (see the module comment);
/// `owner` is the (uid, gid) the daemon is about to drop to, the default
/// owner of the socket and of the directories made for it. Must run
/// inside the tokio runtime.
pub fn bind_unix(unix: &UnixListen, owner: Option<(u32, u32)>) -> anyhow::Result<UnixSocket> {
    let path = &unix.path;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("cannot look at {}: {e}", path.display()),
        Ok(meta) if !meta.file_type().is_socket() => {
            bail!("{} exists and is not a socket", path.display())
        }
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!("{} is in use: another server listens there", path.display());
            }
        }
    }
    if let Some(parent) = path.parent() {
        make_parent(parent, owner)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut temp = path.clone().into_os_string();
    temp.push(format!(".{}.new", std::process::id()));
    let temp = PathBuf::from(temp);
    let _ = std::fs::remove_file(&temp);
    let listener =
        UnixListener::bind(&temp).with_context(|| format!("cannot bind {}", temp.display()))?;
    let (uid, gid) = (
        unix.uid.or(owner.map(|o| o.0)),
        unix.gid.or(owner.map(|o| o.1)),
    );
    let owned = match (uid, gid) {
        (None, None) => Ok(()),
        // Not followed: the name is ours, in a directory root trusts,
        // and a link put there meanwhile must not pass the chown on.
        (uid, gid) => std::os::unix::fs::lchown(&temp, uid, gid),
    };
    let placed = owned
        .and_then(|()| std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(unix.mode)))
        .and_then(|()| std::fs::rename(&temp, path))
        .and_then(|()| std::fs::symlink_metadata(path));
    match placed {
        Ok(meta) => Ok(UnixSocket {
            listener,
            path: path.clone(),
            ino: meta.ino(),
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e).with_context(|| format!("cannot make the socket {}", path.display()))
        }
    }
}

/// Makes `dir` and its missing parents; those made are given to `owner`
/// (made by root at start-up, they would stay root's).
fn make_parent(dir: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_err())
        .collect();
    std::fs::create_dir_all(dir)?;
    if let Some((uid, gid)) = owner {
        for made in missing {
            std::os::unix::fs::lchown(made, Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

/// Accepts LMTP clients on a UNIX socket while `sessions` has room, each
/// in its own task holding a slot until it ends.
pub async fn serve_unix(
    socket: UnixSocket,
    settings: Swappable<postern_lmtp::Settings>,
    sessions: Arc<Semaphore>,
) {
    loop {
        let Ok(permit) = Arc::clone(&sessions).acquire_owned().await else {
            return;
        };
        let stream = match socket.listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and kin: wait rather than spin.
                tracing::warn!(target: "postern/master", "accept on {}: {e}", socket.path.display());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let session = postern_lmtp::serve(
            stream,
            postern_lmtp::Connection::unix(),
            settings.load_full(),
        );
        tokio::spawn(async move {
            session.await;
            drop(permit);
        });
    }
}
