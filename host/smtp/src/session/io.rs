//! The session's side of the socket: one input buffer shared by the line
//! reader and the DATA decoder, and an output buffer of replies.
//!
//! RFC 2920 (PIPELINING) §3.2: the server may hold replies while commands
//! remain buffered, and must send them before it waits for more input. So
//! replies are written when the input buffer runs dry (every read is
//! preceded by a flush), when the DATA command is accepted (the `354` must
//! be out before content is expected), or when too many have piled up.
//!
//! Public because the LMTP server (`postern-lmtp`) speaks through the same
//! buffers: one implementation of the pipelining rules for both.

use std::task::{Context, Waker};
use std::time::Duration;

use postern_mail::Reply;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::codec::{DataDecoder, LineEvent, LineReader, write_reply};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 4096;

/// Bytes asked of the socket per read while message content arrives: a
/// message of a few KiB in one read, a large one in a few, without
/// holding more than this beyond the message itself.
const DATA_CHUNK: usize = 32 * 1024;

/// The output buffer's first allocation.
const OUTPUT_START: usize = 256;

/// Replies queued beyond this are written even while commands remain
/// buffered, so that a client pipelining thousands of commands cannot grow
/// our output without bound (Postfix flushes when its 4 KiB buffer fills).
const OUTPUT_HIGH_WATER: usize = 4096;

/// Why a session ends other than by QUIT.
#[derive(Debug)]
#[non_exhaustive]
pub enum Stop {
    /// The client closed the connection.
    Eof,
    /// A read or write took longer than its timeout.
    Timeout,
    /// The socket failed.
    Io(std::io::Error),
    /// The client reached `smtpd_hard_error_limit`.
    TooManyErrors,
    /// The client reached the failed-login limit.
    TooManyAuthFailures,
    /// The TLS handshake failed: nothing more can be said to the client.
    Tls(std::io::Error),
    /// The server is stopping and no transaction is open.
    ShuttingDown,
}

/// One command-phase input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A command line without its terminator.
    Line {
        /// The line.
        text: Vec<u8>,
        /// It ended in a bare LF.
        bare_lf: bool,
    },
    /// A line over the limit, already discarded.
    TooLong,
}

/// The socket with its buffers.
#[derive(Debug)]
pub struct Io<S> {
    stream: S,
    /// Received, not yet consumed bytes are `input[start..]`.
    input: Vec<u8>,
    start: usize,
    /// Replies not yet written.
    output: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    /// Buffers around `stream`, both empty.
    pub fn new(stream: S) -> Io<S> {
        Io {
            stream,
            input: Vec::with_capacity(READ_CHUNK),
            start: 0,
            // An EHLO reply, so that a session's replies never regrow it.
            output: Vec::with_capacity(OUTPUT_START),
        }
    }

    /// Queues a reply; it goes out at the next flush.
    pub fn reply(&mut self, reply: &Reply) {
        write_reply(&mut self.output, reply);
    }

