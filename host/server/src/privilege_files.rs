//! What the root helper reads for a daemon that has dropped to
//! `mail_owner` ([`crate::privilege`]), and the policy it refreshes on a
//! reload; the checks and the threat model are in
//! [`postern_privsep::files`].
//!
//! - `postern reload` of files only root may read (a TLS key mode 0600,
//!   the users file, an aliases file, a table): the daemon's loaders read
//!   through [`postern_privsep::read_file_or_ask`], and the helper answers
//!   for the files the config names ([`named_files`]), as the helper
//!   reads that config itself ([`RootConfig`]) from the path it was
//!   started with. Postfix's master stays root and its children read
//!   their keys before they drop.
//! - A `.forward` in a home `mail_owner` may not enter (mode 0700), or one
//!   it may see but not read (mode 0600 in a home of mode 0755), is read
//!   by the helper as its owner (Postfix's local(8) reads it as the
//!   recipient), so forwarding does not silently stop.
//! - After a reload the daemon asks the helper to refresh its policy
//!   ([`refresh_helper`]): users-file uids and homes, the mail roots and
//!   the session cap ([`session_slots`]) of the new config, read by the
//!   helper from the root-owned file, so that a user added with a uid
//!   gets mail.
//! - A daemon started on the embedded default (no `--config`, no
//!   /etc/postern/postern.toml) reloads from
//!   [`crate::config::DEFAULT_PATH`] once the operator writes it; its
//!   helper follows the same file ([`RootConfig::default`]), under the
//!   same trust rules as a file named at start.
//!
//! What this does not do: read files for `postern check` (run as root,
//! it reads them itself).

use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use postern_auth::UserDb;
use postern_privsep::files::Configuration;
use postern_privsep::{Policy, Request, Response};

use crate::config::Config;

/// The helper's policy for `config` and its users file: mail roots
/// (`virtual_mailbox_base`, `mail_spool_directory`), the uids below
/// UID_MIN that receive mail (`default_privs` and users-file uids), the
/// users-file homes, the session cap and the longest frame. `first_uid`
/// stays the caller's.
pub fn helper_policy(config: &Config, users: &UserDb) -> std::io::Result<Policy> {
    let m = &config.main;
    let mut policy = Policy {
        max_sessions: session_slots(config),
        max_frame: max_frame(m.message_size_limit),
        ..Policy::new()
    };
    for root in [&m.virtual_mailbox_base, &m.mail_spool_directory] {
        policy.roots.push(std::path::absolute(root)?);
    }
    policy.uids.push(m.default_privs.0);
    for user in users.iter() {
        if let Some(uid) = user.uid {
            let home = user.home_or(&m.virtual_mailbox_base);
            policy.uids.push(uid);
            policy.homes.push((uid, std::path::absolute(home)?));
        }
    }
    Ok(policy)
}

/// The longest frame the helper reads for `message_size_limit`: a whole
/// message and its trace headers, with room to spare (0, no limit: the
/// helper's own cap).
fn max_frame(message_size_limit: u64) -> usize {
    match message_size_limit {
        0 => postern_privsep::MAX_FRAME,
        n => usize::try_from(n.saturating_mul(2).saturating_add(1 << 20)).unwrap_or(usize::MAX),
    }
}

/// The POP3 and IMAP session slots the daemon opens for `config`, the
/// most session processes its logins can need at once: each address of a
/// `pop3`, `pop3s`, `imap` or `imaps` service has `default_process_limit`
/// slots (Postfix's maxproc, Dovecot's `process_limit`; daemon.rs). The
/// larger of the service's own value and main.cf's, so that the helper
/// never refuses a session the daemon let in.
pub fn session_slots(config: &Config) -> usize {
    let slots = |limit: u64| usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
    config
        .services
        .iter()
        .filter(|s| matches!(s.name.as_str(), "pop3" | "pop3s" | "imap" | "imaps"))
        .map(|s| {
            let each =
                slots(s.main.default_process_limit).max(slots(config.main.default_process_limit));
            each.saturating_mul(s.listen.len())
        })
        .fold(0, usize::saturating_add)
}

