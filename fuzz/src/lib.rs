//! Postern's fuzz checks: one function per input kind, each taking raw
//! bytes and panicking only on a real bug (a panic in the parser, or a
//! broken property such as "only `<CRLF>.<CRLF>` ends DATA"). The same
//! functions run under libFuzzer (`fuzz_targets/`, `cargo +nightly fuzz
//! run NAME`) and, on stable Rust, over the committed corpora
//! (`tests/corpus.rs`), which is what CI does.
//!
//! Counterpart: rustls's and Postfix's fuzzing of their parsers; Dovecot
//! has none in tree. Not here: the sessions (they own sockets; the
//! end-to-end tests in `tests/all/` drive them), policy plugins (wasmtime
//! is fuzzed upstream).
//!
//! Byte streams (SMTP, IMAP, POP3) start with one control byte that picks
//! the limits and the mode and seeds how the rest is cut into reads, so
//! that every input is also checked for split-invariance: the session must
//! see the same events however TCP cuts the bytes.
//!
//! # Layout
//! - [`smtp`]: [`smtp_command`] (line reader, command parser, re-serialise
//!   and re-parse) and [`smtp_data`] (the DATA decoder against a slow
//!   oracle, random read splits, dot-stuffing round trip).
//! - [`imap`]: [`imap_command`] (framer with literals, command parser).
//! - [`pop3`]: [`pop3_command`] (line reader, command parser, multi-line
//!   response stuffing).
//! - [`config`]: [`config`] (the TOML config loader of the server).
//! - [`tables`]: [`access_table`] (hash, cidr and regexp sources).
//! - [`aliases`]: [`aliases`] (the /etc/aliases and `:include:` reader).
//! - [`maildir`]: [`maildir_name`] (Maildir file names, flags, folder
//!   names, dovecot-uidlist).
//! - [`queue`]: [`queue_file`] (the queue file format: its parser against
//!   its writer, and its checksum).

pub mod aliases;
#[cfg(feature = "config")]
pub mod config;
pub mod imap;
pub mod maildir;
pub mod pop3;
pub mod queue;
pub mod smtp;
pub mod tables;

pub use aliases::aliases;
#[cfg(feature = "config")]
pub use config::config;
pub use imap::imap_command;
pub use maildir::maildir_name;
pub use pop3::pop3_command;
pub use queue::queue_file;
pub use smtp::{smtp_command, smtp_data};
pub use tables::access_table;

/// A fuzz target: raw bytes in, a panic on a bug.
pub type Target = fn(&[u8]);

/// Every fuzz target by name, for the corpus replay and for tools.
pub const TARGETS: &[(&str, Target)] = &[
    ("smtp_command", smtp_command),
    ("smtp_data", smtp_data),
    ("imap_command", imap_command),
    ("pop3_command", pop3_command),
    #[cfg(feature = "config")]
    ("config", config),
    ("access_table", access_table),
    ("aliases", aliases),
    ("maildir_name", maildir_name),
    ("queue_file", queue_file),
];

/// The files of the committed corpus of target `name`
/// (`corpus/NAME/` beside this crate's manifest), sorted; for the stable
/// replay and smoke tests.
///
/// # Panics
/// When the directory cannot be read: every target has a corpus.
pub fn corpus_files(name: &str) -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
}

/// Splits `data` into its control byte and the stream after it.
pub(crate) fn control(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((c, rest)) => (*c, rest),
        None => (0, &[]),
    }
}

/// Cuts `stream` into reads of 1 to 16 bytes, sizes drawn from `seed`
/// (xorshift): how a slow or hostile peer's bytes may arrive.
pub(crate) fn reads(stream: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = usize::try_from(state % 16).unwrap_or(0) + 1;
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// Replays `reads` the way a session does: append each read to a buffer,
/// let `decode` take whole units from its front (it returns how many bytes
/// it consumed and the unit, if any), drop what it consumed. Returns the
/// units in order.
pub(crate) fn drive<T>(
    reads: &[&[u8]],
    mut decode: impl FnMut(&[u8]) -> (usize, Option<T>),
) -> Vec<T> {
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        loop {
            let (used, unit) = decode(&buf);
            assert!(used <= buf.len(), "consumed more than it was given");
            buf.drain(..used);
            match unit {
                Some(u) => out.push(u),
                None => break,
            }
        }
    }
    out
}

/// A reply or response line a peer will read: exactly one CRLF, at the
/// end (a client's text must never split it).
pub(crate) fn assert_one_line(wire: &[u8]) {
    let body = wire
        .strip_suffix(b"\r\n")
        .unwrap_or_else(|| panic!("no CRLF at the end: {wire:?}"));
    assert!(
        !body.contains(&b'\r') && !body.contains(&b'\n'),
        "CR or LF inside a reply line: {wire:?}"
    );
}
