//! A Maildir and the delivery protocol into it.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::msgfile::{self, Written};
use crate::unique::unique_name;

/// Directories are the user's alone, as Dovecot creates them.
const DIR_MODE: u32 = 0o700;

/// A Maildir on disk: `tmp/`, `new/` and `cur/` under one directory.
#[derive(Debug, Clone)]
pub struct Maildir {
    path: PathBuf,
}

impl Maildir {
    /// Opens the Maildir at `path`, creating it and its `tmp/`, `new/` and
    /// `cur/` (mode 0700, parents too) where missing, and fsyncs the parent
    /// of every directory it created. Existing directories are left as
    /// they are.
    pub fn create(path: impl Into<PathBuf>) -> io::Result<Maildir> {
        let path = path.into();
        // The directories this call creates, so that their entries can be
        // made durable: a message fsynced into a Maildir whose own entry
        // was lost in a crash would be lost with it.
        let mut created: Vec<PathBuf> = path
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && fs::symlink_metadata(p).is_err())
            .map(Path::to_path_buf)
            .collect();
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(DIR_MODE);
        for sub in ["tmp", "new", "cur"] {
            let dir = path.join(sub);
            if fs::symlink_metadata(&dir).is_err() {
                created.push(dir.clone());
            }
            builder.create(dir)?;
        }
        for dir in &created {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        Ok(Maildir { path })
    }

    /// The Maildir at `path`, as it is: nothing is checked or created
    /// (a delivery into a Maildir that is not there fails with
    /// `NotFound`).
    pub fn at(path: impl Into<PathBuf>) -> Maildir {
        Maildir { path: path.into() }
    }

