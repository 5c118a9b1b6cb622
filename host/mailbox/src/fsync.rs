//! When the store fsyncs: Dovecot's `mail_fsync` setting, with its names
//! and its default.
//!
//! - `optimized` (the default): a message is on disk, file and directory
//!   entry, before it is acknowledged, and so is every UID given out
//!   (`dovecot-uidlist` is fsynced whenever it assigns UIDs). Flag renames,
//!   expunges, the \Recent claim and the MODSEQs of `postern-state` are not
//!   fsynced: a crash may lose the last flag changes, never a message, and
//!   never makes a UID name a second message. MODSEQs stay monotonic across
//!   such a crash because `postern-state` records the boot it was written
//!   in: a state written in an earlier boot may be older than what clients
//!   were told, so its MODSEQ base is raised past anything it could have
//!   handed out (see [`crate::state`]).
//! - `always`: the MODSEQ state is fsynced at every change too.
//! - `never`: nothing is fsynced, not even messages (tests, throw-away
//!   mail); as Dovecot's `never`, for filesystems that are not expected to
//!   survive a crash anyway.
//!
//! The mode is one setting for the whole process, set once at start-up by
//! the daemon ([`set_mode`]), as Dovecot reads it once per process.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// Dovecot's `mail_fsync` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Messages and UIDs durable; flags and MODSEQs not fsynced.
    #[default]
    Optimized,
    /// Every change fsynced.
    Always,
    /// Nothing fsynced.
    Never,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "optimized" => Ok(Mode::Optimized),
            "always" => Ok(Mode::Always),
            "never" => Ok(Mode::Never),
            other => Err(format!(
                "mail_fsync: {other:?} is not one of optimized, always, never"
            )),
        }
    }
}

static MODE: AtomicU8 = AtomicU8::new(0);

/// Sets the process's mode (the daemon, at start-up and reload).
pub fn set_mode(mode: Mode) {
    let n = match mode {
        Mode::Optimized => 0,
        Mode::Always => 1,
        Mode::Never => 2,
    };
    MODE.store(n, Ordering::Relaxed);
}

/// The process's mode.
pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        1 => Mode::Always,
        2 => Mode::Never,
        _ => Mode::Optimized,
    }
}

/// Whether messages and UID assignments are fsynced.
pub(crate) fn messages() -> bool {
    mode() != Mode::Never
}

/// Whether flag and MODSEQ state is fsynced. Without a boot id to detect
/// a crash by, `optimized` falls back to fsyncing it.
pub(crate) fn state() -> bool {
    match mode() {
        Mode::Always => true,
        Mode::Never => false,
        Mode::Optimized => boot_id().is_none(),
    }
}

/// Fsyncs `file` unless the mode is `never`.
pub(crate) fn file(file: &File) -> io::Result<()> {
    if messages() { file.sync_all() } else { Ok(()) }
}

/// Fsyncs the directory `dir` (its entries) unless the mode is `never`.
pub(crate) fn dir(dir: &Path) -> io::Result<()> {
    if messages() {
        File::open(dir)?.sync_all()
    } else {
        Ok(())
    }
}

/// This boot of the machine (Linux's `boot_id`, a UUID that changes at
/// every boot), `None` where there is none. What was written without an
/// fsync survives a crash of the process (the page cache keeps it) but
/// maybe not one of the machine, which is always a new boot.
pub fn boot_id() -> Option<&'static str> {
    static ID: OnceLock<Option<String>> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
    })
    .as_deref()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_by_dovecot_names() {
        assert_eq!("optimized".parse::<Mode>().unwrap(), Mode::Optimized);
        assert_eq!("always".parse::<Mode>().unwrap(), Mode::Always);
        assert_eq!("never".parse::<Mode>().unwrap(), Mode::Never);
        assert!("sometimes".parse::<Mode>().is_err());
        assert_eq!(Mode::default(), Mode::Optimized);
    }

    #[test]
    fn this_machine_has_a_boot_id() {
        // Linux: the state relies on it to see a crash.
        let id = boot_id().unwrap();
        assert_eq!(id.len(), 36, "{id}");
    }
}
