//! From a recipient address to its user and Maildir: the lookup order of
//! Postfix's local(8) over the users file.
//!
//! For a local (`mydestination`) domain: `local@domain`, then the
//! local-namespace user `local`, then `local@other-local-domain`. For any
//! other domain: exactly `local@domain`. Each with the full local part
//! first, then, with a `recipient_delimiter`, without its `+extension`.
//! Finally `postmaster` at a local domain always exists (RFC 5321 §4.5.1):
//! without a users-file entry it gets a mailbox of its own.

use std::path::PathBuf;

use postern_auth::User;
use postern_mail::{Address, Domain};

use crate::local::LocalDelivery;

/// Who receives mail for an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Owner<'a> {
    /// A users-file entry.
    User(&'a User),
    /// Nobody is listed, but `postmaster` at a local domain must exist.
    Postmaster,
}

impl LocalDelivery {
    /// Who receives mail for `address`, if anyone here does.
    pub fn owner(&self, address: &Address) -> Option<Owner<'_>> {
        let full = address.local();
        let base = address.local_base(self.settings().recipient_delimiter);
        let domain = address.domain();
        if let Some(user) = self
            .lookup(full, domain)
            .or_else(|| (base != full).then(|| self.lookup(base, domain)).flatten())
        {
            return Some(Owner::User(user));
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
            Owner::User(user) => user.home_or(base),
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
        self.settings().local_domains.contains(domain)
    }

    /// One local part at `domain`, in the lookup order above.
    fn lookup(&self, local: &str, domain: &Domain) -> Option<&User> {
        let users = &self.settings().users;
        if let Some(user) = users.lookup(&Address::new(local, domain.clone())) {
            return Some(user);
        }
        if !self.is_local(domain) {
            return None;
        }
        users.lookup_local(local).or_else(|| {
            self.settings()
                .local_domains
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
}
