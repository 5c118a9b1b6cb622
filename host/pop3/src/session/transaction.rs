//! The TRANSACTION state (RFC 1939 §5) and, at QUIT, the UPDATE state
//! (§6): deletions are marks until QUIT, and only then are files removed.
//! A session that ends any other way deletes nothing.
//!
//! Messages read whole with RETR get `\Seen` in the UPDATE state too, as
//! Dovecot's pop3 does by default (`pop3_no_flag_updates = no`), so an
//! IMAP client of the same mailbox sees them read; TOP reads only a part
//! and sets nothing.

use postern_auth::owner::as_owner;
use postern_mailbox::Entry;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Context;
use super::authorization::{Login, capa};
use super::io::{Input, Io, Stop};
use crate::codec::{Command, response};

/// What Dovecot's logout line counts.
#[derive(Debug, Default)]
struct Stats {
    top: u64,
    top_bytes: u64,
    retr: u64,
    retr_bytes: u64,
    deleted: u64,
}

/// The messages as the session saw them at login, with their marks.
#[derive(Debug)]
struct Maildrop {
    messages: Vec<Entry>,
    deleted: Vec<bool>,
    /// Read with RETR: \Seen at QUIT.
    retrieved: Vec<bool>,
}

impl Maildrop {
    /// Message `n` (1-based) unless it does not exist or is marked.
    fn get(&self, n: u32) -> Result<(usize, &Entry), String> {
        let i = usize::try_from(n).unwrap_or(usize::MAX).wrapping_sub(1);
        match (self.messages.get(i), self.deleted.get(i)) {
            (Some(_), Some(true)) => Err("Message is deleted.".to_owned()),
            (Some(e), _) => Ok((i, e)),
            _ => Err(format!("There's no message {n}.")),
        }
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted.get(*i).copied().unwrap_or(false))
    }

    fn total(&self) -> u64 {
        self.messages.iter().map(|e| e.size).sum()
    }
}

/// Runs the state from `+OK Logged in.` to the end of the session.
pub(crate) async fn run<S>(io: &mut Io<S>, ctx: Context<'_>, mut login: Login)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (maildir, owner) = (login.maildir.clone(), login.owner);
    let scan = move || as_owner(owner, move || maildir.scan());
    let messages = match tokio::task::spawn_blocking(scan).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            tracing::warn!(target: "postern/pop3", "pop3({}): cannot read {}: {e}", login.user, login.maildir.path().display());
            io.send(&response::err("[SYS/TEMP] Couldn't sync mailbox."));
            io.shutdown().await;
            return;
        }
        Err(_) => {
            io.send(&response::err("[SYS/TEMP] Couldn't sync mailbox."));
            io.shutdown().await;
            return;
        }
    };
    let mut drop = Maildrop {
        deleted: vec![false; messages.len()],
        retrieved: vec![false; messages.len()],
        messages,
    };
    let mut stats = Stats::default();
    io.send(&response::ok("Logged in."));
    let why = match serve(io, ctx, &mut login, &mut drop, &mut stats).await {
        Ok(()) => "Logged out".to_owned(),
        Err(Stop::Timeout) => {
            io.send(&response::err("Disconnected for inactivity."));
            io.shutdown().await;
            "Inactivity".to_owned()
        }
        Err(Stop::Kicked) => {
            io.shutdown().await;
            "Too many invalid commands".to_owned()
        }
        Err(Stop::Shutdown) => {
            io.send(&response::err(super::SHUTTING_DOWN));
            io.shutdown().await;
            "Server shutting down".to_owned()
        }
        Err(Stop::Eof) => "Connection closed".to_owned(),
        Err(Stop::Io(e)) => format!("Connection closed ({e})"),
    };
    let logged_out = why == "Logged out";
    let marked = drop.deleted.iter().filter(|d| **d).count();
    tracing::info!(
        target: "postern/pop3",
        "pop3({}): Disconnected: {why} top={}/{}, retr={}/{}, del={}/{}, size={}",
        login.user,
        stats.top,
        stats.top_bytes,
        stats.retr,
        stats.retr_bytes,
        if logged_out { stats.deleted } else { 0 },
        drop.messages.len(),
        drop.total()
    );
    if !logged_out && marked > 0 {
        tracing::info!(target: "postern/pop3", "pop3({}): {marked} messages marked for deletion were kept: the session ended without QUIT", login.user);
    }
}

