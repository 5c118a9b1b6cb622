//! Managing mailboxes (RFC 3501 §6.3.3-7): CREATE, DELETE, RENAME,
//! SUBSCRIBE, UNSUBSCRIBE; and NAMESPACE (RFC 2342).

use postern_mailbox::{FolderError, Store};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Done, internal};
use crate::codec::response::untagged;
use crate::session::Session;
use crate::session::view::blocking;

/// The completion for a store error.
fn refused<S>(s: &Session<'_, S>, what: &str, e: FolderError) -> Done {
    match e {
        FolderError::Io(e) => internal(s, what, &e),
        FolderError::NotFound(name) => {
            Done::no(format!("[NONEXISTENT] Mailbox doesn't exist: {name}"))
        }
        FolderError::Exists => Done::no("[ALREADYEXISTS] Mailbox already exists"),
        FolderError::BadName => Done::no("[CANNOT] Invalid mailbox name"),
        other => Done::no(format!("[CANNOT] {other}")),
    }
}

/// Runs `f` on the user's store off the async workers.
async fn on_store<S, F>(s: &Session<'_, S>, f: F) -> Result<(), FolderError>
where
    F: FnOnce(&Store) -> Result<(), FolderError> + Send + 'static,
{
    let Some((_, store)) = &s.user else {
        return Err(FolderError::BadName);
    };
    let store = store.clone();
    match blocking(move || Ok(f(&store))).await {
        Ok(result) => result,
        Err(e) => Err(FolderError::Io(e)),
    }
}

pub(crate) async fn create<S>(s: &mut Session<'_, S>, name: &str) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let owned = name.to_owned();
    match on_store(s, move |st| st.create(&owned)).await {
        Ok(()) => Done::ok("Create completed."),
        Err(e) => refused(s, "create", e),
    }
}

pub(crate) async fn delete<S>(s: &mut Session<'_, S>, name: &str) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    if s.selected.as_ref().is_some_and(|sel| sel.name == name) {
        // Dovecot deselects; the RFC leaves it open. Refusing is clearer.
        return Done::no("[CANNOT] Can't delete the selected mailbox.");
    }
    let owned = name.to_owned();
    match on_store(s, move |st| st.delete(&owned)).await {
        Ok(()) => Done::ok("Delete completed."),
        Err(e) => refused(s, "delete", e),
    }
}

pub(crate) async fn rename<S>(s: &mut Session<'_, S>, from: &str, to: &str) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (from, to) = (from.to_owned(), to.to_owned());
    match on_store(s, move |st| st.rename(&from, &to)).await {
        Ok(()) => Done::ok("Rename completed."),
        Err(e) => refused(s, "rename", e),
    }
}

pub(crate) async fn subscribe<S>(s: &mut Session<'_, S>, name: &str, on: bool) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let owned = name.to_owned();
    match on_store(s, move |st| st.subscribe(&owned, on)).await {
        Ok(()) if on => Done::ok("Subscribe completed."),
        Ok(()) => Done::ok("Unsubscribe completed."),
        Err(e) => refused(s, "subscribe", e),
    }
}

/// One personal namespace with `.` as the delimiter, as Dovecot's
/// Maildir++ default (RFC 2342 §5).
pub(crate) fn namespace<S>(s: &mut Session<'_, S>) -> Done
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    s.io.send(&untagged("NAMESPACE ((\"\" \".\")) NIL NIL"));
    Done::ok("Namespace completed.")
}
