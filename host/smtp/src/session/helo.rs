//! HELO and EHLO (RFC 5321 §4.1.1.1): the client names itself, the server
//! answers with its name and, after EHLO, its extensions.

use postern_mail::Reply;

use super::{Session, Transport};
use crate::codec::printable;

impl<S: Transport> Session<S> {
    /// Answers HELO (`extended == false`) or EHLO. Either one ends a
    /// transaction in progress (RFC 5321 §4.1.4: as RSET would). The name is
    /// checked by the `helo` restriction list, asked at RCPT, or here
    /// without `smtpd_delay_reject` (early.rs).
    pub(super) async fn helo(&mut self, name: &str, extended: bool) -> Reply {
        let name = printable(name);
        if let Err(refusal) = self.check_helo(&name, extended).await {
            return refusal;
        }
        self.end_transaction();
        self.helo = Some(name);
        self.esmtp = extended;
        let host = &self.settings.hostname;
        if !extended {
            return Reply::plain(250, host.clone());
        }
        // RFC 2920 PIPELINING, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 2034
        // ENHANCEDSTATUSCODES; VRFY only where it is enabled, as Postfix.
        let mut text = format!(
            "{host}\nPIPELINING\nSIZE {}\n",
            self.settings.message_size_limit
        );
        if !self.settings.disable_vrfy_command {
            text.push_str("VRFY\n");
        }
        // RFC 1985.
        text.push_str("ETRN\n");
        // RFC 3207: STARTTLS only while in clear; RFC 4954: AUTH where
        // it may be used (smtpd_tls_auth_only).
        if self.settings.tls.is_some() && !self.secure() {
            text.push_str("STARTTLS\n");
        }
        if self.auth_offered() {
            text.push_str("AUTH PLAIN LOGIN\n");
        }
        // RFC 3461 DSN, RFC 6531 SMTPUTF8, RFC 3030 CHUNKING, in
        // Postfix's order.
        text.push_str("ENHANCEDSTATUSCODES\n8BITMIME\nDSN\nSMTPUTF8\nCHUNKING");
        Reply::plain(250, text)
    }
}