/// Every file `config` names that a reload reads again, or that the
/// daemon may read later: the TLS certificate and key, the users file,
/// `alias_maps`, the `[tables]` (and tables named in restriction
/// lists), `transport_maps`, `smtp_sasl_password_maps` and
/// `smtp_tls_CAfile`; absolute, as the daemon asks for them.
pub fn named_files(config: &Config) -> Vec<PathBuf> {
    let m = &config.main;
    let mut files: Vec<PathBuf> = Vec::new();
    files.extend(m.smtpd_tls_cert_file.iter().cloned());
    files.extend(m.smtpd_tls_key_file.iter().cloned());
    files.extend(config.users_file.iter().cloned());
    for item in &m.alias_maps {
        files.push(item.clone());
        files.push(postern_delivery::aliases::map_path(&item.to_string_lossy()));
    }
    files.extend(config.policy.tables.iter().map(|t| t.spec.path.clone()));
    let smtp = &m.smtp;
    for table in smtp
        .transport_maps
        .iter()
        .chain(&smtp.smtp_sasl_password_maps)
    {
        files.push(table.path.clone());
    }
    files.extend(smtp.smtp_tls_ca_file.iter().cloned());
    files
        .into_iter()
        .filter_map(|f| std::path::absolute(f).ok())
        .collect()
}

/// The config file the helper was started with, loaded by the daemon's
/// own loader: what [`postern_privsep::files`] trusts (root's, not
/// writable by others) and answers from.
#[derive(Debug, Clone)]
pub struct RootConfig {
    /// The config file; `None`: the embedded default, or [`Self::default`]
    /// once it exists.
    pub path: Option<PathBuf>,
    /// For a daemon started without a config file: the file its reload
    /// reads once it exists ([`crate::config::DEFAULT_PATH`], as
    /// control.rs's reload looks for it), else the embedded default.
    pub default: Option<PathBuf>,
    /// useradd's UID_MIN, as at the helper's start.
    pub first_uid: u32,
}

impl Configuration for RootConfig {
    fn path(&self) -> Option<&Path> {
        match (&self.path, &self.default) {
            (Some(path), _) => Some(path),
            // The daemon's own test (`Path::exists`), at each request.
            (None, Some(default)) if default.exists() => Some(default),
            _ => None,
        }
    }

    fn files(&self) -> Result<Vec<PathBuf>, String> {
        Ok(named_files(&self.config()?))
    }

    fn policy(&self) -> Result<Policy, String> {
        let config = self.config()?;
        // Root reads it directly. Its errors may quote a line: the daemon
        // reports them itself when it loads the file.
        let users = match &config.users_file {
            Some(path) => UserDb::load(path)
                .map_err(|_| format!("the users file {} does not load", path.display()))?,
            None => UserDb::new(),
        };
        let policy = helper_policy(&config, &users).map_err(|e| e.to_string())?;
        Ok(Policy {
            first_uid: self.first_uid,
            ..policy
        })
    }
}

impl RootConfig {
    /// The config, loaded now. Its errors are reported by the daemon,
    /// which loads the same file (a line of it could be quoted).
    fn config(&self) -> Result<Config, String> {
        match self.path() {
            Some(path) => {
                // Checked again here: a default file may have appeared
                // since the caller's check found none.
                postern_privsep::files::trusted_file(path)?;
                Config::load(path)
            }
            None => Config::embedded(),
        }
        .map_err(|e| format!("the config file does not load ({} errors)", e.0.len()))
    }
}

/// The helper's side of the file requests and of the refresh.
#[derive(Debug)]
pub struct HelperFiles {
    config: RootConfig,
    /// The policy in force, for a `.forward`'s home (the serve loop
    /// checks requests against its own copy, refreshed together).
    policy: RwLock<Policy>,
}

impl HelperFiles {
    /// Answers from `config`, starting with `policy`.
    pub fn new(config: RootConfig, policy: Policy) -> HelperFiles {
        HelperFiles {
            config,
            policy: RwLock::new(policy),
        }
    }

