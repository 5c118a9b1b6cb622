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
//!
//! This file holds [`Command`] and its parser; the verbs are in `verb`
//! and the refusals, with the replies they earn, in `error`.

use super::path::{self, MailFrom, RcptTo};

mod error;
mod verb;

pub use error::ParseError;
pub use verb::Verb;

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
