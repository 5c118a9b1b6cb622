//! STORE and UID STORE (RFC 3501 §6.4.6): flags set by renaming the
//! message file (`:2,FLAGS`), answered with FETCH FLAGS unless `.SILENT`.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Done, Sync, internal};
use crate::codec::{SequenceSet, StoreMode};
use crate::session::Session;
use crate::session::view::blocking;

pub(crate) async fn store<S>(
    s: &mut Session<'_, S>,
    uid: bool,
    set: &SequenceSet,
    mode: StoreMode,
    silent: bool,
    flags: &[String],
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
    let mut out = Vec::new();
    let mut failure = None;
    for index in sel.resolve(set, uid) {
        let Some(message) = sel.messages.get(index).cloned() else {
            continue;
        };
        {
            let (mb, m, f) = (sel.mailbox.clone(), message.clone(), flags.to_vec());
            // Applied to the flags on disk now, so that another session's
            // STORE in between is kept (see Mailbox::change_flags).
            let change = move |now: &postern_mailbox::Flags| {
                let mut next = now.clone();
                match mode {
                    StoreMode::Replace => {
                        next = postern_mailbox::Flags::new();
                        f.iter().for_each(|f| next.insert(f));
                    }
                    StoreMode::Add => f.iter().for_each(|f| next.insert(f)),
                    StoreMode::Remove => f.iter().for_each(|f| next.remove(f)),
                }
                next
            };
            match blocking(move || mb.change_flags(&m, change)).await {
                Ok(Some((file, next))) => {
                    if let Some(m) = sel.messages.get_mut(index) {
                        m.flags = next;
                        m.file = file;
                    }
                }
                // Expunged by another session meanwhile: nothing to do.
                Ok(None) => continue,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if !silent {
            sel.flags_response(&mut out, index, uid);
        }
    }
    s.io.send(&out);
    match failure {
        None => Done::ok("Store completed.").sync(sync),
        Some(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            Done::no(format!("[LIMIT] {e}")).sync(sync)
        }
        Some(e) => internal(s, "store", &e).sync(sync),
    }
}
