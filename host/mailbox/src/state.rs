//! What IMAP needs of a mailbox beyond UIDs and flags, kept beside the
//! Maildir in `postern-state`: CONDSTORE mod-sequences (RFC 7162 §3.1)
//! and which messages are still \Recent (RFC 3501 §2.3.2). Dovecot keeps
//! both in its index (`dovecot.index`: per-message modseqs and
//! `first_recent_uid`); Postern keeps the same two things in a small text
//! file of its own, which Dovecot ignores:
//!
//! ```text
//! postern-state 1 V1700000000 H1700000000123458 R4 C9f1c0e2d3b4a5968
//! 1 1700000000123401 :RS
//! 3 1700000000123458 :
//! ```
//!
//! `V` is the UIDVALIDITY the file belongs to (another one voids it), `H`
//! HIGHESTMODSEQ, `R` the first UID no session has seen yet (Dovecot's
//! `first_recent_uid`: every message from it on is \Recent for the next
//! session that syncs, and for that one only). Each line is a UID, its
//! MODSEQ, and the flag letters its file name had when that MODSEQ was
//! given, so that a change by anyone (another session, Dovecot, mutt) is
//! seen as a changed name and gets a new MODSEQ at the next sync.
//!
//! The file is rewritten in place (no file created per change: creating and
//! deleting inodes is most of what a busy mailbox costs the kernel) under
//! an flock(2) of the file itself ([`Held`]), which every writer takes,
//! after the `dovecot-uidlist` dotlock when it holds that too. Readers
//! without the lock may catch a rewrite half done, so the header carries a
//! checksum of the file (`C`, FNV-1a 64 of the text without the field): a
//! torn read is a damaged file, and the reader takes the lock and reads
//! again. A file without `C` (an older Postern's, written by rename) is
//! replaced by rename once, then rewritten in place from then on. As
//! Dovecot's index under `mail_fsync = optimized` ([`crate::fsync`]), it
//! is not fsynced: a crash of the machine may bring back an older state,
//! or none. What that can cost, and why it is safe:
//! - flag changes made since are seen again as changed names at the next
//!   sync and get new MODSEQs; a \Recent claim lost makes messages recent
//!   again, which RFC 3501 §2.3.2 allows; UIDs are not kept here.
//! - MODSEQs must never go backwards (a client's cached HIGHESTMODSEQ must
//!   not lie ahead of the server's). A state written without an fsync
//!   names the boot it was written in (`B`, [`crate::fsync::boot_id`]); one
//!   read in a later boot may be older than what clients were told, so its
//!   HIGHESTMODSEQ is raised to the clock in microseconds
//!   ([`State::raise_after_reboot`]) before anything is handed out.
//! - a fresh state's MODSEQs likewise start at the clock, not at 1: a state
//!   that was lost and rebuilt still only grows. This holds as long as a
//!   mailbox sees fewer than a million changes a second on average.
//!
//! With `mail_fsync = always` (or without a boot id to tell) the state is
//! fsynced before the rename whenever MODSEQs changed, and carries no `B`.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The file's name.
pub const FILE: &str = "postern-state";

/// The parsed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The UIDVALIDITY the UIDs below belong to.
    pub validity: u32,
    /// HIGHESTMODSEQ (RFC 7162 §3.1.1): the largest MODSEQ given, raised
    /// by expunges too.
    pub highest: u64,
    /// Messages with this UID and above are \Recent for the next session
    /// that claims them.
    pub first_recent: u32,
    /// UID to (MODSEQ, flag letters of its file name).
    pub records: BTreeMap<u32, (u64, String)>,
    /// The boot it was written in without an fsync (`None`: it was
    /// fsynced, or is new).
    pub boot: Option<String>,
}

impl State {
    /// A state for a mailbox that had none: MODSEQs from the clock.
    pub fn fresh(validity: u32, first_recent: u32) -> State {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(1);
        State {
            validity,
            highest: u64::try_from(micros).unwrap_or(1).max(1),
            first_recent,
            records: BTreeMap::new(),
            boot: None,
        }
    }

