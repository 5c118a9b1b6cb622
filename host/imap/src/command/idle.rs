//! IDLE (RFC 2177): the client waits; the session looks at the selected
//! mailbox every `idle_poll` and sends what changed (EXISTS, EXPUNGE,
//! FETCH FLAGS) at once, until the client sends DONE.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Done, Sync};
use crate::codec::Frame;
use crate::session::Session;
use crate::session::io::Stop;

/// Dovecot's `imap_idle_notify_interval`: a keepalive so that NAT boxes
/// do not drop a quiet connection.
const KEEPALIVE: Duration = Duration::from_secs(120);

pub(crate) async fn idle<S>(s: &mut Session<'_, S>, _tag: &str) -> Result<Done, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    s.io.send(b"+ idling\r\n");
    let started = Instant::now();
    let mut last_sent = Instant::now();
    loop {
        if started.elapsed() >= s.ctx.settings.command_timeout {
            return Err(Stop::Timeout);
        }
        match s.io.next_within(s.ctx.settings.idle_poll).await? {
            Some(Frame::Command(line)) if line.eq_ignore_ascii_case(b"DONE") => {
                return Ok(Done::ok("Idle completed."));
            }
            Some(_) => return Ok(Done::bad("Expected DONE.").sync(Sync::Skip)),
            None => {}
        }
        if let Some(sel) = s.selected.as_mut() {
            let mut out = Vec::new();
            if sel.sync(&mut out, true).await.is_err() {
                s.io.send(b"* BYE Mailbox state changed under the session, reconnect.\r\n");
                return Err(Stop::Kicked("Mailbox sync failed"));
            }
            if !out.is_empty() {
                s.io.send(&out);
                s.io.flush().await?;
                last_sent = Instant::now();
            }
        }
        if last_sent.elapsed() >= KEEPALIVE {
            s.io.send(b"* OK Still here\r\n");
            s.io.flush().await?;
            last_sent = Instant::now();
        }
    }
}
