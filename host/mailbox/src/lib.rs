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
//! For IMAP it keeps what Dovecot keeps beside a Maildir, in Dovecot's
//! formats, so either server can take over the other's mailboxes: UIDs
//! with UIDVALIDITY and UIDNEXT in `dovecot-uidlist` (under its dotlock,
//! rebuilt with a new UIDVALIDITY if lost), flags in `:2,FLAGS` names,
//! keywords in `dovecot-keywords`, Maildir++ folders (`.Folder`, `.` as
//! the hierarchy delimiter) and `subscriptions`.
//!
//! What Dovecot keeps in its index and IMAP needs, CONDSTORE MODSEQs and
//! which messages are still `\Recent`, is kept in `postern-state` beside
//! the list ([`state`]).
//!
//! What is fsynced follows Dovecot's `mail_fsync` ([`fsync`]): by default
//! a message and the UID it is given are on disk before either is
//! acknowledged; flag changes, expunges and MODSEQs are not fsynced, and
//! what a crash can leave of them is read back safely.
//!
//! Not here: quota, Dovecot's index files (`dovecot.index*`, which Dovecot
//! rebuilds from the Maildir). mbox files ([`mbox`]) are written for
//! delivery only, never read.
//!
//! # Layout
//! - [`maildir`]: [`Maildir`], creating a Maildir and delivering into it.
//! - [`store`]: [`Mailbox`], one folder with UIDs, flags, copy, expunge.
//! - `save`: [`Mailbox::append`], one new file and one journal commit.
//! - `dio`: whether statx vouches for `O_DIRECT` writes in a directory.
//! - [`sync`]: bringing a [`Snapshot`] up to date; the conditional STORE.
//! - [`folders`]: [`Store`], a user's Maildir++ folders and subscriptions.
//! - [`uidlist`]: `dovecot-uidlist` and its dotlock.
//! - [`state`]: `postern-state`, MODSEQs and the first unseen UID.
//! - [`fsync`]: `mail_fsync`: what is fsynced, and how a crash is seen.
//! - [`flags`]: `:2,FLAGS` info parts and `dovecot-keywords`.
//! - [`mbox`]: [`Mbox`], appending to an mbox file under dotlock + fcntl locks.
//! - [`listing`]: what is in `cur/` and `new/`, kept up to date by inotify.
//! - [`reader`]: listing `new/` and `cur/`, unique ids, sizes, deleting.
//! - [`unique`]: the unique file names (`<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>`).

mod dio;
pub mod flags;
pub mod folders;
pub mod fsync;
pub mod listing;
pub mod maildir;
pub mod mbox;
pub mod reader;
mod save;
pub mod state;
pub mod store;
pub mod sync;
pub mod uidlist;
pub mod unique;

pub use flags::Flags;
pub use folders::{FolderError, Store};
pub use store::{Mailbox, Message, Snapshot};

pub use maildir::Maildir;
pub use mbox::Mbox;
pub use reader::Entry;
