//! The session's side of the socket: one input buffer shared by the
//! command line reader and the DATA decoder (both from
//! [`postern_smtp::codec`]), and an output buffer of replies.
//!
//! RFC 2920 §3.2 (PIPELINING, which RFC 2033 §5 requires of an LMTP
//! server): replies may wait while commands remain buffered, and go out
//! before the session waits for more input. The SMTP session's own buffer
//! is private to its crate; this is the same design, for a session that
//! has no TLS and no BDAT.

use std::time::Duration;

use postern_mail::Reply;
use postern_smtp::codec::{DataDecoder, LineEvent, LineReader};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 4096;

/// Replies queued beyond this are written even while commands remain
/// buffered: a client pipelining thousands of RCPTs cannot grow our output
/// without bound.
const OUTPUT_HIGH_WATER: usize = 4096;

/// Why a session ends other than by QUIT.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The client closed the connection.
    Eof,
    /// A read or write took longer than `smtpd_timeout`.
    Timeout,
    /// The socket failed.
    Io(std::io::Error),
}

/// One command-phase input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// A command line without its terminator.
    Line(Vec<u8>),
    /// A line over the limit, already discarded.
    TooLong,
}

/// The socket with its buffers.
#[derive(Debug)]
pub(crate) struct Io<S> {
    stream: S,
    /// Received, not yet consumed bytes are `input[start..]`.
    input: Vec<u8>,
    start: usize,
    /// Replies not yet written.
    output: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    pub(crate) fn new(stream: S) -> Io<S> {
        Io {
            stream,
            input: Vec::with_capacity(READ_CHUNK),
            start: 0,
            output: Vec::new(),
        }
    }

    /// Queues a reply; it goes out at the next flush.
    pub(crate) fn reply(&mut self, reply: &Reply) {
        self.output.extend_from_slice(reply.to_wire().as_bytes());
    }

    /// Whether received bytes wait to be read as commands.
    pub(crate) fn has_input(&self) -> bool {
        self.start < self.input.len()
    }

    /// Writes every queued reply.
    pub(crate) async fn flush(&mut self, timeout: Duration) -> Result<(), Stop> {
        if self.output.is_empty() {
            return Ok(());
        }
        let Io { stream, output, .. } = self;
        let write = async {
            stream.write_all(output).await?;
            stream.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Err(_) => Err(Stop::Timeout),
            Ok(Err(e)) => Err(Stop::Io(e)),
            Ok(Ok(())) => {
                output.clear();
                Ok(())
            }
        }
    }

    /// The next command line, reading (after a flush) only when no
    /// complete line is buffered. A bare LF ends a command line, as in
    /// Postfix's smtpd: the smuggling risk lives in DATA only.
    pub(crate) async fn next_line(
        &mut self,
        lines: &mut LineReader,
        timeout: Duration,
    ) -> Result<Input, Stop> {
        loop {
            let (used, event) = lines.decode(&self.input[self.start..]);
            let input = event.map(|e| match e {
                LineEvent::Line { text, .. } => Input::Line(text.to_vec()),
                LineEvent::TooLong => Input::TooLong,
            });
            self.consume(used);
            if let Some(input) = input {
                if self.output.len() >= OUTPUT_HIGH_WATER {
                    self.flush(timeout).await?;
                }
                return Ok(input);
            }
            self.fill(timeout).await?;
        }
    }

    /// Feeds buffered and then received bytes to `decoder` until the end
    /// of data. Bytes after the end marker stay buffered for the next
    /// command.
    pub(crate) async fn read_data(
        &mut self,
        decoder: &mut DataDecoder,
        timeout: Duration,
    ) -> Result<(), Stop> {
        loop {
            let used = decoder.decode(&self.input[self.start..]);
            self.consume(used);
            if decoder.is_done() {
                return Ok(());
            }
            self.fill(timeout).await?;
        }
    }

    /// Flushes, then closes the write side, both bounded by `timeout`.
    pub(crate) async fn shutdown(&mut self, timeout: Duration) {
        if self.flush(timeout).await.is_ok() {
            let _ = tokio::time::timeout(timeout, self.stream.shutdown()).await;
        }
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.input.len() {
            self.input.clear();
            self.start = 0;
        }
    }

    /// Sends pending replies, then reads at least one byte.
    async fn fill(&mut self, timeout: Duration) -> Result<(), Stop> {
        self.flush(timeout).await?;
        if self.start > 0 {
            self.input.drain(..self.start);
            self.start = 0;
        }
        self.input.reserve(READ_CHUNK);
        match tokio::time::timeout(timeout, self.stream.read_buf(&mut self.input)).await {
            Err(_) => Err(Stop::Timeout),
            Ok(Err(e)) => Err(Stop::Io(e)),
            Ok(Ok(0)) => Err(Stop::Eof),
            Ok(Ok(_)) => Ok(()),
        }
    }
}