/// Commands until QUIT (Ok) or the end of the connection.
async fn serve<S>(
    io: &mut Io<S>,
    ctx: Context<'_>,
    login: &mut Login,
    drop: &mut Maildrop,
    stats: &mut Stats,
) -> Result<(), Stop>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut bad = 0u32;
    loop {
        let command = match io.next_line().await? {
            Input::Line(line) => Command::parse(&line).map_err(|e| e.to_string()),
            Input::TooLong => Err("Input line too long.".to_owned()),
        };
        let command = match command {
            Ok(c) => c,
            Err(text) => {
                io.send(&response::err(&text));
                bad += 1;
                if bad >= ctx.settings.max_bad_commands {
                    return Err(Stop::Kicked);
                }
                continue;
            }
        };
        match command {
            Command::Capa => io.send(&capa(ctx, true)),
            Command::Noop => io.send(&response::ok("")),
            Command::Stat => {
                let (n, size) = drop
                    .live()
                    .fold((0u64, 0u64), |(n, s), (_, e)| (n + 1, s + e.size));
                io.send(&response::ok(&format!("{n} {size}")));
            }
            Command::List(None) => {
                let lines: Vec<String> = drop
                    .live()
                    .map(|(i, e)| format!("{} {}", i + 1, e.size))
                    .collect();
                let mut out = response::ok(&format!("{} messages:", lines.len()));
                response::lines(&mut out, lines.iter().map(String::as_str));
                io.send(&out);
            }
            Command::List(Some(n)) => match drop.get(n) {
                Ok((_, e)) => io.send(&response::ok(&format!("{n} {}", e.size))),
                Err(text) => io.send(&response::err(&text)),
            },
            Command::Uidl(None) => {
                let lines: Vec<String> = drop
                    .live()
                    .map(|(i, e)| format!("{} {}", i + 1, uidl(&e.id)))
                    .collect();
                let mut out = response::ok("");
                response::lines(&mut out, lines.iter().map(String::as_str));
                io.send(&out);
            }
            Command::Uidl(Some(n)) => match drop.get(n) {
                Ok((_, e)) => io.send(&response::ok(&format!("{n} {}", uidl(&e.id)))),
                Err(text) => io.send(&response::err(&text)),
            },
            Command::Retr(n) => {
                if let Some(sent) = send_message(io, login, drop, n, None).await {
                    stats.retr += 1;
                    stats.retr_bytes += sent;
                    if let Some(read) = usize::try_from(n)
                        .ok()
                        .and_then(|n| drop.retrieved.get_mut(n.wrapping_sub(1)))
                    {
                        *read = true;
                    }
                }
            }
            Command::Top(n, lines) => {
                if let Some(sent) = send_message(io, login, drop, n, Some(lines)).await {
                    stats.top += 1;
                    stats.top_bytes += sent;
                }
            }
            Command::Dele(n) => match drop.get(n) {
                Ok((i, _)) => {
                    if let Some(mark) = drop.deleted.get_mut(i) {
                        *mark = true;
                    }
                    io.send(&response::ok("Marked to be deleted."));
                }
                Err(text) => io.send(&response::err(&text)),
            },
            Command::Rset => {
                drop.deleted.iter_mut().for_each(|d| *d = false);
                io.send(&response::ok(""));
            }
            Command::Quit => {
                stats.deleted = update(login, drop).await;
                // Free for the next session before it is told: a client
                // that logs in again on the +OK finds the mailbox free.
                login.lock = None;
                let marked = drop.deleted.iter().filter(|d| **d).count() as u64;
                if stats.deleted == marked {
                    io.send(&response::ok("Logging out."));
                } else {
                    io.send(&response::err(
                        "[SYS/TEMP] Some deleted messages were not removed.",
                    ));
                }
                io.shutdown().await;
                return Ok(());
            }
            Command::User(_)
            | Command::Pass(_)
            | Command::Auth { .. }
            | Command::AuthList
            | Command::Stls => io.send(&response::err("Unknown command.")),
        }
    }
}

