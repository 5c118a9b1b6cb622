//! What the local delivery agent is configured with, under Postfix's names.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postern_auth::UserDb;
use postern_mail::Domain;

use crate::aliases::AliasMap;

/// The local delivery agent's settings.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// `virtual_mailbox_base`: where users without a `home` in the users
    /// file live, as `BASE/DOMAIN/USER` (or `BASE/USER` for the local
    /// namespace).
    pub virtual_mailbox_base: PathBuf,
    /// `home_mailbox` (`Maildir/`): the mailbox, relative to the home. A
    /// value ending in `/` is a Maildir, anything else an mbox file; empty
    /// means an mbox in `mail_spool_directory`.
    pub home_mailbox: String,
    /// `mail_spool_directory` (`/var/mail`): where mbox files named after
    /// their users live when `home_mailbox` is empty (`DIR/USER` for the
    /// local namespace, `DIR/DOMAIN/USER` for a virtual domain).
    pub mail_spool_directory: PathBuf,
    /// `mailbox_command` (none): an MDA (procmail, dovecot-lda, ...) that
    /// gets the mail of users at local (`mydestination`) domains on its
    /// standard input instead of the mailbox, as in Postfix's local(8).
    pub mailbox_command: Option<String>,
    /// `forward_path` (`$home/.forward${recipient_delimiter}${extension},
    /// $home/.forward`): where a user with a home keeps forwarding
    /// instructions; the first file that exists is used.
    pub forward_path: Vec<String>,
    /// `myhostname`: names the `postmaster` mailbox of last resort.
    pub myhostname: Domain,
    /// `mydestination`: the domains of the one local namespace, where
    /// `user@any-of-them` is the same user.
    pub local_domains: Vec<Domain>,
    /// The users file an agent starts with (see
    /// `LocalDelivery::replace_users`, which a reload calls).
    pub users: Arc<UserDb>,
    /// `recipient_delimiter` (none by default, as in Postfix): with `+`,
    /// `user+ext` is delivered to `user` when there is no `user+ext`.
    pub recipient_delimiter: Option<char>,
    /// `alias_maps`, read into memory: the aliases an agent starts with
    /// (see `LocalDelivery::replace_aliases`).
    pub aliases: Arc<AliasMap>,
    /// `allow_mail_to_files` (`alias, forward`): where `/file` targets are
    /// honoured.
    pub allow_mail_to_files: Allow,
    /// `allow_mail_to_commands` (`alias, forward`): where
    /// `|command` targets are honoured.
    pub allow_mail_to_commands: Allow,
    /// `default_privs` (`nobody`), as uid and gid: who files and
    /// commands of a root-owned aliases file run as. Never root.
    pub default_privs: (u32, u32),
    /// `command_time_limit` (1000s): how long a `|command` may run
    /// before it is killed and the delivery deferred.
    pub command_time_limit: Duration,
    /// `local_recipient_maps` names `unix:passwd.byname`: the system's
    /// accounts receive mail at the local domains, beside the users file,
    /// into their homes, written as their own uid and gid.
    pub system_accounts: bool,
}

/// Where an alias target was found, for the `allow_mail_to_*` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Class {
    /// In an aliases file.
    Alias,
    /// In a `.forward` file.
    Forward,
    /// In an `:include:` file.
    Include,
}

/// A Postfix class list such as `alias, forward, include`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allow {
    /// `alias`.
    pub alias: bool,
    /// `forward`.
    pub forward: bool,
    /// `include`.
    pub include: bool,
}

impl Allow {
    /// Reads `alias, forward, include` (commas or spaces; empty for none).
    pub fn parse(value: &str) -> Result<Allow, String> {
        let mut allow = Allow::default();
        for word in value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
        {
            match word.to_ascii_lowercase().as_str() {
                "alias" => allow.alias = true,
                "forward" => allow.forward = true,
                "include" => allow.include = true,
                other => {
                    return Err(format!("{other:?}: expected alias, forward or include"));
                }
            }
        }
        Ok(allow)
    }

    /// Whether targets of `class` are allowed.
    pub fn allows(&self, class: Class) -> bool {
        match class {
            Class::Alias => self.alias,
            Class::Forward => self.forward,
            Class::Include => self.include,
        }
    }
}

/// The uid and gid of user `name` in /etc/passwd, or of a numeric
/// `uid` / `uid:gid`: how `default_privs` is read.
pub fn lookup_privs(name: &str) -> Option<(u32, u32)> {
    let name = name.trim();
    if let Some((u, g)) = name.split_once(':') {
        return Some((u.parse().ok()?, g.parse().ok()?));
    }
    if let Ok(uid) = name.parse() {
        return Some((uid, uid));
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == name).then_some(())?;
        let _password = f.next()?;
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

/// Postfix's default `forward_path`, item by item.
pub const FORWARD_PATH: [&str; 2] = [
    "$home/.forward${recipient_delimiter}${extension}",
    "$home/.forward",
];

/// nobody's usual uid and gid, when /etc/passwd has no `nobody`.
const NOBODY: (u32, u32) = (65_534, 65_534);

impl LocalSettings {
    /// Settings with Postfix's defaults: `home_mailbox = Maildir/`,
    /// `mydestination = $myhostname`, no recipient delimiter, no aliases,
    /// files and commands from aliases (not from includes), as Postfix.
    pub fn new(
        virtual_mailbox_base: impl Into<PathBuf>,
        myhostname: Domain,
        users: Arc<UserDb>,
    ) -> LocalSettings {
        LocalSettings {
            virtual_mailbox_base: virtual_mailbox_base.into(),
            home_mailbox: "Maildir/".to_owned(),
            mail_spool_directory: PathBuf::from("/var/mail"),
            mailbox_command: None,
            forward_path: FORWARD_PATH.iter().map(|p| (*p).to_owned()).collect(),
            local_domains: vec![myhostname.clone()],
            myhostname,
            users,
            recipient_delimiter: None,
            aliases: Arc::new(AliasMap::new()),
            allow_mail_to_files: Allow {
                alias: true,
                forward: true,
                include: false,
            },
            allow_mail_to_commands: Allow {
                alias: true,
                forward: true,
                include: false,
            },
            default_privs: lookup_privs("nobody").unwrap_or(NOBODY),
            command_time_limit: Duration::from_secs(1000),
            system_accounts: false,
        }
    }
}
