//! The session's side of the socket: an input buffer split into lines by
//! the codec, an output buffer flushed before every read (RFC 2449 §6.6
//! PIPELINING: replies may wait while commands remain buffered), the
//! command timeout on every read and write, and the server's stop signal
//! while waiting for a command.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::codec::{LineEvent, LineReader};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 4096;

/// Output beyond this is written even while commands remain buffered, so a
/// client pipelining many RETRs cannot make us hold many messages at once.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;

/// Why a session ends other than by QUIT.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The client closed the connection.
    Eof,
    /// No command within the timeout, or a write that did not drain.
    Timeout,
    /// The socket failed.
    Io(std::io::Error),
    /// Too many bad commands, or too many failed logins.
    Kicked,
    /// The server is stopping (`postern stop`): no command was in
    /// progress.
    Shutdown,
}

/// One input line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Input {
    /// A line without its terminator.
    Line(Vec<u8>),
    /// A line over the limit, already dropped.
    TooLong,
}

/// The socket with its buffers.
#[derive(Debug)]
pub(crate) struct Io<S> {
    stream: S,
    input: Vec<u8>,
    output: Vec<u8>,
    lines: LineReader,
    timeout: Duration,
    /// The server's stop signal (`true`: stop); `None` never stops.
    stop: Option<watch::Receiver<bool>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    pub(crate) fn new(stream: S, max_line: usize, timeout: Duration) -> Io<S> {
        Io {
            stream,
            input: Vec::with_capacity(READ_CHUNK),
            output: Vec::new(),
            lines: LineReader::new(max_line),
            timeout,
            stop: None,
        }
    }

    /// Ends the session with [`Stop::Shutdown`] when `stop` turns `true`
    /// while it waits for a command; a command already read is answered
    /// first (Dovecot's pop3 does the same at shutdown).
    pub(crate) fn with_stop(mut self, stop: Option<watch::Receiver<bool>>) -> Io<S> {
        self.stop = stop;
        self
    }

    /// Queues bytes; they go out at the next flush.
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
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
                Ok(())
            }
        }
    }

    /// The next line, reading (after a flush) only when none is buffered.
    pub(crate) async fn next_line(&mut self) -> Result<Input, Stop> {
        loop {
            let (used, event) = self.lines.decode(&self.input);
            let input = event.map(|e| match e {
                LineEvent::Line(l) => Input::Line(l.to_vec()),
                LineEvent::TooLong => Input::TooLong,
            });
            self.input.drain(..used);
            if let Some(input) = input {
                if self.output.len() >= OUTPUT_HIGH_WATER {
                    self.flush().await?;
                }
                return Ok(input);
            }
            self.flush().await?;
            self.input.reserve(READ_CHUNK);
            let Io {
                stream,
                input,
                timeout,
                stop,
                ..
            } = self;
            let read = tokio::time::timeout(*timeout, stream.read_buf(input));
            // Input that has come is read first: a command the client sent
            // before the stop is answered. Reading is cancel safe.
            let read = tokio::select! {
                biased;
                r = read => r,
                () = stopping(stop) => return Err(Stop::Shutdown),
            };
            match read {
                Err(_) => return Err(Stop::Timeout),
                Ok(Err(e)) => return Err(Stop::Io(e)),
                Ok(Ok(0)) => return Err(Stop::Eof),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Flushes and gives the stream back, dropping unread input: after
    /// `+OK Begin TLS negotiation now.` plaintext pipelined behind STLS
    /// must not be read as commands of the TLS session (CVE-2011-0411).
    pub(crate) async fn into_stream(mut self) -> Result<S, Stop> {
        self.flush().await?;
        Ok(self.stream)
    }

    /// Flushes, then lends the stream with the input read but not yet
    /// used (commands pipelined behind a login), which is taken: a
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn replies_wait_for_the_next_read_and_timeout() {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let mut io = Io::new(server, 100, Duration::from_millis(50));
        client.write_all(b"NOOP\r\nSTAT\r\n").await.unwrap();
        assert_eq!(io.next_line().await.unwrap(), Input::Line(b"NOOP".to_vec()));
        io.send(b"+OK\r\n");
        assert_eq!(io.next_line().await.unwrap(), Input::Line(b"STAT".to_vec()));
        io.send(b"+OK 0 0\r\n");
        assert!(matches!(io.next_line().await, Err(Stop::Timeout)));
        let mut got = vec![0; 14];
        tokio::time::timeout(T, client.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, b"+OK\r\n+OK 0 0\r\n");
        drop(client);
        assert!(matches!(io.next_line().await, Err(Stop::Eof)));
    }

    #[tokio::test]
    async fn stop_ends_the_wait_but_not_a_buffered_command() {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let (tx, rx) = watch::channel(false);
        let mut io = Io::new(server, 100, T).with_stop(Some(rx));
        client.write_all(b"NOOP\r\n").await.unwrap();
        tx.send(true).unwrap();
        assert_eq!(io.next_line().await.unwrap(), Input::Line(b"NOOP".to_vec()));
        assert!(matches!(io.next_line().await, Err(Stop::Shutdown)));
    }
}
