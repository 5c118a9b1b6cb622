//! Checking credentials against the users file (Dovecot's passdb), and
//! the per-client record of failed logins that slows down and then stops
//! password guessing (Dovecot's `auth_failure_delay`, Postfix's anvil).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use postern_mail::Domain;

use crate::ledger::Ledger;
use crate::sasl::Credentials;
use crate::scheme::{self, SchemeError};
use crate::system::{SystemAccounts, SystemCheck};
use crate::userdb::UserDb;

/// Failures are forgotten this long after a client's last one.
const FAILURE_MEMORY: Duration = Duration::from_secs(600);

/// `pop_before_smtp_timeout`'s default: ten minutes.
pub const DEFAULT_POP_BEFORE_SMTP: Duration = Duration::from_secs(600);

/// Clients remembered at most; past it expired entries are dropped, and if
/// none has expired the ledger starts over, so that a flood of addresses
/// cannot grow it without bound.
const MAX_CLIENTS: usize = 10_000;

/// The delay never grows beyond this many times the base delay.
const MAX_DELAY_FACTOR: u32 = 8;

/// How failed logins are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// The delay after a client's first failure; it doubles with each
    /// further one (up to 8 times), as Dovecot's `auth_failure_delay`.
    pub delay: Duration,
    /// After this many failures from one address (across its connections,
    /// within ten minutes) the session is ended with `421`.
    pub limit: u32,
}

impl Default for FailurePolicy {
    fn default() -> FailurePolicy {
        FailurePolicy {
            delay: Duration::from_secs(1),
            limit: 5,
        }
    }
}

/// The result of one check.
#[derive(Debug)]
#[non_exhaustive]
pub enum Check {
    /// The password is right: the canonical login name (as the users file
    /// writes it, `name@domain`).
    Success(String),
    /// No such user, a wrong password, a user without a password, or a
    /// proxy login (an authzid other than the user).
    Failure,
    /// The user's password field cannot be checked (unknown scheme,
    /// malformed hash): a failure for the client, a warning for the
    /// operator naming the user and the line, never the hash.
    Broken {
        /// The user, as the file writes it.
        user: String,
        /// Its line in the users file.
        line: usize,
        /// What is wrong.
        error: SchemeError,
    },
}

/// What a failure costs the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Penalty {
    /// Wait this long before answering.
    pub delay: Duration,
    /// The client reached the limit: disconnect it.
    pub disconnect: bool,
}

/// The users file as a password database, with the failure ledger.
#[derive(Debug)]
pub struct Authenticator {
    /// The users file in force: swapped whole by `postern reload`
    /// ([`Authenticator::replace_users`]); a check reads one version.
    users: RwLock<Arc<UserDb>>,
    /// How failures are answered: swapped by a reload
    /// ([`Authenticator::replace_failure_policy`]).
    policy: RwLock<FailurePolicy>,
    /// Failures per client address and when the last one was.
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// Recent POP3/IMAP logins, for POP/IMAP-before-SMTP.
    ledger: Arc<Ledger>,
    /// `[auth] system_accounts`: logins the users file does not know are
    /// checked against the system's accounts; their local domains are
    /// swapped by a reload ([`Authenticator::replace_local_domains`]).
    system: RwLock<Option<Arc<SystemAccounts>>>,
}

impl Authenticator {
    /// An authenticator over `users`.
    pub fn new(users: Arc<UserDb>, policy: FailurePolicy) -> Authenticator {
        Authenticator {
            users: RwLock::new(users),
            policy: RwLock::new(policy),
            failures: Mutex::new(HashMap::new()),
            ledger: Arc::new(Ledger::new(DEFAULT_POP_BEFORE_SMTP)),
            system: RwLock::new(None),
        }
    }

    /// This authenticator with the system's accounts behind the users
    /// file (`[auth] system_accounts = true`).
    pub fn with_system_accounts(self, system: SystemAccounts) -> Authenticator {
        Authenticator {
            system: RwLock::new(Some(Arc::new(system))),
            ..self
        }
    }

    /// This authenticator with `ledger` for its mailbox logins.
    pub fn with_ledger(self, ledger: Arc<Ledger>) -> Authenticator {
        Authenticator { ledger, ..self }
    }

