//! SELECT and EXAMINE (RFC 3501 §6.3.1-2) with CONDSTORE's HIGHESTMODSEQ
//! (RFC 7162 §3.1.2) and QRESYNC's catch-up (§3.2.5), CLOSE (§6.4.2),
//! UNSELECT (RFC 3691), EXPUNGE and UID EXPUNGE (§6.4.3, RFC 4315 §2.1).

use postern_mailbox::FolderError;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Done, Sync, internal};
use crate::codec::response::{flag_list, untagged};
use crate::codec::{Qresync, SequenceSet};
use crate::session::Session;
use crate::session::view::{Selected, blocking};

/// The system flags, always offered.
const SYSTEM: &[&str] = &["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

pub(crate) async fn select<S>(
    s: &mut Session<'_, S>,
    name: String,
    read_only: bool,
    qresync: Option<Qresync>,
) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    if qresync.is_some() && !s.qresync {
        // RFC 7162 §3.2.5: QRESYNC must be enabled first.
        return Done::bad("QRESYNC not enabled.");
    }
    // RFC 3501 §6.3.1: a failed SELECT leaves no mailbox selected; RFC
    // 7162 §3.2.11: the client is told the old one is closed.
    if s.selected.take().is_some() {
        s.io.send(&untagged("OK [CLOSED] Previous mailbox closed."));
    }
    let Some((_, store)) = &s.user else {
        return Done::bad("Please log in first.");
    };
    let mailbox = match store.mailbox(&name) {
        Ok(m) => m,
        Err(FolderError::NotFound(_)) => return Done::no(format!("Mailbox doesn't exist: {name}")),
        Err(FolderError::BadName) => return Done::no("Invalid mailbox name"),
        Err(e) => return Done::no(e.to_string()),
    };
    let modes = (s.condstore, s.qresync);
    let selected = match Selected::open(mailbox, name, read_only, modes).await {
        Ok(sel) => sel,
        Err(e) => return internal(s, "select", &e),
    };
    let mut out = Vec::new();
    let keywords = selected.mailbox.keywords();
    let mut flags: Vec<&str> = SYSTEM.to_vec();
    flags.extend(
        keywords
            .iter()
            .map(String::as_str)
            .filter(|k| !k.is_empty()),
    );
    out.extend_from_slice(b"* FLAGS ");
    flag_list(&mut out, flags.iter().copied());
    out.extend_from_slice(b"\r\n");
    if read_only {
        out.extend_from_slice(b"* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n");
    } else {
        out.extend_from_slice(b"* OK [PERMANENTFLAGS ");
        flags.push("\\*");
        flag_list(&mut out, flags.iter().copied());
        out.extend_from_slice(b"] Flags permitted.\r\n");
    }
    out.extend_from_slice(format!("* {} EXISTS\r\n", selected.messages.len()).as_bytes());
    out.extend_from_slice(format!("* {} RECENT\r\n", selected.recent.len()).as_bytes());
    if let Some(i) = selected
        .messages
        .iter()
        .position(|m| !m.flags.has("\\Seen"))
    {
        out.extend_from_slice(&untagged(&format!("OK [UNSEEN {}] First unseen.", i + 1)));
    }
    out.extend_from_slice(&untagged(&format!(
        "OK [UIDVALIDITY {}] UIDs valid",
        selected.validity
    )));
    out.extend_from_slice(&untagged(&format!(
        "OK [UIDNEXT {}] Predicted next UID",
        selected.next
    )));
    if selected.condstore {
        // RFC 7162 §3.1.2.1.
        out.extend_from_slice(&untagged(&format!(
            "OK [HIGHESTMODSEQ {}] Highest",
            selected.highest_modseq
        )));
    }
    if let Some(q) = qresync.filter(|q| q.validity == selected.validity) {
        resync(&selected, &q, &mut out);
    }
    s.io.send(&out);
    s.selected = Some(selected);
    let mode = if read_only { "READ-ONLY" } else { "READ-WRITE" };
    Done::ok(format!("[{mode}] Select completed.")).sync(Sync::Skip)
}

