//! Helpers shared by the unit tests.

use std::path::Path;

use postern_mail::{Address, Envelope, Recipient, ReversePath};

/// An envelope from alice@example.org to `rcpts`, with every field set.
#[allow(clippy::unwrap_used)]
pub fn envelope(rcpts: &[&str]) -> Envelope {
    let mut env = Envelope::new(ReversePath::Address(
        Address::parse("alice@example.org").unwrap(),
    ));
    env.recipients = rcpts
        .iter()
        .map(|r| Recipient::new(Address::parse(r).unwrap()))
        .collect();
    env.client = Some("192.0.2.7:41234".parse().unwrap());
    env.client_name = "mx.example.org".to_owned();
    env.helo = Some("mx.example.org".to_owned());
    env
}

/// Content with what trips up naive formats: a lone dot line, a dot-led
/// line, a header-like line after a blank one, our own end marker, and
/// every byte value.
pub fn sample_content() -> Vec<u8> {
    let mut c = b"Subject: test\r\n\r\n.\r\n..dots\r\n\r\nsize 0\r\n\nPOSTERN-END\n".to_vec();
    c.extend(0u8..=255);
    c.extend_from_slice(b"\r\n");
    c
}

/// The file names in `dir`, sorted.
#[allow(clippy::unwrap_used)]
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
