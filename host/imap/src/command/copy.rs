//! COPY and MOVE, and their UID forms (RFC 3501 §6.4.7, RFC 6851), with
//! UIDPLUS's COPYUID (RFC 4315 §3).

use postern_mailbox::FolderError;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Done, internal};
use crate::codec::SequenceSet;
use crate::session::Session;
use crate::session::view::blocking;

pub(crate) async fn copy<S>(
    s: &mut Session<'_, S>,
    uid: bool,
    set: &SequenceSet,
    name: &str,
    moving: bool,
) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (Some(sel), Some((_, store))) = (s.selected.as_mut(), s.user.as_ref()) else {
        return Done::bad("No mailbox selected.");
    };
    let count = u32::try_from(sel.messages.len()).unwrap_or(u32::MAX);
    if !uid && !set.within(count) {
        return Done::bad("Error in IMAP command COPY: Invalid messageset");
    }
    if moving && sel.read_only {
        return Done::no("[READ-ONLY] Mailbox is read-only.");
    }
    let dest = match store.mailbox(name) {
        Ok(m) => m,
        Err(FolderError::NotFound(_)) => return Done::no("[TRYCREATE] Mailbox doesn't exist."),
        Err(e) => return Done::no(e.to_string()),
    };
    let indexes = sel.resolve(set, uid);
    if indexes.is_empty() {
        let verb = if moving { "Move" } else { "Copy" };
        return Done::ok(format!("No messages found. {verb} completed."));
    }
    let messages: Vec<_> = indexes.iter().map(|i| sel.messages[*i].clone()).collect();
    let (src, dst) = (sel.mailbox.clone(), dest.clone());
    let copied = blocking(move || {
        let pairs = src.copy_to(&messages, &dst)?;
        let validity = dst.peek()?.validity;
        if moving {
            // RFC 6851 §3.1: copy, then expunge the originals.
            for m in messages
                .iter()
                .filter(|m| pairs.iter().any(|(o, _)| *o == m.uid))
            {
                src.expunge(m)?;
            }
        }
        Ok((pairs, validity))
    })
    .await;
    let (pairs, validity) = match copied {
        Ok(r) => r,
        Err(e) => return internal(s, if moving { "move" } else { "copy" }, &e),
    };
    let old: Vec<u32> = pairs.iter().map(|(o, _)| *o).collect();
    let new: Vec<u32> = pairs.iter().map(|(_, n)| *n).collect();
    let code = format!(
        "COPYUID {validity} {} {}",
        SequenceSet::render(&old),
        SequenceSet::render(&new)
    );
    if moving {
        // RFC 6851 §4.3: the code goes in an untagged OK before the
        // EXPUNGEs, which dispatch's sync then reports.
        s.io.send(format!("* OK [{code}] Moved UIDs.\r\n").as_bytes());
        Done::ok("Move completed.")
    } else {
        Done::ok(format!("[{code}] Copy completed."))
    }
}
