//! Postern's durable mail queue: where an accepted message waits until
//! every recipient has it, across crashes and restarts.
//!
//! It does the work of Postfix's cleanup (write the queue file, fsync,
//! rename into `active/`, fsync the directory, and only then let the SMTP
//! server answer 250) and of qmgr (hand each recipient to a delivery agent,
//! a bounded number of messages at once; record each outcome in the file;
//! retry deferred mail with exponential backoff; give up after
//! `maximal_queue_lifetime`). Its queues are Postfix's directories:
//! `incoming active deferred hold corrupt` under the queue directory, one
//! file per message. At start-up it recovers whatever a crash left: see
//! [`Queue::open_with`].
//!
//! It does not yet: rewrite headers as cleanup does (Message-ID, Date,
//! header_checks), send bounce notices (DSN, RFC 3464) for bounced or
//! expired recipients (they are only logged), route recipients to
//! different agents by transport, release or delete held messages, share
//! one fsync among concurrent sessions (group commit), or lock the queue
//! directory against a second daemon.
//!
//! # Layout
//! - [`queue`]: [`Queue`], opening the directory, and the schedule.
//! - `enqueue`: the [`postern_mail::Enqueue`] implementation (cleanup).
//! - `scheduler`: [`Queue::run`], the delivery loop (qmgr).
//! - `attempt`: one delivery attempt of one message.
//! - `recovery`: start-up recovery.
//! - [`format`](mod@format): the queue file format, [`QueuedMessage`].
//! - [`status`]: [`RecipientStatus`] and record escaping.
//! - `spool`: the directories and durable file moves, [`QueueName`].
//! - `inspect`: [`Queue::list`] and [`Queue::read`], [`QueueEntry`].
//! - `maillog`: the per-recipient log line.
//! - [`id`]: queue ids.
//! - [`settings`]: [`QueueSettings`], the scheduling knobs.
//! - [`error`]: [`QueueError`], [`ParseError`].

mod attempt;
mod enqueue;
pub mod error;
pub mod format;
pub mod id;
mod inspect;
mod maillog;
pub mod queue;
mod recovery;
mod scheduler;
pub mod settings;
mod spool;
pub mod status;
#[cfg(test)]
mod testing;

pub use error::{ParseError, QueueError};
pub use format::QueuedMessage;
pub use inspect::QueueEntry;
pub use queue::Queue;
pub use settings::QueueSettings;
pub use spool::QueueName;
pub use status::RecipientStatus;
