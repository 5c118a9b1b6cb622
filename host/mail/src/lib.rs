//! Postern's shared vocabulary: the typed values that cross crate boundaries
//! and the two traits where the SMTP server meets the rest of the system.
//!
//! Every other crate depends on this one and on nothing heavier: it has no
//! tokio and no wasmtime, so the protocol codecs and their fuzzers stay small.
//! Postfix has no single counterpart; its nearest kin are the record types in
//! `src/global` (`rec_type.h`, `dsn.h`) that cleanup, qmgr and smtpd share.
//!
//! Input is parsed once, at the edge ("parse, don't validate"): an [`Address`]
//! or a [`Domain`] is known to be well formed, so code that holds one never
//! re-checks the string. This crate does no I/O (a [`GroupCommit`] runs the caller's) and knows nothing of sockets,
//! queue files or plugins.
//!
//! # Layout
//! - [`address`]: [`Domain`], [`Address`], [`ReversePath`].
//! - [`envelope`]: [`Envelope`], [`Recipient`], [`QueueId`], and the DSN
//!   parameters [`Notify`], [`Orcpt`], [`Ret`].
//! - [`reply`]: [`Reply`] and [`EnhancedCode`], the SMTP answer.
//! - [`policy`]: [`Stage`], [`PolicyRequest`], [`Verdict`], [`Decision`] and the
//!   [`Policy`] trait the restriction chains implement.
//! - [`enqueue`]: the [`Enqueue`] trait the queue implements for the SMTP server.
//! - [`directory`]: the [`Directory`] trait: domain classes and known recipients.
//! - [`date`]: RFC 5322 and asctime dates in UTC, for every crate.
//! - [`deliver`]: the [`Deliver`] trait delivery agents implement for the queue.
//! - [`group_commit`]: [`GroupCommit`], one durable step (a directory's
//!   fsync) shared by concurrent callers, for the queue and the mailboxes.

pub mod address;
pub mod date;
pub mod deliver;
pub mod directory;
pub mod enqueue;
pub mod envelope;
pub mod group_commit;
pub mod policy;
pub mod reply;

pub use address::{Address, AddressError, Domain, ReversePath};
pub use deliver::{Deliver, Delivered, DeliveryStatus, RemoteReply, io_reason};
pub use directory::Directory;
pub use enqueue::{BoxFuture, Enqueue, EnqueueError};
pub use envelope::{Envelope, Notify, Orcpt, QueueId, Recipient, Ret};
pub use group_commit::GroupCommit;
pub use policy::{
    Decision, DomainClass, MessageContent, Policy, PolicyRequest, PolicySession, Stage, Verdict,
};
pub use reply::{EnhancedCode, Reply};
