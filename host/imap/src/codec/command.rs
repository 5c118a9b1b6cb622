//! Commands (RFC 3501 §6 and the extensions Postern offers), parsed once
//! into typed values: the session never looks at command text again.

use super::fetch::{FetchItem, parse_fetch_items};
use super::parse::{ParseError, Parser, Result, bad};
use super::search::{SearchKey, parse_search};
use super::sequence::SequenceSet;

/// A tagged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The client's tag, echoed in the completion.
    pub tag: String,
    /// What it asks.
    pub command: Command,
}

/// STATUS data items (RFC 3501 §6.3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    /// MESSAGES
    Messages,
    /// RECENT
    Recent,
    /// UIDNEXT
    UidNext,
    /// UIDVALIDITY
    UidValidity,
    /// UNSEEN
    Unseen,
    /// SIZE (RFC 8438)
    Size,
    /// HIGHESTMODSEQ (RFC 7162 §3.1.9)
    HighestModseq,
}

/// How STORE changes flags (RFC 3501 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// FLAGS: replace.
    Replace,
    /// +FLAGS: add.
    Add,
    /// -FLAGS: remove.
    Remove,
}

/// LIST-EXTENDED selection and return options (RFC 5258 §3) and
/// LIST-STATUS (RFC 5819).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `(SUBSCRIBED)`: only subscribed mailboxes; implies returning
    /// \Subscribed.
    pub subscribed: bool,
    /// `(SPECIAL-USE)`: only mailboxes with a special use (RFC 6154).
    pub special_use_only: bool,
    /// `RETURN (SUBSCRIBED)`.
    pub return_subscribed: bool,
    /// `RETURN (STATUS (...))`: a STATUS response after each LIST line.
    pub status: Option<Vec<StatusItem>>,
}

/// SELECT's `(QRESYNC (uidvalidity modseq [known-uids [seq-match]]))`
/// (RFC 7162 §3.2.5); the sequence match data is parsed and not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    /// The UIDVALIDITY the client's cache is for.
    pub validity: u32,
    /// The HIGHESTMODSEQ it last saw.
    pub modseq: u64,
    /// The UIDs it knows; all up to UIDNEXT when absent.
    pub known: Option<SequenceSet>,
}

/// One command with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Command {
    Capability,
    Noop,
    Logout,
    StartTls,
    Login {
        user: String,
        password: String,
    },
    Authenticate {
        mechanism: String,
        initial: Option<String>,
    },
    Select {
        mailbox: String,
        read_only: bool,
        /// `(CONDSTORE)` (RFC 7162 §3.1.8).
        condstore: bool,
        /// `(QRESYNC (...))` (RFC 7162 §3.2.5).
        qresync: Option<Qresync>,
    },
    Create(String),
    Delete(String),
    Rename {
        from: String,
        to: String,
    },
    Subscribe(String),
    Unsubscribe(String),
    List {
        reference: String,
        patterns: Vec<String>,
        lsub: bool,
        options: ListOptions,
    },
    Status {
        mailbox: String,
        items: Vec<StatusItem>,
    },
    Append {
        mailbox: String,
        flags: Vec<String>,
        date: Option<i64>,
        message: Vec<u8>,
    },
    Check,
    Close,
    Unselect,
    Expunge {
        uids: Option<SequenceSet>,
    },
    Search {
        uid: bool,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        items: Vec<FetchItem>,
        /// `(CHANGEDSINCE n)` (RFC 7162 §3.1.4.1).
        changed_since: Option<u64>,
        /// `(... VANISHED)` (RFC 7162 §3.2.6), UID FETCH only.
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
        /// `(UNCHANGEDSINCE n)` (RFC 7162 §3.1.3).
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
        moving: bool,
    },
    Idle,
    Namespace,
    Enable(Vec<String>),
    Id,
}

