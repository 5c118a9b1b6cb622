//! One mailbox (the INBOX or a Maildir++ folder) as IMAP sees it: messages
//! with stable UIDs, flags in their file names, \Recent, internal dates
//! (the file's mtime, as Dovecot keeps them) and sizes from `,S=`.
//!
//! Concurrency: delivery only ever adds files to `new/`; POP3 and IMAP
//! sessions move them to `cur/`, rename them to change flags and remove
//! them. UIDs are assigned only under the `dovecot-uidlist` dotlock, to
//! base names (which flag changes keep), so two sessions can never give a
//! message two UIDs or two messages one UID. A file renamed under a session
//! is found again by its base name.
//!
//! Bringing the view up to date (UIDs, MODSEQs, \Recent) is [`crate::sync`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::flags::{Flags, parse_keywords, render_keywords};
use crate::fsync;
use crate::reader::base_name;
use crate::uidlist::Lock;
use crate::unique::unique_name;

/// Dovecot's keyword list beside the Maildir.
pub const KEYWORDS: &str = "dovecot-keywords";

/// One message of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its UID, stable for the mailbox's UIDVALIDITY.
    pub uid: u32,
    /// The base name (without `:2,FLAGS`).
    pub base: String,
    /// The file name in `cur/` when the snapshot was taken.
    pub file: String,
    /// The flags in that name.
    pub flags: Flags,
    /// The size (`W=`, else `S=`, else the file's length).
    pub size: u64,
    /// No session had seen it before this one (RFC 3501 §2.3.2).
    pub recent: bool,
    /// Its MODSEQ (RFC 7162 §3.1): raised by every change of its flags.
    pub modseq: u64,
}

/// The state of a mailbox at one sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// UIDVALIDITY.
    pub validity: u32,
    /// UIDNEXT.
    pub next: u32,
    /// HIGHESTMODSEQ (RFC 7162 §3.1.1).
    pub highest_modseq: u64,
    /// The messages, ascending by UID.
    pub messages: Vec<Message>,
}

/// An open mailbox directory.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub(crate) path: PathBuf,
}

