//! Reading a `.forward` (Postfix's local/dotforward.c): the daemon reads
//! it itself when it may, with local(8)'s rules (a regular file, owned by
//! the user or root, not writable by others, at most 1 MiB), and asks the
//! root helper, which reads it as the user with the same rules, when the
//! kernel says "permission denied": a home `mail_owner` may not enter, or
//! a file of mode 0600 in an open one. A file the rules refuse, or the
//! daemon cannot open, is ignored with local(8)'s warning (the mail goes
//! to the mailbox); so is one the helper answers the same of
//! ([`Response::Ignored`]: the rules, or the user may not open it). Any
//! other answer of the helper, or none, defers the mail ([`from_helper`]);
//! the parent module decides what the targets mean.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use postern_privsep::Response;
use postern_privsep::files::cannot_open;

use crate::aliases::{Origin, Target, parse_values};

/// What the daemon's own read of a `.forward` gave.
enum Direct {
    /// Its bytes, and the file as seen.
    Read(Vec<u8>, std::fs::Metadata),
    /// There is none.
    Missing,
    /// The daemon may not look at it (no metadata) or read it (the
    /// kernel's answer): the user may.
    Denied(io::Error, Option<std::fs::Metadata>),
    /// It may not be used: local(8)'s warning.
    Ignored(String),
    /// It could not be read now: why.
    Failed(String),
}

/// Reads the `.forward` at `path` as the daemon: local(8)'s rules
/// ([`postern_privsep::files::forward_allowed`]) for the user `owner`
/// (any owner when the user has no uid), then opened without following
/// a link or blocking on a FIFO, the file checked the file read, at most
/// [`postern_privsep::files::MAX_FORWARD`] bytes.
fn read_direct(path: &Path, owner: Option<u32>) -> Direct {
    use postern_privsep::secure::Unsafe;
    let denied = |e: io::Error, seen: Option<std::fs::Metadata>| match e.kind() {
        io::ErrorKind::NotFound => Direct::Missing,
        io::ErrorKind::PermissionDenied => Direct::Denied(e, seen),
        _ => Direct::Ignored(cannot_open(path, &e)),
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) => return denied(e, None),
    };
    let owner = owner.unwrap_or(meta.uid());
    if let Err(warning) = postern_privsep::files::forward_allowed(path, &meta, owner) {
        return Direct::Ignored(warning);
    }
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => return denied(e.into(), Some(meta)),
    };
    let max = postern_privsep::files::MAX_FORWARD;
    match postern_privsep::secure::read_bounded(file, &meta, path, max) {
        Ok(bytes) => Direct::Read(bytes, meta),
        Err(Unsafe::Missing) => Direct::Missing,
        Err(Unsafe::Refused(why)) => Direct::Ignored(format!("file {why}")),
        // Changed while it was read, or a read error: looked at again.
        Err(Unsafe::Failed(why)) => Direct::Failed(why),
    }
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
pub(super) enum Forward {
    /// Its targets and origin.
    Read(Vec<Target>, Origin),
    /// There is none (any more).
    Missing,
    /// Postfix's local(8) ignores it, with this warning: the mail goes to
    /// the mailbox.
    Ignored(String),
    /// Its text is not a `.forward`'s: why (bounced).
    Refused(String),
    /// It could not be read now: why (deferred).
    Deferred(String),
}

/// Asks the root helper for the `.forward` at `path` of the user `uid`,
/// read as that user: `None` when there is no helper (the daemon was not
/// started as root), no uid, or `path` is not one name in a home.
/// Blocking, briefly: the helper reads one small file.
pub(super) fn ask_helper(uid: Option<u32>, path: &Path) -> Option<io::Result<Response>> {
    let client = postern_privsep::installed()?;
    let name = path.file_name()?.to_str()?.to_owned();
    let request = postern_privsep::Request::Forward { uid: uid?, name };
    Some(client.call(&request))
}

/// Reads the `.forward` at `path` of the user `uid`: directly, or, where
/// the daemon may not enter the home or read the file, through the root
/// helper, which reads it as the user.
pub(super) fn read_forward(path: &Path, uid: Option<u32>) -> Forward {
    let (denied, seen) = match read_direct(path, uid) {
        Direct::Read(bytes, meta) => {
            return match parse(path, bytes, meta.uid(), meta.gid()) {
                Ok((targets, origin)) => Forward::Read(targets, origin),
                Err(why) => Forward::Refused(why),
            };
        }
        Direct::Missing => return Forward::Missing,
        Direct::Ignored(warning) => return Forward::Ignored(warning),
        Direct::Failed(why) => return Forward::Deferred(why),
        Direct::Denied(e, seen) => (e, seen),
    };
    // The helper reads `$home/NAME` of the uid, NAME a `.forward` name:
    // where the home is closed, forward_file checked that `path` is that
    // file; a `forward_path` file of another name is ignored, as one the
    // daemon cannot open, with the kernel's reason.
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(".forward"));
    if !named {
        return Forward::Ignored(cannot_open(path, &denied));
    }
    match ask_helper(uid, path) {
        None => Forward::Ignored(cannot_open(path, &denied)),
        Some(answer) => from_helper(path, seen.as_ref(), answer),
    }
}