    /// The POP/IMAP-before-SMTP ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// A POP3 or IMAP login from `client` succeeded: forgets its failures
    /// and records it in the ledger, so that it may relay for a while.
    pub fn mailbox_login(&self, client: IpAddr) {
        self.succeeded(client);
        self.ledger.record(client);
    }

    /// Makes `users` the users file logins are checked against (a
    /// reload); checks already running finish on the old one.
    pub fn replace_users(&self, users: Arc<UserDb>) {
        *self.users.write().unwrap_or_else(PoisonError::into_inner) = users;
    }

    /// Makes `policy` the answer to failures from now on
    /// (`auth_failure_delay` and `auth_failure_limit`, at a reload); the
    /// failures counted so far still count.
    pub fn replace_failure_policy(&self, policy: FailurePolicy) {
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = policy;
    }

    /// Makes `domains` the domains at which `name@domain` logs in as the
    /// system account `name` (`mydestination`, at a reload); nothing when
    /// system accounts are off.
    pub fn replace_local_domains(&self, domains: Vec<Domain>) {
        let mut system = self.system.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = system.as_ref() {
            *system = Some(Arc::new(SystemAccounts {
                local_domains: domains,
                ..SystemAccounts::clone(current)
            }));
        }
    }

    /// Checks `credentials`. Slow on purpose (the hashes are): call it off
    /// the async workers (`spawn_blocking`).
    pub fn check(&self, credentials: &Credentials) -> Check {
        if credentials.authzid.is_some() {
            return Check::Failure;
        }
        // The lock is held only to take the current version.
        let users = Arc::clone(&self.users.read().unwrap_or_else(PoisonError::into_inner));
        let Some((user, line)) = users.lookup_login(&credentials.username) else {
            return self.check_system(credentials);
        };
        if user.password.is_empty() {
            return Check::Failure;
        }
        match scheme::verify(&user.password, &credentials.password) {
            Ok(true) => Check::Success(user.full_name()),
            Ok(false) => Check::Failure,
            Err(error) => Check::Broken {
                user: user.full_name(),
                line,
                error,
            },
        }
    }

    /// A login the users file does not know, against the system's
    /// accounts when they are on. Locked and expired accounts, root, and
    /// an unreadable shadow file are failures like a wrong password: the
    /// client learns nothing more.
    fn check_system(&self, credentials: &Credentials) -> Check {
        let system = self
            .system
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(system) = system else {
            return Check::Failure;
        };
        match system.check(&credentials.username, &credentials.password) {
            SystemCheck::Success(name) => Check::Success(name),
            _ => Check::Failure,
        }
    }

