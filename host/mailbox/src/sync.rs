//! A sync of one mailbox: `new/` moved into `cur/`, UIDs given to new
//! files (`dovecot-uidlist`), MODSEQs to new and changed ones and
//! \Recent handed to the first session that looks (`postern-state`,
//! [`crate::state`]), all read without a lock first; written, when
//! something changed, under the uidlist dotlock if UIDs are to be given,
//! else under the state file's own lock alone (a flag change, an expunge,
//! a \Recent claim: no lock file created); and the conditional STORE of
//! CONDSTORE, which must check and change under the dotlock.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::sync::Arc;

use crate::flags::Flags;
use crate::listing::{self, Files};
use crate::reader::base_name;
use crate::state::{self, Held, State};
use crate::store::{Mailbox, Message, Snapshot};
use crate::uidlist::{self, Lock, UidList};
use crate::unique::size_of_name;

impl Mailbox {
    /// Brings `new/` into `cur/`, the UID list and the MODSEQs up to
    /// date, and returns the messages; those no session had seen are
    /// \Recent for the caller, and for no later caller (RFC 3501
    /// §2.3.2). Takes the dotlock only when something changed.
    pub fn sync(&self) -> io::Result<Snapshot> {
        self.scan(true)
    }

    /// The messages without claiming \Recent (EXAMINE, STATUS): those no
    /// session has seen are reported recent and stay so for the next
    /// [`Mailbox::sync`].
    pub fn peek(&self) -> io::Result<Snapshot> {
        self.scan(false)
    }

    fn scan(&self, claim: bool) -> io::Result<Snapshot> {
        let from_new = self.move_new()?;
        // Without a lock first: most syncs find nothing to write.
        let mut state_only = None;
        if let (Some(mut list), Some(mut state)) =
            (uidlist::read(&self.path)?, state::read(&self.path)?)
            && state.validity == list.validity
            && !state.from_earlier_boot()
        {
            let files = self.cur_files(&list, &state)?;
            let settled = settle(&mut list, &mut state, &files, claim);
            if !settled.list_changed && !settled.state_changed && !settled.claimed {
                return Ok(self.snapshot(&list, &state, &files, &settled.recent));
            }
            if !settled.list_changed {
                state_only = Some((list, files));
            }
        }
        // Only MODSEQs or \Recent to write (a flag change, an expunge, a
        // claim): under the state's own lock, without the dotlock and the
        // file it creates.
        if let Some((list, files)) = state_only
            && let Some(snapshot) = self.settle_state(claim, list, &files)?
        {
            return Ok(snapshot);
        }
        let lock = Lock::acquire(&self.path)?;
        let mut held = Held::acquire(&self.path)?;
        let (mut list, mut state, files, fresh) = self.read_locked(&from_new, &mut held)?;
        let mut settled = settle(&mut list, &mut state, &files, claim);
        settled.state_changed |= fresh.state;
        settled.list_changed |= fresh.list;
        persist(lock, held, &list, &state, &settled)?;
        Ok(self.snapshot(&list, &state, &files, &settled.recent))
    }

    /// The sync under the state's lock alone, when no UID is to be given:
    /// `None` sends the caller to the dotlock (a new file needs a UID, the
    /// state is missing, damaged or from an earlier boot). The list and
    /// the files are those just read without a lock, only the state is read
    /// again under it (what must not lose a concurrent write): a name
    /// changed since is seen as changed by the next sync, which gives it its
    /// MODSEQ then, and a UID given since stays \Recent for the next one.
    fn settle_state(
        &self,
        claim: bool,
        mut list: UidList,
        files: &HashMap<String, String>,
    ) -> io::Result<Option<Snapshot>> {
        let mut held = Held::acquire(&self.path)?;
        let Some(mut state) = held.read()? else {
            return Ok(None);
        };
        if state.validity != list.validity || state.from_earlier_boot() {
            return Ok(None);
        }
        let settled = settle(&mut list, &mut state, files, claim);
        if settled.list_changed {
            return Ok(None);
        }
        if settled.state_changed || settled.claimed {
            held.write(&state, settled.state_changed)?;
        }
        Ok(Some(self.snapshot(&list, &state, files, &settled.recent)))
    }

