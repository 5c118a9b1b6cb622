//! From a recipient address to its user and Maildir: the lookup order of
//! Postfix's local(8) over the users file.
//!
//! For a local (`mydestination`) domain: `local@domain`, then the
//! local-namespace user `local`, then `local@other-local-domain`. For any
//! other domain: exactly `local@domain`. Each with the full local part
//! first, then, with a `recipient_delimiter`, without its `+extension`.
//! Then, at a local domain and with `unix:passwd.byname` in
//! `local_recipient_maps`, the system account of that name (not root's).
//! Finally `postmaster` at a local domain always exists (RFC 5321 §4.5.1):
//! without a users-file entry it gets a mailbox of its own.
//!
//! The users file is the one in force (`Users`): `postern reload`
//! swaps it whole, and each lookup reads one version of it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use postern_auth::{User, UserDb};
use postern_mail::{Address, Domain};

use crate::local::LocalDelivery;

/// Who receives mail for an address. The user is a copy of the entry, so
/// that a reload swapping the users file under a delivery in progress
/// changes nothing for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Owner {
    /// A users-file entry.
    User(User),
    /// Nobody is listed, but `postmaster` at a local domain must exist.
    Postmaster,
    /// A system account (`local_recipient_maps` with
    /// `unix:passwd.byname`), as a user with its uid, gid and home: its
    /// mail is written as that uid, never as root.
    Account(User),
}

impl Owner {
    /// The user, for a users-file entry or a system account.
    pub fn user(&self) -> Option<&User> {
        match self {
            Owner::User(u) | Owner::Account(u) => Some(u),
            Owner::Postmaster => None,
        }
    }
}

/// One version of the users file, with the domains its entries name (the
/// virtual domains it adds, which every RCPT asks about).
#[derive(Debug)]
pub(crate) struct Users {
    pub(crate) db: Arc<UserDb>,
    domains: BTreeSet<Domain>,
}

impl Users {
    pub(crate) fn new(db: Arc<UserDb>) -> Users {
        let domains = db.iter().filter_map(|u| u.domain.clone()).collect();
        Users { db, domains }
    }
}

impl LocalDelivery {
    /// Who receives mail for `address`, if anyone here does.
    pub fn owner(&self, address: &Address) -> Option<Owner> {
        let users = self.users.load();
        let full = address.local();
        let base = address.local_base(self.settings().recipient_delimiter);
        let domain = address.domain();
        if let Some(user) = self.lookup(&users.db, full, domain).or_else(|| {
            (base != full)
                .then(|| self.lookup(&users.db, base, domain))
                .flatten()
        }) {
            return Some(Owner::User(user.clone()));
        }
        if let Some(account) = self
            .account(full, domain)
            .or_else(|| (base != full).then(|| self.account(base, domain)).flatten())
        {
            return Some(Owner::Account(account));
        }
        (self.is_local(domain) && base.eq_ignore_ascii_case("postmaster"))
            .then_some(Owner::Postmaster)
    }

    /// The Maildir mail for `address` goes to: the owner's home
    /// (`User::home_or(virtual_mailbox_base)`) joined with `home_mailbox`.
    /// The `postmaster` of last resort lives at
    /// `virtual_mailbox_base/MYHOSTNAME/postmaster`, where a users-file
    /// entry `postmaster@MYHOSTNAME` without a home would live too.
    pub fn resolve(&self, address: &Address) -> Option<PathBuf> {
        let settings = self.settings();
        let base = &settings.virtual_mailbox_base;
        let home = match self.owner(address)? {
            Owner::User(user) | Owner::Account(user) => user.home_or(base),
            Owner::Postmaster => base.join(settings.myhostname.as_str()).join("postmaster"),
        };
        Some(home.join(&settings.home_mailbox))
    }

    /// Whether `address` has a mailbox here: what the SMTP server's
    /// `Directory::recipient_exists` answers for local and virtual domains.
    /// An alias name at a local domain exists too.
    pub fn exists(&self, address: &Address) -> bool {
        self.owner(address).is_some() || self.is_alias(address)
    }

    /// Whether `domain` is one of the local (`mydestination`) domains.
    pub fn is_local(&self, domain: &Domain) -> bool {
        self.local_domains.load().contains(domain)
    }

    /// Whether an entry of the users file in force is at `domain`: such a
    /// domain is a virtual mailbox domain of this server, as the SMTP
    /// server's domain classes and the router count it.
    pub fn has_users_at(&self, domain: &Domain) -> bool {
        self.users.load().domains.contains(domain)
    }

    /// The system account `local` at a local domain, when
    /// `local_recipient_maps` names `unix:passwd.byname`. Names are
    /// folded to lower case first, as Postfix's local(8) does; root gets
    /// no mail of its own (Postfix's local(8) refuses to deliver as root:
    /// an alias sends it to a person).
    fn account(&self, local: &str, domain: &Domain) -> Option<User> {
        if !self.settings().system_accounts || !self.is_local(domain) {
            return None;
        }
        let account = postern_tables::unix::account(&local.to_lowercase())?;
        if account.uid == 0 {
            return None;
        }
        Some(User {
            name: account.name,
            domain: None,
            password: String::new(),
            uid: Some(account.uid),
            gid: Some(account.gid),
            home: Some(account.home),
            extra_fields: Vec::new(),
        })
    }

