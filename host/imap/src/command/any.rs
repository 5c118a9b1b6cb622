//! Commands valid in any state (RFC 3501 §6.1): CAPABILITY, NOOP (in
//! dispatch), LOGOUT; and ID (RFC 2971) and ENABLE (RFC 5161).

use super::Done;
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

/// RFC 5161: none of the extensions that need enabling (CONDSTORE,
/// QRESYNC, UTF8=ACCEPT) is offered, so the ENABLED list is empty.
pub(crate) fn enable<S>(s: &mut Session<'_, S>, _caps: &[String]) -> Done
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    s.io.send(&untagged("ENABLED"));
    Done::ok("Enabled.")
}