    /// Writes every queued reply.
    pub async fn flush(&mut self, timeout: Duration) -> Result<(), Stop> {
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
    /// complete line is buffered.
    pub async fn next_line(
        &mut self,
        lines: &mut LineReader,
        timeout: Duration,
    ) -> Result<Input, Stop> {
        loop {
            let (used, event) = lines.decode(&self.input[self.start..]);
            let input = event.map(|e| match e {
                LineEvent::Line { text, bare_lf } => Input::Line {
                    text: text.to_vec(),
                    bare_lf,
                },
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

    /// Feeds buffered and then received bytes to `decoder` until the end of
    /// data. Bytes after the end marker stay buffered for the next command.
    pub async fn read_data(
        &mut self,
        decoder: &mut DataDecoder,
        timeout: Duration,
    ) -> Result<(), Stop> {
        let result = loop {
            let used = decoder.decode(&self.input[self.start..]);
            self.consume(used);
            if decoder.is_done() {
                break Ok(());
            }
            if let Err(stop) = self.fill_up_to(timeout, DATA_CHUNK).await {
                break Err(stop);
            }
        };
        self.shrink_input();
        result
    }

    /// Reads exactly `size` bytes of a BDAT chunk (RFC 3030 §2: raw bytes,
    /// no dot-stuffing, no end marker), appending them to `out` when
    /// `keep`, dropping them otherwise. Bytes after the chunk stay buffered
    /// for the next command. Memory is bounded by what the caller keeps.
    pub async fn read_chunk(
        &mut self,
        size: u64,
        out: &mut Vec<u8>,
        keep: bool,
        timeout: Duration,
    ) -> Result<(), Stop> {
        let mut remaining = size;
        loop {
            let buffered = &self.input[self.start..];
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(buffered.len());
            if keep {
                out.extend_from_slice(&buffered[..take]);
            }
            self.consume(take);
            remaining -= take as u64;
            if remaining == 0 {
                return Ok(());
            }
            self.fill(timeout).await?;
        }
    }

    /// Received bytes not yet consumed: input the client sent ahead of
    /// the replies (see `pipelining.rs`).
    pub fn pending(&self) -> &[u8] {
        &self.input[self.start..]
    }

    /// Reads what has already arrived, without waiting and without
    /// flushing replies: it looks for input the client sent ahead of
    /// them. A failure or the end of the stream is left for the next real
    /// read to find.
    ///
    /// One poll of the read with a waker that does nothing. Not a zero
    /// timeout: tokio rounds a timer up to the next millisecond tick, so
    /// that each check (three per message: at connect, after EHLO, after
    /// DATA) held the session a millisecond and cost a timer and a
    /// wake-up. The noop waker loses nothing: readiness is kept by the
    /// reactor, and the next real read registers the session's waker.
    pub fn read_ready(&mut self) {
        self.input.reserve(READ_CHUNK);
        let read = std::pin::pin!(self.stream.read_buf(&mut self.input));
        let _ = read.poll(&mut Context::from_waker(Waker::noop()));
    }

    /// Drops every received byte not yet consumed: after `220 Ready to
    /// start TLS`, plaintext the client pipelined behind STARTTLS must not
    /// be read as commands of the TLS session (CVE-2011-0411).
    pub fn discard_input(&mut self) {
        self.input.clear();
        self.start = 0;
    }

    /// The stream, for the TLS handshake (call after [`Io::flush`] and
    /// [`Io::discard_input`]).
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Flushes, then closes the write side, both bounded by `timeout`.
    pub async fn shutdown(&mut self, timeout: Duration) {
        if self.flush(timeout).await.is_ok() {
            let _ = tokio::time::timeout(timeout, self.stream.shutdown()).await;
        }
    }

    /// Gives back the room message content took, keeping what is still
    /// unread (commands pipelined behind the data): an idle session holds
    /// [`READ_CHUNK`], not [`DATA_CHUNK`].
    fn shrink_input(&mut self) {
        if self.input.capacity() <= 2 * READ_CHUNK {
            return;
        }
        let pending = &self.input[self.start..];
        let mut small = Vec::with_capacity(READ_CHUNK.max(pending.len()));
        small.extend_from_slice(pending);
        self.input = small;
        self.start = 0;
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
        self.fill_up_to(timeout, READ_CHUNK).await
    }

    /// [`Io::fill`], asking for up to `chunk` bytes.
    async fn fill_up_to(&mut self, timeout: Duration, chunk: usize) -> Result<(), Stop> {
        self.flush(timeout).await?;
        if self.start > 0 {
            self.input.drain(..self.start);
            self.start = 0;
        }
        self.input.reserve(chunk);
        match tokio::time::timeout(timeout, self.stream.read_buf(&mut self.input)).await {
            Err(_) => Err(Stop::Timeout),
            Ok(Err(e)) => Err(Stop::Io(e)),
            Ok(Ok(0)) => Err(Stop::Eof),
            Ok(Ok(_)) => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::codec::BareNewline;
    use postern_mail::EnhancedCode;

    const T: Duration = Duration::from_secs(5);

    fn ok() -> Reply {
        Reply::new(250, EnhancedCode::new(2, 0, 0), "Ok")
    }

    fn line(s: &str) -> Input {
        Input::Line {
            text: s.as_bytes().to_vec(),
            bare_lf: false,
        }
    }

    #[tokio::test]
    async fn replies_wait_while_commands_are_buffered() {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let mut io = Io::new(server);
        let mut lines = LineReader::new(100);
        client.write_all(b"NOOP\r\nNOOP\r\n").await.unwrap();
        assert_eq!(io.next_line(&mut lines, T).await.unwrap(), line("NOOP"));
        io.reply(&ok());
        assert_eq!(io.next_line(&mut lines, T).await.unwrap(), line("NOOP"));
        io.reply(&ok());
        // Nothing was written yet: both replies go out in the flush that
        // precedes the next read.
        client.write_all(b"QUIT\r\n").await.unwrap();
        assert_eq!(io.next_line(&mut lines, T).await.unwrap(), line("QUIT"));
        let mut got = vec![0; 28];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
    }

    #[tokio::test]
    async fn data_leaves_pipelined_commands_buffered() {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let mut io = Io::new(server);
        client.write_all(b"body\r\n.\r\nQUIT\r\n").await.unwrap();
        let mut d = DataDecoder::new(100, BareNewline::Normalize);
        io.read_data(&mut d, T).await.unwrap();
        assert_eq!(d.finish().unwrap(), b"body\r\n");
        let mut lines = LineReader::new(100);
        assert_eq!(io.next_line(&mut lines, T).await.unwrap(), line("QUIT"));
    }

    #[tokio::test]
    async fn input_sent_ahead_is_seen_without_waiting() {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let mut io = Io::new(server);
        io.read_ready();
        assert!(io.pending().is_empty());
        client
            .write_all(b"EHLO x\r\nMAIL FROM:<>\r\n")
            .await
            .unwrap();
        io.read_ready();
        assert_eq!(io.pending(), b"EHLO x\r\nMAIL FROM:<>\r\n");
        let mut lines = LineReader::new(100);
        assert_eq!(io.next_line(&mut lines, T).await.unwrap(), line("EHLO x"));
        assert_eq!(io.pending(), b"MAIL FROM:<>\r\n");
        drop(client);
        // The end of the stream is left for the next read.
        assert_eq!(
            io.next_line(&mut lines, T).await.unwrap(),
            line("MAIL FROM:<>")
        );
        io.read_ready();
        assert!(matches!(io.next_line(&mut lines, T).await, Err(Stop::Eof)));
    }

    #[tokio::test]
    async fn eof_and_timeout() {
        let (server, client) = tokio::io::duplex(64);
        let mut io = Io::new(server);
        let mut lines = LineReader::new(100);
        let short = Duration::from_millis(20);
        assert!(matches!(
            io.next_line(&mut lines, short).await,
            Err(Stop::Timeout)
        ));
        drop(client);
        assert!(matches!(io.next_line(&mut lines, T).await, Err(Stop::Eof)));
    }

    #[tokio::test]
    async fn chunks_are_raw_and_exact() {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let mut io = Io::new(server);
        client.write_all(b".\r\n.x\r\nQUIT\r\n").await.unwrap();
        let mut out = Vec::new();
        io.read_chunk(3, &mut out, true, T).await.unwrap();
        io.read_chunk(4, &mut out, false, T).await.unwrap();
        io.read_chunk(0, &mut out, true, T).await.unwrap();
        assert_eq!(out, b".\r\n");
        let mut lines = LineReader::new(100);
        assert_eq!(io.next_line(&mut lines, T).await.unwrap(), line("QUIT"));
        // A chunk longer than what arrives waits, then times out.
        client.write_all(b"abc").await.unwrap();
        let short = Duration::from_millis(20);
        assert!(matches!(
            io.read_chunk(10, &mut out, true, short).await,
            Err(Stop::Timeout)
        ));
    }
}
