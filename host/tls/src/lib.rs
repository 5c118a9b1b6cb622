//! The server certificate as a rustls config that every protocol shares
//! (SMTP STARTTLS and smtps, POP3 STLS and pop3s) and that `postern
//! reload` swaps whole: Postfix's `smtpd_tls_cert_file`/`key_file` and
//! Dovecot's `ssl_cert`/`ssl_key` in one place.
//!
//! It does not read files or make certificates (the server does), and it
//! holds no session state: the protocol crates own their streams.
//!
//! Where a POP3 or IMAP login continues in a process of the mailbox's
//! owner, the TLS stays in the daemon and [`relay`] carries the plaintext
//! to that process and back (Dovecot's `login-common`).
//!
//! # Layout
//! - this file: [`TlsConfig`] and [`TlsError`].
//! - [`relay`]: the daemon's half of a session continued in another
//!   process, shared by POP3 and IMAP: the bytes relayed, and (in
//!   `relay/handover.rs`) the [`relay::Handover`] trait, the
//!   [`relay::Handed`] login and [`relay::hand_over`].

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

pub mod relay;

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
    /// rustls refused the pair.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// The server's TLS configuration, shared by every session of every
/// listener (SMTP, POP3) and replaced whole on `postern reload`: a session
/// takes the config in force when its handshake starts.
#[derive(Debug)]
pub struct TlsConfig {
    current: ArcSwap<ServerConfig>,
}

impl TlsConfig {
    /// A config serving `cert_pem` (leaf first) with `key_pem`, TLS 1.2
    /// and 1.3, no client certificates.
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

    /// An acceptor for one handshake, with the config in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
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
    Ok(ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?)
}