    /// Whether this state was written without an fsync in an earlier
    /// boot of the machine, so that a crash may have reverted it.
    pub fn from_earlier_boot(&self) -> bool {
        self.boot
            .as_deref()
            .is_some_and(|b| crate::fsync::boot_id().is_some_and(|now| now != b))
    }

    /// Raises HIGHESTMODSEQ past anything a reverted state could have
    /// handed out before the crash (to the clock in microseconds, see the
    /// module's comment), and gives every message a new MODSEQ above it:
    /// what clients were told of the flags since is unknown (a flag rename
    /// may have been lost too), so a CONDSTORE client fetches them all
    /// again once.
    pub fn raise_after_reboot(&mut self) {
        let now = State::fresh(self.validity, self.first_recent).highest;
        self.highest = self.highest.max(now);
        for (modseq, _) in self.records.values_mut() {
            self.highest = self.highest.saturating_add(1);
            *modseq = self.highest;
        }
        self.highest = self.highest.saturating_add(1);
        self.boot = None;
    }

    /// Parses the file; `None` if it is not one (then it is rebuilt).
    pub fn parse(text: &str) -> Option<State> {
        State::parse_checked(text).map(|(state, _)| state)
    }

    /// [`State::parse`], and whether the file carried its checksum (then
    /// it may be rewritten in place: a torn read of it is detected).
    fn parse_checked(text: &str) -> Option<(State, bool)> {
        let (first, body) = text.split_once('\n').unwrap_or((text, ""));
        let (first, checked) = match first.rsplit_once(" C") {
            Some((rest, sum)) => {
                // Covers the header without the field, and every line.
                let want = u64::from_str_radix(sum, 16).ok()?;
                if checksum(rest, body) != want {
                    return None;
                }
                (rest, true)
            }
            None => (first, false),
        };
        let lines = body.lines();
        let mut header = first.split(' ');
        if header.next()? != "postern-state" || header.next()? != "1" {
            return None;
        }
        let (mut validity, mut highest, mut first_recent) = (None, None, None);
        let mut boot = None;
        for field in header {
            if let Some(v) = field.strip_prefix('V') {
                validity = v.parse().ok();
            } else if let Some(h) = field.strip_prefix('H') {
                highest = h.parse().ok();
            } else if let Some(r) = field.strip_prefix('R') {
                first_recent = r.parse().ok();
            } else if let Some(b) = field.strip_prefix('B') {
                boot = Some(b.to_owned());
            }
        }
        let mut state = State {
            validity: validity?,
            highest: highest?,
            first_recent: first_recent?,
            records: BTreeMap::new(),
            boot,
        };
        for line in lines.filter(|l| !l.is_empty()) {
            let (uid, rest) = line.split_once(' ')?;
            let (modseq, letters) = rest.split_once(" :")?;
            let modseq: u64 = modseq.parse().ok()?;
            if modseq > state.highest {
                return None;
            }
            state
                .records
                .insert(uid.parse().ok()?, (modseq, letters.to_owned()));
        }
        Some((state, checked))
    }

    /// The text of the file.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut header = format!(
            "postern-state 1 V{} H{} R{}",
            self.validity, self.highest, self.first_recent
        );
        if let Some(boot) = &self.boot {
            header.push_str(&format!(" B{boot}"));
        }
        let mut body = String::with_capacity(self.records.len() * 28);
        for (uid, (modseq, letters)) in &self.records {
            let _ = writeln!(body, "{uid} {modseq} :{letters}");
        }
        let sum = checksum(&header, &body);
        format!("{header} C{sum:016x}\n{body}")
    }

    /// Brings the records up to the messages present now, `(UID, flag
    /// letters)`: a new message or a changed name gets the next MODSEQ;
    /// expunged ones are forgotten and raise HIGHESTMODSEQ (as Dovecot
    /// does, so that a client's CHANGEDSINCE sees something happened).
    /// Returns whether anything changed.
    pub fn update(&mut self, present: &[(u32, &str)]) -> bool {
        let live: HashSet<u32> = present.iter().map(|(u, _)| *u).collect();
        let before = self.records.len();
        self.records.retain(|uid, _| live.contains(uid));
        let mut changed = self.records.len() != before;
        if changed {
            self.highest = self.highest.saturating_add(1);
        }
        for (uid, letters) in present {
            if self.records.get(uid).is_some_and(|(_, l)| l == letters) {
                continue;
            }
            self.highest = self.highest.saturating_add(1);
            self.records
                .insert(*uid, (self.highest, (*letters).to_owned()));
            changed = true;
        }
        changed
    }

    /// The MODSEQ of `uid` (0 if it has none yet).
    pub fn modseq(&self, uid: u32) -> u64 {
        self.records.get(&uid).map_or(0, |(m, _)| *m)
    }
}

