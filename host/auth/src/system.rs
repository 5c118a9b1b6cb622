//! The system's accounts as a password database: Dovecot's `passdb {
//! driver = shadow }` with `userdb { driver = passwd }`, turned on by
//! `[auth] system_accounts = true`.
//!
//! A login that the users file does not know is looked up in
//! `/etc/passwd` (for the uid) and `/etc/shadow` (for the hash and its
//! ageing fields, shadow(5)), read at each login so that `useradd`,
//! `passwd` and `usermod -L` take effect at once, as they do for
//! `getspnam(3)`. The password is checked with [`crate::crypt`]. Refused,
//! as pam_unix(8) and Dovecot refuse them: root (uid 0: its mail goes to a
//! person through an alias, and it never logs in to read mail), a locked
//! or password-less account (`!`, `*` or an empty field), an account past
//! its expiry date, and a password past its maximum age or marked for a
//! change (last change `0`). Only the shadow file is read: accounts that
//! live in LDAP or another NSS source authenticate elsewhere.
//!
//! A login is the bare account name, or `name@domain` for one of the
//! local domains given, folded to lower case (Dovecot's
//! `auth_username_format = %Lu`; system names are lower case by custom).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use postern_mail::Domain;

use crate::scheme::SchemeError;

/// Where the system's accounts are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemAccounts {
    /// passwd(5): name to uid.
    pub passwd: PathBuf,
    /// shadow(5): name to hash and ageing.
    pub shadow: PathBuf,
    /// The domains at which `name@domain` is the account `name`
    /// (`mydestination`).
    pub local_domains: Vec<Domain>,
}

/// What one system login came to; every answer but `Success` is a failure
/// for the client, told apart for the log and the tests.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SystemCheck {
    /// The password is right: the account name.
    Success(String),
    /// No such account (or not one that may log in here: root, a name at
    /// another domain).
    Unknown,
    /// A wrong password.
    Mismatch,
    /// The account is locked or has no password.
    Locked,
    /// The account or its password has expired.
    Expired,
    /// The hash cannot be checked (an old crypt family, a broken field).
    Broken(SchemeError),
    /// The shadow file cannot be read (the server is not root).
    Unreadable(String),
}

impl SystemCheck {
    /// The outcome as a code and text, as the privileged helper answers
    /// it (the hash never leaves the helper; a scheme error as its text).
    pub fn to_code(&self) -> (u8, String) {
        match self {
            SystemCheck::Success(name) => (0, name.clone()),
            SystemCheck::Unknown => (1, String::new()),
            SystemCheck::Mismatch => (2, String::new()),
            SystemCheck::Locked => (3, String::new()),
            SystemCheck::Expired => (4, String::new()),
            SystemCheck::Broken(e) => (5, e.to_string()),
            SystemCheck::Unreadable(why) => (6, why.clone()),
        }
    }

    /// The outcome [`SystemCheck::to_code`] made; an unknown code is an
    /// unreadable answer.
    pub fn from_code(code: u8, text: String) -> SystemCheck {
        match code {
            0 => SystemCheck::Success(text),
            1 => SystemCheck::Unknown,
            2 => SystemCheck::Mismatch,
            3 => SystemCheck::Locked,
            4 => SystemCheck::Expired,
            5 => SystemCheck::Broken(SchemeError::Unknown(text)),
            6 => SystemCheck::Unreadable(text),
            _ => SystemCheck::Unreadable(format!("an unknown answer {code}")),
        }
    }
}

/// One line of shadow(5); numbers are days since 1970-01-01, `None` when
/// the field is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shadow {
    hash: String,
    last_change: Option<i64>,
    max_age: Option<i64>,
    expire: Option<i64>,
}

impl SystemAccounts {
    /// The real files, `/etc/passwd` and `/etc/shadow`.
    pub fn new(local_domains: Vec<Domain>) -> SystemAccounts {
        SystemAccounts {
            passwd: PathBuf::from("/etc/passwd"),
            shadow: PathBuf::from("/etc/shadow"),
            local_domains,
        }
    }

