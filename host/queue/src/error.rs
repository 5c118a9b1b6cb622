//! What can go wrong in the queue, naming the file it went wrong with.

use std::path::PathBuf;

use postern_mail::QueueId;

/// Why a queue file could not be read back. A file that fails to parse is
/// moved to `corrupt/` and never delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The first line is not `POSTERN-QUEUE <version>`.
    #[error("not a queue file (no POSTERN-QUEUE first line)")]
    NotAQueueFile,
    /// A queue file of a version this build does not read.
    #[error("queue file version {0:?} is not supported")]
    Version(String),
    /// The file ends inside the envelope records.
    #[error("truncated: the file ends before the end of the envelope")]
    HeaderTruncated,
    /// An envelope record is malformed.
    #[error("envelope line {line}: {what}")]
    Header {
        /// The 1-based line number in the file.
        line: usize,
        /// What is wrong with it.
        what: String,
    },
    /// A record every queue file has is absent.
    #[error("envelope has no {0:?} record")]
    Missing(&'static str),
    /// The file holds less content than its `size` record announces.
    #[error("truncated: content of {expected} bytes announced, {available} present")]
    ContentTruncated {
        /// The `size` record.
        expected: u64,
        /// What follows the envelope.
        available: u64,
    },
    /// The end marker after the content is missing or damaged.
    #[error("end marker missing or damaged at byte {0}")]
    EndMarker(usize),
    /// The envelope and content are not the bytes the `sum` record was
    /// computed over: damaged on disk, or, after a power cut, a spare
    /// whose new message never reached the disk in full.
    #[error(
        "checksum mismatch: the sum record says {expected:08x}, the file's bytes give {found:08x}"
    )]
    Checksum {
        /// The `sum` record.
        expected: u32,
        /// The CRC-32 of the bytes it covers.
        found: u32,
    },
    /// A status record (after the end marker) is malformed, and is not the
    /// last one (a torn last record is ignored: it was never complete).
    #[error("status record at byte {offset}: {what}")]
    Record {
        /// Where the record starts.
        offset: usize,
        /// What is wrong with it.
        what: String,
    },
    /// The `id` record names another message than the file name.
    #[error("queue id {found} in a file named {expected}")]
    IdMismatch {
        /// The file name.
        expected: String,
        /// The `id` record.
        found: QueueId,
    },
}

/// A queue operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// A file or directory operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A queue file did not parse.
    #[error("{}: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: ParseError,
    },
    /// No queue (active, deferred, hold) holds this message.
    #[error("{0}: no such message in the queue")]
    NotFound(QueueId),
    /// An operator command needs the message in another queue
    /// (`release` of a message that is not on hold).
    #[error("{id}: not in the {queue} queue")]
    NotIn {
        /// The message.
        id: QueueId,
        /// The queue it would have to be in.
        queue: crate::spool::QueueName,
    },
    /// The directory is not a queue directory (no `active/` in it).
    #[error("{}: not a queue directory (is the path right, has the server run?)", .0.display())]
    NoQueue(PathBuf),
}

impl QueueError {
    /// Wraps an I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> QueueError {
        QueueError::Io {
            path: path.into(),
            source,
        }
    }
}
