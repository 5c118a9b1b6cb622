//! The TLS side of a session (RFC 3207 STARTTLS, RFC 8314 implicit TLS):
//! the server certificate as a swappable rustls config, the stream that is
//! plain text until it is upgraded, and what the handshake negotiated.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;

pub use postern_tls::{TlsConfig, TlsError};

/// What a handshake negotiated: for the Received header, the logs and
/// the policy request (`encryption_protocol`, `encryption_cipher`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`, as OpenSSL (and so Postfix) names them.
    pub protocol: String,
    /// The cipher suite: `TLS_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The symmetric key length, for Postfix's `(256/256 bits)`.
    pub bits: u16,
    /// The name the client asked for (SNI), if any.
    pub sni: Option<String>,
}

impl TlsInfo {
    /// `TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)`, the
    /// phrase Postfix uses in logs and the Received header.
    pub fn describe(&self) -> String {
        format!(
            "{} with cipher {} ({}/{} bits)",
            self.protocol, self.cipher, self.bits, self.bits
        )
    }

    fn of(conn: &rustls::ServerConnection) -> TlsInfo {
        let protocol = conn
            .protocol_version()
            .and_then(|v| v.as_str())
            .map_or("TLS".to_owned(), |v| v.replace('_', "."));
        let cipher = conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown");
        // rustls names TLS 1.3 suites TLS13_*; OpenSSL and the RFC TLS_*.
        let cipher = match cipher.strip_prefix("TLS13_") {
            Some(rest) => format!("TLS_{rest}"),
            None => cipher.to_owned(),
        };
        let bits = if cipher.contains("_128_") { 128 } else { 256 };
        TlsInfo {
            protocol,
            cipher,
            bits,
            sni: conn.server_name().map(str::to_owned),
        }
    }
}

/// A client connection: plain until STARTTLS (or from the start on
/// smtps), then TLS for the rest of the session.
#[derive(Debug)]
pub(crate) enum Stream<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    /// Only while a handshake runs, or after it failed.
    Closed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream<S> {
    /// Runs the server handshake over the plain stream. On failure the
    /// stream is gone and the session must end.
    pub(crate) async fn upgrade(&mut self, tls: &TlsConfig) -> io::Result<TlsInfo> {
        let Stream::Plain(plain) = std::mem::replace(self, Stream::Closed) else {
            return Err(io::Error::other("TLS already active"));
        };
        let stream = tls.acceptor().accept(plain).await?;
        let info = TlsInfo::of(stream.get_ref().1);
        *self = Stream::Tls(Box::new(stream));
        Ok(info)
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }

    /// TLS sends its close_notify. A plain stream does nothing: the
    /// session owns it and drops it right after, and close(2) sends the
    /// same FIN that shutdown(2) would, one system call per session less.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(_) => Poll::Ready(Ok(())),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}
