//! The sans-IO POP3 codec: bytes in, typed commands out; replies and
//! multi-line responses as bytes. No sockets, no mailbox: unit tests and a
//! fuzzer can feed it anything.
//!
//! - [`line`](mod@line): splitting input into command lines, with a length cap.
//! - [`command`]: parsing a line into a [`Command`] (RFC 1939 §§4–7,
//!   RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).
//! - [`response`]: `+OK`/`-ERR` lines and dot-stuffed multi-line bodies.

pub mod command;
pub mod line;
pub mod response;

pub use command::{Command, ParseError};
pub use line::{LineEvent, LineReader};
