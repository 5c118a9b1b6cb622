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
//! an flock(2) of the file itself (`Held`), which every writer takes,
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
use std::fs;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

mod format;
mod held;

pub(crate) use held::Held;

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
