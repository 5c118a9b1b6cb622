//! The session's side of the socket: the framer over an input buffer, an
//! output buffer flushed before every read, `+` continuations for
//! synchronizing literals, a timeout on every read and write, and the
//! server's stop signal while waiting for input.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::codec::{Frame, Framer};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// Output beyond this is written even while commands remain buffered, so
/// a client pipelining many FETCHes cannot make us hold all the answers.
const OUTPUT_HIGH_WATER: usize = 256 * 1024;

/// Why a session ends other than by LOGOUT.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The client closed the connection.
    Eof,
    /// Nothing within the timeout, or a write that did not drain.
    Timeout,
    /// The socket failed.
    Io(std::io::Error),
    /// Too many bad commands or failed logins, or input we must not read on.
    Kicked(&'static str),
    /// The server is stopping (`postern stop`).
    Shutdown,
}

/// The socket with its buffers.
#[derive(Debug)]
pub(crate) struct Io<S> {
    stream: S,
    input: Vec<u8>,
    output: Vec<u8>,
    framer: Framer,
    timeout: Duration,
    /// The server's stop signal (`true`: stop); `None` never stops.
    stop: Option<watch::Receiver<bool>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    pub(crate) fn new(stream: S, framer: Framer, timeout: Duration) -> Io<S> {
        Io {
            stream,
            input: Vec::with_capacity(READ_CHUNK),
            output: Vec::new(),
            framer,
            timeout,
            stop: None,
        }
    }

    /// Ends the session with [`Stop::Shutdown`] when `stop` turns `true`
    /// while it waits for input (a command, the rest of one, or DONE in
    /// IDLE). A command already read is carried out and answered first.
    pub(crate) fn with_stop(mut self, stop: Option<watch::Receiver<bool>>) -> Io<S> {
        self.stop = stop;
        self
    }

    /// Queues bytes; they go out at the next flush.
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    /// Changes the timeout (longer once logged in).
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Bytes queued and not yet written.
    pub(crate) fn pending(&self) -> usize {
        self.output.len()
    }

    /// Writes what is queued.
    pub(crate) async fn flush(&mut self) -> Result<(), Stop> {
        if self.output.is_empty() {
            return Ok(());
        }
        let Io { stream, output, .. } = self;
        let write = async {
            stream.write_all(output).await?;
            stream.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Err(_) => Err(Stop::Timeout),
            Ok(Err(e)) => Err(Stop::Io(e)),
            Ok(Ok(())) => {
                output.clear();
                if output.capacity() > OUTPUT_HIGH_WATER {
                    output.shrink_to(READ_CHUNK);
                }
                Ok(())
            }
        }
    }

    /// The next frame, waiting at most `wait` for it.
    pub(crate) async fn next_within(&mut self, wait: Duration) -> Result<Option<Frame>, Stop> {
        loop {
            let (used, frame) = self.framer.decode(&self.input);
            self.input.drain(..used);
            match frame {
                Some(Frame::Continue) => {
                    // RFC 3501 §7.5: the client may send the literal now.
                    self.send(b"+ Ready for literal data\r\n");
                    self.flush().await?;
                    continue;
                }
                Some(frame) => {
                    if self.output.len() >= OUTPUT_HIGH_WATER {
                        self.flush().await?;
                    }
                    return Ok(Some(frame));
                }
                None => {}
            }
            self.flush().await?;
            self.input.reserve(READ_CHUNK);
            let Io {
                stream,
                input,
                stop,
                ..
            } = self;
            let read = tokio::time::timeout(wait, stream.read_buf(input));
            // Input that has come is read first, so a command sent before
            // the stop is answered. Reading is cancel safe.
            let read = tokio::select! {
                biased;
                r = read => r,
                () = stopping(stop) => return Err(Stop::Shutdown),
            };
            match read {
                Err(_) => return Ok(None),
                Ok(Err(e)) => return Err(Stop::Io(e)),
                Ok(Ok(0)) => return Err(Stop::Eof),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next frame within the session's timeout.
    pub(crate) async fn next(&mut self) -> Result<Frame, Stop> {
        match self.next_within(self.timeout).await? {
            Some(frame) => Ok(frame),
            None => Err(Stop::Timeout),
        }
    }

    /// Flushes and gives the stream back, dropping unread input: after
    /// `OK Begin TLS negotiation now.` plaintext pipelined behind STARTTLS
    /// must not be read as commands of the TLS session (CVE-2011-0411).
    pub(crate) async fn into_stream(mut self) -> Result<S, Stop> {
        self.flush().await?;
        Ok(self.stream)
    }

    /// Flushes, then lends the stream with the input read but not yet
    /// framed (commands pipelined behind a login), which is taken: a
    /// session handed to another process relays both
    /// ([`super::handover`]).
    pub(crate) async fn take_stream(&mut self) -> Result<(&mut S, Vec<u8>), Stop> {
        self.flush().await?;
        Ok((&mut self.stream, std::mem::take(&mut self.input)))
    }

    /// Flushes, then closes the write side, both bounded by the timeout.
    pub(crate) async fn shutdown(&mut self) {
        if self.flush().await.is_ok() {
            let _ = tokio::time::timeout(self.timeout, self.stream.shutdown()).await;
        }
    }
}

/// Resolves when `stop` turns `true` (at once if it is already); never
/// without a signal, or once its sender is gone.
pub(crate) async fn stopping(stop: &mut Option<watch::Receiver<bool>>) {
    if let Some(r) = stop
        && r.wait_for(|stop| *stop).await.is_ok()
    {
        return;
    }
    std::future::pending::<()>().await;
}
