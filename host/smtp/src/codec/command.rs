//! SMTP commands (RFC 5321 §4.1.1), parsed once into typed values.
//!
//! The verbs and their error replies follow Postfix's smtpd: a known verb
//! with bad arguments gets a `501 5.5.4 Syntax: ...` usage line, a bad
//! address `501 5.1.7` or `501 5.1.3`, an unknown ESMTP parameter `555
//! 5.5.4`, and an unknown verb `500 5.5.2 Error: command not recognized`
//! (RFC 5321 §4.2.4: 500 for a command not recognized, 502 for one
//! recognized but not implemented). A line that is not UTF-8 gets `500
//! 5.5.2 Error: bad UTF-8 syntax` and an empty one `500 5.5.2 Error: bad
//! syntax`, as from Postfix 3 with `smtputf8_enable` (RFC 6531 makes
//! command lines UTF-8).

use std::fmt;

use postern_mail::{EnhancedCode, Reply};

use super::path::{self, MailFrom, RcptTo};

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
    fn usage(self) -> &'static str {
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

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `HELO name`: the name as given, possibly several words (Postfix
    /// keeps them all).
    Helo(String),
    /// `EHLO name`.
    Ehlo(String),
    /// `MAIL FROM:<path> [params]`.
    Mail(MailFrom),
    /// `RCPT TO:<path>`.
    Rcpt(RcptTo),
    /// `DATA`.
    Data,
    /// `RSET`.
    Rset,
    /// `NOOP [text]`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy(String),
    /// `HELP [topic]`.
    Help,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954 §4), the arguments
    /// as sent.
    Auth(String),
    /// `BDAT size [LAST]` (RFC 3030 §3): the next `size` bytes are a
    /// chunk of the message, the last one when `last`.
    Bdat {
        /// The chunk's length in bytes.
        size: u64,
        /// `LAST`: the message ends with this chunk.
        last: bool,
    },
    /// `ETRN node` (RFC 1985): the argument as sent.
    Etrn(String),
}

impl Command {
    /// Parses one command line, without its CRLF.
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let line = std::str::from_utf8(line).map_err(|_| ParseError::BadUtf8)?;
        let line = line.trim_matches(|c: char| c.is_ascii_whitespace());
        if line.is_empty() {
            return Err(ParseError::Empty);
        }
        let (word, args) = match line.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (
                &line[..i],
                line[i..].trim_start_matches(|c: char| c.is_ascii_whitespace()),
            ),
            None => (line, ""),
        };
        let verb = Verb::from_keyword(word).ok_or(ParseError::Unrecognized)?;
        let no_args = |cmd: Command| {
            if args.is_empty() {
                Ok(cmd)
            } else {
                Err(ParseError::Syntax(verb))
            }
        };
        let some_args = |make: fn(String) -> Command| {
            if args.is_empty() {
                Err(ParseError::Syntax(verb))
            } else {
                Ok(make(args.to_owned()))
            }
        };
        match verb {
            Verb::Helo => some_args(Command::Helo),
            Verb::Ehlo => some_args(Command::Ehlo),
            Verb::Mail => path::mail(args).map(Command::Mail),
            Verb::Rcpt => path::rcpt(args).map(Command::Rcpt),
            Verb::Data => no_args(Command::Data),
            Verb::Rset => no_args(Command::Rset),
            Verb::Vrfy => some_args(Command::Vrfy),
            // RFC 5321 §4.1.1.9 and §4.1.1.8 allow an argument; Postfix
            // also ignores one after QUIT.
            Verb::Noop => Ok(Command::Noop),
            Verb::Help => Ok(Command::Help),
            Verb::Quit => Ok(Command::Quit),
            // RFC 3207 §4: STARTTLS takes no parameters.
            Verb::StartTls => no_args(Command::StartTls),
            // Postfix looks at AUTH's state (enabled? logged in already?)
            // before its arguments: the session checks them.
            Verb::Auth => Ok(Command::Auth(args.to_owned())),
            Verb::Bdat => bdat(args),
            Verb::Etrn => some_args(Command::Etrn),
        }
    }

    /// The command's verb.
    pub fn verb(&self) -> Verb {
        match self {
            Command::Helo(_) => Verb::Helo,
            Command::Ehlo(_) => Verb::Ehlo,
            Command::Mail(_) => Verb::Mail,
            Command::Rcpt(_) => Verb::Rcpt,
            Command::Data => Verb::Data,
            Command::Rset => Verb::Rset,
            Command::Noop => Verb::Noop,
            Command::Quit => Verb::Quit,
            Command::Vrfy(_) => Verb::Vrfy,
            Command::Help => Verb::Help,
            Command::StartTls => Verb::StartTls,
            Command::Auth(_) => Verb::Auth,
            Command::Bdat { .. } => Verb::Bdat,
            Command::Etrn(_) => Verb::Etrn,
        }
    }
}