impl Mailbox {
    /// Opens the Maildir at `path`, creating `tmp/`, `new/`, `cur/` where
    /// missing.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Mailbox> {
        let md = crate::Maildir::create(path)?;
        Ok(Mailbox {
            path: md.path().to_owned(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keyword names, index 0 first.
    pub fn keywords(&self) -> Vec<String> {
        fs::read_to_string(self.path.join(KEYWORDS))
            .map(|t| parse_keywords(&t))
            .unwrap_or_default()
    }

    /// The file of `msg` now: its snapshot name, or, if flags changed it
    /// since, the file with its base name. `None` once it is expunged.
    pub fn locate(&self, msg: &Message) -> io::Result<Option<PathBuf>> {
        let path = self.path.join("cur").join(&msg.file);
        if fs::symlink_metadata(&path).is_ok() {
            return Ok(Some(path));
        }
        let dir = self.path.join("cur");
        for name in names(&dir)? {
            if base_name(&name) == msg.base {
                return Ok(Some(dir.join(name)));
            }
        }
        Ok(None)
    }

    /// The message's bytes; `None` once it is expunged.
    pub fn read(&self, msg: &Message) -> io::Result<Option<Vec<u8>>> {
        for _ in 0..3 {
            let Some(path) = self.locate(msg)? else {
                return Ok(None);
            };
            match fs::read(&path) {
                Ok(bytes) => return Ok(Some(bytes)),
                // Renamed between locate and read: look again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// The internal date (RFC 3501 §2.3.3): the file's mtime, in seconds.
    pub fn internal_date(&self, msg: &Message) -> io::Result<i64> {
        let Some(path) = self.locate(msg)? else {
            return Ok(0);
        };
        let mtime = fs::metadata(path)?.modified()?;
        Ok(match mtime.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        })
    }

    /// Gives `msg` exactly `flags`; returns its new file name (`None` if
    /// it was expunged meanwhile).
    pub fn set_flags(&self, msg: &Message, flags: &Flags) -> io::Result<Option<String>> {
        Ok(self
            .change_flags(msg, |_| flags.clone())?
            .map(|(file, _)| file))
    }

    /// Changes the flags of `msg` by `change`, applied to the flags its
    /// file has now (not to a session's older view): the rename is from
    /// that exact name, and is retried when another session renamed the
    /// file first, so two concurrent STOREs never undo each other. Returns
    /// the new file name and flags; `None` if the message was expunged.
    pub fn change_flags(
        &self,
        msg: &Message,
        change: impl Fn(&Flags) -> Flags,
    ) -> io::Result<Option<(String, Flags)>> {
        for _ in 0..50 {
            let Some(path) = self.locate(msg)? else {
                return Ok(None);
            };
            let current = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let next = change(&Flags::from_name(&current, &self.keywords()));
            let target = format!("{}:{}", msg.base, self.info_for(&next)?);
            if target == current {
                return Ok(Some((target, next)));
            }
            match fs::rename(&path, self.path.join("cur").join(&target)) {
                Ok(()) => return Ok(Some((target, next))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(
            "the message's flags kept changing under us",
        ))
    }

    /// The info part for `flags`, registering new keywords in
    /// `dovecot-keywords` (under the uidlist lock, the one writer lock).
    pub(crate) fn info_for(&self, flags: &Flags) -> io::Result<String> {
        let mut keywords = self.keywords();
        let before = keywords.len();
        let info = flags.info(&mut keywords).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many keywords (26 at most)",
            )
        })?;
        if keywords.len() == before {
            return Ok(info);
        }
        let lock = Lock::acquire(&self.path)?;
        let mut current = self.keywords();
        let info = flags.info(&mut current).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many keywords (26 at most)",
            )
        })?;
        write_atomic(&self.path, KEYWORDS, render_keywords(&current).as_bytes())?;
        drop(lock);
        Ok(info)
    }

    /// Removes the message (IMAP EXPUNGE). Already gone counts as done.
    pub fn expunge(&self, msg: &Message) -> io::Result<()> {
        loop {
            let Some(path) = self.locate(msg)? else {
                return Ok(());
            };
            match fs::remove_file(&path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Copies `messages` into `dest` with their flags and dates (hard
    /// links where the filesystem allows, as Dovecot does); returns the
    /// new UIDs in order (UIDPLUS COPYUID). Expunged ones are skipped.
    pub fn copy_to(&self, messages: &[Message], dest: &Mailbox) -> io::Result<Vec<(u32, u32)>> {
        let mut made = Vec::new();
        for msg in messages {
            let Some(path) = self.locate(msg)? else {
                continue;
            };
            let base = unique_name(msg.size);
            let info = dest.info_for(&msg.flags)?;
            let target = dest.path.join("cur").join(format!("{base}:{info}"));
            if fs::hard_link(&path, &target).is_err() {
                let tmp = dest.path.join("tmp").join(&base);
                fs::copy(&path, &tmp)?;
                if let Ok(m) = fs::metadata(&path).and_then(|m| m.modified()) {
                    let _ = File::options().write(true).open(&tmp)?.set_modified(m);
                }
                fsync::file(&File::open(&tmp)?)?;
                fs::rename(&tmp, &target)?;
            }
            made.push((msg.uid, base));
        }
        fsync::dir(&dest.path.join("cur"))?;
        // Peek: the copies are \Recent for the session that sees them
        // first, which is not this call.
        let snapshot = dest.peek()?;
        Ok(made
            .into_iter()
            .filter_map(|(old, base)| {
                snapshot
                    .messages
                    .iter()
                    .find(|m| m.base == base)
                    .map(|m| (old, m.uid))
            })
            .collect())
    }
}

/// The message files in `dir` (dot files and non-UTF-8 names skipped).
pub(crate) fn names(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string()
            && !name.starts_with('.')
        {
            out.push(name);
        }
    }
    Ok(out)
}

/// Writes `name` in `dir` through a temporary file, fsynced, and a rename.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    replace_file(dir, name, bytes, true)
}

/// [`write_atomic`], with the fsync before the rename only when `durable`.
pub(crate) fn replace_file(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> io::Result<()> {
    // Unique per call, not only per process: sessions of one daemon write
    // the same file (subscriptions, keywords) from several threads, and a
    // shared temporary name let one rename away the other's file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{name}.tmp.{}.{n}", std::process::id()));
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Maildir;

    #[test]
    fn concurrent_atomic_writes_of_one_file_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|scope| {
            for i in 0..8 {
                let dir = dir.path();
                scope.spawn(move || {
                    for _ in 0..50 {
                        write_atomic(dir, "subscriptions", format!("{i}\n").as_bytes()).unwrap();
                    }
                });
            }
        });
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "temporary files left behind");
    }

    #[test]
    fn uids_are_stable_and_flags_survive() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        md.deliver(b"one\r\n").unwrap();
        md.deliver(b"two\r\n").unwrap();
        let mb = Mailbox::open(dir.path()).unwrap();
        let s = mb.sync().unwrap();
        assert_eq!(s.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2]);
        assert!(s.messages.iter().all(|m| m.recent));
        assert_eq!(s.next, 3);
        let mut f = Flags::new();
        f.insert("\\Seen");
        f.insert("$Junk");
        mb.set_flags(&s.messages[0], &f).unwrap();
        md.deliver(b"three\r\n").unwrap();
        let t = mb.sync().unwrap();
        assert_eq!(t.validity, s.validity);
        assert_eq!(t.messages.len(), 3);
        assert_eq!(t.messages[0].flags, f);
        assert!(!t.messages[0].recent && t.messages[2].recent);
        assert_eq!(t.messages[2].uid, 3);
        md.deliver(b"four\r\n").unwrap();
        let peeked = mb.peek().unwrap();
        assert_eq!(peeked.messages.len(), 4);
        assert!(peeked.messages[3].recent && peeked.next == 5);
        // Peeking claimed nothing: the next sync still gets it as recent,
        // with the UID the peek gave it.
        let claimed = mb.sync().unwrap();
        assert!(claimed.messages[3].recent && claimed.messages[3].uid == 4);
        mb.expunge(&claimed.messages[3]).unwrap();
        assert_eq!(mb.read(&s.messages[0]).unwrap().unwrap(), b"one\r\n");
        assert_eq!(mb.keywords(), ["$Junk"]);
        mb.expunge(&t.messages[1]).unwrap();
        let u = mb.sync().unwrap();
        assert_eq!(u.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(mb.read(&t.messages[1]).unwrap(), None);
    }

