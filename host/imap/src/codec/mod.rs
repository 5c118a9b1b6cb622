//! The sans-IO half of IMAP: bytes in, typed commands out; responses
//! written into byte buffers. Nothing here touches a socket, so every
//! piece can be fed input in a unit test or a fuzzer.

pub mod command;
pub mod date;
pub mod fetch;
pub mod frame;
pub mod parse;
pub mod response;
pub mod search;
pub mod sequence;

pub use command::{Command, ListOptions, Qresync, Request, StatusItem, StoreMode};
pub use frame::{Frame, Framer};
pub use parse::ParseError;
pub use sequence::SequenceSet;

#[cfg(test)]
mod fuzz_tests;