    /// Delivers `parts` into the Maildir at `path` (see
    /// [`Maildir::deliver_parts`]), creating it as [`Maildir::create`] does
    /// only when the delivery finds it, or its `tmp/` or `new/`, missing.
    /// A Maildir that exists, the common case, costs no directory checks
    /// at all; one removed since is made again by the next delivery. What
    /// the first try left behind is already cleaned up when it fails.
    pub fn deliver_creating(path: impl Into<PathBuf>, parts: &[&[u8]]) -> io::Result<PathBuf> {
        let maildir = Maildir::at(path);
        match maildir.deliver_parts(parts) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Maildir::create(maildir.path)?.deliver_parts(parts)
            }
            done => done,
        }
    }

    /// The Maildir's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Delivers one message to `new/` and returns its path there. When this
    /// returns `Ok`, the file and its directory entry are on disk (fsynced);
    /// on any error nothing is left in `tmp/` or `new/`. `content` is
    /// written byte for byte.
    pub fn deliver(&self, content: &[u8]) -> io::Result<PathBuf> {
        self.deliver_parts(&[content])
    }

    /// Like [`Maildir::deliver`], with the message given in pieces (added
    /// header lines, then the message as queued) so no copy is made.
    ///
    /// The file is written in `tmp/` and renamed into `new/` (module
    /// `msgfile`): on a file system with an ordered journal with
    /// `O_DIRECT`, so that the fsync of `new/` is the one journal commit
    /// that makes the file and its name durable; elsewhere fsynced first.
    pub fn deliver_parts(&self, parts: &[&[u8]]) -> io::Result<PathBuf> {
        self.deliver_written(parts).map(|(path, _)| path)
    }

    /// [`Maildir::deliver_parts`], saying how the file was written.
    fn deliver_written(&self, parts: &[&[u8]]) -> io::Result<(PathBuf, Written)> {
        let size: usize = parts.iter().map(|p| p.len()).sum();
        self.deliver_named(&unique_name(size as u64), parts)
    }

    /// Delivers `parts` as `new/NAME`, failing if that exists.
    fn deliver_named(&self, name: &str, parts: &[&[u8]]) -> io::Result<(PathBuf, Written)> {
        let tmp = self.path.join("tmp").join(name);
        let new = self.path.join("new").join(name);
        let how = match msgfile::write(&tmp, parts, None)
            .and_then(|(_file, how)| msgfile::publish(&tmp, &new).map(|()| how))
        {
            Ok(how) => how,
            Err(e) => {
                // Nothing half-written stays behind; the error that matters
                // is the first one.
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        // The fsync of new/ is shared with concurrent deliveries to this
        // Maildir (one disk wait per batch): it is what lets the queue
        // forget the message, and on an ordered journal the only commit.
        if let Err(e) = crate::fsync::dir_shared(&self.path.join("new")) {
            let _ = fs::remove_file(&new);
            return Err(e);
        }
        Ok((new, how))
    }
}

/// Fsyncs a directory so that the entries made in it survive a crash
/// (unless `mail_fsync = never`).
fn sync_dir(dir: &Path) -> io::Result<()> {
    crate::fsync::dir(dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use super::*;
    use crate::unique::size_of_name;

    fn entries(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    #[test]
    fn create_makes_private_dirs_and_is_idempotent() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/Maildir");
        Maildir::create(&path).unwrap();
        Maildir::create(&path).unwrap();
        for sub in ["tmp", "new", "cur"] {
            let mode = fs::metadata(path.join(sub)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{sub}");
        }
    }

    #[test]
    fn delivers_byte_identical_content_with_size() {
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::create(root.path().join("Maildir")).unwrap();
        let content: Vec<u8> = b"Subject: hi\r\n\r\n.\r\n..\r\n"
            .iter()
            .copied()
            .chain(0u8..=255)
            .collect();
        let path = md.deliver(&content).unwrap();
        assert_eq!(path.parent().unwrap(), md.path().join("new"));
        assert_eq!(fs::read(&path).unwrap(), content);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(size_of_name(name), Some(content.len() as u64));
        assert!(entries(&md.path().join("tmp")).is_empty());
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn parts_are_concatenated() {
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::create(root.path()).unwrap();
        let path = md.deliver_parts(&[b"A: 1\r\n", b"", b"body"]).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"A: 1\r\nbody");
        assert!(path.to_str().unwrap().ends_with(",S=10"));
    }

    #[test]
    fn unique_names_under_concurrency() {
        let root = tempfile::tempdir().unwrap();
        let md = Arc::new(Maildir::create(root.path()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let md = Arc::clone(&md);
                std::thread::spawn(move || {
                    (0..100)
                        .map(|i| md.deliver(format!("{t}/{i}").as_bytes()).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let paths: Vec<PathBuf> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let unique: HashSet<&PathBuf> = paths.iter().collect();
        assert_eq!(unique.len(), 800);
        assert_eq!(entries(&md.path().join("new")).len(), 800);
        let mut bodies: Vec<String> = paths
            .iter()
            .map(|p| String::from_utf8(fs::read(p).unwrap()).unwrap())
            .collect();
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), 800);
    }

    #[test]
    fn deliver_creating_makes_a_missing_maildir_again() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("home/Maildir");
        let first = Maildir::deliver_creating(&path, &[b"A: 1\r\n", b"one"]).unwrap();
        assert_eq!(fs::read(&first).unwrap(), b"A: 1\r\none");
        for sub in ["tmp", "new", "cur"] {
            assert!(path.join(sub).is_dir(), "{sub}");
        }
        // Removed behind our back (an operator, a user's client): the
        // next delivery makes it again rather than fail.
        fs::remove_dir_all(&path).unwrap();
        let second = Maildir::deliver_creating(&path, &[b"two"]).unwrap();
        assert_eq!(fs::read(&second).unwrap(), b"two");
        fs::remove_dir_all(path.join("new")).unwrap();
        let third = Maildir::deliver_creating(&path, &[b"three"]).unwrap();
        assert_eq!(fs::read(&third).unwrap(), b"three");
        assert!(entries(&path.join("tmp")).is_empty());
        // Other errors are not retried: a file where the Maildir should be.
        let file = root.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(Maildir::deliver_creating(file.join("Maildir"), &[b"x"]).is_err());
    }

    /// Trace headers and message, at sizes around the `O_DIRECT` block,
    /// arrive byte for byte, written either way.
    #[test]
    fn exact_bytes_around_the_block_size_on_both_paths() {
        use crate::msgfile::test::FORCE_JOURNAL;
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::create(root.path()).unwrap();
        let trace = b"Return-Path: <a@b>\r\nDelivered-To: c@d\r\n";
        for journal in [false, true] {
            FORCE_JOURNAL.with(|f| f.set(Some(journal)));
            for len in [1, 4095, 4096, 4097, 100_000] {
                let body: Vec<u8> = (0..len).map(|n| (n % 251) as u8).collect();
                let (path, how) = md.deliver_written(&[trace, &body]).unwrap();
                if !journal {
                    assert_eq!(how, Written::Synced);
                }
                let mut want = trace.to_vec();
                want.extend_from_slice(&body);
                assert_eq!(fs::read(&path).unwrap(), want, "{len} {how:?}");
                let name = path.file_name().unwrap().to_str().unwrap();
                assert_eq!(size_of_name(name), Some(want.len() as u64));
                let mode = fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
                // One part and an empty one, as the privsep helper's.
                let (path, _) = md.deliver_written(&[&body, b""]).unwrap();
                assert_eq!(fs::read(&path).unwrap(), body);
            }
            assert!(entries(&md.path().join("tmp")).is_empty());
        }
        FORCE_JOURNAL.with(|f| f.set(None));
    }

    /// A name already in `new/` is never replaced, whichever way the file
    /// is written, and the failed delivery leaves nothing in `tmp/`.
    #[test]
    fn a_message_in_new_is_never_replaced() {
        use crate::msgfile::test::FORCE_JOURNAL;
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::create(root.path()).unwrap();
        for journal in [false, true] {
            FORCE_JOURNAL.with(|f| f.set(Some(journal)));
            let name = format!("1.M1P1Q1.host{journal},S=3");
            fs::write(md.path().join("new").join(&name), b"old").unwrap();
            let err = md.deliver_named(&name, &[b"new!"]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{journal}");
            assert_eq!(fs::read(md.path().join("new").join(&name)).unwrap(), b"old");
            assert!(entries(&md.path().join("tmp")).is_empty());
        }
        FORCE_JOURNAL.with(|f| f.set(None));
    }

    /// tmpfs has no journal: the file is fsynced before its rename, as
    /// the Maildir spec has it.
    #[test]
    fn no_journal_keeps_the_classic_order() {
        let Ok(root) = tempfile::tempdir_in("/dev/shm") else {
            return; // no tmpfs here
        };
        let md = Maildir::create(root.path()).unwrap();
        let (path, how) = md.deliver_written(&[b"A: 1\r\n", b"body"]).unwrap();
        assert_eq!(how, Written::Synced);
        assert_eq!(fs::read(&path).unwrap(), b"A: 1\r\nbody");
    }

    /// The two paths side by side, 20 threads delivering 4 KiB messages
    /// into one Maildir: messages per second, CPU per message, journal
    /// commits per message. A measurement, not a check:
    /// `TMPDIR=/mnt/ext4 cargo test --release -p postern-mailbox --
    /// --ignored --nocapture measure_` with TMPDIR on a journaled ext4.
    #[test]
    #[ignore = "a measurement, for TMPDIR on a journaled ext4"]
    fn measure_delivery_paths() {
        use crate::msgfile::test::FORCE_JOURNAL;
        use std::time::Instant;
        let root = tempfile::tempdir().unwrap();
        let md = Arc::new(Maildir::create(root.path()).unwrap());
        let cpu = || -> f64 {
            let stat = fs::read_to_string("/proc/self/stat").unwrap();
            let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split(' ').collect();
            let ticks: f64 =
                fields[12].parse::<f64>().unwrap() + fields[13].parse::<f64>().unwrap();
            ticks / 100.0
        };
        let commits = || -> Option<u64> {
            let dev = fs::read_dir("/proc/fs/jbd2").ok()?.find_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.starts_with("loop").then_some(name)
            })?;
            let info = fs::read_to_string(format!("/proc/fs/jbd2/{dev}/info")).ok()?;
            info.split_whitespace().next()?.parse().ok()
        };
        let body = vec![b'x'; 4096];
        for round in 0..3 {
            for journal in [false, true] {
                let (n, threads) = (5000, 20);
                let (c0, j0, t0) = (cpu(), commits(), Instant::now());
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        let (md, body) = (Arc::clone(&md), body.clone());
                        std::thread::spawn(move || {
                            FORCE_JOURNAL.with(|f| f.set(Some(journal)));
                            for _ in 0..n / threads {
                                md.deliver_parts(&[b"Delivered-To: a@b\r\n", &body])
                                    .unwrap();
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap();
                }
                let secs = t0.elapsed().as_secs_f64();
                let per = |x: f64| x / f64::from(n);
                let commits = match (j0, commits()) {
                    (Some(a), Some(b)) => format!("{:.3}", per((b - a) as f64)),
                    _ => "?".to_owned(),
                };
                eprintln!(
                    "round {round}: {:12} {:6.0} msg/s, {:.3} ms CPU/msg, {commits} commits/msg",
                    if journal { "O_DIRECT" } else { "fsync file" },
                    f64::from(n) / secs,
                    1e3 * per(cpu() - c0),
                );
            }
        }
    }

    #[test]
    fn failure_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::create(root.path()).unwrap();
        fs::remove_dir(md.path().join("new")).unwrap();
        assert!(md.deliver(b"lost?").is_err());
        assert!(entries(&md.path().join("tmp")).is_empty());
    }
}