impl Command {
    /// A CONDSTORE enabling command (RFC 7162 §3.1): after it, the
    /// session reports MODSEQs in every untagged FETCH.
    pub fn enables_condstore(&self) -> bool {
        match self {
            Command::Select {
                condstore, qresync, ..
            } => *condstore || qresync.is_some(),
            Command::Status { items, .. } => items.contains(&StatusItem::HighestModseq),
            Command::Fetch {
                items,
                changed_since,
                ..
            } => changed_since.is_some() || items.contains(&FetchItem::Modseq),
            Command::Store {
                unchanged_since, ..
            } => unchanged_since.is_some(),
            Command::Search { key, .. } => key.uses_modseq(),
            Command::Enable(caps) => caps.iter().any(|c| c == "CONDSTORE" || c == "QRESYNC"),
            _ => false,
        }
    }
}

impl Request {
    /// Parses one framed command. The error carries the tag when there
    /// was a usable one (a BAD is tagged then, untagged otherwise).
    pub fn parse(bytes: &[u8]) -> std::result::Result<Request, (Option<String>, ParseError)> {
        let mut p = Parser::new(bytes);
        let tag = match p.atom_with(&[]) {
            Ok(t) if super::frame::tag_of(t.as_bytes()).is_some() => t.to_owned(),
            _ => {
                return Err((
                    None,
                    ParseError("Error in IMAP command received by server.".into()),
                ));
            }
        };
        let command = (|| {
            p.sp()
                .or_else(|_| bad("Error in IMAP command received by server."))?;
            let name = p.atom()?.to_ascii_uppercase();
            let command = command(&mut p, &name)?;
            p.end()?;
            Ok(command)
        })();
        match command {
            Ok(command) => Ok(Request { tag, command }),
            Err(e) => Err((Some(tag), e)),
        }
    }
}

fn mailbox(p: &mut Parser<'_>) -> Result<String> {
    p.sp()?;
    let name = p.astring_utf8()?;
    Ok(if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_owned()
    } else {
        name
    })
}

fn command(p: &mut Parser<'_>, name: &str) -> Result<Command> {
    Ok(match name {
        "CAPABILITY" => Command::Capability,
        "NOOP" => Command::Noop,
        "LOGOUT" => Command::Logout,
        "STARTTLS" => Command::StartTls,
        "CHECK" => Command::Check,
        "CLOSE" => Command::Close,
        "UNSELECT" => Command::Unselect,
        "IDLE" => Command::Idle,
        "NAMESPACE" => Command::Namespace,
        "LOGIN" => {
            p.sp()?;
            let user = p.astring_utf8()?;
            p.sp()?;
            let password = p.astring_utf8()?;
            Command::Login { user, password }
        }
        "AUTHENTICATE" => {
            p.sp()?;
            let mechanism = p.atom()?.to_ascii_uppercase();
            let initial = if p.eat(b' ') {
                Some(p.atom_with(b"=")?.to_owned())
            } else {
                None
            };
            Command::Authenticate { mechanism, initial }
        }
        "SELECT" | "EXAMINE" => {
            let mailbox = mailbox(p)?;
            let (mut condstore, mut qresync) = (false, None);
            if p.eat(b' ') {
                // RFC 4466 §2.1 select-params: CONDSTORE and QRESYNC.
                if !p.eat(b'(') {
                    return bad("Expected a list of SELECT parameters");
                }
                while !p.eat(b')') {
                    p.eat(b' ');
                    match p.atom()?.to_ascii_uppercase().as_str() {
                        "CONDSTORE" => condstore = true,
                        "QRESYNC" => qresync = Some(qresync_params(p)?),
                        other => return bad(format!("Unknown SELECT parameter {other}")),
                    }
                }
            }
            Command::Select {
                mailbox,
                read_only: name == "EXAMINE",
                condstore,
                qresync,
            }
        }
        "CREATE" => Command::Create(mailbox(p)?),
        "DELETE" => Command::Delete(mailbox(p)?),
        "SUBSCRIBE" => Command::Subscribe(mailbox(p)?),
        "UNSUBSCRIBE" => Command::Unsubscribe(mailbox(p)?),
        "RENAME" => {
            let from = mailbox(p)?;
            let to = mailbox(p)?;
            Command::Rename { from, to }
        }
        "LIST" | "LSUB" => list(p, name == "LSUB")?,
        "STATUS" => {
            let mailbox = mailbox(p)?;
            p.sp()?;
            Command::Status {
                mailbox,
                items: status_items(p)?,
            }
        }
        "APPEND" => append(p)?,
        "EXPUNGE" => Command::Expunge { uids: None },
        "SEARCH" => Command::Search {
            uid: false,
            key: parse_search(p)?,
        },
        "FETCH" | "STORE" | "COPY" | "MOVE" => sequenced(p, name, false)?,
        "UID" => {
            p.sp()?;
            let sub = p.atom()?.to_ascii_uppercase();
            match sub.as_str() {
                "FETCH" | "STORE" | "COPY" | "MOVE" => sequenced(p, &sub, true)?,
                "SEARCH" => Command::Search {
                    uid: true,
                    key: parse_search(p)?,
                },
                "EXPUNGE" => {
                    p.sp()?;
                    Command::Expunge {
                        uids: Some(p.sequence_set()?),
                    }
                }
                _ => return bad("Unknown UID command"),
            }
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while p.eat(b' ') {
                caps.push(p.atom()?.to_ascii_uppercase());
            }
            if caps.is_empty() {
                return bad("Missing arguments");
            }
            Command::Enable(caps)
        }
        "ID" => {
            // RFC 2971: NIL or a list of strings; the values are not kept.
            p.sp()?;
            if p.eat(b'(') {
                while !p.eat(b')') {
                    p.eat(b' ');
                    if p.peek().is_some_and(|b| b == b'N' || b == b'n') {
                        p.atom()?;
                    } else {
                        p.string()?;
                    }
                }
            } else if !p.atom()?.eq_ignore_ascii_case("NIL") {
                return bad("ID: Expected NIL or a list");
            }
            Command::Id
        }
        _ => return bad("Unknown command."),
    })
}

