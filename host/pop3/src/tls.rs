//! The server certificate for STLS (RFC 2595) and pop3s (RFC 8314
//! implicit TLS): the shared [`postern_tls::TlsConfig`].

pub use postern_tls::{TlsConfig, TlsError};