    /// Moves what is in `new/` to `cur/` (with an empty info part, as
    /// Dovecot does); returns the base names it moved.
    fn move_new(&self) -> io::Result<HashSet<String>> {
        let mut moved = HashSet::new();
        let new = self.path.join("new");
        let (waiting, _) = listing::files(&new)?;
        for name in waiting.values() {
            let target = if name.contains(":2,") {
                name.clone()
            } else {
                format!("{name}:2,")
            };
            match fs::rename(new.join(name), self.path.join("cur").join(&target)) {
                Ok(()) => {
                    moved.insert(base_name(name).to_owned());
                }
                // Another session moved it first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    /// The list, the state and the files, read under the locks; a list or
    /// state that is missing or damaged is started afresh (and [`Fresh`]
    /// says so).
    fn read_locked(
        &self,
        from_new: &HashSet<String>,
        held: &mut Held,
    ) -> io::Result<(UidList, State, Arc<Files>, Fresh)> {
        let existing = uidlist::read(&self.path)?;
        let had_list = existing.is_some();
        let list = existing.unwrap_or_else(UidList::fresh);
        let mut fresh = false;
        let stored = held.read()?.filter(|s| s.validity == list.validity);
        let files = match &stored {
            Some(s) => self.cur_files(&list, s)?,
            // No state: every entry counts as seen.
            None => self.cur_files(&list, &State::fresh(list.validity, 1))?,
        };
        let state = match stored {
            Some(mut s) => {
                if s.from_earlier_boot() {
                    // Written without an fsync before a reboot: maybe
                    // reverted by a crash (see `state`).
                    s.raise_after_reboot();
                    fresh = true;
                }
                s
            }
            None => {
                fresh = true;
                let mut list = list.clone();
                // No state yet: in a new mailbox everything is recent; in
                // one that had UIDs (an older Postern, Dovecot) only what
                // was still in new/.
                assign(&mut list, &files);
                let first = if had_list {
                    list.entries
                        .iter()
                        .filter(|(_, b)| from_new.contains(b))
                        .map(|(u, _)| *u)
                        .min()
                        .unwrap_or(list.next)
                } else {
                    1
                };
                State::fresh(list.validity, first)
            }
        };
        let fresh = Fresh {
            list: !had_list,
            state: fresh,
        };
        Ok((list, state, files, fresh))
    }

    fn snapshot(
        &self,
        list: &UidList,
        state: &State,
        files: &HashMap<String, String>,
        recent: &HashSet<u32>,
    ) -> Snapshot {
        let keywords = self.keywords();
        let mut messages = Vec::with_capacity(list.entries.len());
        for (uid, base) in &list.entries {
            let Some(file) = files.get(base) else {
                continue;
            };
            let size = match size_of(file) {
                Some(s) => s,
                None => match fs::metadata(self.path.join("cur").join(file)) {
                    Ok(m) => m.len(),
                    Err(_) => continue,
                },
            };
            messages.push(Message {
                uid: *uid,
                base: base.clone(),
                file: file.clone(),
                flags: Flags::from_name(file, &keywords),
                size,
                recent: recent.contains(uid),
                modseq: state.modseq(*uid),
            });
        }
        Snapshot {
            validity: list.validity,
            next: list.next,
            highest_modseq: state.highest,
            messages,
        }
    }

    /// Base name to file name, for every message in `cur/`. A message
    /// the last sync saw (it has a MODSEQ in `state`) but the listing
    /// lacks is looked for in a second listing: a file renamed (a flag
    /// change) while the directory was read can be missed by one readdir,
    /// and must not pass for expunged. (The list itself may name files
    /// expunged long ago: it is not rewritten for expunges alone.)
    fn cur_files(&self, list: &UidList, state: &State) -> io::Result<Arc<Files>> {
        let dir = self.path.join("cur");
        let (mut files, kept) = listing::files(&dir)?;
        if kept {
            // Kept up to date by inotify: nothing can have been missed.
            return Ok(files);
        }
        // UIDs above the state's last are given but not yet synced (an
        // APPEND's): treated as seen.
        let last = state.records.keys().next_back().copied().unwrap_or(0);
        let missed = list
            .entries
            .iter()
            .any(|(u, b)| (*u > last || state.records.contains_key(u)) && !files.contains_key(b));
        if missed {
            let files = Arc::make_mut(&mut files);
            for (base, name) in listing::read(&dir)? {
                files.entry(base).or_insert(name);
            }
        }
        Ok(files)
    }

    /// STORE with UNCHANGEDSINCE (RFC 7162 §3.1.3): under the lock, each
    /// message whose MODSEQ is still at most `since` gets `change`; the
    /// others are left alone and their UIDs returned (the MODIFIED set).
    /// Keywords the change adds must be registered first
    /// ([`Mailbox::register_keywords`]). Expunged messages are skipped.
    pub fn store_unchanged_since(
        &self,
        messages: &[Message],
        since: u64,
        change: impl Fn(&Flags) -> Flags,
    ) -> io::Result<Vec<u32>> {
        let lock = Lock::acquire(&self.path)?;
        let mut held = Held::acquire(&self.path)?;
        let (mut list, mut state, mut files, fresh) =
            self.read_locked(&HashSet::new(), &mut held)?;
        let mut settled = settle(&mut list, &mut state, &files, false);
        settled.state_changed |= fresh.state;
        settled.list_changed |= fresh.list;
        let mut keywords = self.keywords();
        let mut modified = Vec::new();
        for msg in messages {
            let Some(current) = files.get(&msg.base).cloned() else {
                continue;
            };
            if state.modseq(msg.uid) > since {
                modified.push(msg.uid);
                continue;
            }
            let next = change(&Flags::from_name(&current, &keywords));
            let Some(info) = next.info(&mut keywords) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "too many keywords (26 at most)",
                ));
            };
            let target = format!("{}:{info}", msg.base);
            if target == current {
                continue;
            }
            let cur = self.path.join("cur");
            match fs::rename(cur.join(&current), cur.join(&target)) {
                Ok(()) => {
                    Arc::make_mut(&mut files).insert(msg.base.clone(), target);
                }
                // Renamed by a writer that does not take the lock (a flag
                // change of another session): it changed since.
                Err(e) if e.kind() == io::ErrorKind::NotFound => modified.push(msg.uid),
                Err(e) => return Err(e),
            }
        }
        let again = settle(&mut list, &mut state, &files, false);
        settled.list_changed |= again.list_changed;
        settled.state_changed |= again.state_changed;
        settled.claimed |= again.claimed;
        persist(lock, held, &list, &state, &settled)?;
        Ok(modified)
    }

