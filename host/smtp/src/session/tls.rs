//! The TLS side of a session (RFC 3207 STARTTLS, RFC 8314 implicit TLS):
//! the server certificate as a swappable rustls config, the stream that is
//! plain text until it is upgraded, and what the handshake negotiated.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Why a certificate and key cannot serve TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate PEM holds no certificate, or is malformed.
    #[error("no certificate in PEM: {0}")]
    Certificate(String),
    /// The key PEM holds no private key, or is malformed.
    #[error("no private key in PEM: {0}")]
    Key(String),
    /// rustls refused the pair (a key that does not match, say).
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// The server's TLS configuration, shared by every session of every
/// listener and replaced whole on `postern reload`: a session takes the
/// config in force when its handshake starts.
#[derive(Debug)]
pub struct TlsConfig {
    current: ArcSwap<ServerConfig>,
}

impl TlsConfig {
    /// A config serving `cert_pem` (the chain, leaf first) with `key_pem`
    /// (PKCS#8, PKCS#1 or SEC1), TLS 1.2 and 1.3, no client certificates.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsConfig, TlsError> {
        Ok(TlsConfig {
            current: ArcSwap::from_pointee(server_config(cert_pem, key_pem)?),
        })
    }

    /// Replaces the certificate and key for the handshakes that follow.
    pub fn reload(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), TlsError> {
        self.current
            .store(Arc::new(server_config(cert_pem, key_pem)?));
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }
}

fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerConfig, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Certificate("empty".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(config)
}

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

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}
