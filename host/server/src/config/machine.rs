//! The defaults that depend on the machine, and on who reads the config:
//! the host name (`myhostname`) and the data directory (`data_directory`,
//! under which the queue, the mailboxes and the caches live by default).
//!
//! Postfix's `data_directory` is `/var/lib/postfix` whoever reads main.cf.
//! Postern's is `/var/lib/postern` for a server started by root, and the
//! user's own data directory (`$XDG_DATA_HOME/postern`, else
//! `~/.local/share/postern`) for one started by anyone else, so that
//! `postern start` works without root (the README's first command). A
//! command run *against* a server (`sendmail`, `mailq`, `postern queue`,
//! `reload`, ...) by a user other than root must then find the server it
//! means: its own if it has one (a queue in its own directory), else the
//! system's (a queue in `/var/lib/postern`): a local user's `sendmail` on
//! a system whose config leaves `data_directory` unset reaches the
//! system's server, as with Postfix.

use std::path::{Path, PathBuf};

/// The system's data directory: the default of a server root starts.
pub const SYSTEM_DATA_DIRECTORY: &str = "/var/lib/postern";

/// Defaults that depend on the machine, computed once per load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The host name (`myhostname`'s default).
    pub hostname: String,
    /// Where data lives by default ([`Machine::detect`] and
    /// [`Machine::detect_server`] say which).
    pub data_directory: PathBuf,
}

impl Machine {
    /// The defaults for a command run against a mail server: the
    /// system's data directory for root; for anyone else their own if it
    /// holds a queue, else the system's if that does, else their own.
    pub fn detect() -> Machine {
        let data_directory = match own_data_directory() {
            None => PathBuf::from(SYSTEM_DATA_DIRECTORY),
            Some(own) => client_data_directory(own, Path::new(SYSTEM_DATA_DIRECTORY)),
        };
        Machine {
            hostname: hostname(),
            data_directory,
        }
    }

    /// The defaults for the server itself (`postern start`): the system's
    /// data directory for root, the user's own for anyone else.
    pub fn detect_server() -> Machine {
        Machine {
            hostname: hostname(),
            data_directory: own_data_directory()
                .unwrap_or_else(|| PathBuf::from(SYSTEM_DATA_DIRECTORY)),
        }
    }
}

/// This host's name, lower case, if it is a domain; else `localhost`.
fn hostname() -> String {
    let hostname = gethostname::gethostname().to_string_lossy().to_lowercase();
    if postern_mail::Domain::parse(&hostname).is_ok() {
        hostname
    } else {
        "localhost".to_owned()
    }
}

/// The data directory of a user other than root; `None` for root.
fn own_data_directory() -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if root {
        return None;
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("postern"));
    }
    Some(match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/postern"),
        None => PathBuf::from("postern-data"),
    })
}

/// Which server a user's command means: `own`'s once it holds a queue,
/// else `system`'s if that holds one, else `own`'s.
fn client_data_directory(own: PathBuf, system: &Path) -> PathBuf {
    if !own.join("queue").exists() && system.join("queue").exists() {
        system.to_owned()
    } else {
        own
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_users_command_finds_its_own_server_else_the_systems() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("home/.local/share/postern");
        let system = dir.path().join("var/lib/postern");
        // Neither has a queue: the user's own (a server they are about
        // to start).
        assert_eq!(client_data_directory(own.clone(), &system), own);
        // The system's server ran, the user's never did: the system's.
        std::fs::create_dir_all(system.join("queue")).unwrap();
        assert_eq!(client_data_directory(own.clone(), &system), system);
        // The user runs a server of their own: theirs.
        std::fs::create_dir_all(own.join("queue")).unwrap();
        assert_eq!(client_data_directory(own.clone(), &system), own);
    }

    #[test]
    fn a_server_started_by_root_keeps_its_data_in_the_system_directory() {
        let root = own_data_directory().is_none();
        let server = Machine::detect_server();
        assert_eq!(
            server.data_directory == Path::new(SYSTEM_DATA_DIRECTORY),
            root
        );
        if root {
            assert_eq!(Machine::detect().data_directory, server.data_directory);
        }
    }
}
