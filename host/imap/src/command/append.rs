//! APPEND (RFC 3501 §6.3.11) with UIDPLUS's APPENDUID (RFC 4315 §3).

use postern_mailbox::{Flags, FolderError};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Done, internal};
use crate::session::Session;
use crate::session::view::blocking;

pub(crate) async fn append<S>(
    s: &mut Session<'_, S>,
    name: &str,
    flags: &[String],
    date: Option<i64>,
    message: Vec<u8>,
) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some((_, store)) = &s.user else {
        return Done::bad("Please log in first.");
    };
    let mailbox = match store.mailbox(name) {
        Ok(m) => m,
        // RFC 3501 §6.3.11: [TRYCREATE] tells the client to CREATE first.
        Err(FolderError::NotFound(_)) => return Done::no("[TRYCREATE] Mailbox doesn't exist."),
        Err(e) => return Done::no(e.to_string()),
    };
    if message.is_empty() {
        return Done::no("Can't save an empty message.");
    }
    let mut set = Flags::new();
    for f in flags {
        set.insert(f);
    }
    let mb = mailbox.clone();
    // Returns once the message, its name and its UID are on disk (one
    // journal commit): only then may the tagged OK and its APPENDUID go
    // out (RFC 3501 §6.3.11, RFC 4315 §3).
    let saved = blocking(move || mb.append(&message, &set, date)).await;
    match saved {
        Ok((validity, uid)) => {
            // \Recent for the session that sees it first: this one, at
            // dispatch's sync, when the mailbox is selected here.
            Done::ok(format!("[APPENDUID {validity} {uid}] Append completed."))
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Done::no(format!("[LIMIT] {e}")),
        Err(e) => internal(s, "append", &e),
    }
}