    /// Records a failure from `client` and says what it costs.
    pub fn failed(&self, client: IpAddr) -> Penalty {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_CLIENTS && !map.contains_key(&client) {
            map.retain(|_, (_, last)| now.duration_since(*last) < FAILURE_MEMORY);
            if map.len() >= MAX_CLIENTS {
                map.clear();
            }
        }
        let entry = map.entry(client).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_MEMORY {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let count = entry.0;
        drop(map);
        let policy = *self.policy.read().unwrap_or_else(PoisonError::into_inner);
        let factor = 1u32
            .checked_shl(count.saturating_sub(1))
            .unwrap_or(MAX_DELAY_FACTOR)
            .min(MAX_DELAY_FACTOR);
        Penalty {
            delay: policy.delay.saturating_mul(factor),
            disconnect: count >= policy.limit,
        }
    }

    /// Forgets `client`'s failures after a successful login.
    pub fn succeeded(&self, client: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&client);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn creds(user: &str, pass: &str) -> Credentials {
        Credentials {
            authzid: None,
            username: user.to_owned(),
            password: pass.to_owned(),
        }
    }

    fn auth(limit: u32) -> Authenticator {
        let text = "alice@example.org:{PLAIN}secret\n\
                    carol:{PLAIN}pw\n\
                    dave@example.org:{MD5}0123abcd\n\
                    erin@example.org:\n";
        let users = Arc::new(UserDb::parse(text, "users").unwrap());
        Authenticator::new(
            users,
            FailurePolicy {
                delay: Duration::from_secs(1),
                limit,
            },
        )
    }

    #[test]
    fn replaced_users_take_effect() {
        let a = auth(3);
        assert!(matches!(a.check(&creds("carol", "pw")), Check::Success(_)));
        let users = UserDb::parse("carol:{PLAIN}new\n", "users").unwrap();
        a.replace_users(Arc::new(users));
        assert!(matches!(a.check(&creds("carol", "pw")), Check::Failure));
        assert!(matches!(a.check(&creds("carol", "new")), Check::Success(_)));
        assert!(matches!(
            a.check(&creds("alice@example.org", "secret")),
            Check::Failure
        ));
    }

    #[test]
    fn checks() {
        let a = auth(3);
        assert!(
            matches!(a.check(&creds("Alice@Example.org", "secret")), Check::Success(n) if n == "alice@example.org")
        );
        assert!(matches!(a.check(&creds("carol", "pw")), Check::Success(n) if n == "carol"));
        assert!(matches!(
            a.check(&creds("alice@example.org", "nope")),
            Check::Failure
        ));
        assert!(matches!(
            a.check(&creds("nobody@example.org", "x")),
            Check::Failure
        ));
        assert!(matches!(
            a.check(&creds("erin@example.org", "")),
            Check::Failure
        ));
        let mut proxy = creds("alice@example.org", "secret");
        proxy.authzid = Some("carol".to_owned());
        assert!(matches!(a.check(&proxy), Check::Failure));
        match a.check(&creds("dave@example.org", "x")) {
            Check::Broken { user, line, error } => {
                assert_eq!((user.as_str(), line), ("dave@example.org", 3));
                assert_eq!(error, SchemeError::Unknown("MD5".to_owned()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn system_accounts_behind_the_users_file() {
        let dir = tempfile::tempdir().unwrap();
        // sha256-crypt of `secret`, from libxcrypt.
        let hash = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
        std::fs::write(
            dir.path().join("passwd"),
            "carol:x:1000:1000::/home/carol:/bin/sh\nsam:x:1001:1001::/home/sam:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("shadow"),
            format!("carol:{hash}:20000:0:99999:7:::\nsam:{hash}:20000:0:99999:7:::\n"),
        )
        .unwrap();
        let system = SystemAccounts {
            passwd: dir.path().join("passwd"),
            shadow: dir.path().join("shadow"),
            local_domains: Vec::new(),
        };
        assert!(matches!(
            auth(3).check(&creds("sam", "secret")),
            Check::Failure
        ));
        let a = auth(3).with_system_accounts(system);
        assert!(matches!(a.check(&creds("Sam", "secret")), Check::Success(n) if n == "sam"));
        assert!(matches!(a.check(&creds("sam", "nope")), Check::Failure));
        // The users file answers first: carol's password there is `pw`.
        assert!(matches!(a.check(&creds("carol", "pw")), Check::Success(_)));
        assert!(matches!(a.check(&creds("carol", "secret")), Check::Failure));
        // `sam@DOMAIN` is sam only at a local domain; a reload puts the
        // new mydestination in force.
        let at = creds("sam@example.org", "secret");
        assert!(matches!(a.check(&at), Check::Failure));
        a.replace_local_domains(vec![Domain::parse("example.org").unwrap()]);
        assert!(matches!(a.check(&at), Check::Success(n) if n == "sam"));
        // Without system accounts there is nothing to change.
        let plain = auth(3);
        plain.replace_local_domains(vec![Domain::parse("example.org").unwrap()]);
        assert!(matches!(plain.check(&at), Check::Failure));
    }

    #[test]
    fn failures_grow_then_disconnect() {
        let a = auth(4);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let secs = |p: Penalty| (p.delay.as_secs(), p.disconnect);
        assert_eq!(secs(a.failed(ip)), (1, false));
        assert_eq!(secs(a.failed(ip)), (2, false));
        assert_eq!(secs(a.failed(other)), (1, false));
        assert_eq!(secs(a.failed(ip)), (4, false));
        assert_eq!(secs(a.failed(ip)), (8, true));
        assert_eq!(secs(a.failed(ip)), (8, true));
        a.succeeded(ip);
        assert_eq!(secs(a.failed(ip)), (1, false));
    }

    /// A reload's new delay and limit apply to the next failure, counted
    /// with those before it.
    #[test]
    fn a_replaced_failure_policy_applies_at_once() {
        let a = auth(4);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let secs = |p: Penalty| (p.delay.as_secs(), p.disconnect);
        assert_eq!(secs(a.failed(ip)), (1, false));
        a.replace_failure_policy(FailurePolicy {
            delay: Duration::from_secs(3),
            limit: 2,
        });
        assert_eq!(secs(a.failed(ip)), (6, true));
    }
}