    /// Checks `password` for `login`. Reads the files and hashes: call it
    /// off the async workers.
    pub fn check(&self, login: &str, password: &str) -> SystemCheck {
        // A daemon that dropped to mail_owner cannot read the shadow file:
        // its root helper checks the password (host/privsep).
        if let Some(helper) = postern_privsep::installed() {
            let Some(name) = self.account_name(login) else {
                return SystemCheck::Unknown;
            };
            let request = postern_privsep::Request::Password {
                login: name,
                password: password.to_owned(),
            };
            return match helper.call(&request) {
                Ok(postern_privsep::Response::Password(code, text)) => {
                    SystemCheck::from_code(code, text)
                }
                Ok(other) => SystemCheck::Unreadable(format!("the privileged helper: {other:?}")),
                Err(e) => SystemCheck::Unreadable(e.to_string()),
            };
        }
        self.check_on(login, password, today())
    }

    /// The account a login names, if it could be one: the part before a
    /// local domain, lower-cased, shaped as a login name.
    pub fn account_name(&self, login: &str) -> Option<String> {
        let name = match login.rsplit_once('@') {
            Some((name, domain)) => {
                let domain = Domain::parse(domain).ok()?;
                self.local_domains.contains(&domain).then_some(name)?
            }
            None => login,
        };
        let name = name.to_lowercase();
        let bad = |c: char| c.is_control() || c.is_whitespace() || ":/@\\".contains(c);
        (!name.is_empty() && name.len() <= 32 && !name.starts_with('-') && !name.contains(bad))
            .then_some(name)
    }

    fn check_on(&self, login: &str, password: &str, today: i64) -> SystemCheck {
        let Some(name) = self.account_name(login) else {
            return SystemCheck::Unknown;
        };
        match self.uid(&name) {
            Some(uid) if uid != 0 => {}
            _ => return SystemCheck::Unknown,
        }
        let text = match std::fs::read_to_string(&self.shadow) {
            Ok(text) => text,
            Err(e) => return SystemCheck::Unreadable(format!("{}: {e}", self.shadow.display())),
        };
        let Some(entry) = text.lines().find_map(|line| shadow_line(line, &name)) else {
            return SystemCheck::Unknown;
        };
        if entry.hash.is_empty() || entry.hash.starts_with(['!', '*']) {
            return SystemCheck::Locked;
        }
        // pam_unix's check_shadow_expiry, in its order.
        let expired = entry.expire.is_some_and(|day| today >= day)
            || entry.last_change == Some(0)
            || matches!((entry.last_change, entry.max_age),
                (Some(changed), Some(max)) if today > changed.saturating_add(max));
        if expired {
            return SystemCheck::Expired;
        }
        match crate::crypt::verify(&entry.hash, password) {
            Ok(true) => SystemCheck::Success(name),
            Ok(false) => SystemCheck::Mismatch,
            Err(e) => SystemCheck::Broken(e),
        }
    }

    /// The uid of `name` in the passwd file.
    fn uid(&self, name: &str) -> Option<u32> {
        let text = std::fs::read_to_string(&self.passwd).ok()?;
        text.lines().find_map(|line| {
            let mut f = line.split(':');
            (f.next()? == name).then_some(())?;
            let _password = f.next()?;
            f.next()?.parse().ok()
        })
    }
}

/// The entry of `name` if `line` is one.
fn shadow_line(line: &str, name: &str) -> Option<Shadow> {
    let mut f = line.split(':');
    (f.next()? == name).then_some(())?;
    let day = |field: Option<&str>| field.and_then(|v| v.trim().parse::<i64>().ok());
    let hash = f.next()?.to_owned();
    let last_change = day(f.next());
    let (_min, max_age, _warn, _inactive) = (f.next(), day(f.next()), f.next(), f.next());
    let expire = day(f.next());
    Some(Shadow {
        hash,
        last_change,
        max_age,
        expire,
    })
}

