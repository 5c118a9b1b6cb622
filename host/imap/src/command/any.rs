//! Commands valid in any state (RFC 3501 §6.1): CAPABILITY, NOOP (in
//! dispatch), LOGOUT; and ID (RFC 2971) and ENABLE (RFC 5161), with the
//! turning on of CONDSTORE and QRESYNC by the commands that enable them.

use super::Done;
use crate::codec::Command;
use crate::codec::response::untagged;
use crate::session::{Flow, Session};

/// The capabilities for the session's state: before login, what a client
/// needs to log in; after it, the extensions (RFC 3501 §7.2.1).
pub(crate) fn capabilities<S>(s: &Session<'_, S>) -> String {
    let mut caps = vec!["IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"];
    if s.user.is_none() {
        if !s.ctx.tls && s.ctx.settings.tls.is_some() {
            caps.push("STARTTLS");
        }
        if s.ctx.secured() {
            caps.push("AUTH=PLAIN");
        } else {
            // RFC 3501 §6.2.3: LOGIN is refused until TLS.
            caps.push("LOGINDISABLED");
        }
    } else {
        caps.extend([
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "CHILDREN",
            "SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "CONDSTORE",
            "QRESYNC",
        ]);
    }
    caps.join(" ")
}

pub(crate) fn capability<S>(s: &mut Session<'_, S>) -> Done
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let caps = capabilities(s);
    s.io.send(&untagged(&format!("CAPABILITY {caps}")));
    Done::ok("Capability completed.")
}

pub(crate) fn logout<S>(s: &mut Session<'_, S>) -> Done
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    s.io.send(&untagged("BYE Logging out"));
    Done::ok("Logout completed.")
        .sync(super::Sync::Skip)
        .flow(Flow::Logout)
}

/// RFC 2971: the client's fields are not kept; ours name the server.
pub(crate) fn id<S>(s: &mut Session<'_, S>) -> Done
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    s.io.send(&untagged(&format!(
        "ID (\"name\" \"Postern\" \"version\" \"{}\")",
        env!("CARGO_PKG_VERSION")
    )));
    Done::ok("ID completed.")
}

/// RFC 5161: CONDSTORE and QRESYNC are the extensions here that can be
/// enabled (dispatch has turned them on, RFC 7162 §3.1, §3.2.3); others
/// (UTF8=ACCEPT) are not offered, so they are left out of the ENABLED list.
pub(crate) fn enable<S>(s: &mut Session<'_, S>, caps: &[String]) -> Done
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let mut line = String::from("ENABLED");
    for (cap, on) in [("CONDSTORE", s.condstore), ("QRESYNC", s.qresync)] {
        if on && caps.iter().any(|c| c == cap) {
            line.push(' ');
            line.push_str(cap);
        }
    }
    s.io.send(&untagged(&line));
    Done::ok("Enabled.")
}

/// Turns CONDSTORE and QRESYNC on for the session when `command` enables
/// them (RFC 7162 §3.1, §3.2.3), before it runs.
pub(crate) fn enabling<S>(s: &mut Session<'_, S>, command: &Command)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    if s.user.is_some()
        && let Command::Enable(caps) = command
        && caps.iter().any(|c| c == "QRESYNC")
    {
        // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
        s.qresync = true;
        if let Some(sel) = s.selected.as_mut() {
            sel.qresync = true;
        }
    }
    // A SELECT (QRESYNC) refused for want of ENABLE enables nothing.
    let refused = matches!(
        command,
        Command::Select {
            qresync: Some(_),
            ..
        }
    ) && !s.qresync;
    if command.enables_condstore() && !s.condstore && s.user.is_some() && !refused {
        s.condstore = true;
        // (A SELECT tells the HIGHESTMODSEQ of the mailbox it opens.)
        if let Some(sel) = s
            .selected
            .as_mut()
            .filter(|_| !matches!(command, Command::Select { .. }))
        {
            // RFC 7162 §3.1: the first enabling command on a selected
            // mailbox tells its HIGHESTMODSEQ.
            sel.condstore = true;
            let line = format!("OK [HIGHESTMODSEQ {}] Highest", sel.highest_modseq);
            s.io.send(&untagged(&line));
        }
    }
}
