//! The selected mailbox as this session has told the client about it:
//! message sequence numbers are positions in [`Selected::messages`], and
//! they change only when the session reports it (RFC 3501 §2.3.1.2).
//!
//! [`Selected::sync`] compares the store with that view and queues the
//! untagged EXPUNGE, EXISTS, RECENT and FETCH FLAGS responses that bring
//! the client up to date with what other sessions and delivery did.

use std::collections::{HashMap, HashSet};
use std::io;

use postern_mailbox::{Mailbox, Message};

use crate::codec::response::flag_list;

/// Runs a store operation off the async workers (it may wait for the
/// uidlist lock).
pub(crate) async fn blocking<T, F>(f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
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
}

impl Selected {
    /// Opens the view: the mailbox as it is now.
    pub(crate) async fn open(
        mailbox: Mailbox,
        name: String,
        read_only: bool,
    ) -> io::Result<Selected> {
        let mb = mailbox.clone();
        let snapshot = blocking(move || mb.sync()).await?;
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
    /// one (RFC 3501 §6.4.8).
    pub(crate) fn flags_response(&self, out: &mut Vec<u8>, index: usize, uid: bool) {
        let Some(m) = self.messages.get(index) else {
            return;
        };
        out.extend_from_slice(format!("* {} FETCH (", index + 1).as_bytes());
        if uid {
            out.extend_from_slice(format!("UID {} ", m.uid).as_bytes());
        }
        out.extend_from_slice(b"FLAGS ");
        let flags = self.flags_of(m);
        flag_list(out, flags.iter().map(String::as_str));
        out.extend_from_slice(b")\r\n");
    }

    /// Brings the view up to date, queuing what changed into `out`.
    /// `expunges` is false during FETCH, STORE and SEARCH, which must not
    /// renumber messages (RFC 3501 §7.4.1); vanished messages stay in the
    /// view until a later command may report them.
    pub(crate) async fn sync(&mut self, out: &mut Vec<u8>, expunges: bool) -> io::Result<()> {
        let mb = self.mailbox.clone();
        let snapshot = blocking(move || mb.sync()).await?;
        if snapshot.validity != self.validity {
            // The UID list was rebuilt under us: the client's cache is
            // void. Dovecot disconnects; so do we, with the reason.
            return Err(io::Error::other("UIDVALIDITY changed"));
        }
        let current: HashMap<u32, &Message> =
            snapshot.messages.iter().map(|m| (m.uid, m)).collect();
        if expunges {
            let mut i = self.messages.len();
            while i > 0 {
                i -= 1;
                if !current.contains_key(&self.messages[i].uid) {
                    let gone = self.messages.remove(i);
                    self.recent.remove(&gone.uid);
                    out.extend_from_slice(format!("* {} EXPUNGE\r\n", i + 1).as_bytes());
                }
            }
        }
        for i in 0..self.messages.len() {
            let Some(now) = current.get(&self.messages[i].uid) else {
                continue;
            };
            let changed = now.flags != self.messages[i].flags;
            self.messages[i] = Message {
                recent: false,
                ..(*now).clone()
            };
            if changed {
                self.flags_response(out, i, false);
            }
        }
        let last = self.messages.last().map_or(0, |m| m.uid);
        let fresh: Vec<Message> = snapshot
            .messages
            .iter()
            .filter(|m| m.uid > last)
            .cloned()
            .collect();
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
        self.next = snapshot.next;
        Ok(())
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