/// `BDAT size [LAST]`. Without a size we cannot know where the chunk ends,
/// so a syntax error here is [`ParseError::BadChunk`], which closes the
/// session as Postfix does.
fn bdat(args: &str) -> Result<Command, ParseError> {
    let mut words = args.split_ascii_whitespace();
    let size = words
        .next()
        .filter(|w| w.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|w| w.parse::<u64>().ok())
        .ok_or(ParseError::BadChunk)?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(ParseError::BadChunk),
    };
    if words.next().is_some() {
        return Err(ParseError::BadChunk);
    }
    Ok(Command::Bdat { size, last })
}

/// Why a command line was refused before any state was looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not a verb we know.
    #[error("command not recognized")]
    Unrecognized,
    /// Not UTF-8 (RFC 6531 §3.3: command lines are UTF-8).
    #[error("bad UTF-8 syntax")]
    BadUtf8,
    /// Nothing but white space.
    #[error("bad syntax")]
    Empty,
    /// A known verb with missing or extra arguments.
    #[error("syntax error in {0} command")]
    Syntax(Verb),
    /// MAIL FROM with a path that is not an address (RFC 3463 X.1.7).
    #[error("bad sender address syntax")]
    BadSender,
    /// RCPT TO with a path that is not an address (RFC 3463 X.1.3).
    #[error("bad recipient address syntax")]
    BadRecipient,
    /// `SIZE=` with a value that is not a number.
    #[error("bad message size syntax")]
    BadSize,
    /// `SIZE=` with a number too big to represent.
    #[error("message size exceeds file system imposed limit")]
    SizeOverflow,
    /// `RET=` that is not FULL or HDRS, or given twice (RFC 3461 §4.3).
    #[error("bad RET parameter syntax")]
    BadRet,
    /// `ENVID=` that is not xtext, too long, or given twice (§4.4).
    #[error("bad ENVID parameter syntax")]
    BadEnvid,
    /// `NOTIFY=` that is not NEVER or a list of SUCCESS/FAILURE/DELAY
    /// (§4.1).
    #[error("bad NOTIFY parameter syntax")]
    BadNotify,
    /// `ORCPT=` that is not `type;xtext` (§4.2).
    #[error("bad ORCPT parameter syntax")]
    BadOrcpt,
    /// `BDAT` without a usable size: the chunk's end is unknown, so the
    /// session cannot go on (521, then close).
    #[error("bad BDAT command syntax")]
    BadChunk,
    /// An ESMTP parameter we did not announce.
    #[error("unsupported option {option} in {verb} command")]
    UnsupportedOption {
        /// MAIL or RCPT.
        verb: Verb,
        /// The parameter as the client wrote it.
        option: String,
    },
}

impl ParseError {
    /// The verb the line started with, when it was a known one.
    pub fn verb(&self) -> Option<Verb> {
        match self {
            ParseError::Unrecognized | ParseError::BadUtf8 | ParseError::Empty => None,
            ParseError::Syntax(v) | ParseError::UnsupportedOption { verb: v, .. } => Some(*v),
            ParseError::BadSender
            | ParseError::BadSize
            | ParseError::SizeOverflow
            | ParseError::BadRet
            | ParseError::BadEnvid => Some(Verb::Mail),
            ParseError::BadRecipient | ParseError::BadNotify | ParseError::BadOrcpt => {
                Some(Verb::Rcpt)
            }
            ParseError::BadChunk => Some(Verb::Bdat),
        }
    }