    /// Carries out a [`Request::ReadFile`] or [`Request::Forward`]
    /// (already checked by the policy); anything else is refused.
    pub fn read(&self, request: Request) -> Response {
        match request {
            Request::ReadFile { path } => postern_privsep::files::read_named(&self.config, &path),
            Request::Forward { uid, name } => {
                let found = self
                    .policy
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .forward(uid, &name);
                let (path, ids) = match found {
                    Ok(found) => found,
                    Err(why) => return Response::Refused(why),
                };
                // As the user: the kernel decides what they may read.
                let read = postern_auth::owner::as_owner(Some((ids.uid, ids.gid)), move || {
                    Ok(postern_privsep::files::read_forward(&path, ids.uid))
                });
                read.unwrap_or_else(|e| Response::Failed(e.to_string()))
            }
            _ => Response::Refused("not a file request".to_owned()),
        }
    }

    /// How many session processes may run now: the policy's cap, refreshed
    /// with it.
    pub fn max_sessions(&self) -> usize {
        self.policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .max_sessions
    }

    /// The policy re-read from the trusted config ([`Request::Refresh`]).
    pub fn refresh(&self) -> Result<Policy, String> {
        let policy = postern_privsep::files::refresh(&self.config)?;
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = policy.clone();
        Ok(policy)
    }
}

