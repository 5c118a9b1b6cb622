//! `unix:passwd.byname`: the system's accounts as a table, Postfix's
//! `unix` map type (the default `local_recipient_maps` of Postfix is
//! `proxy:unix:passwd.byname $alias_maps`).
//!
//! A lookup asks the C library (`getpwnam_r`, so NSS sources such as
//! LDAP or systemd's dynamic users count, as they do for Postfix), at the
//! time of the lookup: the table holds nothing, and a user added with
//! `useradd` is found at once. Keys are case-sensitive, as login names
//! are. The result of a lookup is the passwd(5) line, as Postfix's.
//! Not here: `unix:group.byname`.

use std::fmt;
use std::path::PathBuf;

use crate::error::Error;

/// A system account: what delivery needs of passwd(5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The login name.
    pub name: String,
    /// The user id mail is stored as.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The home directory.
    pub home: PathBuf,
    /// The login shell.
    pub shell: PathBuf,
}

impl fmt::Display for Account {
    /// The passwd(5) line, password field `x`, GECOS empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:x:{}:{}::{}:{}",
            self.name,
            self.uid,
            self.gid,
            self.home.display(),
            self.shell.display()
        )
    }
}

/// The tables of the `unix` type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnixTable {
    /// `unix:passwd.byname`: accounts by login name.
    PasswdByName,
}

impl UnixTable {
    /// Reads `unix:passwd.byname` (with or without `proxy:` before it, a
    /// Postfix spelling that changes nothing here). `None` when `spec`
    /// is not a `unix` table at all; an error for an unknown one.
    pub fn parse(spec: &str) -> Option<Result<UnixTable, Error>> {
        let spec = spec.trim();
        let spec = spec.strip_prefix("proxy:").unwrap_or(spec);
        let name = spec.strip_prefix("unix:")?;
        Some(match name {
            "passwd.byname" => Ok(UnixTable::PasswdByName),
            other => Err(Error::UnknownKind(format!("unix:{other}"))),
        })
    }

    /// The passwd(5) line of `key`, if there is such an account.
    pub fn lookup(self, key: &str) -> Option<String> {
        match self {
            UnixTable::PasswdByName => account(key).map(|a| a.to_string()),
        }
    }
}

/// The system account called `name`, if any. A name that could not be
/// a login name (empty, with `/`, `:` or control characters) is nobody,
/// without asking; a failing lookup (an unreachable NSS source) is
/// nobody too.
pub fn account(name: &str) -> Option<Account> {
    if name.is_empty()
        || name.len() > 256
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == ':' || c.is_whitespace())
    {
        return None;
    }
    let user = nix::unistd::User::from_name(name).ok()??;
    Some(Account {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir,
        shell: user.shell,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_and_strangers_are_not() {
        let root = account("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.to_string().starts_with("root:x:0:0::"));
        assert_eq!(account("no-such-user-here-4711"), None);
        for bad in ["", "a/b", "a:b", "a b", "a\nb"] {
            assert_eq!(account(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn specs() {
        let t = UnixTable::parse("proxy:unix:passwd.byname")
            .unwrap()
            .unwrap();
        assert_eq!(t, UnixTable::PasswdByName);
        assert!(t.lookup("root").is_some());
        assert!(UnixTable::parse("unix:group.byname").unwrap().is_err());
        assert!(UnixTable::parse("hash:/etc/aliases").is_none());
    }
}