/// QRESYNC's catch-up at SELECT (RFC 7162 §3.2.5.1): what vanished of
/// the UIDs the client knows, then the messages changed since its MODSEQ.
/// Expunges are not kept with their MODSEQs, so every known UID that is
/// gone is reported, which the RFC allows.
fn resync(sel: &Selected, q: &Qresync, out: &mut Vec<u8>) {
    let present: Vec<u32> = sel.messages.iter().map(|m| m.uid).collect();
    let last = sel.next.saturating_sub(1);
    if let Some(set) = SequenceSet::missing(&present, last, q.known.as_ref()) {
        out.extend_from_slice(format!("* VANISHED (EARLIER) {set}\r\n").as_bytes());
    }
    let largest = present.last().copied().unwrap_or(0);
    for (i, m) in sel.messages.iter().enumerate() {
        if m.modseq > q.modseq && q.known.as_ref().is_none_or(|k| k.contains(m.uid, largest)) {
            sel.fetch_response(out, i, true, true);
        }
    }
}

/// CLOSE (`expunge`: removes \Deleted messages silently) and UNSELECT.
pub(crate) async fn close<S>(s: &mut Session<'_, S>, expunge: bool) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(sel) = s.selected.take() else {
        return Done::bad("No mailbox selected.");
    };
    // RFC 7162 §3.2.7: CLOSE reports no expunges, with QRESYNC either.
    if expunge && !sel.read_only {
        let doomed: Vec<_> = sel
            .messages
            .iter()
            .filter(|m| m.flags.has("\\Deleted"))
            .cloned()
            .collect();
        let mb = sel.mailbox.clone();
        if let Err(e) = blocking(move || doomed.iter().try_for_each(|m| mb.expunge(m))).await {
            return internal(s, "close", &e);
        }
    }
    let what = if expunge { "Close" } else { "Unselect" };
    Done::ok(format!("{what} completed.")).sync(Sync::Skip)
}

pub(crate) async fn expunge<S>(s: &mut Session<'_, S>, uids: Option<&SequenceSet>) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(sel) = s.selected.as_mut() else {
        return Done::bad("No mailbox selected.");
    };
    if sel.read_only {
        return Done::no("[READ-ONLY] Mailbox is read-only.");
    }
    // Up to date first, so that \Deleted set by other sessions counts.
    let mut out = Vec::new();
    if let Err(e) = sel.sync(&mut out, true).await {
        return internal(s, "expunge", &e);
    }
    let largest = sel.messages.last().map_or(0, |m| m.uid);
    let doomed: Vec<usize> = sel
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.flags.has("\\Deleted"))
        .filter(|(_, m)| uids.is_none_or(|set| set.contains(m.uid, largest)))
        .map(|(i, _)| i)
        .collect();
    let messages: Vec<_> = doomed.iter().map(|i| sel.messages[*i].clone()).collect();
    let mb = sel.mailbox.clone();
    // Only what was really removed leaves the view; a failure stops there.
    let result = blocking(move || {
        let mut removed = 0;
        for m in &messages {
            if let Err(e) = mb.expunge(m) {
                return Ok((removed, Some(e)));
            }
            removed += 1;
        }
        Ok((removed, None))
    })
    .await;
    let (removed, result) = match result {
        Ok((n, None)) => (n, Ok(())),
        Ok((n, Some(e))) => (n, Err(e)),
        Err(e) => (0, Err(e)),
    };
    let gone: Vec<(usize, u32)> = doomed[..removed]
        .iter()
        .rev()
        .map(|i| sel.remove(*i))
        .collect();
    sel.expunged(&mut out, &gone);
    let qresync = sel.qresync;
    s.io.send(&out);
    match result {
        Ok(()) if qresync => {
            // RFC 7162 §3.2.10 (and dispatch's sync brings the view's
            // HIGHESTMODSEQ up to the expunges).
            let mb = sel.mailbox.clone();
            match blocking(move || mb.sync()).await {
                Ok(snap) => Done::ok(format!(
                    "[HIGHESTMODSEQ {}] Expunge completed.",
                    snap.highest_modseq
                )),
                Err(e) => internal(s, "expunge", &e),
            }
        }
        Ok(()) => Done::ok("Expunge completed."),
        Err(e) => internal(s, "expunge", &e),
    }
}
