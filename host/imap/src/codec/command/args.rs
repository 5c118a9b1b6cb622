//! Parsers of the argument groups longer than a token or two: SELECT's
//! QRESYNC parameters, STATUS items, LIST's options and patterns, APPEND,
//! and the sequence-set commands (FETCH, STORE, COPY, MOVE). Apart from
//! `dispatch` so that the verb table stays readable at a glance.

use super::{Command, ListOptions, Qresync, StatusItem, StoreMode};
use crate::codec::fetch::parse_fetch_items;
use crate::codec::parse::{ParseError, Parser, Result, bad};

pub(super) fn mailbox(p: &mut Parser<'_>) -> Result<String> {
    p.sp()?;
    let name = p.astring_utf8()?;
    Ok(if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_owned()
    } else {
        name
    })
}

/// ` (uidvalidity modseq [known-uids [(seq-set uid-set)]])` after
/// `QRESYNC` (RFC 7162 §3.2.5).
pub(super) fn qresync_params(p: &mut Parser<'_>) -> Result<Qresync> {
    p.sp()?;
    if !p.eat(b'(') {
        return bad("Expected QRESYNC parameters");
    }
    let validity = p.number()?;
    p.sp()?;
    let modseq = p.modseq()?;
    if validity == 0 || modseq == 0 {
        return bad("Invalid QRESYNC parameters");
    }
    let mut known = None;
    if p.eat(b' ') {
        if p.peek() != Some(b'(') {
            known = Some(p.sequence_set()?);
            if !p.eat(b' ') {
                return if p.eat(b')') {
                    Ok(Qresync {
                        validity,
                        modseq,
                        known,
                    })
                } else {
                    bad("Invalid QRESYNC parameters")
                };
            }
        }
        // seq-match-data: two sets, a hint the server may ignore.
        if !p.eat(b'(') {
            return bad("Invalid QRESYNC sequence match data");
        }
        p.sequence_set()?;
        p.sp()?;
        p.sequence_set()?;
        if !p.eat(b')') {
            return bad("Invalid QRESYNC sequence match data");
        }
    }
    if !p.eat(b')') {
        return bad("Invalid QRESYNC parameters");
    }
    Ok(Qresync {
        validity,
        modseq,
        known,
    })
}

/// `(MESSAGES UNSEEN ...)` (RFC 3501 §6.3.10).
pub(super) fn status_items(p: &mut Parser<'_>) -> Result<Vec<StatusItem>> {
    if !p.eat(b'(') {
        return bad("STATUS: Expected a list of items");
    }
    let mut items = Vec::new();
    while !p.eat(b')') {
        if !items.is_empty() {
            p.sp()?;
        }
        items.push(match p.atom()?.to_ascii_uppercase().as_str() {
            "MESSAGES" => StatusItem::Messages,
            "RECENT" => StatusItem::Recent,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "SIZE" => StatusItem::Size,
            "HIGHESTMODSEQ" => StatusItem::HighestModseq,
            other => return bad(format!("Invalid status item {other}")),
        });
    }
    Ok(items)
}

/// `LIST [(select-opts)] reference (pattern | (patterns)) [RETURN (opts)]`
/// (RFC 3501 §6.3.8, RFC 5258 §3).
pub(super) fn list(p: &mut Parser<'_>, lsub: bool) -> Result<Command> {
    let mut options = ListOptions::default();
    p.sp()?;
    if !lsub && p.eat(b'(') {
        while !p.eat(b')') {
            p.eat(b' ');
            match p.atom()?.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => options.subscribed = true,
                "SPECIAL-USE" => options.special_use_only = true,
                // RECURSIVEMATCH and REMOTE change nothing here: every
                // mailbox is local and listed by its own name.
                "RECURSIVEMATCH" | "REMOTE" => {}
                other => return bad(format!("Unknown LIST selection option {other}")),
            }
        }
        p.sp()?;
    }
    let reference = p.astring_utf8()?;
    p.sp()?;
    let mut patterns = Vec::new();
    if !lsub && p.eat(b'(') {
        while !p.eat(b')') {
            p.eat(b' ');
            patterns.push(p.list_mailbox()?);
        }
    } else {
        patterns.push(p.list_mailbox()?);
    }
    if !lsub && p.eat(b' ') {
        if !p.atom()?.eq_ignore_ascii_case("RETURN") {
            return bad("Expected RETURN");
        }
        p.sp()?;
        if !p.eat(b'(') {
            return bad("Expected a list of return options");
        }
        while !p.eat(b')') {
            p.eat(b' ');
            match p.atom()?.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => options.return_subscribed = true,
                "STATUS" => {
                    p.sp()?;
                    options.status = Some(status_items(p)?);
                }
                // Children and special-use attributes are always returned.
                "CHILDREN" | "SPECIAL-USE" => {}
                other => return bad(format!("Unknown LIST return option {other}")),
            }
        }
    }
    Ok(Command::List {
        reference,
        patterns,
        lsub,
        options,
    })
}