/// The flag letters of a file name (after `:2,`; none without it).
pub fn letters(name: &str) -> &str {
    name.split_once(":2,").map_or("", |(_, l)| l)
}

/// Reads the state in `dir`: `None` if there is none or it is damaged.
pub fn read(dir: &Path) -> io::Result<Option<State>> {
    match fs::read_to_string(dir.join(FILE)) {
        Ok(text) => Ok(State::parse(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(None),
        Err(e) => Err(e),
    }
}

/// FNV-1a 64 of the header (without its `C` field), a newline and the
/// lines: not a defence against anyone, a test for a read that caught a
/// rewrite half done (or a crash that left one).
fn checksum(header: &str, body: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in header.bytes().chain([b'\n']).chain(body.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

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

    #[test]
    fn round_trip_and_damage() {
        let mut s = State::fresh(7, 1);
        assert!(s.highest > 1_600_000_000_000_000, "from the clock");
        assert!(s.update(&[(1, "S"), (2, "")]));
        assert!(!s.update(&[(1, "S"), (2, "")]), "nothing changed");
        let again = State::parse(&s.render()).unwrap();
        assert_eq!(again, s);
        for bad in [
            "",
            "postern-state 2 V1 H1 R1\n",
            "postern-state 1 V1 R1\n",
            "postern-state 1 V1 H5 R1\n1 9 :S\n",
            "postern-state 1 V1 H5 R1\nx 1 :S\n",
            "postern-state 1 V1 H5 R1\n1 1 S\n",
        ] {
            assert!(State::parse(bad).is_none(), "{bad:?}");
        }
    }

    /// A reader without the lock may catch an in-place rewrite half
    /// done: the checksum makes that a damaged file, never a wrong state.
    #[test]
    fn a_torn_or_changed_file_fails_its_checksum() {
        let mut s = State::fresh(7, 3);
        s.update(&[(1, "S"), (2, ""), (3, "F")]);
        let text = s.render();
        assert!(text.lines().next().unwrap().contains(" C"), "{text}");
        assert_eq!(State::parse_checked(&text), Some((s.clone(), true)));
        // Cut at a line end, a line changed, an old tail left behind.
        let cut = &text[..text.rfind("3 ").unwrap()];
        assert!(State::parse(cut).is_none(), "{cut}");
        assert!(State::parse(&text.replace(":S", ":T")).is_none());
        assert!(State::parse(&format!("{text}4 1 :S\n")).is_none());
        // An older Postern's file, without the field, is read as it is.
        let legacy = "postern-state 1 V7 H9 R3\n1 8 :S\n";
        assert_eq!(State::parse_checked(legacy).map(|(_, c)| c), Some(false));
    }

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

    #[test]
    fn changes_and_expunges_raise_modseqs() {
        let mut s = State::fresh(1, 1);
        s.update(&[(1, ""), (2, "")]);
        let (m1, m2) = (s.modseq(1), s.modseq(2));
        assert!(m2 > m1 && s.highest == m2);
        s.update(&[(1, "F"), (2, "")]);
        assert!(s.modseq(1) > m2 && s.modseq(2) == m2);
        let h = s.highest;
        s.update(&[(1, "F")]);
        assert!(s.highest > h && s.modseq(2) == 0);
        assert_eq!(letters("1.M2.h,S=3:2,FS"), "FS");
        assert_eq!(letters("1.M2.h,S=3"), "");
    }

    /// Two sessions and a delivery on one mailbox: \Recent goes to one
    /// session only, peeking claims nothing, every change raises MODSEQs
    /// that both sessions see, and UNCHANGEDSINCE refuses what changed.
    #[test]
    fn recent_once_and_modseqs_across_sessions() {
        use crate::{Flags, Mailbox, Maildir};
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        let (a, b) = (
            Mailbox::open(dir.path()).unwrap(),
            Mailbox::open(dir.path()).unwrap(),
        );
        md.deliver(b"one\r\n").unwrap();
        let peeked = b.peek().unwrap();
        assert!(peeked.messages[0].recent);
        let first = a.sync().unwrap();
        assert!(first.messages[0].recent, "peeking claimed nothing");
        assert!(
            !b.sync().unwrap().messages[0].recent,
            "recent in one session only"
        );
        // APPEND goes to cur/ directly and is recent all the same.
        a.append(b"two\r\n", &Flags::new(), None).unwrap();
        let s = b.sync().unwrap();
        assert!(s.messages[1].recent && !a.sync().unwrap().messages[1].recent);
        let h = s.highest_modseq;
        assert_eq!(h, s.messages[1].modseq);
        // A flag change by one session is a higher MODSEQ for the other.
        let mut seen = Flags::new();
        seen.insert("\\Seen");
        a.set_flags(&s.messages[0], &seen).unwrap();
        let t = b.sync().unwrap();
        assert!(t.messages[0].modseq > h && t.highest_modseq == t.messages[0].modseq);
        assert_eq!(t.messages[1].modseq, s.messages[1].modseq);
        // UNCHANGEDSINCE: message 1 changed after `h`, message 2 did not.
        let flag = |now: &Flags| {
            let mut next = now.clone();
            next.insert("\\Flagged");
            next
        };
        let modified = b.store_unchanged_since(&t.messages, h, flag).unwrap();
        assert_eq!(modified, [t.messages[0].uid]);
        let u = a.sync().unwrap();
        assert!(u.messages[1].flags.has("\\Flagged") && !u.messages[0].flags.has("\\Flagged"));
        assert!(u.messages[1].modseq > t.highest_modseq);
        // An expunge raises HIGHESTMODSEQ; a lost state starts above it.
        a.expunge(&u.messages[0]).unwrap();
        let v = b.sync().unwrap();
        assert!(v.highest_modseq > u.highest_modseq && v.messages.len() == 1);
        fs::remove_file(dir.path().join(FILE)).unwrap();
        let w = a.sync().unwrap();
        assert!(w.highest_modseq > v.highest_modseq, "{w:?} {v:?}");
        assert!(
            !w.messages[0].recent,
            "messages in cur/ are not recent again"
        );
    }

    /// Sessions changing flags and syncing from many threads at once:
    /// every message ends with its own MODSEQ, none above HIGHESTMODSEQ,
    /// and the state on disk stays readable.
    #[test]
    fn concurrent_changes_get_distinct_modseqs() {
        use crate::{Flags, Mailbox, Maildir};
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        for i in 0..8 {
            md.deliver(format!("m{i}\r\n").as_bytes()).unwrap();
        }
        let mb = Mailbox::open(dir.path()).unwrap();
        let messages = mb.sync().unwrap().messages;
        std::thread::scope(|scope| {
            for (i, m) in messages.iter().enumerate() {
                let mb = mb.clone();
                scope.spawn(move || {
                    for n in 0..10 {
                        let mut f = Flags::new();
                        f.insert(if (i + n) % 2 == 0 {
                            "\\Seen"
                        } else {
                            "\\Flagged"
                        });
                        mb.set_flags(m, &f).unwrap();
                        mb.sync().unwrap();
                    }
                });
            }
        });
        let end = mb.sync().unwrap();
        let mut seqs: Vec<u64> = end.messages.iter().map(|m| m.modseq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 8);
        assert!(seqs.iter().all(|m| *m <= end.highest_modseq));
        assert!(read(dir.path()).unwrap().is_some());
    }
}
