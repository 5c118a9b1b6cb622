//! The verbs that are only a reply: RSET (RFC 5321 §4.1.1.5), NOOP
//! (§4.1.1.9), HELP (§4.1.1.8), QUIT (§4.1.1.10).

use postern_mail::{EnhancedCode, Reply};

use super::{Session, Transport};

impl<S: Transport> Session<S> {
    /// RSET: drops the transaction, keeps the HELO name.
    pub(super) fn rset(&mut self) -> Reply {
        self.end_transaction();
        ok()
    }
}

fn ok() -> Reply {
    Reply::new(250, EnhancedCode::new(2, 0, 0), "Ok")
}

/// NOOP.
pub(super) fn noop() -> Reply {
    ok()
}

/// QUIT; the session closes after sending it.
pub(super) fn quit() -> Reply {
    Reply::new(221, EnhancedCode::new(2, 0, 0), "Bye")
}

/// HELP: the verbs we answer, nothing about the configuration.
pub(super) fn help() -> Reply {
    Reply::new(
        214,
        EnhancedCode::new(2, 0, 0),
        "Commands: HELO EHLO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP VRFY ETRN HELP QUIT",
    )
}
