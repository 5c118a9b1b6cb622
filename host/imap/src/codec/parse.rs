//! The lexical layer of RFC 3501 §9: atoms, quoted strings, literals,
//! numbers, sequence sets, lists, over one framed command.
//!
//! Why our own parser rather than imap-codec: the session must see each
//! literal announcement before its octets arrive (to cap it, to answer
//! `+` or refuse it, and to bound what one command can make us hold),
//! which [`super::frame`] does in a few lines over raw bytes; and the
//! subset of the grammar the commands below use is small, so the typed
//! values they need are built here directly, with error texts that match
//! Dovecot's, instead of mapping imap-types' large model onto the store.

use super::sequence::{SeqRange, SequenceSet};

/// Why a command did not parse: the text for the tagged BAD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// A result of this module.
pub type Result<T> = std::result::Result<T, ParseError>;

pub(crate) fn bad<T>(text: impl Into<String>) -> Result<T> {
    Err(ParseError(text.into()))
}

/// A cursor over one command.
#[derive(Debug)]
pub struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

/// RFC 3501 §9 atom-specials (without `]`, which astrings allow).
fn atom_char(b: u8) -> bool {
    b > b' ' && b < 0x7f && !b"(){%*\"\\".contains(&b)
}

impl<'a> Parser<'a> {
    /// A cursor at the start of `input`.
    pub fn new(input: &'a [u8]) -> Parser<'a> {
        Parser { input, pos: 0 }
    }

    /// The position, to come back to with [`Parser::reset_to`].
    pub fn mark(&self) -> usize {
        self.pos
    }

    /// Goes back to a [`Parser::mark`].
    pub fn reset_to(&mut self, mark: usize) {
        self.pos = mark.min(self.input.len());
    }

    /// The next byte, not consumed.
    pub fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Consumes `b` if it is next.
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Nothing is left.
    pub fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// Fails unless everything was consumed.
    pub fn end(&self) -> Result<()> {
        if self.at_end() {
            Ok(())
        } else {
            bad("Unexpected input at the end of the command")
        }
    }

    /// Exactly one space.
    pub fn sp(&mut self) -> Result<()> {
        if self.eat(b' ') {
            Ok(())
        } else {
            bad("Missing arguments")
        }
    }

    /// A word of atom characters; `extra` are allowed too (`]`, `%`, `*`).
    pub fn atom_with(&mut self, extra: &[u8]) -> Result<&'a str> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            let ok = if b == b']' {
                extra.contains(&b)
            } else {
                atom_char(b) || extra.contains(&b)
            };
            if !ok {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return bad("Missing arguments");
        }
        // Atom characters are ASCII.
        std::str::from_utf8(&self.input[start..self.pos]).or_else(|_| bad("Invalid characters"))
    }

    /// An atom (`]` excluded: it ends `BODY[...]` sections).
    pub fn atom(&mut self) -> Result<&'a str> {
        self.atom_with(&[])
    }

    /// A quoted string (RFC 3501 §4.3): `\"` and `\\` escapes, no CR/LF.
    pub fn quoted(&mut self) -> Result<Vec<u8>> {
        if !self.eat(b'"') {
            return bad("Expected a quoted string");
        }
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n') => return bad("Unterminated quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        _ => return bad("Invalid escape in quoted string"),
                    }
                    self.pos += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A literal: `{N}` or `{N+}`, CRLF, N octets (the framer made sure
    /// they are all there).
    pub fn literal(&mut self) -> Result<&'a [u8]> {
        if !self.eat(b'{') {
            return bad("Expected a literal");
        }
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let n: usize = std::str::from_utf8(&self.input[start..self.pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ParseError("Invalid literal size".into()))?;
        self.eat(b'+');
        if !(self.eat(b'}') && self.eat(b'\r') && self.eat(b'\n')) {
            return bad("Invalid literal");
        }
        let end = self.pos.checked_add(n).filter(|e| *e <= self.input.len());
        let Some(end) = end else {
            return bad("Literal is shorter than announced");
        };
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// A string: quoted or literal.
    pub fn string(&mut self) -> Result<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal().map(<[u8]>::to_vec),
            _ => bad("Expected a string"),
        }
    }

    /// An astring: atom (with `]`), quoted or literal.
    pub fn astring(&mut self) -> Result<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => Ok(self.atom_with(b"]")?.as_bytes().to_vec()),
        }
    }

    /// An astring that must be UTF-8 (user names, mailbox names).
    pub fn astring_utf8(&mut self) -> Result<String> {
        String::from_utf8(self.astring()?).or_else(|_| bad("Invalid UTF-8 in argument"))
    }

    /// A list-mailbox (RFC 3501 §6.3.8): astring or the wildcards.
    pub fn list_mailbox(&mut self) -> Result<String> {
        match self.peek() {
            Some(b'"' | b'{') => self.astring_utf8(),
            _ => Ok(self.atom_with(b"]%*")?.to_owned()),
        }
    }

    /// A number (RFC 3501 §9: 32-bit unsigned).
    pub fn number(&mut self) -> Result<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.input[start..self.pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ParseError("Invalid number".into()))
    }

    /// A mod-sequence (RFC 7162 §7 `mod-sequence-valzer`): 0 to 2^63-1.
    pub fn modseq(&mut self) -> Result<u64> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.input[start..self.pos])
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| i64::try_from(*n).is_ok())
            .ok_or_else(|| ParseError("Invalid modseq".into()))
    }

    /// A sequence set: `1,3:5,7:*` (RFC 3501 §9 `sequence-set`).
    pub fn sequence_set(&mut self) -> Result<SequenceSet> {
        let mut ranges = Vec::new();
        loop {
            let a = self.seq_number()?;
            let b = if self.eat(b':') {
                self.seq_number()?
            } else {
                a
            };
            ranges.push(SeqRange::new(a, b));
            if !self.eat(b',') {
                break;
            }
        }
        Ok(SequenceSet(ranges))
    }

    fn seq_number(&mut self) -> Result<u32> {
        if self.eat(b'*') {
            return Ok(u32::MAX);
        }
        match self.number() {
            Ok(0) | Err(_) => bad("Invalid messageset"),
            Ok(n) => Ok(n),
        }
    }

    /// A parenthesised list of flags (RFC 3501 §9 `flag-list`).
    pub fn flag_list(&mut self) -> Result<Vec<String>> {
        if !self.eat(b'(') {
            return bad("Expected a flag list");
        }
        let mut flags = Vec::new();
        while !self.eat(b')') {
            if !flags.is_empty() {
                self.sp()?;
            }
            flags.push(self.flag()?);
        }
        Ok(flags)
    }

    /// One flag: `\Seen` or a keyword atom.
    pub fn flag(&mut self) -> Result<String> {
        let backslash = self.eat(b'\\');
        let word = self.atom()?;
        if backslash {
            let flag = postern_mailbox::flags::canonical(&format!("\\{word}"));
            if !["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]
                .contains(&flag.as_str())
            {
                return bad(format!("Invalid system flag {flag}"));
            }
            return Ok(flag);
        }
        Ok(word.to_owned())
    }

    /// A search `date` (`1-Feb-1994`, maybe quoted) as a day number.
    pub fn date(&mut self) -> Result<i64> {
        let text = if self.peek() == Some(b'"') {
            String::from_utf8_lossy(&self.quoted()?).into_owned()
        } else {
            self.atom()?.to_owned()
        };
        super::date::parse_date(&text).ok_or_else(|| ParseError("Invalid search date".into()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut p = Parser::new(b"abc \"q \\\"x\\\\\" {3}\r\nl\"t ]x");
        assert_eq!(p.astring().unwrap(), b"abc");
        p.sp().unwrap();
        assert_eq!(p.astring().unwrap(), b"q \"x\\");
        p.sp().unwrap();
        assert_eq!(p.astring().unwrap(), b"l\"t");
        p.sp().unwrap();
        assert_eq!(p.astring().unwrap(), b"]x");
        p.end().unwrap();
        assert!(Parser::new(b"\"open").quoted().is_err());
        assert!(Parser::new(b"{9}\r\nab").literal().is_err());
        assert!(Parser::new(b"\xff").astring_utf8().is_err());
    }

    #[test]
    fn sets_and_flags() {
        let mut p = Parser::new(b"1,3:5,7:* (\\seen $Junk)");
        let set = p.sequence_set().unwrap();
        assert_eq!(set.0.len(), 3);
        p.sp().unwrap();
        assert_eq!(p.flag_list().unwrap(), ["\\Seen", "$Junk"]);
        assert!(Parser::new(b"0").sequence_set().is_err());
        assert!(Parser::new(b"(\\Bogus)").flag_list().is_err());
    }
}
