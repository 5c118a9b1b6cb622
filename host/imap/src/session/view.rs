//! The selected mailbox as this session has told the client about it:
//! message sequence numbers are positions in [`Selected::messages`], and
//! they change only when the session reports it (RFC 3501 §2.3.1.2).
//!
//! [`Selected::sync`] compares the store with that view and queues the
//! untagged EXPUNGE, EXISTS, RECENT and FETCH FLAGS responses that bring
//! the client up to date with what other sessions and delivery did; with
//! CONDSTORE enabled, each FETCH carries the message's MODSEQ and a change
//! of MODSEQ alone is reported too (RFC 7162 §3.1.4).
//!
//! \Recent (RFC 3501 §2.3.2): a read-write view claims the messages no
//! session has seen ([`Mailbox::sync`]); a read-only one (EXAMINE) shows
//! them as recent without claiming them ([`Mailbox::peek`]).

use std::collections::HashSet;
use std::io;

use postern_mailbox::{Mailbox, Message};

use crate::codec::response::flag_list;

tokio::task_local! {
    /// The uid and gid the session's store work runs as, once a login
    /// with an owner ([`crate::Mailboxes::owner`]) set it; one per
    /// session task, so no call site has to carry it.
    pub(crate) static OWNER: std::cell::Cell<Option<(u32, u32)>>;
}

/// Runs a store operation off the async workers (it may wait for the
/// uidlist lock), as the session's [`OWNER`] when there is one.
pub(crate) async fn blocking<T, F>(f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    let owner = OWNER.try_with(std::cell::Cell::get).ok().flatten();
    tokio::task::spawn_blocking(move || postern_auth::owner::as_owner(owner, f))
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
}

/// A selected mailbox.
#[derive(Debug)]
pub(crate) struct Selected {
    /// Its name as the client gave it.
    pub(crate) name: String,
    pub(crate) mailbox: Mailbox,
    /// EXAMINE: nothing changes, not even \Seen.
    pub(crate) read_only: bool,
    /// The view; message n is `messages[n - 1]`.
    pub(crate) messages: Vec<Message>,
    /// The UIDs that are \Recent for this session.
    pub(crate) recent: HashSet<u32>,
    pub(crate) validity: u32,
    pub(crate) next: u32,
    /// HIGHESTMODSEQ at the last sync.
    pub(crate) highest_modseq: u64,
    /// The session enabled CONDSTORE: FETCH responses carry MODSEQ.
    pub(crate) condstore: bool,
    /// The session enabled QRESYNC: expunges are told as VANISHED.
    pub(crate) qresync: bool,
}

impl Selected {
    /// Opens the view: the mailbox as it is now.
    pub(crate) async fn open(
        mailbox: Mailbox,
        name: String,
        read_only: bool,
        (condstore, qresync): (bool, bool),
    ) -> io::Result<Selected> {
        let mb = mailbox.clone();
        let snapshot = blocking(move || if read_only { mb.peek() } else { mb.sync() }).await?;
        let recent = snapshot
            .messages
            .iter()
            .filter(|m| m.recent)
            .map(|m| m.uid)
            .collect();
        Ok(Selected {
            name,
            mailbox,
            read_only,
            messages: snapshot.messages,
            recent,
            validity: snapshot.validity,
            next: snapshot.next,
            highest_modseq: snapshot.highest_modseq,
            condstore,
            qresync,
        })
    }

    /// The flags the client sees: the stored ones and \Recent.
    pub(crate) fn flags_of(&self, m: &Message) -> Vec<String> {
        let mut flags: Vec<String> = m.flags.iter().map(str::to_owned).collect();
        if self.recent.contains(&m.uid) {
            flags.push("\\Recent".to_owned());
        }
        flags
    }

    /// `* n FETCH (FLAGS (...))`, with the UID when the command was a UID
    /// one (RFC 3501 §6.4.8) and the MODSEQ once CONDSTORE is on.
    pub(crate) fn flags_response(&self, out: &mut Vec<u8>, index: usize, uid: bool) {
        self.fetch_response(out, index, uid, true);
    }

    /// `* n FETCH (...)` with UID (when `uid`), FLAGS (when `flags`) and
    /// MODSEQ (with CONDSTORE on); nothing if that leaves it empty.
    pub(crate) fn fetch_response(&self, out: &mut Vec<u8>, index: usize, uid: bool, flags: bool) {
        let Some(m) = self.messages.get(index) else {
            return;
        };
        let mut items = Vec::new();
        if uid {
            items.extend_from_slice(format!("UID {}", m.uid).as_bytes());
        }
        if flags {
            if !items.is_empty() {
                items.push(b' ');
            }
            items.extend_from_slice(b"FLAGS ");
            let flags = self.flags_of(m);
            flag_list(&mut items, flags.iter().map(String::as_str));
        }
        if self.condstore {
            if !items.is_empty() {
                items.push(b' ');
            }
            items.extend_from_slice(format!("MODSEQ ({})", m.modseq).as_bytes());
        }
        if items.is_empty() {
            return;
        }
        out.extend_from_slice(format!("* {} FETCH (", index + 1).as_bytes());
        out.extend_from_slice(&items);
        out.extend_from_slice(b")\r\n");
    }

