//! [`Verb`]: the keyword a command line starts with, and what depends on
//! the verb alone (its spelling, its usage line); apart from the parser
//! because the session counts and logs by verb too.

use std::fmt;

/// The verb of a command: what the session dispatches on, counts in its
/// `disconnect from ...` log line and names in `timeout after ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verb {
    /// `HELO` (RFC 5321 §4.1.1.1).
    Helo,
    /// `EHLO` (RFC 5321 §4.1.1.1).
    Ehlo,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH` (RFC 4954).
    Auth,
    /// `MAIL FROM:` (RFC 5321 §4.1.1.2).
    Mail,
    /// `RCPT TO:` (RFC 5321 §4.1.1.3).
    Rcpt,
    /// `DATA` (RFC 5321 §4.1.1.4).
    Data,
    /// `BDAT` (RFC 3030 CHUNKING).
    Bdat,
    /// `RSET` (RFC 5321 §4.1.1.5).
    Rset,
    /// `NOOP` (RFC 5321 §4.1.1.9).
    Noop,
    /// `VRFY` (RFC 5321 §4.1.1.6).
    Vrfy,
    /// `HELP` (RFC 5321 §4.1.1.8).
    Help,
    /// `ETRN` (RFC 1985).
    Etrn,
    /// `QUIT` (RFC 5321 §4.1.1.10).
    Quit,
}

impl Verb {
    /// Every verb, in the order Postfix lists its command counters in the
    /// `disconnect from ...` line.
    pub const ALL: [Verb; 14] = [
        Verb::Helo,
        Verb::Ehlo,
        Verb::StartTls,
        Verb::Auth,
        Verb::Mail,
        Verb::Rcpt,
        Verb::Data,
        Verb::Bdat,
        Verb::Rset,
        Verb::Noop,
        Verb::Vrfy,
        Verb::Help,
        Verb::Etrn,
        Verb::Quit,
    ];

    /// The keyword as written on the wire and in `timeout after EHLO`.
    pub fn keyword(self) -> &'static str {
        match self {
            Verb::Helo => "HELO",
            Verb::Ehlo => "EHLO",
            Verb::StartTls => "STARTTLS",
            Verb::Auth => "AUTH",
            Verb::Mail => "MAIL",
            Verb::Rcpt => "RCPT",
            Verb::Data => "DATA",
            Verb::Bdat => "BDAT",
            Verb::Rset => "RSET",
            Verb::Noop => "NOOP",
            Verb::Vrfy => "VRFY",
            Verb::Help => "HELP",
            Verb::Etrn => "ETRN",
            Verb::Quit => "QUIT",
        }
    }

    /// The verb for a keyword, in any case.
    pub fn from_keyword(word: &str) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|v| v.keyword().eq_ignore_ascii_case(word))
    }

    /// The usage line Postfix answers with `501 5.5.4` on a syntax error.
    pub(super) fn usage(self) -> &'static str {
        match self {
            Verb::Helo => "Syntax: HELO hostname",
            Verb::Ehlo => "Syntax: EHLO hostname",
            Verb::Mail => "Syntax: MAIL FROM:<address>",
            Verb::Rcpt => "Syntax: RCPT TO:<address>",
            Verb::Data => "Syntax: DATA",
            Verb::Rset => "Syntax: RSET",
            Verb::Vrfy => "Syntax: VRFY address [SMTPUTF8]",
            Verb::Quit => "Syntax: QUIT",
            Verb::Noop => "Syntax: NOOP",
            Verb::Help => "Syntax: HELP",
            Verb::StartTls => "Syntax: STARTTLS",
            Verb::Auth => "Syntax: AUTH mechanism",
            Verb::Bdat => "Syntax: BDAT count [LAST]",
            Verb::Etrn => "Syntax: ETRN domain",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verb_keywords_round_trip() {
        for v in Verb::ALL {
            assert_eq!(Verb::from_keyword(v.keyword()), Some(v));
            assert_eq!(Verb::from_keyword(&v.keyword().to_lowercase()), Some(v));
        }
    }
}
