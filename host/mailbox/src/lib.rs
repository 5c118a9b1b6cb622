//! Postern's mailbox store: the only code that writes into users' mailboxes.
//!
//! Mailboxes are Maildirs (<https://cr.yp.to/proto/maildir.html>), laid out
//! so that Dovecot and mutt read what Postern delivers: `tmp/`, `new/` and
//! `cur/`, Dovecot-style unique file names with the `,S=<size>` field that
//! spares Dovecot a `stat`. Delivery follows the Maildir protocol: write
//! `tmp/NAME`, fsync it, link it into `new/NAME`, fsync `new/`; a reader
//! never sees a partial message. The Dovecot counterpart is its mail
//! storage (`lib-storage/index/maildir`) as used by `dovecot-lda`.
//!
//! This crate does not yet keep IMAP UIDs (`dovecot-uidlist`), flags
//! (`:2,FLAGS`), keywords, Maildir++ folders (`.Folder`) or quota, and does
//! not write mbox.
//!
//! # Layout
//! - [`maildir`]: [`Maildir`], creating a Maildir and delivering into it.
//! - [`reader`]: listing `new/` and `cur/`, unique ids, sizes, deleting.
//! - [`unique`]: the unique file names (`<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>`).

pub mod maildir;
pub mod reader;
pub mod unique;

pub use maildir::Maildir;
pub use reader::Entry;