    /// Brings the view up to date, queuing what changed into `out`.
    /// `expunges` is false during FETCH, STORE and SEARCH, which must not
    /// renumber messages (RFC 3501 §7.4.1); vanished messages stay in the
    /// view until a later command may report them.
    pub(crate) async fn sync(&mut self, out: &mut Vec<u8>, expunges: bool) -> io::Result<()> {
        self.sync_except(out, expunges, &HashSet::new()).await
    }

    /// [`Selected::sync`], leaving out the FETCH of the UIDs in `quiet`:
    /// the command that changed them reports them itself (STORE).
    pub(crate) async fn sync_except(
        &mut self,
        out: &mut Vec<u8>,
        expunges: bool,
        quiet: &HashSet<u32>,
    ) -> io::Result<()> {
        let (mb, read_only) = (self.mailbox.clone(), self.read_only);
        let snapshot = blocking(move || if read_only { mb.peek() } else { mb.sync() }).await?;
        if snapshot.validity != self.validity {
            // The UID list was rebuilt under us: the client's cache is
            // void. Dovecot disconnects; so do we, with the reason.
            return Err(io::Error::other("UIDVALIDITY changed"));
        }
        let (next, highest_modseq) = (snapshot.next, snapshot.highest_modseq);
        // Both lists ascend by UID: one walk pairs them, and the store's
        // messages move into the view instead of being copied.
        let last = self.messages.last().map_or(0, |m| m.uid);
        let mut incoming = snapshot.messages.into_iter().peekable();
        let mut gone = Vec::new();
        let mut changed = HashSet::new();
        for (i, old) in self.messages.iter_mut().enumerate() {
            while incoming.next_if(|m| m.uid < old.uid).is_some() {}
            let Some(now) = incoming.next_if(|m| m.uid == old.uid) else {
                gone.push(i);
                continue;
            };
            if (now.flags != old.flags || self.condstore && now.modseq != old.modseq)
                && !quiet.contains(&old.uid)
            {
                changed.insert(old.uid);
            }
            *old = Message {
                recent: false,
                ..now
            };
        }
        let fresh: Vec<Message> = incoming.filter(|m| m.uid > last).collect();
        if expunges {
            let removed: Vec<(usize, u32)> = gone.iter().rev().map(|i| self.remove(*i)).collect();
            self.expunged(out, &removed);
        }
        if !changed.is_empty() {
            for i in 0..self.messages.len() {
                if changed.contains(&self.messages[i].uid) {
                    self.flags_response(out, i, false);
                }
            }
        }
        if !fresh.is_empty() {
            for m in &fresh {
                if m.recent {
                    self.recent.insert(m.uid);
                }
            }
            self.messages.extend(fresh);
            out.extend_from_slice(format!("* {} EXISTS\r\n", self.messages.len()).as_bytes());
            out.extend_from_slice(format!("* {} RECENT\r\n", self.recent.len()).as_bytes());
        }
        self.next = next;
        self.highest_modseq = highest_modseq;
        Ok(())
    }

    /// Takes message `index` out of the view; returns what EXPUNGE
    /// reports of it: (sequence number, UID).
    pub(crate) fn remove(&mut self, index: usize) -> (usize, u32) {
        let gone = self.messages.remove(index);
        self.recent.remove(&gone.uid);
        (index + 1, gone.uid)
    }

    /// Reports messages taken out with [`Selected::remove`], highest
    /// sequence number first: `* n EXPUNGE` each, or with QRESYNC one
    /// `* VANISHED uids` (RFC 7162 §3.2.10).
    pub(crate) fn expunged(&self, out: &mut Vec<u8>, gone: &[(usize, u32)]) {
        if gone.is_empty() {
            return;
        }
        if self.qresync {
            let uids: Vec<u32> = gone.iter().map(|(_, u)| *u).collect();
            out.extend_from_slice(
                format!(
                    "* VANISHED {}\r\n",
                    crate::codec::SequenceSet::render(&uids)
                )
                .as_bytes(),
            );
            return;
        }
        for (seq, _) in gone {
            out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
        }
    }

    /// The indexes a set names: sequence numbers, or UIDs when `uid`.
    pub(crate) fn resolve(&self, set: &crate::codec::SequenceSet, uid: bool) -> Vec<usize> {
        if uid {
            let largest = self.messages.last().map_or(0, |m| m.uid);
            self.messages
                .iter()
                .enumerate()
                .filter(|(_, m)| set.contains(m.uid, largest))
                .map(|(i, _)| i)
                .collect()
        } else {
            let n = u32::try_from(self.messages.len()).unwrap_or(u32::MAX);
            (1..=n)
                .filter(|s| set.contains(*s, n))
                .filter_map(|s| usize::try_from(s - 1).ok())
                .collect()
        }
    }
}
