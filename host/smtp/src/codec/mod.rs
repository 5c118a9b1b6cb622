//! The sans-IO SMTP codec: bytes in, events out, no sockets and no clock,
//! so that each parser can be fed from a unit test or a fuzzer.
//!
//! The session owns the input buffer and hands its unread part to
//! [`LineReader`] in the command phase or to [`DataDecoder`] after `354`;
//! both say how much they consumed. Replies go out through
//! [`write_reply`], straight into the session's output buffer.

pub mod command;
pub mod data;
pub mod line;
pub mod path;
pub mod reply;
pub mod xtext;

pub use command::{Command, ParseError, Verb};
pub use data::{BareNewline, DataDecoder, DataError};
pub use line::{LineEvent, LineReader};
pub use path::{Body, ForwardPath, MailFrom, RcptTo};
pub use reply::write_reply;

/// `s` with every control character replaced by `?`, as Postfix's
/// `printable()` does before client text reaches a reply, a log line or a
/// header.
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_replaces_controls() {
        assert_eq!(super::printable("a\0b\tc\u{7f}d é"), "a?b?c?d é");
    }
}
