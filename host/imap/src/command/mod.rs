//! The commands, one file per group (STYLE: a newcomer finds a verb by
//! its name), and the dispatch that checks the state a command needs
//! (RFC 3501 §6: any state, not authenticated, authenticated, selected).
//!
//! A command returns a `Done`: the tagged completion. Dispatch then
//! brings the selected mailbox up to date (untagged EXISTS, EXPUNGE,
//! FETCH FLAGS) before the completion goes out, as RFC 3501 §5.2 asks.

pub(crate) mod any;
pub(crate) mod append;
pub(crate) mod auth;
pub(crate) mod copy;
pub(crate) mod fetch;
pub(crate) mod idle;
pub(crate) mod list;
pub(crate) mod mailbox;
pub(crate) mod search;
pub(crate) mod select;
pub(crate) mod store;

use postern_tls::relay::{Handed, Protocol};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::codec::{Command, Request};
use crate::session::io::Stop;
use crate::session::{Flow, Session};

/// How dispatch syncs the selected mailbox after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sync {
    /// Report everything.
    Full,
    /// FETCH, STORE, SEARCH by sequence number: no EXPUNGE (§7.4.1).
    NoExpunge,
    /// The command reported what it needed itself (SELECT, CLOSE).
    Skip,
}

/// A command's tagged completion.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) status: &'static str,
    pub(crate) text: String,
    pub(crate) flow: Flow,
    pub(crate) sync: Sync,
}

impl Done {
    pub(crate) fn ok(text: impl Into<String>) -> Done {
        Done {
            status: "OK",
            text: text.into(),
            flow: Flow::Continue,
            sync: Sync::Full,
        }
    }

    pub(crate) fn no(text: impl Into<String>) -> Done {
        Done {
            status: "NO",
            ..Done::ok(text)
        }
    }

    pub(crate) fn bad(text: impl Into<String>) -> Done {
        Done {
            status: "BAD",
            ..Done::ok(text)
        }
    }

    pub(crate) fn sync(self, sync: Sync) -> Done {
        Done { sync, ..self }
    }

    pub(crate) fn flow(self, flow: Flow) -> Done {
        Done { flow, ..self }
    }
}

/// The `NO` for a store failure, logged with the user.
pub(crate) fn internal<S>(s: &Session<'_, S>, what: &str, e: &std::io::Error) -> Done {
    let user = s.user.as_ref().map_or("", |(u, _)| u.as_str());
    tracing::warn!(target: "postern/imap", "imap({user}): {what}: {e}");
    Done::no("[SERVERBUG] Internal error occurred. Refer to server log for more information.")
}

/// Runs one command and queues its responses.
pub(crate) async fn dispatch<S>(s: &mut Session<'_, S>, req: Request) -> Result<Flow, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Request { tag, command } = req;
    any::enabling(s, &command);
    let done = run(s, &tag, command).await?;
    if matches!(done.flow, Flow::Handover) {
        // The process the login goes to completes it.
        if let Some(Handed {
            protocol: Protocol::Imap { tag: t, .. },
            ..
        }) = s.handover.as_mut()
        {
            *t = tag;
        }
        return Ok(Flow::Handover);
    }
    if done.status == "BAD" {
        return s.bad(Some(&tag), &done.text);
    }
    if done.sync != Sync::Skip
        && let Some(sel) = s.selected.as_mut()
    {
        let mut out = Vec::new();
        if let Err(e) = sel.sync(&mut out, done.sync == Sync::Full).await {
            s.io.send(&out);
            let user = s.user.as_ref().map_or("", |(u, _)| u.as_str());
            tracing::warn!(target: "postern/imap", "imap({user}): mailbox {}: {e}", sel.name);
            s.io.send(b"* BYE Mailbox state changed under the session, reconnect.\r\n");
            return Err(Stop::Kicked("Mailbox sync failed"));
        }
        s.io.send(&out);
    }
    s.reply(&tag, done.status, &done.text);
    Ok(done.flow)
}

async fn run<S>(s: &mut Session<'_, S>, tag: &str, command: Command) -> Result<Done, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let logged_in = s.user.is_some();
    Ok(match command {
        Command::Capability => any::capability(s),
        Command::Noop => Done::ok("NOOP completed."),
        Command::Logout => any::logout(s),
        Command::Id => any::id(s),
        Command::StartTls => auth::starttls(s),
        Command::Login { .. } | Command::Authenticate { .. } if logged_in => {
            Done::bad("Already logged in.")
        }
        Command::Login { user, password } => auth::login(s, user, password).await?,
        Command::Authenticate { mechanism, initial } => {
            auth::authenticate(s, &mechanism, initial).await?
        }
        _ if !logged_in => Done::bad("Please log in first."),
        Command::Select {
            mailbox,
            read_only,
            qresync,
            ..
        } => select::select(s, mailbox, read_only, qresync).await,
        Command::Create(name) => mailbox::create(s, &name).await,
        Command::Delete(name) => mailbox::delete(s, &name).await,
        Command::Rename { from, to } => mailbox::rename(s, &from, &to).await,
        Command::Subscribe(name) => mailbox::subscribe(s, &name, true).await,
        Command::Unsubscribe(name) => mailbox::subscribe(s, &name, false).await,
        Command::Namespace => mailbox::namespace(s),
        Command::List {
            reference,
            patterns,
            lsub,
            options,
        } => list::list(s, &reference, &patterns, lsub, &options).await,
        Command::Status { mailbox, items } => list::status(s, &mailbox, &items).await,
        Command::Append {
            mailbox,
            flags,
            date,
            message,
        } => append::append(s, &mailbox, &flags, date, message).await,
        Command::Enable(caps) => any::enable(s, &caps),
        Command::Idle => idle::idle(s, tag).await?,
        _ if s.selected.is_none() => Done::bad("No mailbox selected."),
        Command::Check => Done::ok("Check completed."),
        Command::Close => select::close(s, true).await,
        Command::Unselect => select::close(s, false).await,
        Command::Expunge { uids } => select::expunge(s, uids.as_ref()).await,
        Command::Search { uid, key } => search::search(s, uid, &key).await,
        Command::Fetch {
            uid,
            set,
            items,
            changed_since,
            vanished,
        } => {
            if vanished && !s.qresync {
                Done::bad("QRESYNC not enabled.")
            } else {
                let since = changed_since.map(|n| (n, vanished));
                fetch::fetch(s, uid, &set, &items, since).await?
            }
        }
        Command::Store {
            uid,
            set,
            mode,
            silent,
            flags,
            unchanged_since,
        } => {
            let change = store::Change {
                mode,
                silent,
                flags,
                unchanged_since,
            };
            store::store(s, uid, &set, change).await
        }
        Command::Copy {
            uid,
            set,
            mailbox,
            moving,
        } => copy::copy(s, uid, &set, &mailbox, moving).await,
    })
}
