//! What the local delivery agent is configured with, under Postfix's names.

use std::path::PathBuf;
use std::sync::Arc;

use postern_auth::UserDb;
use postern_mail::Domain;

/// The local delivery agent's settings.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// `virtual_mailbox_base`: where users without a `home` in the users
    /// file live, as `BASE/DOMAIN/USER` (or `BASE/USER` for the local
    /// namespace).
    pub virtual_mailbox_base: PathBuf,
    /// `home_mailbox` (`Maildir/`): the mailbox, relative to the home. A
    /// value ending in `/` is a Maildir; anything else would be an mbox
    /// file, which is not supported yet.
    pub home_mailbox: String,
    /// `myhostname`: names the `postmaster` mailbox of last resort.
    pub myhostname: Domain,
    /// `mydestination`: the domains of the one local namespace, where
    /// `user@any-of-them` is the same user.
    pub local_domains: Vec<Domain>,
    /// The users file.
    pub users: Arc<UserDb>,
    /// `recipient_delimiter` (none by default, as in Postfix): with `+`,
    /// `user+ext` is delivered to `user` when there is no `user+ext`.
    pub recipient_delimiter: Option<char>,
}

impl LocalSettings {
    /// Settings with Postfix's defaults: `home_mailbox = Maildir/`,
    /// `mydestination = $myhostname`, no recipient delimiter.
    pub fn new(
        virtual_mailbox_base: impl Into<PathBuf>,
        myhostname: Domain,
        users: Arc<UserDb>,
    ) -> LocalSettings {
        LocalSettings {
            virtual_mailbox_base: virtual_mailbox_base.into(),
            home_mailbox: "Maildir/".to_owned(),
            local_domains: vec![myhostname.clone()],
            myhostname,
            users,
            recipient_delimiter: None,
        }
    }
}
