//! FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8): flags, dates, sizes,
//! ENVELOPE, BODY/BODYSTRUCTURE and `BODY[section]<partial>`, setting
//! \Seen unless the item peeks or the mailbox is read-only; MODSEQ and
//! the CHANGEDSINCE modifier of CONDSTORE (RFC 7162 §3.1.4).

use std::borrow::Cow;

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Done, Sync, internal};
use crate::codec::SequenceSet;
use crate::codec::date::format_date_time;
use crate::codec::fetch::FetchItem;
use crate::codec::response::{flag_list, literal};
use crate::mime;
use crate::session::Session;
use crate::session::io::Stop;
use crate::session::view::blocking;

/// Answers are written out once this much is queued, so a FETCH of a
/// whole large mailbox streams instead of piling up in memory.
const FLUSH_AT: usize = 256 * 1024;

pub(crate) async fn fetch<S>(
    s: &mut Session<'_, S>,
    uid: bool,
    set: &SequenceSet,
    items: &[FetchItem],
    changed_since: Option<(u64, bool)>,
) -> Result<Done, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(sel) = s.selected.as_ref() else {
        return Ok(Done::bad("No mailbox selected."));
    };
    let count = u32::try_from(sel.messages.len()).unwrap_or(u32::MAX);
    if !uid && !set.within(count) {
        return Ok(Done::bad("Error in IMAP command FETCH: Invalid messageset"));
    }
    let mut items = items.to_vec();
    if uid && !items.contains(&FetchItem::Uid) {
        // RFC 3501 §6.4.8: UID FETCH always returns the UID.
        items.insert(0, FetchItem::Uid);
    }
    if changed_since.is_some() && !items.contains(&FetchItem::Modseq) {
        // RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ.
        items.push(FetchItem::Modseq);
    }
    let needs_content = items.iter().any(|i| {
        matches!(
            i,
            FetchItem::Envelope
                | FetchItem::Body
                | FetchItem::BodyStructure
                | FetchItem::Section { .. }
        )
    });
    let marks_seen = !sel.read_only
        && items
            .iter()
            .any(|i| matches!(i, FetchItem::Section { peek: false, .. }));
    let mut indexes = sel.resolve(set, uid);
    if let Some((since, vanished)) = changed_since {
        indexes.retain(|i| sel.messages.get(*i).is_some_and(|m| m.modseq > since));
        if vanished {
            // RFC 7162 §3.2.6: the UIDs of the set that are gone (all of
            // them, expunges not being kept with their MODSEQs).
            let present: Vec<u32> = sel.messages.iter().map(|m| m.uid).collect();
            let last = sel.next.saturating_sub(1);
            if let Some(gone) = SequenceSet::missing(&present, last, Some(set)) {
                s.io.send(format!("* VANISHED (EARLIER) {gone}\r\n").as_bytes());
            }
        }
    }
    let mut missing = false;
    for index in indexes {
        let Some(sel) = s.selected.as_mut() else {
            break;
        };
        let Some(message) = sel.messages.get(index).cloned() else {
            continue;
        };
        let content = if needs_content {
            let (mb, m) = (sel.mailbox.clone(), message.clone());
            match blocking(move || mb.read(&m)).await {
                Ok(Some(bytes)) => Some(crlf(bytes)),
                Ok(None) => {
                    missing = true;
                    continue;
                }
                Err(e) => return Ok(internal(s, "fetch", &e)),
            }
        } else {
            None
        };
        let mut flags_changed = false;
        if marks_seen && !message.flags.has("\\Seen") {
            let (mb, m) = (sel.mailbox.clone(), message.clone());
            let seen = |now: &postern_mailbox::Flags| {
                let mut next = now.clone();
                next.insert("\\Seen");
                next
            };
            match blocking(move || mb.change_flags(&m, seen)).await {
                Ok(Some((file, flags))) => {
                    if let Some(m) = sel.messages.get_mut(index) {
                        m.flags = flags;
                        m.file = file;
                    }
                    flags_changed = true;
                }
                Ok(None) => {}
                Err(e) => return Ok(internal(s, "fetch", &e)),
            }
        }
        let date = if items.contains(&FetchItem::InternalDate) {
            let (mb, m) = (sel.mailbox.clone(), message.clone());
            blocking(move || mb.internal_date(&m)).await.unwrap_or(0)
        } else {
            0
        };
        let Some(sel) = s.selected.as_ref() else {
            break;
        };
        let Some(message) = sel.messages.get(index) else {
            continue;
        };
        let mut out = format!("* {} FETCH (", index + 1).into_bytes();
        let tree = content.as_deref().map(mime::parse);
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !first {
                out.push(b' ');
            }
            first = false;
        };
        let wants_flags = items.contains(&FetchItem::Flags);
        for item in &items {
            sep(&mut out);
            match item {
                FetchItem::Uid => out.extend_from_slice(format!("UID {}", message.uid).as_bytes()),
                FetchItem::Modseq => {
                    out.extend_from_slice(format!("MODSEQ ({})", message.modseq).as_bytes());
                }
                FetchItem::Flags => {
                    out.extend_from_slice(b"FLAGS ");
                    let flags = sel.flags_of(message);
                    flag_list(&mut out, flags.iter().map(String::as_str));
                }
                FetchItem::InternalDate => {
                    out.extend_from_slice(
                        format!("INTERNALDATE \"{}\"", format_date_time(date)).as_bytes(),
                    );
                }
                FetchItem::Size => {
                    let size = content.as_ref().map_or(message.size, |c| c.len() as u64);
                    out.extend_from_slice(format!("RFC822.SIZE {size}").as_bytes());
                }
                FetchItem::Envelope | FetchItem::Body | FetchItem::BodyStructure => {
                    let (Some(msg), Some(root)) = (content.as_deref(), tree.as_ref()) else {
                        continue;
                    };
                    match item {
                        FetchItem::Envelope => {
                            out.extend_from_slice(b"ENVELOPE ");
                            mime::envelope::envelope(&mut out, &msg[root.start..root.body]);
                        }
                        FetchItem::Body => {
                            out.extend_from_slice(b"BODY ");
                            mime::structure::write(&mut out, msg, root, false);
                        }
                        _ => {
                            out.extend_from_slice(b"BODYSTRUCTURE ");
                            mime::structure::write(&mut out, msg, root, true);
                        }
                    }
                }
                FetchItem::Section {
                    name,
                    section,
                    partial,
                    ..
                } => {
                    let (Some(msg), Some(root)) = (content.as_deref(), tree.as_ref()) else {
                        continue;
                    };
                    let data = mime::section(msg, root, section);
                    if *name == "BODY" {
                        out.extend_from_slice(format!("BODY[{}]", section.render()).as_bytes());
                    } else {
                        out.extend_from_slice(name.as_bytes());
                    }
                    let data: Option<Cow<'_, [u8]>> = match (data, partial) {
                        (Some(d), Some((offset, count))) => {
                            out.extend_from_slice(format!("<{offset}>").as_bytes());
                            let start = (*offset as usize).min(d.len());
                            let end = start.saturating_add(*count as usize).min(d.len());
                            Some(Cow::Owned(d[start..end].to_vec()))
                        }
                        (d, _) => d,
                    };
                    out.push(b' ');
                    match data {
                        Some(d) => literal(&mut out, &d),
                        None => out.extend_from_slice(b"NIL"),
                    }
                }
            }
        }
        if flags_changed && !wants_flags {
            // RFC 3501 §6.4.5: the \Seen we just set is reported.
            out.extend_from_slice(b" FLAGS ");
            let flags = sel.flags_of(message);
            flag_list(&mut out, flags.iter().map(String::as_str));
        }
        out.extend_from_slice(b")\r\n");
        s.io.send(&out);
        if s.io.pending() >= FLUSH_AT {
            s.io.flush().await?;
        }
    }
    let sync = if uid { Sync::Full } else { Sync::NoExpunge };
    Ok(if missing {
        Done::no("Some messages were expunged while fetching.").sync(sync)
    } else {
        Done::ok("Fetch completed.").sync(sync)
    })
}

/// IMAP sends CRLF line ends (RFC 3501 §4.3); a Maildir that Dovecot or
/// mutt wrote keeps bare LF, which is fixed up on the way out.
fn crlf(bytes: Vec<u8>) -> Vec<u8> {
    let bare = bytes
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'));
    if !bare {
        return bytes;
    }
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(*b);
    }
    out
}
