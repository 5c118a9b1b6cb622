//! One entry of the users file.

use std::path::{Path, PathBuf};

use postern_mail::Domain;

/// A user with a mailbox here, as one line of the users file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The local part, as written in the file (lookups ignore its case).
    pub name: String,
    /// The domain, or `None` for the local namespace: a user written
    /// without `@domain` receives mail at every `mydestination` domain.
    pub domain: Option<Domain>,
    /// The password field as written, `{SCHEME}` prefix kept. Empty when
    /// the file gives none (the user can receive mail but not log in).
    pub password: String,
    /// The numeric user id mail is stored as; `None` when the field is
    /// empty (Dovecot then falls back to its `mail_uid`).
    pub uid: Option<u32>,
    /// The numeric group id; `None` when the field is empty.
    pub gid: Option<u32>,
    /// The home directory, always absolute; `None` when the field is empty.
    pub home: Option<PathBuf>,
    /// Dovecot's `extra_fields` (`userdb_quota_rule=*:storage=1G`, ...),
    /// split on spaces and kept for later use.
    pub extra_fields: Vec<String>,
}

impl User {
    /// The user's home: the `home` field if set, else `base/DOMAIN/USER`
    /// (Postfix's `virtual_mailbox_base` layout), or `base/USER` for a
    /// local-namespace user. The user name is lower-cased there, so that
    /// `Alice` and `alice` (the same user) share one directory.
    pub fn home_or(&self, base: &Path) -> PathBuf {
        if let Some(home) = &self.home {
            return home.clone();
        }
        let name = self.name.to_lowercase();
        match &self.domain {
            Some(domain) => base.join(domain.as_str()).join(name),
            None => base.join(name),
        }
    }

    /// The full name: `name@domain`, or just `name` in the local namespace.
    pub fn full_name(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{}@{domain}", self.name),
            None => self.name.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn user(name: &str, domain: Option<&str>, home: Option<&str>) -> User {
        User {
            name: name.to_owned(),
            domain: domain.map(|d| Domain::parse(d).unwrap()),
            password: String::new(),
            uid: None,
            gid: None,
            home: home.map(PathBuf::from),
            extra_fields: Vec::new(),
        }
    }

    #[test]
    fn home_defaults_under_base() {
        let base = Path::new("/var/mail/vhosts");
        assert_eq!(
            user("Alice", Some("example.org"), None).home_or(base),
            PathBuf::from("/var/mail/vhosts/example.org/alice")
        );
        assert_eq!(
            user("bob", None, None).home_or(base),
            PathBuf::from("/var/mail/vhosts/bob")
        );
        assert_eq!(
            user("bob", None, Some("/home/bob")).home_or(base),
            PathBuf::from("/home/bob")
        );
    }

    #[test]
    fn full_name() {
        assert_eq!(
            user("a", Some("x.org"), None).full_name(),
            "a@x.org".to_owned()
        );
        assert_eq!(user("a", None, None).full_name(), "a".to_owned());
    }
}