    #[test]
    fn lost_uidlist_is_rebuilt_with_new_validity() {
        let dir = tempfile::tempdir().unwrap();
        let mb = Mailbox::open(dir.path()).unwrap();
        mb.append(b"a\r\n", &Flags::new(), Some(1_000_000_000))
            .unwrap();
        let s = mb.sync().unwrap();
        assert_eq!(mb.internal_date(&s.messages[0]).unwrap(), 1_000_000_000);
        fs::write(dir.path().join(crate::uidlist::FILE), "damaged").unwrap();
        let t = mb.sync().unwrap();
        assert_eq!(t.messages.len(), 1);
        assert_eq!(t.messages[0].uid, 1);
    }

    /// A Maildir as Dovecot leaves it: its uidlist with a GUID field and
    /// a gap, `W=` sizes, keyword letters, LF line ends, a message in
    /// `new/` it has not seen yet.
    #[test]
    fn reads_a_maildir_dovecot_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        fs::write(
            root.join("dovecot-uidlist"),
            "3 V1700000000 N4 G3085f01b7f11094c501100008c4a11c1\n\
             1 :1700000000.M1P2.host,S=6,W=8\n\
             3 :1700000001.M2P2.host,S=4,W=5\n",
        )
        .unwrap();
        fs::write(root.join("dovecot-keywords"), "0 $Forwarded\n1 NonJunk\n").unwrap();
        fs::write(
            root.join("cur/1700000000.M1P2.host,S=6,W=8:2,RSb"),
            "a\nbcd\n",
        )
        .unwrap();
        fs::write(root.join("cur/1700000001.M2P2.host,S=4,W=5:2,"), "xyz\n").unwrap();
        fs::write(root.join("new/1700000002.M3P2.host,S=3,W=4"), "qq\n").unwrap();
        let mb = Mailbox::open(root).unwrap();
        let s = mb.sync().unwrap();
        assert_eq!((s.validity, s.next), (1_700_000_000, 5));
        let uids: Vec<u32> = s.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids, [1, 3, 4]);
        let flags: Vec<&str> = s.messages[0].flags.iter().collect();
        assert_eq!(flags, ["NonJunk", "\\Answered", "\\Seen"]);
        assert_eq!(s.messages[0].size, 8, "W= is the CRLF size");
        assert!(s.messages[2].recent && !s.messages[0].recent);
        // The list stays in Dovecot's format, with the new UID added.
        let text = fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
        assert!(
            text.starts_with("3 V1700000000 N5\n1 :1700000000.M1P2.host,S=6,W=8\n"),
            "{text}"
        );
        assert!(
            text.ends_with("4 :1700000002.M3P2.host,S=3,W=4\n"),
            "{text}"
        );
        assert!(root.join("cur/1700000002.M3P2.host,S=3,W=4:2,").exists());
    }

    #[test]
    fn concurrent_flag_changes_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mb = Mailbox::open(dir.path()).unwrap();
        mb.append(b"m\r\n", &Flags::new(), None).unwrap();
        let msg = mb.sync().unwrap().messages.remove(0);
        let threads: Vec<_> = ["\\Seen", "\\Flagged", "\\Answered", "$Work"]
            .into_iter()
            .map(|flag| {
                let (mb, msg) = (mb.clone(), msg.clone());
                std::thread::spawn(move || {
                    for _ in 0..30 {
                        mb.change_flags(&msg, |now| {
                            let mut next = now.clone();
                            next.insert(flag);
                            next
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let flags = mb.sync().unwrap().messages.remove(0).flags;
        let names: Vec<&str> = flags.iter().collect();
        assert_eq!(names, ["$Work", "\\Answered", "\\Flagged", "\\Seen"]);
    }

    #[test]
    fn append_copy_and_concurrent_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let a = Mailbox::open(dir.path().join("a")).unwrap();
        let b = Mailbox::open(dir.path().join("b")).unwrap();
        let mut f = Flags::new();
        f.insert("\\Flagged");
        let (validity, uid) = a.append(b"x\r\n", &f, None).unwrap();
        assert_eq!(uid, 1);
        assert_eq!(validity, a.peek().unwrap().validity);
        let s = a.sync().unwrap();
        assert_eq!(a.copy_to(&s.messages, &b).unwrap(), [(1, 1)]);
        let t = b.sync().unwrap();
        assert!(t.messages[0].flags.has("\\flagged"));
        // Deliveries racing with syncs from many threads: every message
        // gets exactly one UID, the same in every view.
        let md = Maildir::create(dir.path().join("a")).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let (a, md) = (a.clone(), md.clone());
                std::thread::spawn(move || {
                    for j in 0..25 {
                        md.deliver(format!("{i}/{j}").as_bytes()).unwrap();
                        a.sync().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let end = a.sync().unwrap();
        assert_eq!(end.messages.len(), 101);
        let uids: Vec<u32> = end.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids, (1..=101).collect::<Vec<_>>());
    }
}