/// APPEND mailbox [flags] [date-time] literal (RFC 3501 §6.3.11).
pub(super) fn append(p: &mut Parser<'_>) -> Result<Command> {
    let mailbox = mailbox(p)?;
    p.sp()?;
    let mut flags = Vec::new();
    if p.peek() == Some(b'(') {
        flags = p.flag_list()?;
        p.sp()?;
    }
    let mut date = None;
    if p.peek() == Some(b'"') {
        let text = p.quoted()?;
        let text = String::from_utf8_lossy(&text);
        date = Some(
            crate::codec::date::parse_date_time(&text)
                .ok_or_else(|| ParseError("Invalid internal date".into()))?,
        );
        p.sp()?;
    }
    if p.peek() != Some(b'{') {
        return bad("APPEND: Expected a literal");
    }
    let message = p.literal()?.to_vec();
    Ok(Command::Append {
        mailbox,
        flags,
        date,
        message,
    })
}

/// FETCH, STORE, COPY and MOVE, which start with a sequence set.
pub(super) fn sequenced(p: &mut Parser<'_>, name: &str, uid: bool) -> Result<Command> {
    p.sp()?;
    let set = p.sequence_set()?;
    p.sp()?;
    Ok(match name {
        "FETCH" => {
            let items = parse_fetch_items(p)?;
            let (mut changed_since, mut vanished) = (None, false);
            if p.eat(b' ') {
                // RFC 4466 §2.4 fetch-modifiers: CHANGEDSINCE (RFC 7162
                // §3.1.4.1, not 0) and VANISHED (§3.2.6, UID FETCH with
                // CHANGEDSINCE only).
                if !p.eat(b'(') {
                    return bad("Expected fetch modifiers");
                }
                while !p.eat(b')') {
                    p.eat(b' ');
                    match p.atom()?.to_ascii_uppercase().as_str() {
                        "CHANGEDSINCE" => {
                            p.sp()?;
                            let n = p.modseq()?;
                            if n == 0 {
                                return bad("Invalid CHANGEDSINCE modseq");
                            }
                            changed_since = Some(n);
                        }
                        "VANISHED" if uid => vanished = true,
                        other => return bad(format!("Invalid fetch modifier {other}")),
                    }
                }
                if vanished && changed_since.is_none() {
                    return bad("VANISHED needs CHANGEDSINCE");
                }
            }
            Command::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            }
        }
        "STORE" => {
            let mut unchanged_since = None;
            if p.eat(b'(') {
                // RFC 4466 §2.5 store-modifiers: UNCHANGEDSINCE (RFC 7162
                // §3.1.3), whose value may be 0.
                if !p.atom()?.eq_ignore_ascii_case("UNCHANGEDSINCE") {
                    return bad("Expected (UNCHANGEDSINCE modseq)");
                }
                p.sp()?;
                unchanged_since = Some(p.modseq()?);
                if !p.eat(b')') {
                    return bad("Invalid UNCHANGEDSINCE modseq");
                }
                p.sp()?;
            }
            let item = p.atom()?.to_ascii_uppercase();
            let (mode, rest) = match item.as_bytes().first() {
                Some(b'+') => (StoreMode::Add, &item[1..]),
                Some(b'-') => (StoreMode::Remove, &item[1..]),
                _ => (StoreMode::Replace, item.as_str()),
            };
            let silent = match rest {
                "FLAGS" => false,
                "FLAGS.SILENT" => true,
                _ => return bad("Invalid STORE data item"),
            };
            p.sp()?;
            let flags = if p.peek() == Some(b'(') {
                p.flag_list()?
            } else {
                let mut flags = vec![p.flag()?];
                while p.eat(b' ') {
                    flags.push(p.flag()?);
                }
                flags
            };
            Command::Store {
                uid,
                set,
                mode,
                silent,
                flags,
                unchanged_since,
            }
        }
        _ => Command::Copy {
            uid,
            set,
            mailbox: {
                let name = p.astring_utf8()?;
                if name.eq_ignore_ascii_case("INBOX") {
                    "INBOX".to_owned()
                } else {
                    name
                }
            },
            moving: name == "MOVE",
        },
    })
}