/// What the helper's `answer` for the `.forward` at `path` (seen by the
/// daemon as `seen`, if it could look) means: the file, none, local(8)'s
/// warning (the mailbox), or, for anything else (a refused request, a
/// failed read, no answer), a deferral: forwarding is never dropped
/// because the daemon could not look.
fn from_helper(
    path: &Path,
    seen: Option<&std::fs::Metadata>,
    answer: io::Result<Response>,
) -> Forward {
    let shown = path.display();
    match answer {
        // A file the daemon saw but may not read: the helper's must be
        // the same owner's (else it read `$home/NAME` for a `forward_path`
        // file elsewhere), or it changed meanwhile: looked at again later.
        Ok(Response::File { uid, gid, .. })
            if seen.is_some_and(|m| (m.uid(), m.gid()) != (uid, gid)) =>
        {
            Forward::Deferred(format!(
                "{shown}: the privileged helper read a file of {uid}:{gid}, not the one seen"
            ))
        }
        Ok(Response::File { uid, gid, contents }) => match parse(path, contents, uid, gid) {
            Ok((targets, origin)) => Forward::Read(targets, origin),
            Err(why) => Forward::Refused(why),
        },
        Ok(Response::Missing) => Forward::Missing,
        // local(8)'s own refusal, found by the helper as the user.
        Ok(Response::Ignored(warning)) => Forward::Ignored(warning),
        Ok(Response::Refused(why) | Response::Failed(why)) => {
            Forward::Deferred(format!("{shown}: the privileged helper: {why}"))
        }
        Ok(other) => Forward::Deferred(format!(
            "{shown}: an unexpected answer from the privileged helper: {other:?}"
        )),
        Err(e) => Forward::Deferred(format!("{shown}: {e}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postern_mail::Address;

    /// A `.forward`'s targets and origin, read by the daemon itself.
    fn read(path: &Path) -> Result<(Vec<Target>, Origin), String> {
        match read_direct(path, None) {
            Direct::Read(bytes, meta) => parse(path, bytes, meta.uid(), meta.gid()),
            Direct::Missing => Err(format!("{}: missing", path.display())),
            Direct::Denied(e, _) => Err(format!("{}: {e}", path.display())),
            Direct::Ignored(why) | Direct::Failed(why) => Err(why),
        }
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
        assert_eq!(
            read(&path).unwrap_err(),
            format!("file {} is world writable", path.display())
        );
        let link = dir.path().join(".forward+link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(
            read(&link).unwrap_err(),
            format!("file {} is not a regular file", link.display())
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        // Root's file is anyone's: as root, give it to someone else.
        if std::fs::metadata(&path).unwrap().uid() == 0 {
            std::os::unix::fs::chown(&path, Some(12345), None).unwrap();
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let bad = format!("file {} has bad owner uid {}", path.display(), meta.uid());
        assert!(matches!(read_direct(&path, Some(4242)), Direct::Ignored(w) if w == bad));
        assert!(matches!(
            read_direct(&path, Some(meta.uid())),
            Direct::Read(..)
        ));
        std::fs::write(dir.path().join("bad"), "a b c\n").unwrap();
        let err = read(&dir.path().join("bad")).unwrap_err();
        assert!(err.contains("bad:1: "), "{err}");
    }

    #[test]
    fn the_helpers_answers_ignore_defer_or_read_as_local8_would() {
        let path = Path::new("/home/alice/.forward");
        let ignored = "cannot open file /home/alice/.forward: Permission denied";
        // local(8)'s refusal through the helper: the mailbox, with its
        // warning, as when the daemon finds it itself.
        assert!(matches!(
            from_helper(path, None, Ok(Response::Ignored(ignored.to_owned()))),
            Forward::Ignored(w) if w == ignored
        ));
        assert!(matches!(
            from_helper(path, None, Ok(Response::Missing)),
            Forward::Missing
        ));
        let file = Response::File {
            uid: 1000,
            gid: 1000,
            contents: b"bob@example.net\n".to_vec(),
        };
        assert!(matches!(
            from_helper(path, None, Ok(file)),
            Forward::Read(targets, origin) if targets.len() == 1 && origin.uid == 1000
        ));
        // Every other failure defers (4.3.0): a refused request (the
        // uid or home), a failed read, an unreachable helper, an answer
        // of another kind.
        for answer in [
            Ok(Response::Refused("uid 0: root".to_owned())),
            Ok(Response::Failed("I/O error".to_owned())),
            Ok(Response::Done),
            Err(io::Error::other("the privileged helper is gone")),
        ] {
            assert!(
                matches!(from_helper(path, None, answer), Forward::Deferred(_)),
                "not deferred"
            );
        }
    }
}