    /// One local part at `domain`, in the lookup order above.
    fn lookup<'u>(&self, users: &'u UserDb, local: &str, domain: &Domain) -> Option<&'u User> {
        if let Some(user) = users.lookup(&Address::new(local, domain.clone())) {
            return Some(user);
        }
        if !self.is_local(domain) {
            return None;
        }
        users.lookup_local(local).or_else(|| {
            self.local_domains
                .load()
                .iter()
                .filter(|d| *d != domain)
                .find_map(|d| users.lookup(&Address::new(local, d.clone())))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use postern_auth::UserDb;

    use super::*;
    use crate::settings::LocalSettings;

    const USERS: &str = "\
alice@example.org:{PLAIN}x
bob:{PLAIN}x
carol@mail.example.com:{PLAIN}x
dave@example.org:{PLAIN}x::::/home/dave
dave+lists@example.org:{PLAIN}x
";

    fn agent(delimiter: Option<char>) -> LocalDelivery {
        let users = Arc::new(UserDb::parse(USERS, "users").unwrap());
        let mut s = LocalSettings::new(
            "/var/mail",
            Domain::parse("mail.example.com").unwrap(),
            users,
        );
        s.local_domains.push(Domain::parse("localhost").unwrap());
        s.recipient_delimiter = delimiter;
        LocalDelivery::new(s)
    }

    fn resolve(agent: &LocalDelivery, address: &str) -> Option<PathBuf> {
        agent.resolve(&Address::parse(address).unwrap())
    }

    #[test]
    fn virtual_domain_is_exact() {
        let a = agent(None);
        assert_eq!(
            resolve(&a, "Alice@Example.org").unwrap(),
            Path::new("/var/mail/example.org/alice/Maildir/")
        );
        // bob is a local-namespace user: not at a non-local domain.
        assert_eq!(resolve(&a, "bob@example.org"), None);
        assert_eq!(resolve(&a, "postmaster@example.org"), None);
    }

    #[test]
    fn local_domains_share_one_namespace() {
        let a = agent(None);
        assert_eq!(
            resolve(&a, "bob@mail.example.com").unwrap(),
            Path::new("/var/mail/bob/Maildir/")
        );
        assert_eq!(
            resolve(&a, "bob@localhost").unwrap(),
            Path::new("/var/mail/bob/Maildir/")
        );
        // carol is listed at one local domain, and found at the other.
        assert_eq!(
            resolve(&a, "carol@localhost").unwrap(),
            Path::new("/var/mail/mail.example.com/carol/Maildir/")
        );
    }

    #[test]
    fn home_from_the_users_file() {
        assert_eq!(
            resolve(&agent(None), "dave@example.org").unwrap(),
            Path::new("/home/dave/Maildir/")
        );
    }

    #[test]
    fn delimiter_falls_back_to_the_user() {
        let a = agent(Some('+'));
        assert_eq!(
            resolve(&a, "alice+news@example.org").unwrap(),
            Path::new("/var/mail/example.org/alice/Maildir/")
        );
        // An entry for the full name wins.
        assert_eq!(
            resolve(&a, "dave+lists@example.org").unwrap(),
            Path::new("/var/mail/example.org/dave+lists/Maildir/")
        );
        assert_eq!(resolve(&agent(None), "alice+news@example.org"), None);
    }

    #[test]
    fn postmaster_of_last_resort() {
        let a = agent(Some('+'));
        for address in ["postmaster@mail.example.com", "PostMaster@localhost"] {
            assert_eq!(
                resolve(&a, address).unwrap(),
                Path::new("/var/mail/mail.example.com/postmaster/Maildir/")
            );
            assert!(a.exists(&Address::parse(address).unwrap()));
        }
        assert!(!a.exists(&Address::parse("nobody@localhost").unwrap()));
    }

    #[test]
    fn a_replaced_users_file_is_seen_at_once() {
        let a = agent(None);
        let erin = Address::parse("erin@example.net").unwrap();
        assert!(!a.exists(&erin));
        assert!(!a.has_users_at(erin.domain()));
        let held = a.owner(&Address::parse("alice@example.org").unwrap());
        a.replace_users(Arc::new(
            UserDb::parse("erin@example.net:{PLAIN}x\n", "users").unwrap(),
        ));
        assert_eq!(
            resolve(&a, "erin@example.net").unwrap(),
            Path::new("/var/mail/example.net/erin/Maildir/")
        );
        assert!(a.has_users_at(erin.domain()));
        assert_eq!(resolve(&a, "alice@example.org"), None);
        assert!(!a.has_users_at(&Domain::parse("example.org").unwrap()));
        // What a delivery in progress looked up stays as it was.
        assert!(matches!(held, Some(Owner::User(u)) if u.name == "alice"));
        // The postmaster of last resort does not depend on the file.
        assert!(a.exists(&Address::parse("postmaster@localhost").unwrap()));
    }

    #[test]
    fn system_accounts_at_local_domains_only_when_asked() {
        let nobody = Address::parse("Nobody+x@localhost").unwrap();
        let mut s = LocalSettings::new(
            "/var/mail",
            Domain::parse("localhost").unwrap(),
            Arc::new(UserDb::parse(USERS, "users").unwrap()),
        );
        s.recipient_delimiter = Some('+');
        assert_eq!(LocalDelivery::new(s.clone()).owner(&nobody), None);
        s.system_accounts = true;
        let a = LocalDelivery::new(s);
        let Some(Owner::Account(user)) = a.owner(&nobody) else {
            panic!("nobody is a system account")
        };
        assert_eq!((user.name.as_str(), user.uid.is_some()), ("nobody", true));
        // The users file first; root never; other domains never.
        assert!(matches!(
            a.owner(&Address::parse("bob@localhost").unwrap()),
            Some(Owner::User(_))
        ));
        assert_eq!(a.owner(&Address::parse("root@localhost").unwrap()), None);
        assert_eq!(
            a.owner(&Address::parse("nobody@example.org").unwrap()),
            None
        );
    }
}
