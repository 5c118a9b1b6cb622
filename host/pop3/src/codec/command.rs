//! POP3 commands, parsed once at the edge (RFC 1939 §3: a case-insensitive
//! keyword of three or four characters, arguments separated by single
//! spaces).

use std::fmt;

/// A message number as the client writes it: 1-based (RFC 1939 §5).
pub type MessageNumber = u32;

/// One command.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `USER name` (§7).
    User(String),
    /// `PASS password`: the rest of the line, spaces included (§7).
    Pass(String),
    /// `AUTH mechanism [initial-response]` (RFC 5034 §4).
    Auth {
        /// The mechanism name as sent.
        mechanism: String,
        /// The initial response (`=` for an empty one), if sent.
        initial: Option<String>,
    },
    /// `AUTH` alone: list the mechanisms (RFC 1734 practice, Dovecot).
    AuthList,
    /// `STAT` (§5).
    Stat,
    /// `LIST [msg]` (§5).
    List(Option<MessageNumber>),
    /// `RETR msg` (§5).
    Retr(MessageNumber),
    /// `DELE msg` (§5).
    Dele(MessageNumber),
    /// `NOOP` (§5).
    Noop,
    /// `RSET` (§5).
    Rset,
    /// `QUIT` (§§4, 6).
    Quit,
    /// `TOP msg n` (§7).
    Top(MessageNumber, u32),
    /// `UIDL [msg]` (§7).
    Uidl(Option<MessageNumber>),
    /// `CAPA` (RFC 2449 §5).
    Capa,
    /// `STLS` (RFC 2595 §4).
    Stls,
}

impl fmt::Debug for Command {
    /// Never shows a password or a SASL response.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Pass(_) => f.write_str("Pass(..)"),
            Command::Auth { mechanism, .. } => write!(f, "Auth({mechanism})"),
            Command::User(u) => write!(f, "User({u:?})"),
            Command::AuthList => f.write_str("AuthList"),
            Command::Stat => f.write_str("Stat"),
            Command::List(n) => write!(f, "List({n:?})"),
            Command::Retr(n) => write!(f, "Retr({n})"),
            Command::Dele(n) => write!(f, "Dele({n})"),
            Command::Noop => f.write_str("Noop"),
            Command::Rset => f.write_str("Rset"),
            Command::Quit => f.write_str("Quit"),
            Command::Top(n, l) => write!(f, "Top({n}, {l})"),
            Command::Uidl(n) => write!(f, "Uidl({n:?})"),
            Command::Capa => f.write_str("Capa"),
            Command::Stls => f.write_str("Stls"),
        }
    }
}

/// Why a line is not a command. The `Display` text is what follows
/// `-ERR ` in the reply, in Dovecot's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// An empty line or an unknown keyword.
    #[error("Unknown command: {0}")]
    Unknown(String),
    /// A line that is not UTF-8 or holds control characters.
    #[error("Invalid characters in command.")]
    BadBytes,
    /// A required argument is missing.
    #[error("{0}")]
    Missing(&'static str),
    /// A message number or line count that is not a positive number.
    #[error("Invalid message number: {0}")]
    BadNumber(String),
    /// More arguments than the command takes.
    #[error("Noise after message number: {0}")]
    Noise(String),
}

impl Command {
    /// Parses one line (without its CRLF).
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let line = std::str::from_utf8(line).map_err(|_| ParseError::BadBytes)?;
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ParseError::BadBytes);
        }
        let (keyword, rest) = match line.split_once(' ') {
            Some((k, r)) => (k, Some(r)),
            None => (line, None),
        };
        let upper = keyword.to_ascii_uppercase();
        let words = || rest.unwrap_or("").split(' ').filter(|w| !w.is_empty());
        let none = |cmd: Command| match rest.map(str::trim) {
            None | Some("") => Ok(cmd),
            Some(extra) => Err(ParseError::Noise(extra.to_owned())),
        };
        match upper.as_str() {
            "USER" => match rest.map(str::trim) {
                Some(name) if !name.is_empty() => Ok(Command::User(name.to_owned())),
                _ => Err(ParseError::Missing("USER: Missing username.")),
            },
            "PASS" => match rest {
                Some(pass) if !pass.is_empty() => Ok(Command::Pass(pass.to_owned())),
                _ => Err(ParseError::Missing("PASS: Missing password.")),
            },
            "AUTH" => {
                let mut w = words();
                match (w.next(), w.next(), w.next()) {
                    (None, _, _) => Ok(Command::AuthList),
                    (Some(m), initial, None) => Ok(Command::Auth {
                        mechanism: m.to_owned(),
                        initial: initial.map(str::to_owned),
                    }),
                    (Some(_), _, Some(extra)) => Err(ParseError::Noise(extra.to_owned())),
                }
            }
            "STAT" => none(Command::Stat),
            "NOOP" => none(Command::Noop),
            "RSET" => none(Command::Rset),
            "QUIT" => none(Command::Quit),
            "CAPA" => none(Command::Capa),
            "STLS" => none(Command::Stls),
            "LIST" => optional(words()).map(Command::List),
            "UIDL" => optional(words()).map(Command::Uidl),
            "RETR" => required(words()).map(Command::Retr),
            "DELE" => required(words()).map(Command::Dele),
            "TOP" => {
                let mut w = words();
                let msg = number(w.next().ok_or(ParseError::Missing(
                    "TOP: Missing message number and line count.",
                ))?)?;
                let lines = w
                    .next()
                    .ok_or(ParseError::Missing("TOP: Missing line count."))?;
                let lines = lines
                    .parse::<u32>()
                    .map_err(|_| ParseError::BadNumber(lines.to_owned()))?;
                match w.next() {
                    None => Ok(Command::Top(msg, lines)),
                    Some(extra) => Err(ParseError::Noise(extra.to_owned())),
                }
            }
            _ => Err(ParseError::Unknown(keyword.to_owned())),
        }
    }
}

