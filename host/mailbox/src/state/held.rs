//! [`Held`]: the state file opened under its flock(2), read and rewritten
//! in place (or replaced once by rename when it is an older one), and
//! fsynced as `mail_fsync` says. Apart from the text it holds
//! ([`super::format`]) and what that means: this is the file and its lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{FILE, State};

/// The state file opened and locked (flock(2), exclusive): the one lock
/// every writer of the state holds, taken after the uidlist dotlock by
/// those that hold it too (never the other way round), released on drop.
#[derive(Debug)]
pub(crate) struct Held {
    file: File,
    dir: PathBuf,
    /// What is in the file may be rewritten in place: it is empty or
    /// carries its checksum. An older file is replaced by rename.
    in_place: bool,
}

impl Held {
    /// Opens (creating it empty if missing) and locks the state in `dir`.
    /// A file replaced by rename while this waited is opened again: the
    /// lock must be on the file that is there.
    pub(crate) fn acquire(dir: &Path) -> io::Result<Held> {
        let path = dir.join(FILE);
        for _ in 0..100 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)?;
            file.lock()?;
            let held = file.metadata()?;
            match fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Held {
                        file,
                        dir: dir.to_owned(),
                        in_place: true,
                    });
                }
                // Replaced or removed meanwhile: lock the one there now.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "{} keeps being replaced",
            path.display()
        )))
    }

    /// The state in the file: `None` if it is empty or damaged.
    pub(crate) fn read(&mut self) -> io::Result<Option<State>> {
        let mut text = String::new();
        let mut file = &self.file;
        if let Err(e) = file.read_to_string(&mut text) {
            if e.kind() == io::ErrorKind::InvalidData {
                self.in_place = false;
                return Ok(None);
            }
            return Err(e);
        }
        Ok(match State::parse_checked(&text) {
            Some((state, checked)) => {
                self.in_place = checked;
                Some(state)
            }
            None => {
                // Empty (new) is rewritten in place; damaged is replaced.
                self.in_place = text.is_empty();
                None
            }
        })
    }

    /// Writes `state`. `changed`: MODSEQs changed (not only the \Recent
    /// claim), which `mail_fsync = always` fsyncs. Written without an
    /// fsync, the state names this boot, so that a later boot knows it
    /// may have been reverted.
    pub(crate) fn write(&mut self, state: &State, changed: bool) -> io::Result<()> {
        let (text, durable) = file_text(state, changed);
        if !self.in_place {
            crate::store::replace_file(&self.dir, FILE, text.as_bytes(), durable)?;
            // This lock is on the replaced file now: nothing more through it.
            return Ok(());
        }
        self.file.write_all_at(text.as_bytes(), 0)?;
        self.file.set_len(text.len() as u64)?;
        if durable {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

/// The file's text as [`Held::write`] puts it, and whether it is fsynced.
fn file_text(state: &State, changed: bool) -> (String, bool) {
    let durable = changed && crate::fsync::state();
    let state = State {
        boot: match durable {
            true => None,
            false => crate::fsync::boot_id().map(str::to_owned),
        },
        ..state.clone()
    };
    (state.render(), durable)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::read;

    /// Flag changes rewrite the state in place under its flock: no lock
    /// file, no new inode per change; an older file is replaced once.
    #[test]
    fn state_is_rewritten_in_place() {
        use crate::{Flags, Mailbox, Maildir};
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        md.deliver(b"one\r\n").unwrap();
        let mb = Mailbox::open(dir.path()).unwrap();
        let s = mb.sync().unwrap();
        // As an older Postern left it: without a checksum.
        let old = read(dir.path()).unwrap().unwrap().render();
        let (header, body) = old.split_once('\n').unwrap();
        let header = header.rsplit_once(" C").unwrap().0;
        fs::write(dir.path().join(FILE), format!("{header}\n{body}")).unwrap();
        let ino = || {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(dir.path().join(FILE)).unwrap().ino()
        };
        let legacy = ino();
        let mut f = Flags::new();
        f.insert("\\Seen");
        mb.set_flags(&s.messages[0], &f).unwrap();
        let t = mb.sync().unwrap();
        assert!(t.messages[0].modseq > s.messages[0].modseq);
        let first = ino();
        assert_ne!(first, legacy, "the older file is replaced whole");
        for flag in ["\\Flagged", "\\Answered", "$Work"] {
            f.insert(flag);
            mb.set_flags(&t.messages[0], &f).unwrap();
            let u = mb.sync().unwrap();
            assert_eq!(u.messages[0].flags, f);
            assert_eq!(ino(), first, "rewritten in place");
            assert!(!dir.path().join(crate::uidlist::LOCK).exists());
        }
        let text = fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(State::parse_checked(&text).unwrap().1, "{text}");
    }
}
