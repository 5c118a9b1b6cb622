//! Why a table could not be loaded: every message names the file, and the
//! line where there is one.

use std::io;
use std::path::PathBuf;

/// A table that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The table's source file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A line that does not follow the table type's syntax.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        /// The table's source file.
        path: PathBuf,
        /// The 1-based line where the faulty entry starts.
        line: usize,
        /// What is wrong, in words an operator can act on.
        message: String,
    },
    /// A table type Postern does not know.
    #[error("unknown table type {0:?} (expected hash, cidr or regexp)")]
    UnknownKind(String),
}

/// A table of a set that could not be loaded, and which one.
#[derive(Debug, thiserror::Error)]
#[error("table {name}: {source}")]
pub struct LoadError {
    /// The table's name, as declared.
    pub name: String,
    /// What went wrong, naming the file and line.
    #[source]
    pub source: Error,
}
