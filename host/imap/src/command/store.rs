//! STORE and UID STORE (RFC 3501 §6.4.6): flags set by renaming the
//! message file (`:2,FLAGS`), answered with FETCH FLAGS unless `.SILENT`;
//! with CONDSTORE (RFC 7162 §3.1.3) the FETCH carries the new MODSEQ, and
//! `(UNCHANGEDSINCE n)` changes only the messages whose MODSEQ is still at
//! most `n`, naming the others in `[MODIFIED set]`.

use std::collections::HashSet;

use postern_mailbox::Flags;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Done, Sync, internal};
use crate::codec::{SequenceSet, StoreMode};
use crate::session::Session;
use crate::session::view::blocking;

/// What a STORE asks, after its sequence set.
#[derive(Debug)]
pub(crate) struct Change {
    pub(crate) mode: StoreMode,
    pub(crate) silent: bool,
    pub(crate) flags: Vec<String>,
    pub(crate) unchanged_since: Option<u64>,
}

impl Change {
    /// The flags a message gets, from the flags its file has now (not
    /// from a session's older view), so that another session's STORE in
    /// between is kept (see `Mailbox::change_flags`).
    fn apply(mode: StoreMode, wanted: &[String], now: &Flags) -> Flags {
        let mut next = now.clone();
        match mode {
            StoreMode::Replace => {
                next = Flags::new();
                wanted.iter().for_each(|f| next.insert(f));
            }
            StoreMode::Add => wanted.iter().for_each(|f| next.insert(f)),
            StoreMode::Remove => wanted.iter().for_each(|f| next.remove(f)),
        }
        next
    }
}

pub(crate) async fn store<S>(
    s: &mut Session<'_, S>,
    uid: bool,
    set: &SequenceSet,
    change: Change,
) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(sel) = s.selected.as_mut() else {
        return Done::bad("No mailbox selected.");
    };
    let count = u32::try_from(sel.messages.len()).unwrap_or(u32::MAX);
    if !uid && !set.within(count) {
        return Done::bad("Error in IMAP command STORE: Invalid messageset");
    }
    if sel.read_only {
        return Done::no("[READ-ONLY] Mailbox is read-only.");
    }
    let sync = if uid { Sync::Full } else { Sync::NoExpunge };
    let indexes = sel.resolve(set, uid);
    let targets: Vec<_> = indexes
        .iter()
        .filter_map(|i| sel.messages.get(*i).cloned())
        .collect();
    let Change {
        mode,
        silent,
        flags,
        unchanged_since,
    } = change;
    let mb = sel.mailbox.clone();
    let changed = blocking(move || {
        let change = move |now: &Flags| Change::apply(mode, &flags, now);
        match unchanged_since {
            Some(since) => {
                if mode != StoreMode::Remove {
                    mb.register_keywords(&change(&Flags::new()))?;
                }
                let modified = mb.store_unchanged_since(&targets, since, change)?;
                Ok((modified, None))
            }
            None => {
                // Stops at the first failure; what was done stays done.
                for m in &targets {
                    if let Err(e) = mb.change_flags(m, &change) {
                        return Ok((Vec::new(), Some(e)));
                    }
                }
                Ok((Vec::new(), None))
            }
        }
    })
    .await;
    let (modified, failure) = match changed {
        Ok(pair) => pair,
        Err(e) => (Vec::new(), Some(e)),
    };
    // The view takes the new flags and MODSEQs; the FETCHes for the
    // stored messages are written below, in the order of the set.
    let Some(sel) = s.selected.as_mut() else {
        return Done::bad("No mailbox selected.");
    };
    let stored: HashSet<u32> = indexes
        .iter()
        .filter_map(|i| sel.messages.get(*i))
        .map(|m| m.uid)
        .filter(|u| !modified.contains(u))
        .collect();
    let mut out = Vec::new();
    if let Err(e) = sel.sync_except(&mut out, false, &stored).await {
        s.io.send(&out);
        return internal(s, "store", &e).sync(sync);
    }
    for index in &indexes {
        let Some(m) = sel.messages.get(*index) else {
            continue;
        };
        if !stored.contains(&m.uid) {
            continue;
        }
        if !silent {
            sel.flags_response(&mut out, *index, uid);
        } else if unchanged_since.is_some() {
            // RFC 7162 §3.1.3: a conditional STORE reports the new MODSEQ
            // even when silent.
            sel.fetch_response(&mut out, *index, uid, false);
        }
    }
    s.io.send(&out);
    if let Some(e) = failure {
        if e.kind() == std::io::ErrorKind::InvalidInput {
            return Done::no(format!("[LIMIT] {e}")).sync(sync);
        }
        return internal(s, "store", &e).sync(sync);
    }
    // The view was synced just above; a STORE by sequence numbers reports
    // no expunges (RFC 3501 §7.4.1), so dispatch's sync would find nothing
    // this one did not: skipped. UID STORE still gets it, for expunges.
    let sync = if uid { Sync::Full } else { Sync::Skip };
    if modified.is_empty() {
        return Done::ok("Store completed.").sync(sync);
    }
    // Sequence numbers for STORE, UIDs for UID STORE (RFC 7162 §3.1.3).
    let Some(sel) = s.selected.as_ref() else {
        return Done::bad("No mailbox selected.");
    };
    let mut named: Vec<u32> = sel
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| modified.contains(&m.uid))
        .map(|(i, m)| {
            if uid {
                m.uid
            } else {
                u32::try_from(i + 1).unwrap_or(u32::MAX)
            }
        })
        .collect();
    named.sort_unstable();
    Done::ok(format!(
        "[MODIFIED {}] Conditional store failed.",
        SequenceSet::render(&named)
    ))
    .sync(sync)
}