/// ` (uidvalidity modseq [known-uids [(seq-set uid-set)]])` after
/// `QRESYNC` (RFC 7162 §3.2.5).
fn qresync_params(p: &mut Parser<'_>) -> Result<Qresync> {
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
fn status_items(p: &mut Parser<'_>) -> Result<Vec<StatusItem>> {
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
fn list(p: &mut Parser<'_>, lsub: bool) -> Result<Command> {
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
fn append(p: &mut Parser<'_>) -> Result<Command> {
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
            super::date::parse_date_time(&text)
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
fn sequenced(p: &mut Parser<'_>, name: &str, uid: bool) -> Result<Command> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Command {
        Request::parse(s).unwrap().command
    }

    #[test]
    fn commands() {
        assert_eq!(
            parse(b"a LOGIN alice@example.org \"se cret\""),
            Command::Login {
                user: "alice@example.org".into(),
                password: "se cret".into()
            }
        );
        assert_eq!(
            parse(b"a select inbox"),
            Command::Select {
                mailbox: "INBOX".into(),
                read_only: false,
                condstore: false,
                qresync: None
            }
        );
        assert!(matches!(
            parse(b"a APPEND Sent (\\Seen) \"01-Feb-1994 08:30:00 +0100\" {3}\r\nabc"),
            Command::Append { ref flags, date: Some(_), ref message, .. } if flags == &["\\Seen"] && message == b"abc"
        ));
        assert!(matches!(
            parse(b"a UID STORE 1:* +FLAGS.SILENT (\\Deleted)"),
            Command::Store {
                uid: true,
                silent: true,
                mode: StoreMode::Add,
                ..
            }
        ));
        assert!(matches!(
            parse(b"a UID MOVE 4 Trash"),
            Command::Copy {
                uid: true,
                moving: true,
                ..
            }
        ));
        assert_eq!(
            parse(b"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA=="),
            Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some("AGFsaWNlAHNlY3JldA==".into())
            }
        );
        assert_eq!(parse(b"a ID (\"name\" \"x\" \"v\" NIL)"), Command::Id);
        let Command::List {
            patterns, options, ..
        } = parse(b"a LIST (SUBSCRIBED) \"\" (INBOX %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))")
        else {
            panic!()
        };
        assert_eq!(patterns, ["INBOX", "%"]);
        assert!(options.subscribed);
        assert_eq!(
            options.status,
            Some(vec![StatusItem::Messages, StatusItem::Unseen])
        );
    }

    #[test]
    fn condstore_arguments() {
        let select = parse(b"a EXAMINE INBOX (CONDSTORE)");
        assert!(select.enables_condstore());
        assert!(matches!(
            parse(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)"),
            Command::Fetch {
                changed_since: Some(12345),
                ..
            }
        ));
        let store = parse(b"a STORE 1 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Seen)");
        assert!(matches!(
            store,
            Command::Store {
                unchanged_since: Some(0),
                silent: true,
                ..
            }
        ));
        assert!(store.enables_condstore());
        assert!(parse(b"a STATUS INBOX (HIGHESTMODSEQ)").enables_condstore());
        assert!(!parse(b"a FETCH 1 FLAGS").enables_condstore());
        let Command::Select {
            qresync: Some(q), ..
        } = parse(
            b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:9 41:49)))",
        )
        else {
            panic!()
        };
        assert_eq!((q.validity, q.modseq), (67890007, 20050715194045000));
        assert!(q.known.unwrap().contains(300, 541));
        assert!(matches!(
            parse(b"a SELECT INBOX (QRESYNC (1 2))"),
            Command::Select {
                qresync: Some(Qresync { known: None, .. }),
                ..
            }
        ));
        assert!(matches!(
            parse(b"a UID FETCH 1:* FLAGS (VANISHED CHANGEDSINCE 5)"),
            Command::Fetch {
                vanished: true,
                changed_since: Some(5),
                ..
            }
        ));
        for bad in [
            &b"a SELECT INBOX (FROB)"[..],
            b"a SELECT INBOX CONDSTORE",
            b"a FETCH 1 FLAGS (CHANGEDSINCE)",
            b"a FETCH 1 FLAGS (CHANGEDSINCE 0)",
            b"a FETCH 1 FLAGS (CHANGEDSINCE abc)",
            b"a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)",
            b"a FETCH 1 FLAGS (VANISHED)",
            b"a FETCH 1 FLAGS (CHANGEDSINCE 5 VANISHED)",
            b"a UID FETCH 1 FLAGS (VANISHED)",
            b"a SELECT INBOX (QRESYNC)",
            b"a SELECT INBOX (QRESYNC (0 5))",
            b"a SELECT INBOX (QRESYNC (1 0))",
            b"a SELECT INBOX (QRESYNC (1 5 1:3 (1:2)))",
            b"a SELECT INBOX (QRESYNC (1 5 1:3 (1:2 3:4))",
            b"a STORE 1 (UNCHANGEDSINCE -1) FLAGS (\\Seen)",
            b"a STORE 1 (UNCHANGEDSINCE 5 FLAGS (\\Seen)",
            b"a STORE 1 (FROB 5) FLAGS (\\Seen)",
            b"a SEARCH MODSEQ x",
            b"a SEARCH MODSEQ \"/flags/\\\\seen\" bogus 5",
        ] {
            assert!(
                Request::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn errors_keep_the_tag() {
        let (tag, e) = Request::parse(b"a7 FROB").unwrap_err();
        assert_eq!(
            (tag.as_deref(), e.0.as_str()),
            (Some("a7"), "Unknown command.")
        );
        assert_eq!(Request::parse(b"(x NOOP").unwrap_err().0, None);
        assert!(Request::parse(b"a NOOP extra").is_err());
        assert!(Request::parse(b"a SELECT \xff\xfe").is_err());
        assert!(Request::parse(b"a FETCH 0 FLAGS").is_err());
        assert!(Request::parse(b"a STATUS INBOX (BOGUS)").is_err());
    }
}
