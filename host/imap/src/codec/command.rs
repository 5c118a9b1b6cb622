//! Commands (RFC 3501 §6 and the extensions Postern offers), parsed once
//! into typed values: the session never looks at command text again.
//!
//! This file holds the typed values and [`Request::parse`], the entry
//! point; `dispatch` maps a command's name to its parser and `args`
//! parses the argument groups that take more than a token or two.

use super::fetch::FetchItem;
use super::parse::{ParseError, Parser, bad};
use super::search::SearchKey;
use super::sequence::SequenceSet;

mod args;
mod dispatch;

use dispatch::command;

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
    pub fn parse(bytes: &[u8]) -> Result<Request, (Option<String>, ParseError)> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
