//! The loaded users file and its lookups.

use std::collections::HashMap;
use std::path::Path;

use postern_mail::{Address, Domain};

use crate::passwd_file::{LineError, UsersFileError, parse_line};
use crate::user::User;

/// The key a user is found by: the domain (or the local namespace) and the
/// case-folded local part.
type Key = (Option<Domain>, String);

/// Every user of one users file, indexed for lookup.
///
/// Names are compared case-insensitively, local part included: Dovecot's
/// default `auth_username_format = %Lu` lower-cases the whole login, and
/// Postfix's local(8) folds recipients to lower case too. So `Alice@x.org`
/// and `alice@x.org` are one user, and the file may not list both.
#[derive(Debug, Clone, Default)]
pub struct UserDb {
    /// In file order, for listing.
    users: Vec<User>,
    /// Index into `users`.
    index: HashMap<Key, usize>,
    /// The 1-based line of each user in `users`, for warnings that must
    /// name a user's entry without showing its password.
    lines: Vec<usize>,
}

impl UserDb {
    /// An empty database: nobody has a mailbox.
    pub fn new() -> UserDb {
        UserDb::default()
    }

    /// Reads and parses the users file at `path`. Errors name `path:line`.
    pub fn load(path: &Path) -> Result<UserDb, UsersFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| UsersFileError::io(path, e))?;
        UserDb::parse(&text, &path.display().to_string())
    }

    /// Parses users-file `text`; `origin` names it in errors (a path, or
    /// something like `<config>`).
    pub fn parse(text: &str, origin: &str) -> Result<UserDb, UsersFileError> {
        let mut db = UserDb::new();
        for (n, line) in text.split('\n').enumerate() {
            let line_no = n + 1;
            let err = |error| UsersFileError::Line {
                origin: origin.to_owned(),
                line: line_no,
                error,
            };
            let Some(user) = parse_line(line).map_err(err)? else {
                continue;
            };
            let key = key_of(user.domain.clone(), &user.name);
            if let Some(&i) = db.index.get(&key) {
                return Err(err(LineError::Duplicate {
                    name: user.full_name(),
                    first_line: db.lines.get(i).copied().unwrap_or_default(),
                }));
            }
            db.index.insert(key, db.users.len());
            db.users.push(user);
            db.lines.push(line_no);
        }
        Ok(db)
    }

    /// The user listed as exactly `local@domain` (case-insensitive).
    pub fn lookup(&self, address: &Address) -> Option<&User> {
        self.get(&key_of(Some(address.domain().clone()), address.local()))
    }

    /// The local-namespace user `local_part` (an entry written without
    /// `@domain`), case-insensitive.
    pub fn lookup_local(&self, local_part: &str) -> Option<&User> {
        self.get(&key_of(None, local_part))
    }

    /// The user a SASL login name designates, with the line it is on:
    /// `user@domain` as [`UserDb::lookup`], a name without `@` as
    /// [`UserDb::lookup_local`].
    pub fn lookup_login(&self, login: &str) -> Option<(&User, usize)> {
        let key = match login.rsplit_once('@') {
            Some(_) => {
                let address = Address::parse(login).ok()?;
                key_of(Some(address.domain().clone()), address.local())
            }
            None => key_of(None, login),
        };
        let &i = self.index.get(&key)?;
        Some((
            self.users.get(i)?,
            self.lines.get(i).copied().unwrap_or_default(),
        ))
    }

    /// Every user, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.users.iter()
    }

    /// How many users the file lists.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file lists nobody.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn get(&self, key: &Key) -> Option<&User> {
        self.index.get(key).and_then(|&i| self.users.get(i))
    }
}

fn key_of(domain: Option<Domain>, local: &str) -> Key {
    (domain, local.to_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FILE: &str = "\
# Postern users
alice@example.org:{SHA512-CRYPT}$6$abc:1000:1000::/srv/mail/alice

Bob@Example.ORG:{PLAIN}pw
carol:{PLAIN}pw:1002:1002
";

    #[test]
    fn lookups() {
        let db = UserDb::parse(FILE, "users").unwrap();
        assert_eq!(db.len(), 3);
        let alice = db
            .lookup(&Address::parse("alice@example.org").unwrap())
            .unwrap();
        assert_eq!(alice.uid, Some(1000));
        // Case-insensitive, local part too (%Lu).
        let bob = db
            .lookup(&Address::parse("BOB@example.org").unwrap())
            .unwrap();
        assert_eq!(bob.name, "Bob");
        assert!(
            db.lookup(&Address::parse("carol@example.org").unwrap())
                .is_none()
        );
        assert_eq!(db.lookup_local("Carol").unwrap().uid, Some(1002));
        assert!(db.lookup_local("alice").is_none());
        let (bob, line) = db.lookup_login("bob@EXAMPLE.org").unwrap();
        assert_eq!((bob.name.as_str(), line), ("Bob", 4));
        assert_eq!(db.lookup_login("carol").unwrap().1, 5);
        assert!(db.lookup_login("carol@example.org").is_none());
        assert!(db.lookup_login("bad@@x").is_none());
        let names: Vec<String> = db.iter().map(User::full_name).collect();
        assert_eq!(names, ["alice@example.org", "Bob@example.org", "carol"]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = UserDb::parse("# c\nalice:x\nbad user:x\n", "/etc/postern/users").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/postern/users:3: bad user name \"bad user\": invalid character ' '"
        );
        let e = UserDb::parse("a:x\nb\n", "users").unwrap_err();
        assert_eq!(
            e.to_string(),
            "users:2: missing password field after user \"b\""
        );
        let e = UserDb::parse("a:x:12x\n", "users").unwrap_err();
        assert_eq!(e.to_string(), "users:1: bad uid \"12x\": expected a number");
        let e = UserDb::parse("a@x.org:x\n\nA@X.org:y\n", "users").unwrap_err();
        assert_eq!(
            e.to_string(),
            "users:3: duplicate user \"A@x.org\" (first defined on line 1)"
        );
    }

    #[test]
    fn load_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, FILE).unwrap();
        assert_eq!(UserDb::load(&path).unwrap().len(), 3);
        let missing = dir.path().join("nope");
        let e = UserDb::load(&missing).unwrap_err();
        assert!(e.to_string().starts_with(&missing.display().to_string()));
    }

    #[test]
    fn never_echoes_the_password() {
        let e = UserDb::parse("a:{PLAIN}hunter2:x\n", "users").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }
}