/// After a successful reload: the helper, if there is one, takes its
/// policy from the reloaded config. A failure is logged; the daemon's
/// new set stays in service, and deliveries the old policy refuses are
/// deferred until a reload that refreshes it. Blocking.
pub fn refresh_helper() {
    let Some(client) = postern_privsep::installed() else {
        return;
    };
    match client.call(&Request::Refresh) {
        Ok(Response::Done) => {
            tracing::info!(target: "postern/master", "reload: the privileged helper's policy is refreshed");
        }
        Ok(other) => {
            tracing::warn!(target: "postern/master", "reload: the privileged helper kept its policy: {other:?}");
        }
        Err(e) => {
            tracing::warn!(target: "postern/master", "reload: cannot refresh the privileged helper: {e}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{Machine, Source};

    fn config(text: &str) -> Config {
        Config::parse(Source::named("t.toml", text), Machine::detect(), false).unwrap()
    }

    #[test]
    fn the_files_a_config_names_are_those_a_reload_reads() {
        let c = config(
            "smtpd_tls_cert_file = \"/etc/postern/cert.pem\"\n\
             smtpd_tls_key_file = \"/etc/postern/key.pem\"\n\
             alias_maps = \"hash:/etc/aliases\"\n\
             smtp_sasl_password_maps = \"hash:/etc/postern/sasl\"\n\
             [auth]\n\
             users_file = \"/etc/postern/users\"\n\
             [tables.known]\n\
             type = \"hash\"\n\
             path = \"/etc/postern/known\"\n",
        );
        let files = named_files(&c);
        for f in [
            "/etc/postern/cert.pem",
            "/etc/postern/key.pem",
            "/etc/aliases",
            "/etc/postern/sasl",
            "/etc/postern/users",
            "/etc/postern/known",
        ] {
            assert!(files.contains(&PathBuf::from(f)), "{f}: {files:?}");
        }
        assert!(!files.contains(&PathBuf::from("/etc/shadow")));
    }

    #[test]
    fn the_helpers_policy_follows_the_users_file_and_the_mail_roots() {
        let c = config(
            "virtual_mailbox_base = \"/srv/mail\"\n\
             mail_spool_directory = \"/var/mail\"\n",
        );
        let users = UserDb::parse(
            "dave@example.org:{PLAIN}x:777:777::\n\
             erin@example.org:{PLAIN}x:778:778::/home/erin\n\
             virtual@example.org:{PLAIN}x::::\n",
            "users",
        )
        .unwrap();
        let p = helper_policy(&c, &users).unwrap();
        assert_eq!(p.roots, [Path::new("/srv/mail"), Path::new("/var/mail")]);
        assert_eq!(p.uids, [65_534, 777, 778]);
        assert_eq!(
            p.homes,
            [
                (777, PathBuf::from("/srv/mail/example.org/dave")),
                (778, PathBuf::from("/home/erin")),
            ]
        );
    }
    #[test]
    fn the_session_cap_is_the_pop3_and_imap_slots() {
        let c = config(
            "inet_interfaces = \"127.0.0.1, 127.0.0.2\"\n\
             default_process_limit = 7\n\
             [[service]]\nname = \"smtp\"\nlisten = \"127.0.0.1:2525\"\n\
             [[service]]\nname = \"imap\"\nlisten = \"1143\"\n\
             default_process_limit = 20\n\
             [[service]]\nname = \"pop3\"\nlisten = \"127.0.0.1:1110\"\n\
             [[service]]\nname = \"pop3\"\nlisten = \"127.0.0.1:1111\"\n\
             default_process_limit = 2\n",
        );
        let imap = c.services.iter().find(|s| s.name == "imap").unwrap();
        assert_eq!(imap.listen.len(), 2);
        // imap: 20 on each of 2 addresses; pop3: 7, and 7 again (a
        // service's lower value never goes below main.cf's); smtp: none.
        assert_eq!(session_slots(&c), 40 + 7 + 7);
        let users = UserDb::new();
        assert_eq!(helper_policy(&c, &users).unwrap().max_sessions, 54);
        // No POP3 or IMAP service: no session to start.
        assert_eq!(session_slots(&config("")), 0);
    }

    #[test]
    fn a_helper_without_a_config_follows_the_default_file_once_written() {
        use std::os::unix::fs::PermissionsExt;
        if !rustix::process::geteuid().is_root() {
            // Nothing is trusted but root's files: the test needs root.
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let write = |name: &str, text: &str, mode: u32| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        let key = write("key.pem", "KEY", 0o600);
        let default = dir.join("postern.toml");
        let root = RootConfig {
            path: None,
            default: Some(default.clone()),
            first_uid: 1000,
        };
        let start = root.policy().unwrap();
        let files = HelperFiles::new(root, start.clone());
        let read = |path: &Path| {
            files.read(Request::ReadFile {
                path: path.to_owned(),
            })
        };
        // The embedded default: the key is no file it names.
        assert!(
            matches!(read(&key), Response::Refused(w) if w.contains("not a file the configuration names"))
        );
        assert_eq!(files.refresh().unwrap(), start);
        // The operator writes the default file, root's: the helper
        // follows it as the daemon's reload does.
        let text = format!(
            "smtpd_tls_key_file = \"{}\"\n\
             virtual_mailbox_base = \"/srv/postern-test-mail\"\n\
             default_process_limit = 3\n\
             message_size_limit = 1000000\n\
             [[service]]\nname = \"imap\"\nlisten = \"127.0.0.1:1143\"\n",
            key.display()
        );
        write("postern.toml", &text, 0o600);
        let file = |contents: &str| Response::File {
            uid: 0,
            gid: 0,
            contents: contents.as_bytes().to_vec(),
        };
        assert_eq!(read(&key), file("KEY"));
        assert_eq!(read(&default), file(&text));
        let fresh = files.refresh().unwrap();
        assert!(
            fresh
                .roots
                .contains(&PathBuf::from("/srv/postern-test-mail"))
        );
        assert_eq!(fresh.max_sessions, 3);
        assert_eq!(files.max_sessions(), 3);
        // A message of the new message_size_limit, twice over, fits a
        // frame (the embedded default's was Postfix's 10240000).
        assert_eq!(start.max_frame, 2 * 10_240_000 + (1 << 20));
        assert_eq!(fresh.max_frame, 2 * 1_000_000 + (1 << 20));
        // Under the same trust rules: others may not write it.
        std::fs::set_permissions(&default, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(matches!(read(&key), Response::Refused(w) if w.contains("writable")));
        assert!(files.refresh().unwrap_err().contains("writable"));
        assert_eq!(
            files.max_sessions(),
            3,
            "an untrusted file keeps the policy"
        );
        // Nor own it.
        std::fs::set_permissions(&default, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&default, Some(4242), None).unwrap();
        assert!(matches!(read(&key), Response::Refused(w) if w.contains("not by root")));
        // Gone again: the embedded default once more.
        std::fs::remove_file(&default).unwrap();
        assert!(matches!(read(&key), Response::Refused(w) if w.contains("not a file")));
    }
}
