//! Postern's durable mail queue: where an accepted message waits until
//! every recipient has it, across crashes and restarts.
//!
//! It does the work of Postfix's cleanup (write the queue file, fsync,
//! link into `active/`, fsync the directory, one fsync shared by the
//! concurrent sessions, and only then let the SMTP server answer 250) and
//! of qmgr (hand each recipient to a delivery agent,
//! at most `default_process_limit` deliveries at once and at most a
//! destination's concurrency limit to each destination, round robin, so
//! that a slow destination cannot starve the others; new and deferred mail
//! in turn; at most `qmgr_message_active_limit` messages in memory, the
//! rest read in from disk as they leave; record each outcome in the file;
//! retry deferred mail with exponential backoff; give up after
//! `maximal_queue_lifetime`). Its queues are Postfix's directories:
//! `incoming active deferred hold corrupt` under the queue directory, one
//! file per message (and `spare/`, files of delivered messages kept to be
//! written over by new ones: `spare`). At start-up it recovers whatever a
//! crash left: see [`Queue::open_with`].
//!
//! It also does bounce(8)'s work: recipients that bounce or expire
//! (`maximal_queue_lifetime`, `bounce_queue_lifetime`) are reported to the
//! sender in an RFC 3464 delivery status notification, queued like any
//! message; a failed bounce goes to the postmaster once (a double bounce).
//! And postsuper's and mailq's: [`Queue::list`], [`Queue::hold`],
//! [`Queue::release`], [`Queue::requeue`], [`Queue::delete`] work on the
//! directory with the same rename-based moves, from another process while
//! the daemon runs; the daemon skips a file that vanished or moved, and
//! hears "look again now" over a datagram socket ([`trigger`]).
//!
//! DSN parameters (RFC 3461) are kept in the queue file and honoured:
//! `NOTIFY=NEVER` means no bounce, `NOTIFY=SUCCESS` a success notice,
//! `RET=FULL` returns the whole message, `ENVID` and `ORCPT` come back in
//! the report. With `delay_warning_time` set, a message still deferred
//! that long gets one delay warning (`NOTIFY=DELAY`), recorded so that a
//! restart does not send a second.
//!
//! It does not yet: rewrite headers as cleanup does (header_checks; the
//! SMTP server adds Message-Id and Date for submissions, [`pickup`] for
//! `postern sendmail`), route recipients to different agents by
//! transport, or lock the queue directory against a second daemon.
//!
//! # Layout
//! - [`queue`]: [`Queue`], opening the directory, and the schedule.
//! - `enqueue`: the [`postern_mail::Enqueue`] implementation (cleanup).
//! - [`filter`]: content filters, [`ContentFilter`] (a service's
//!   `content_filter`) and the one delivery of a filtered message.
//! - `at_once`: immediate local delivery (`immediate_local_delivery`), a
//!   message stored in its local mailboxes before the 250, with no queue
//!   file when nothing is left.
//! - `commit`: group commit, one fsync of `active/` shared by the
//!   sessions that queued a message meanwhile.
//! - `scheduler`: [`Queue::run`], the delivery loop (qmgr).
//! - `active`: the messages in memory, by destination, and which
//!   delivery starts next (qmgr's in-core queues).
//! - `attempt`: one delivery attempt of one message.
//! - `bounce`: who gets a notice about failed recipients (bounce).
//! - `dsn`: the notice itself, RFC 3464 `multipart/report`.
//! - `admin`: hold, release, requeue, delete (postsuper).
//! - [`mailq`]: the text of `postern queue list` and `show`.
//! - [`trigger`]: the socket that wakes the daemon (`postern flush`).
//! - [`pickup`]: how `postern sendmail` hands a message over (postdrop):
//!   the pickup socket and the maildrop.
//! - `pickup_file`: the maildrop file format, decoded without trust.
//! - `pickup_cleanup`: the envelope and headers of a local submission.
//! - `pickup_service`: the daemon's pickup task behind them (pickup);
//!   `pickup_reserved`: the queue ids it reserves for `sendmail -bs`.
//! - `pickup_scan`: its scan of the maildrop, file by untrusted file.
//! - `date`: RFC 5322 and mailq dates.
//! - `recovery`: start-up recovery.
//! - [`format`](mod@format): the queue file format, [`QueuedMessage`].
//! - [`status`]: [`RecipientStatus`] and record escaping.
//! - `spool`: the directories and durable file moves, [`QueueName`].
//! - `free_space`: the free-space figure MAIL checks against.
//! - `spare`: finished files kept to be written over by new messages.
//! - `inspect`: [`Queue::list`] and [`Queue::read`], [`QueueEntry`].
//! - `maillog`: the per-recipient log line.
//! - [`id`]: queue ids.
//! - [`settings`]: [`QueueSettings`], the scheduling knobs.
//! - [`error`]: [`QueueError`], [`ParseError`].

mod active;
mod admin;
mod at_once;
mod attempt;
mod bounce;
mod commit;
mod date;
mod dsn;
mod enqueue;
pub mod error;
pub mod filter;
pub mod format;
mod free_space;
pub mod id;
mod inspect;
mod maillog;
pub mod mailq;
pub mod pickup;
mod pickup_cleanup;
mod pickup_file;
mod pickup_reserved;
mod pickup_scan;
mod pickup_service;
pub mod queue;
mod recovery;
mod scheduler;
pub mod settings;
mod spare;
mod spool;
pub mod status;
#[cfg(test)]
mod testing;
pub mod trigger;

pub use error::{ParseError, QueueError};
pub use filter::ContentFilter;
pub use format::QueuedMessage;
pub use inspect::QueueEntry;
pub use queue::Queue;
pub use settings::QueueSettings;
pub use spool::QueueName;
pub use status::RecipientStatus;
