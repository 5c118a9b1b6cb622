//! The users file format: Dovecot's passwd-file, one user a line.
//!
//! `user[@domain]:password:uid:gid:gecos:home:shell:extra_fields`, every
//! field after the password optional (Dovecot's layout: the shell is kept
//! in the seventh field for `/etc/passwd` compatibility and ignored; extra
//! fields are space separated). `#` starts a comment line; blank lines are
//! skipped. The parser never panics and names the line of any mistake,
//! never echoing the password field.

use std::fmt;
use std::path::{Path, PathBuf};

use postern_mail::{Address, Domain};

use crate::user::User;

/// What is wrong with one line of a users file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// The user field is empty, too long, holds a character an address
    /// cannot (whitespace, control characters, `<>()[]\,;:"`), or could
    /// step out of its mailbox directory (`/`, `.`, `..`).
    #[error("bad user name {name:?}: {why}")]
    BadUserName {
        /// The user field as written.
        name: String,
        /// Why it is refused.
        why: String,
    },
    /// The line has no `:` after the user name.
    #[error("missing password field after user {0:?}")]
    MissingPassword(String),
    /// The uid field is neither empty nor a number.
    #[error("bad uid {0:?}: expected a number")]
    BadUid(String),
    /// The gid field is neither empty nor a number.
    #[error("bad gid {0:?}: expected a number")]
    BadGid(String),
    /// The home field is not an absolute path.
    #[error("bad home {0:?}: expected an absolute path")]
    BadHome(String),
    /// The same user (case folded) appears on an earlier line.
    #[error("duplicate user {name:?} (first defined on line {first_line})")]
    Duplicate {
        /// The user name as written on this line.
        name: String,
        /// Where it was first defined.
        first_line: usize,
    },
}

/// Why a users file could not be loaded. Messages name `path:line`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{origin}:{line}: {error}")]
    Line {
        /// The file name (or the name given to [`crate::UserDb::parse`]).
        origin: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        error: LineError,
    },
}

impl UsersFileError {
    /// Wraps a read error of `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> UsersFileError {
        UsersFileError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Parses one line. `Ok(None)` for blank and comment lines.
pub(crate) fn parse_line(line: &str) -> Result<Option<User>, LineError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() || line.trim_start().starts_with('#') {
        return Ok(None);
    }
    // Dovecot splits on ':' with no escaping; the password schemes it
    // supports never produce one.
    let mut fields = line.split(':');
    let name_field = fields.next().unwrap_or_default();
    let (name, domain) = parse_user_name(name_field)?;
    let password = fields
        .next()
        .ok_or_else(|| LineError::MissingPassword(name_field.to_owned()))?
        .to_owned();
    let uid = parse_id(fields.next()).map_err(LineError::BadUid)?;
    let gid = parse_id(fields.next()).map_err(LineError::BadGid)?;
    let _gecos = fields.next();
    let home = match fields.next().unwrap_or_default() {
        "" => None,
        h if h.starts_with('/') => Some(PathBuf::from(h)),
        h => return Err(LineError::BadHome(h.to_owned())),
    };
    let _shell = fields.next();
    // Extra fields may themselves hold ':' (quota rules do not, but values
    // are free text), so the rest of the line is one field.
    let rest: Vec<&str> = fields.collect();
    let extra_fields = rest
        .join(":")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Ok(Some(User {
        name,
        domain,
        password,
        uid,
        gid,
        home,
        extra_fields,
    }))
}

/// Splits and checks `local[@domain]`.
fn parse_user_name(field: &str) -> Result<(String, Option<Domain>), LineError> {
    let bad = |why: &dyn fmt::Display| LineError::BadUserName {
        name: field.to_owned(),
        why: why.to_string(),
    };
    if field.is_empty() {
        return Err(bad(&"empty"));
    }
    let (local, domain) = if field.contains('@') {
        let address = Address::parse(field).map_err(|e| bad(&e))?;
        (address.local().to_owned(), Some(address.domain().clone()))
    } else {
        if field.len() > 64 {
            return Err(bad(&"local part longer than 64 octets"));
        }
        if let Some(c) = field
            .chars()
            .find(|c| c.is_control() || c.is_whitespace() || "<>()[]\\,;:\"".contains(*c))
        {
            return Err(bad(&format_args!("invalid character {c:?}")));
        }
        (field.to_owned(), None)
    };
    // The name becomes a directory under virtual_mailbox_base
    // (User::home_or): it must stay one path segment.
    if local.contains('/') || local == "." || local == ".." {
        return Err(bad(
            &"a user name must not contain '/' or be \".\" or \"..\"",
        ));
    }
    Ok((local, domain))
}

/// An empty field is `None`; otherwise a decimal number.
fn parse_id(field: Option<&str>) -> Result<Option<u32>, String> {
    match field.unwrap_or_default() {
        "" => Ok(None),
        f => f.parse().map(Some).map_err(|_| f.to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn full_line() {
        let u = parse_line(
            "alice@Example.org:{SHA512-CRYPT}$6$x$y:1000:1001:Alice A:/home/alice:/bin/false:userdb_quota_rule=*:storage=1G  nopassword",
        )
        .unwrap()
        .unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.domain.unwrap().as_str(), "example.org");
        assert_eq!(u.password, "{SHA512-CRYPT}$6$x$y");
        assert_eq!((u.uid, u.gid), (Some(1000), Some(1001)));
        assert_eq!(u.home, Some(PathBuf::from("/home/alice")));
        assert_eq!(
            u.extra_fields,
            vec!["userdb_quota_rule=*:storage=1G", "nopassword"]
        );
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let u = parse_line("bob:{PLAIN}secret").unwrap().unwrap();
        assert_eq!(u.name, "bob");
        assert_eq!(u.domain, None);
        assert_eq!((u.uid, u.gid, u.home), (None, None, None));
        let u = parse_line("carol@x.org::::::").unwrap().unwrap();
        assert_eq!(u.password, "");
    }

    #[test]
    fn comments_and_blanks() {
        assert_eq!(parse_line(""), Ok(None));
        assert_eq!(parse_line("   "), Ok(None));
        assert_eq!(parse_line("# alice:x"), Ok(None));
        assert_eq!(parse_line("  # indented"), Ok(None));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse_line("alice"),
            Err(LineError::MissingPassword(_))
        ));
        assert!(matches!(
            parse_line("al ice:x"),
            Err(LineError::BadUserName { .. })
        ));
        assert!(matches!(
            parse_line(":x"),
            Err(LineError::BadUserName { .. })
        ));
        for name in ["../etc", "a/b@x.org", "..", ".@x.org"] {
            assert!(
                matches!(
                    parse_line(&format!("{name}:x")),
                    Err(LineError::BadUserName { .. })
                ),
                "{name}"
            );
        }
        assert!(matches!(
            parse_line("a@bad..domain:x"),
            Err(LineError::BadUserName { .. })
        ));
        assert_eq!(
            parse_line("a:x:abc"),
            Err(LineError::BadUid("abc".to_owned()))
        );
        assert_eq!(
            parse_line("a:x:1:-1"),
            Err(LineError::BadGid("-1".to_owned()))
        );
        assert_eq!(
            parse_line("a:x:1:1::home/a"),
            Err(LineError::BadHome("home/a".to_owned()))
        );
    }

    #[test]
    fn crlf_line_end() {
        let u = parse_line("a:{PLAIN}p:1:1::/h\r").unwrap().unwrap();
        assert_eq!(u.home, Some(PathBuf::from("/h")));
    }
}
