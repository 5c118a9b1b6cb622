//! STARTTLS (RFC 3207) and the smtps handshake (RFC 8314 §3.3).
//!
//! After `220 2.0.0 Ready to start TLS` the session forgets everything the
//! plain-text part established (RFC 3207 §4.2: the HELO name, a
//! transaction, an AUTH) and discards every byte the client sent behind
//! the STARTTLS command before the handshake: plaintext pipelined there
//! would otherwise run as if it came over TLS (CVE-2011-0411, the command
//! injection that hit Postfix and others in 2011).

use postern_mail::{EnhancedCode, Reply};

use super::io::Stop;
use super::log::TARGET;
use super::{Session, Transport};

impl<S: Transport> Session<S> {
    /// Answers STARTTLS; the handshake itself runs after the `220` is out
    /// ([`Session::handshake`], called by the command loop).
    pub(super) fn starttls(&mut self) -> Reply {
        if self.tls.is_some() {
            return Reply::new(554, EnhancedCode::new(5, 5, 1), "Error: TLS already active");
        }
        if self.settings.tls.is_none() {
            return Reply::new(
                502,
                EnhancedCode::new(5, 5, 1),
                "Error: command not implemented",
            );
        }
        self.start_tls = true;
        Reply::new(220, EnhancedCode::new(2, 0, 0), "Ready to start TLS")
    }

    /// Sends what is queued, drops buffered plaintext, runs the server
    /// handshake, and resets the session state. A failed handshake ends the
    /// session ([`Stop::Tls`]).
    pub(super) async fn handshake(&mut self) -> Result<(), Stop> {
        let Some(config) = self.settings.tls.clone() else {
            return Err(Stop::Tls(std::io::Error::other(
                "no certificate configured (smtpd_tls_cert_file)",
            )));
        };
        self.io.flush(self.settings.command_timeout).await?;
        // CVE-2011-0411: nothing read before the handshake is a command.
        self.io.discard_input();
        let handshake = self.io.stream_mut().upgrade(&config);
        let info = match tokio::time::timeout(self.settings.command_timeout, handshake).await {
            Err(_) => return Err(Stop::Timeout),
            Ok(Err(e)) => return Err(Stop::Tls(e)),
            Ok(Ok(info)) => info,
        };
        tracing::info!(
            target: TARGET,
            "Anonymous TLS connection established from {}: {}",
            self.client,
            info.describe()
        );
        self.tls = Some(info);
        self.helo = None;
        self.esmtp = false;
        self.forget_helo_actions();
        self.end_transaction();
        self.login = None;
        Ok(())
    }

    /// Whether the session is encrypted.
    pub(super) fn secure(&self) -> bool {
        self.tls.is_some()
    }
}