    /// The reply Postfix's smtpd gives for this error.
    pub fn reply(&self) -> Reply {
        let e554 = EnhancedCode::new(5, 5, 4);
        match self {
            ParseError::Unrecognized => Reply::new(
                500,
                EnhancedCode::new(5, 5, 2),
                "Error: command not recognized",
            ),
            ParseError::BadUtf8 => {
                Reply::new(500, EnhancedCode::new(5, 5, 2), "Error: bad UTF-8 syntax")
            }
            ParseError::Empty => Reply::new(500, EnhancedCode::new(5, 5, 2), "Error: bad syntax"),
            // RFC 2034 §3: no enhanced code in a reply to HELO or EHLO.
            ParseError::Syntax(v @ (Verb::Helo | Verb::Ehlo)) => Reply::plain(501, v.usage()),
            // Postfix's etrn_cmd words it so, without an enhanced code.
            ParseError::Syntax(Verb::Etrn) => Reply::plain(500, Verb::Etrn.usage()),
            ParseError::Syntax(v) => Reply::new(501, e554, v.usage()),
            ParseError::BadSender => {
                Reply::new(501, EnhancedCode::new(5, 1, 7), "Bad sender address syntax")
            }
            ParseError::BadRecipient => Reply::new(
                501,
                EnhancedCode::new(5, 1, 3),
                "Bad recipient address syntax",
            ),
            ParseError::BadSize => Reply::new(501, e554, "Bad message size syntax"),
            ParseError::BadRet => Reply::new(501, e554, "Bad RET parameter syntax"),
            ParseError::BadEnvid => Reply::new(501, e554, "Bad ENVID parameter syntax"),
            ParseError::BadNotify => Reply::new(501, e554, "Error: Bad NOTIFY parameter syntax"),
            ParseError::BadOrcpt => Reply::new(501, e554, "Error: Bad ORCPT parameter syntax"),
            // Postfix's smtpd: 521 and hang up, the byte stream is lost.
            ParseError::BadChunk => Reply::new(521, e554, Verb::Bdat.usage()),
            ParseError::SizeOverflow => Reply::new(
                552,
                EnhancedCode::new(5, 3, 4),
                "Message size exceeds file system imposed limit",
            ),
            ParseError::UnsupportedOption { option, .. } => Reply::new(
                555,
                e554,
                format!("Unsupported option: {}", super::printable(option)),
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn wire(line: &str) -> String {
        match Command::parse(line.as_bytes()) {
            Ok(c) => format!("{c:?}"),
            Err(e) => e.reply().to_wire(),
        }
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(Command::parse(b"noop").unwrap(), Command::Noop);
        assert_eq!(Command::parse(b"QuIt").unwrap(), Command::Quit);
        assert_eq!(Command::parse(b"rset").unwrap(), Command::Rset);
        assert_eq!(Command::parse(b"DATA").unwrap(), Command::Data);
    }

    #[test]
    fn helo_and_ehlo_keep_their_argument() {
        assert_eq!(
            Command::parse(b"EHLO client.example.org").unwrap(),
            Command::Ehlo("client.example.org".into())
        );
        assert_eq!(
            Command::parse(b"helo  a b ").unwrap(),
            Command::Helo("a b".into())
        );
        assert_eq!(wire("EHLO"), "501 Syntax: EHLO hostname\r\n");
        assert_eq!(wire("HELO   "), "501 Syntax: HELO hostname\r\n");
    }

    #[test]
    fn commands_without_arguments() {
        assert_eq!(wire("DATA x"), "501 5.5.4 Syntax: DATA\r\n");
        assert_eq!(wire("RSET now"), "501 5.5.4 Syntax: RSET\r\n");
        assert_eq!(Command::parse(b"NOOP hello").unwrap(), Command::Noop);
        assert_eq!(Command::parse(b"HELP me").unwrap(), Command::Help);
        assert_eq!(Command::parse(b"QUIT ").unwrap(), Command::Quit);
    }

    #[test]
    fn later_verbs_are_recognised() {
        assert_eq!(Command::parse(b"STARTTLS").unwrap(), Command::StartTls);
        assert_eq!(
            Command::parse(b"AUTH").unwrap(),
            Command::Auth(String::new())
        );
        assert_eq!(
            Command::parse(b"AUTH PLAIN AAAA").unwrap(),
            Command::Auth("PLAIN AAAA".to_owned())
        );
        assert_eq!(
            Command::parse(b"BDAT 10 LAST").unwrap(),
            Command::Bdat {
                size: 10,
                last: true
            }
        );
        assert_eq!(
            Command::parse(b"bdat 0").unwrap(),
            Command::Bdat {
                size: 0,
                last: false
            }
        );
        assert_eq!(
            Command::parse(b"ETRN example.org").unwrap(),
            Command::Etrn("example.org".to_owned())
        );
        assert_eq!(wire("ETRN"), "500 Syntax: ETRN domain\r\n");
    }

    #[test]
    fn bdat_syntax_errors_close() {
        for line in [
            "BDAT",
            "BDAT x",
            "BDAT -1",
            "BDAT 10 FIRST",
            "BDAT 10 LAST x",
            "BDAT 99999999999999999999999",
        ] {
            assert_eq!(
                wire(line),
                "521 5.5.4 Syntax: BDAT count [LAST]\r\n",
                "{line}"
            );
        }
    }

    #[test]
    fn vrfy_needs_an_argument() {
        assert_eq!(
            Command::parse(b"VRFY root").unwrap(),
            Command::Vrfy("root".into())
        );
        assert_eq!(
            wire("VRFY"),
            "501 5.5.4 Syntax: VRFY address [SMTPUTF8]\r\n"
        );
    }

    #[test]
    fn unknown_and_garbage() {
        // What Postfix 3.7 answers to each (checked against its smtpd).
        let unknown = "500 5.5.2 Error: command not recognized\r\n";
        assert_eq!(wire("XYZZY"), unknown);
        assert_eq!(wire("MAILFROM:<a@b>"), unknown);
        assert_eq!(wire("FOé"), unknown);
        assert_eq!(wire(""), "500 5.5.2 Error: bad syntax\r\n");
        assert_eq!(wire(" \t "), "500 5.5.2 Error: bad syntax\r\n");
        let bad_utf8 = "500 5.5.2 Error: bad UTF-8 syntax\r\n";
        for line in [
            &b"\xff\xfeMAIL"[..],
            b"MAIL FROM:<\xff@x.org>",
            b"EHLO \xc3",
            b"NOOP \xed\xa0\x80",
        ] {
            let e = Command::parse(line).unwrap_err();
            assert_eq!(e, ParseError::BadUtf8);
            assert_eq!(e.reply().to_wire(), bad_utf8);
            assert_eq!(e.verb(), None);
        }
        assert_eq!(Command::parse(b"\0\0\0").unwrap_err().verb(), None);
    }

    #[test]
    fn error_verbs() {
        assert_eq!(
            Command::parse(b"MAIL FROM:<a b>").unwrap_err().verb(),
            Some(Verb::Mail)
        );
        assert_eq!(
            Command::parse(b"RCPT TO:<>").unwrap_err().verb(),
            Some(Verb::Rcpt)
        );
        assert_eq!(
            Command::parse(b"DATA x").unwrap_err().verb(),
            Some(Verb::Data)
        );
    }

    #[test]
    fn trailing_whitespace_and_stray_cr_are_ignored() {
        assert_eq!(Command::parse(b"QUIT\r").unwrap(), Command::Quit);
        assert_eq!(Command::parse(b"  NOOP\t").unwrap(), Command::Noop);
    }

    #[test]
    fn random_lines_never_panic() {
        // Deterministic LCG; lines biased towards real verbs and the
        // characters the path parser cares about.
        let mut state: u64 = 99;
        let mut next = |bound: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as usize) % bound
        };
        let pieces: [&[u8]; 22] = [
            b"MAIL FROM:",
            b"RCPT TO:",
            b"BDAT ",
            b"ETRN ",
            b" NOTIFY=",
            b" ORCPT=rfc822;",
            b" RET=",
            b" ENVID=",
            b"SMTPUTF8",
            b"+2B",
            b"<",
            b">",
            b"@",
            b"\"",
            b"\\",
            b" ",
            b"SIZE=",
            b"BODY=",
            b"=",
            b"a",
            b"\xff",
            b"\xc3\xa9",
        ];
        for _ in 0..50_000 {
            let mut line = Vec::new();
            for _ in 0..next(12) {
                line.extend_from_slice(pieces[next(pieces.len())]);
            }
            if let Err(e) = Command::parse(&line) {
                let reply = e.reply();
                assert!(reply.code >= 500, "{reply}");
                assert!(!reply.to_wire().contains('\0'));
            }
        }
    }

    #[test]
    fn verb_keywords_round_trip() {
        for v in Verb::ALL {
            assert_eq!(Verb::from_keyword(v.keyword()), Some(v));
            assert_eq!(Verb::from_keyword(&v.keyword().to_lowercase()), Some(v));
        }
    }
}
