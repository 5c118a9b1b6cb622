//! Illegal command pipelining (RFC 2920 §3.1): what the
//! `illegal-pipelining` policy attribute reports and
//! `reject_unauth_pipelining` rejects on.
//!
//! A client may send a group of commands without waiting for each reply
//! only after EHLO offered PIPELINING, and only where a command does not
//! end a group: HELO, EHLO, DATA, NOOP and VRFY must be answered before
//! anything follows them, and nothing may precede the greeting (RFC 5321
//! §3.1: the client waits for it). Spam software that blasts a whole
//! transaction at once breaks these rules; a real MTA does not. As in
//! Postfix 2.6 and later, the session sets a flag the first time it sees
//! input waiting where none may be, logs `improper command pipelining
//! after CMD from host[ip]: <what was waiting>`, and keeps the flag for
//! the rest of the session. The session itself refuses nothing for it:
//! the restriction lists decide (`reject_unauth_pipelining`, which
//! Postfix recommends in `smtpd_data_restrictions`).

use crate::codec::Verb;

use super::log::TARGET;
use super::{Session, Transport};

/// How much of the waiting input the log line shows (Postfix: `%.100s`).
const LOGGED_INPUT: usize = 100;

/// Whether `verb` must be the last command of a group (RFC 2920 §3.1;
/// Postfix's `SMTPD_CMD_FLAG_LAST`). STARTTLS is not here: what follows it
/// unencrypted is thrown away (CVE-2011-0411), and QUIT ends the session.
fn ends_group(verb: Verb) -> bool {
    matches!(
        verb,
        Verb::Helo | Verb::Ehlo | Verb::Data | Verb::Noop | Verb::Vrfy
    )
}

impl<S: Transport> Session<S> {
    /// Before the greeting: anything already received is illegal.
    pub(super) async fn check_pregreet(&mut self) {
        // Give the reactor a turn so that bytes that arrived with the
        // connection are seen.
        tokio::task::yield_now().await;
        self.io.read_ready();
        self.note_pipelining("CONNECT");
    }

    /// Before `verb` runs: input behind it is illegal if it ends a group,
    /// or if the client has not said EHLO (PIPELINING was not offered).
    /// BDAT's chunk follows its command by design (RFC 3030 §2); after
    /// STARTTLS and QUIT nothing more is read as commands.
    pub(super) async fn check_pipelining(&mut self, verb: Verb) {
        if self.illegal_pipelining || matches!(verb, Verb::Bdat | Verb::StartTls | Verb::Quit) {
            return;
        }
        if self.esmtp && !ends_group(verb) {
            return;
        }
        if self.io.pending().is_empty() {
            self.io.read_ready();
        }
        self.note_pipelining(verb.keyword());
    }

    /// Sets the flag and logs, if input is waiting.
    fn note_pipelining(&mut self, after: &str) {
        let pending = self.io.pending();
        if self.illegal_pipelining || pending.is_empty() {
            return;
        }
        let shown = escape(&pending[..pending.len().min(LOGGED_INPUT)]);
        tracing::info!(
            target: TARGET,
            "improper command pipelining after {after} from {}: {shown}",
            self.client
        );
        self.illegal_pipelining = true;
    }
}

/// The bytes as C escapes, as Postfix's `escape()` prints them: `\r`,
/// `\n`, `\t`, `\\`, and `\ooo` for other non-printable bytes.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_postfix() {
        assert_eq!(
            escape(b"MAIL FROM:<a@b>\r\n\x01\\"),
            "MAIL FROM:<a@b>\\r\\n\\001\\\\"
        );
    }

    #[test]
    fn group_enders() {
        assert!(ends_group(Verb::Ehlo) && ends_group(Verb::Data));
        assert!(!ends_group(Verb::Mail) && !ends_group(Verb::Rcpt));
    }
}