/// Days since 1970-01-01, as shadow(5) counts.
fn today() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET_6: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    const SECRET_Y: &str =
        "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$GmcwIgvdUC9qLWcKCi6gklUa1dM3ziD43YxYNURLKy0";

    fn accounts(dir: &std::path::Path) -> SystemAccounts {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      alice:x:1000:1000::/home/alice:/bin/sh\n\
                      bob:x:1001:1001::/home/bob:/bin/sh\n\
                      carol:x:1002:1002::/home/carol:/bin/sh\n\
                      dave:x:1003:1003::/home/dave:/bin/sh\n\
                      erin:x:1004:1004::/home/erin:/bin/sh\n\
                      frank:x:1005:1005::/home/frank:/bin/sh\n\
                      gina:x:1006:1006::/home/gina:/bin/sh\n";
        let shadow = format!(
            "root:{SECRET_6}:20000:0:99999:7:::\n\
             alice:{SECRET_Y}:20000:0:99999:7:::\n\
             bob:!{SECRET_6}:20000:0:99999:7:::\n\
             carol:*:20000:0:99999:7:::\n\
             dave:{SECRET_6}:20000:0:99999:7::20100:\n\
             erin:{SECRET_6}:0:0:99999:7:::\n\
             frank:{SECRET_6}:20000:0:30:7:::\n\
             gina:abJnggxhB/yWI:20000::::::\n"
        );
        std::fs::write(dir.join("passwd"), passwd).unwrap();
        std::fs::write(dir.join("shadow"), shadow).unwrap();
        SystemAccounts {
            passwd: dir.join("passwd"),
            shadow: dir.join("shadow"),
            local_domains: vec![Domain::parse("example.org").unwrap()],
        }
    }

    #[test]
    fn logins() {
        let dir = tempfile::tempdir().unwrap();
        let a = accounts(dir.path());
        let check = |login: &str, pw: &str| a.check_on(login, pw, 20_050);
        assert_eq!(
            check("alice", "secret"),
            SystemCheck::Success("alice".into())
        );
        assert_eq!(
            check("Alice@Example.org", "secret"),
            SystemCheck::Success("alice".into())
        );
        assert_eq!(check("alice", "wrong"), SystemCheck::Mismatch);
        assert_eq!(
            check("alice@elsewhere.example", "secret"),
            SystemCheck::Unknown
        );
        assert_eq!(check("root", "secret"), SystemCheck::Unknown);
        assert_eq!(check("nobody-here", "secret"), SystemCheck::Unknown);
        assert_eq!(check("bob", "secret"), SystemCheck::Locked);
        assert_eq!(check("carol", "secret"), SystemCheck::Locked);
        assert_eq!(check("erin", "secret"), SystemCheck::Expired);
        assert_eq!(check("frank", "secret"), SystemCheck::Expired);
        assert!(matches!(check("gina", "secret"), SystemCheck::Broken(_)));
        // dave's account expires on day 20100.
        assert_eq!(check("dave", "secret"), SystemCheck::Success("dave".into()));
        assert_eq!(a.check_on("dave", "secret", 20_100), SystemCheck::Expired);
    }

    #[test]
    fn odd_names_are_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let a = accounts(dir.path());
        for login in [
            "", "a:b", "../alice", "alice\n", "-alice", "al ice", "a@b@c",
        ] {
            assert_eq!(
                a.check_on(login, "secret", 20_050),
                SystemCheck::Unknown,
                "{login:?}"
            );
        }
    }

    #[test]
    fn unreadable_shadow() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = accounts(dir.path());
        a.shadow = dir.path().join("missing");
        assert!(matches!(
            a.check_on("alice", "secret", 20_050),
            SystemCheck::Unreadable(_)
        ));
    }
}