/// A positive message number.
fn number(word: &str) -> Result<MessageNumber, ParseError> {
    match word.parse::<MessageNumber>() {
        Ok(n) if n > 0 && word.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ParseError::BadNumber(word.to_owned())),
    }
}

fn optional<'a>(
    mut words: impl Iterator<Item = &'a str>,
) -> Result<Option<MessageNumber>, ParseError> {
    let Some(first) = words.next() else {
        return Ok(None);
    };
    let n = number(first)?;
    match words.next() {
        None => Ok(Some(n)),
        Some(extra) => Err(ParseError::Noise(extra.to_owned())),
    }
}

fn required<'a>(words: impl Iterator<Item = &'a str>) -> Result<MessageNumber, ParseError> {
    optional(words)?.ok_or(ParseError::Missing("Missing message number."))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, ParseError> {
        Command::parse(s.as_bytes())
    }

    #[test]
    fn every_command() {
        assert_eq!(
            p("user alice@example.org"),
            Ok(Command::User("alice@example.org".into()))
        );
        assert_eq!(
            p("PASS with spaces "),
            Ok(Command::Pass("with spaces ".into()))
        );
        assert_eq!(p("STAT"), Ok(Command::Stat));
        assert_eq!(p("list"), Ok(Command::List(None)));
        assert_eq!(p("LIST 2"), Ok(Command::List(Some(2))));
        assert_eq!(p("RETR 1"), Ok(Command::Retr(1)));
        assert_eq!(p("DELE 3"), Ok(Command::Dele(3)));
        assert_eq!(p("NOOP"), Ok(Command::Noop));
        assert_eq!(p("RSET"), Ok(Command::Rset));
        assert_eq!(p("QUIT"), Ok(Command::Quit));
        assert_eq!(p("TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(p("UIDL"), Ok(Command::Uidl(None)));
        assert_eq!(p("UIDL 7"), Ok(Command::Uidl(Some(7))));
        assert_eq!(p("CAPA"), Ok(Command::Capa));
        assert_eq!(p("stls"), Ok(Command::Stls));
        assert_eq!(p("AUTH"), Ok(Command::AuthList));
        assert_eq!(
            p("AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGFsaWNlAHNlY3JldA==".into())
            })
        );
        assert_eq!(
            p("AUTH PLAIN"),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: None
            })
        );
    }

    #[test]
    fn malformed_input() {
        assert_eq!(p(""), Err(ParseError::Unknown(String::new())));
        assert_eq!(p("HELO x"), Err(ParseError::Unknown("HELO".into())));
        assert_eq!(
            p("RETR"),
            Err(ParseError::Missing("Missing message number."))
        );
        assert_eq!(p("RETR 0"), Err(ParseError::BadNumber("0".into())));
        assert_eq!(p("RETR -1"), Err(ParseError::BadNumber("-1".into())));
        assert_eq!(p("RETR +1"), Err(ParseError::BadNumber("+1".into())));
        assert_eq!(p("RETR x"), Err(ParseError::BadNumber("x".into())));
        assert_eq!(
            p("RETR 99999999999999999999"),
            Err(ParseError::BadNumber("99999999999999999999".into()))
        );
        assert_eq!(p("LIST 1 2"), Err(ParseError::Noise("2".into())));
        assert_eq!(p("STAT now"), Err(ParseError::Noise("now".into())));
        assert!(matches!(p("TOP 1"), Err(ParseError::Missing(_))));
        assert!(matches!(p("TOP"), Err(ParseError::Missing(_))));
        assert_eq!(p("TOP 1 x"), Err(ParseError::BadNumber("x".into())));
        assert_eq!(p("TOP 1 2 3"), Err(ParseError::Noise("3".into())));
        assert!(matches!(p("USER"), Err(ParseError::Missing(_))));
        assert!(matches!(p("USER  "), Err(ParseError::Missing(_))));
        assert!(matches!(p("PASS"), Err(ParseError::Missing(_))));
        assert_eq!(Command::parse(b"STAT\xff"), Err(ParseError::BadBytes));
        assert_eq!(p("US\0ER a"), Err(ParseError::BadBytes));
        assert_eq!(p("AUTH PLAIN a b"), Err(ParseError::Noise("b".into())));
        assert_eq!(
            ParseError::BadNumber("x".into()).to_string(),
            "Invalid message number: x"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        assert_eq!(format!("{:?}", p("PASS hunter2").unwrap()), "Pass(..)");
        let auth = format!("{:?}", p("AUTH PLAIN c2VjcmV0").unwrap());
        assert!(!auth.contains("c2VjcmV0"), "{auth}");
    }
}
