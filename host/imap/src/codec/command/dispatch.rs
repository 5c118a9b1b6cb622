//! The dispatch from a command's name to its parser (RFC 3501 §6): the
//! commands whose arguments are a token or two are parsed right here, the
//! longer argument groups in `args`.

use super::Command;
use super::args::{append, list, mailbox, qresync_params, sequenced, status_items};
use crate::codec::parse::{Parser, Result, bad};
use crate::codec::search::parse_search;

pub(super) fn command(p: &mut Parser<'_>, name: &str) -> Result<Command> {
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