    /// Makes sure the keywords among `flags` have letters, so that a
    /// later change under the lock needs no new ones.
    pub fn register_keywords(&self, flags: &Flags) -> io::Result<()> {
        self.info_for(flags).map(drop)
    }
}

/// What [`Mailbox::read_locked`] started afresh, and so must be written.
struct Fresh {
    /// The list was missing or damaged: it is written even when no UID
    /// was given (an empty folder), since its UIDVALIDITY, taken from the
    /// clock, has now been handed out and must not change at the next
    /// sync (RFC 3501 §2.3.1.1). Left unwritten, every sync of an empty
    /// folder drew a new one, and a client that selected it, then
    /// appended a second later, was told the mailbox changed under it.
    list: bool,
    /// The state was missing, damaged or from an earlier boot.
    state: bool,
}

/// What [`settle`] did.
struct Settled {
    /// New UIDs were given, or [`PRUNE`] lines name expunged files: the
    /// list is written and fsynced. (Fewer stale lines are dropped in
    /// memory only, as Dovecot leaves them in its list until a rewrite: a
    /// stale line costs a few bytes, and an expunge needs no write.)
    list_changed: bool,
    /// MODSEQs changed: the state is written (fsynced with `always`).
    state_changed: bool,
    /// Only \Recent was claimed: the state is written without an fsync,
    /// since a claim lost in a crash only makes messages recent again.
    claimed: bool,
    /// The UIDs that are \Recent for the caller.
    recent: HashSet<u32>,
}

/// Brings `list` and `state` up to the files: UIDs for new ones, MODSEQs
/// for new and changed ones, \Recent claimed when `claim`.
fn settle(
    list: &mut UidList,
    state: &mut State,
    files: &HashMap<String, String>,
    claim: bool,
) -> Settled {
    let list_changed = assign(list, files);
    let present: Vec<(u32, &str)> = list
        .entries
        .iter()
        .filter_map(|(uid, base)| files.get(base).map(|f| (*uid, state::letters(f))))
        .collect();
    let state_changed = state.update(&present);
    let recent: HashSet<u32> = present
        .iter()
        .map(|(uid, _)| *uid)
        .filter(|uid| *uid >= state.first_recent)
        .collect();
    let claimed = claim && !recent.is_empty();
    if claimed {
        state.first_recent = list.next;
    }
    Settled {
        list_changed,
        state_changed,
        claimed,
        recent,
    }
}

/// Writes what changed and releases the locks: the state first (in
/// place, under its lock), then the list, whose rename releases the
/// dotlock.
fn persist(
    lock: Lock,
    mut held: Held,
    list: &UidList,
    state: &State,
    settled: &Settled,
) -> io::Result<()> {
    if settled.state_changed || settled.claimed {
        held.write(state, settled.state_changed)?;
    }
    if settled.list_changed {
        lock.commit(list)?;
    } else {
        drop(lock);
    }
    drop(held);
    Ok(())
}

/// How many lines of expunged files the list may keep before a sync that
/// holds the lock rewrites it.
const PRUNE: usize = 32;

/// Gives the files the list does not know UIDs, in delivery order, and
/// forgets the entries whose files are gone; returns whether the list
/// must be written: new UIDs, or [`PRUNE`] entries forgotten.
fn assign(list: &mut UidList, files: &HashMap<String, String>) -> bool {
    let before = list.entries.len();
    list.entries.retain(|(_, b)| files.contains_key(b));
    let mut changed = before - list.entries.len() >= PRUNE;
    let known: HashSet<&str> = list.entries.iter().map(|(_, b)| b.as_str()).collect();
    let mut fresh: Vec<&String> = files
        .keys()
        .filter(|b| !known.contains(b.as_str()))
        .collect();
    fresh.sort_by(|a, b| crate::reader::delivery_order(a, b));
    let fresh: Vec<String> = fresh.into_iter().cloned().collect();
    for base in fresh {
        list.entries.push((list.next, base));
        list.next = list.next.saturating_add(1);
        changed = true;
    }
    changed
}

/// `W=` (CRLF size), else `S=`.
fn size_of(name: &str) -> Option<u64> {
    base_name(name)
        .split(',')
        .skip(1)
        .find_map(|f| f.strip_prefix("W="))
        .and_then(|s| s.parse().ok())
        .or_else(|| size_of_name(name))
}
