//! STARTTLS as a client (RFC 3207) at Postfix's `smtp_tls_security_level`:
//! which rustls config each level uses and what it demands of the server.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// `smtp_tls_security_level`, the levels Postern has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsLevel {
    /// `none`: never STARTTLS.
    None,
    /// `may`: STARTTLS when offered, any certificate accepted
    /// (opportunistic TLS, RFC 7435): better than plain text against a
    /// passive listener, and no worse when the certificate is self-signed.
    #[default]
    May,
    /// `encrypt`: STARTTLS required, any certificate accepted; a server
    /// that does not offer it is deferred.
    Encrypt,
    /// `verify`: STARTTLS required and the certificate must chain to a
    /// trusted root (`smtp_tls_CAfile`, else the webpki roots) for the
    /// name the client connected to.
    Verify,
}

impl TlsLevel {
    /// Reads the Postfix word.
    pub fn parse(word: &str) -> Option<TlsLevel> {
        Some(match word.trim() {
            "" | "none" => TlsLevel::None,
            "may" => TlsLevel::May,
            "encrypt" => TlsLevel::Encrypt,
            "verify" | "secure" => TlsLevel::Verify,
            _ => return None,
        })
    }

    /// Whether a session without TLS is refused.
    pub fn required(self) -> bool {
        matches!(self, TlsLevel::Encrypt | TlsLevel::Verify)
    }
}

/// Why a TLS client config cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientTlsError {
    /// `smtp_tls_CAfile` cannot be read or holds no certificate.
    #[error("smtp_tls_CAfile {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the config.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// The rustls configs a client uses, made once: one that checks
/// certificates (for `verify`) and one that does not (for `may` and
/// `encrypt`).
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// For `verify`.
    pub verifying: Arc<ClientConfig>,
    /// For `may` and `encrypt`.
    pub opportunistic: Arc<ClientConfig>,
}

impl ClientTls {
    /// Configs trusting `ca_file` (PEM) if given, else the webpki roots.
    pub fn new(ca_file: Option<&Path>) -> Result<ClientTls, ClientTlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let ca_error = |message: String| ClientTlsError::CaFile {
                    path: path.display().to_string(),
                    message,
                };
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| ca_error(e.to_string()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ca_error(e.to_string()))?;
                if certs.is_empty() {
                    return Err(ca_error("no certificate in the file".to_owned()));
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let verifying = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let opportunistic = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Ok(ClientTls {
            verifying: Arc::new(verifying),
            opportunistic: Arc::new(opportunistic),
        })
    }

    /// The config for `level`.
    pub fn config(&self, level: TlsLevel) -> Arc<ClientConfig> {
        match level {
            TlsLevel::Verify => self.verifying.clone(),
            _ => self.opportunistic.clone(),
        }
    }
}

/// The server name to present and verify: a host name, or the address
/// when the next hop was given as one (`[192.0.2.1]`).
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).ok()
}

/// Accepts any certificate but still checks the handshake signatures, so
/// the session is encrypted to whoever holds the key the certificate
/// names: opportunistic TLS (`may`, `encrypt`).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(TlsLevel::parse("may"), Some(TlsLevel::May));
        assert_eq!(TlsLevel::parse(""), Some(TlsLevel::None));
        assert_eq!(TlsLevel::parse("dane"), None);
        assert!(TlsLevel::Verify.required() && !TlsLevel::May.required());
    }

    #[test]
    fn bad_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let err = ClientTls::new(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("ca.pem"), "{err}");
        assert!(ClientTls::new(None).is_ok());
    }

    #[test]
    fn names() {
        assert!(server_name("[127.0.0.1]").is_some());
        assert!(server_name("mx.example.net").is_some());
    }
}