/// RETR or TOP: queues the reply and returns the octets of the message
/// sent, or `None` after an `-ERR`.
async fn send_message<S>(
    io: &mut Io<S>,
    login: &Login,
    drop: &Maildrop,
    n: u32,
    top: Option<u32>,
) -> Option<u64>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let entry = match drop.get(n) {
        Ok((_, e)) => e,
        Err(text) => {
            io.send(&response::err(&text));
            return None;
        }
    };
    let content = match tokio::fs::read(&entry.path).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(target: "postern/pop3", "pop3({}): cannot read {}: {e}", login.user, entry.path.display());
            // Another program (an IMAP session) expunged or renamed it.
            io.send(&response::err("[SYS/TEMP] Message has been expunged."));
            return None;
        }
    };
    let mut out = match top {
        None => response::ok(&format!("{} octets", entry.size)),
        Some(_) => response::ok(""),
    };
    let sent = response::message(&mut out, &content, top);
    io.send(&out);
    Some(sent)
}

/// The UPDATE state: sets \Seen on what RETR read and is kept, removes
/// the marked messages; returns how many are gone.
async fn update(login: &Login, drop: &Maildrop) -> u64 {
    let mut doomed = Vec::new();
    let mut read = Vec::new();
    for (i, entry) in drop.messages.iter().enumerate() {
        if drop.deleted.get(i).copied().unwrap_or(false) {
            doomed.push(entry.clone());
        } else if drop.retrieved.get(i).copied().unwrap_or(false) {
            read.push(entry.clone());
        }
    }
    if doomed.is_empty() && read.is_empty() {
        return 0;
    }
    let maildir = login.maildir.clone();
    let user = login.user.clone();
    let owner = login.owner;
    let update = move || {
        for entry in &read {
            // A flag that cannot be set is logged, and the session still
            // ends well: the message was delivered to the client.
            if let Err(e) = maildir.mark_seen(entry) {
                tracing::warn!(target: "postern/pop3", "pop3({user}): cannot set \\Seen on {}: {e}", entry.path.display());
            }
        }
        let mut removed = 0;
        for entry in &doomed {
            match maildir.remove(entry) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(target: "postern/pop3", "pop3({user}): cannot delete {}: {e}", entry.path.display());
                }
            }
        }
        Ok(removed)
    };
    tokio::task::spawn_blocking(move || as_owner(owner, update))
        .await
        .map_or(0, |r| r.unwrap_or(0))
}

/// The UIDL of a message: its Maildir base name when it fits RFC 1939
/// §7 (1 to 70 characters 0x21..0x7E), else a hash of it, stable all
/// the same.
fn uidl(id: &str) -> String {
    if (1..=70).contains(&id.len()) && id.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return id.to_owned();
    }
    // FNV-1a: no dependency, and stable across versions and machines.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("H{hash:016x}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uidl_is_the_base_name_or_a_stable_hash() {
        assert_eq!(uidl("1.M2P3Q4.h,S=5"), "1.M2P3Q4.h,S=5");
        let long = "x".repeat(71);
        assert_eq!(uidl(&long), uidl(&long));
        assert_eq!(uidl(&long).len(), 17);
        assert_ne!(uidl("a b"), "a b");
    }
}
