//! [`Request::Session`](crate::Request::Session): a POP3 or IMAP login of
//! a mailbox that another uid owns, continued in a process of that uid, as
//! Dovecot's `imap` and `pop3` processes run as their user after
//! `imap-login` and `pop3-login` have checked the password. The daemon
//! passes one end of a socket pair with the request (SCM_RIGHTS, see
//! [`crate::fdpass`]); the helper checks the request, starts `postern
//! mail-session` as the owner with that socket as its standard input and
//! output, and answers with the child's pid.
//!
//! What the child may do is what the owner may do to their own Maildir:
//! its ids pass the same check as a delivery's (never root, only mail
//! users), and its Maildir lies under that uid's home or a mail root.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::policy::Policy;
use crate::wire::{Body, Fields, Ids};

/// Logins are addresses (RFC 5321 §4.5.3.1.3 caps a path at 256 octets).
const MAX_LOGIN: usize = 256;
/// IMAP tags are short in practice; a bound keeps a forged one from
/// becoming a long command line.
const MAX_TAG: usize = 128;
/// A day: Dovecot's and RFC 3501 §5.4's timeouts are minutes.
const MAX_TIMEOUT: u32 = 24 * 3600;
/// The longest log filter: the daemon's `POSTERN_LOG` is a few
/// directives, and the filter ends up on the child's command line.
pub const MAX_LOG_FILTER: usize = 256;
/// The most directives in one log filter.
pub const MAX_DIRECTIVES: usize = 16;
/// The level names a log filter's directives may set.
const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// The protocols a session process serves.
pub const PROTOCOLS: &[&str] = &["pop3", "imap"];

/// One login to continue as its mailbox's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSession {
    /// The owner the session runs as.
    pub ids: Ids,
    /// `pop3` or `imap`.
    pub protocol: String,
    /// The login name, as logged.
    pub login: String,
    /// The Maildir (IMAP: the INBOX, folders beside it).
    pub maildir: PathBuf,
    /// The client's address, for the log and the security word.
    pub peer: String,
    /// Ours.
    pub local: String,
    /// The client's connection is TLS (kept in the daemon).
    pub tls: bool,
    /// IMAP: the tag of the LOGIN or AUTHENTICATE the child completes.
    pub tag: String,
    /// The SASL mechanism of the login, as logged.
    pub mechanism: String,
    /// The service's command timeout, in seconds.
    pub timeout: u32,
    /// The longest command line.
    pub max_line: u32,
    /// IMAP: the largest literal (an APPEND).
    pub max_literal: u32,
    /// The daemon's log filter (its `POSTERN_LOG`), for the child whose
    /// environment is cleared: empty for the default level
    /// ([`log_filter_ok`] says which are taken).
    pub log_filter: String,
}

impl MailSession {
    pub(crate) fn encode(&self, out: &mut Body) {
        out.ids(self.ids)
            .bytes(self.protocol.as_bytes())
            .bytes(self.login.as_bytes())
            .path(&self.maildir)
            .bytes(self.peer.as_bytes())
            .bytes(self.local.as_bytes())
            .u8(u8::from(self.tls))
            .bytes(self.tag.as_bytes())
            .bytes(self.mechanism.as_bytes())
            .u32(self.timeout)
            .u32(self.max_line)
            .u32(self.max_literal)
            .bytes(self.log_filter.as_bytes());
    }

    pub(crate) fn decode(r: &mut Fields<'_>) -> Result<MailSession, String> {
        Ok(MailSession {
            ids: r.ids()?,
            protocol: r.string()?,
            login: r.string()?,
            maildir: r.path()?,
            peer: r.string()?,
            local: r.string()?,
            tls: match r.u8()? {
                0 => false,
                1 => true,
                other => return Err(format!("bad tls flag {other}")),
            },
            tag: r.string()?,
            mechanism: r.string()?,
            timeout: r.u32()?,
            max_line: r.u32()?,
            max_literal: r.u32()?,
            log_filter: r.string()?,
        })
    }

    /// `Ok` when the helper may start this session.
    pub(crate) fn check(&self, policy: &Policy) -> Result<(), String> {
        policy.ids(self.ids)?;
        if !PROTOCOLS.contains(&self.protocol.as_str()) {
            return Err(format!("no session protocol {:?}", self.protocol));
        }
        // Everything below ends up on the child's command line: no
        // control characters, nothing that reads as an option.
        let plain = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && !s.starts_with('-') && !s.contains(char::is_control)
        };
        if !plain(&self.login, MAX_LOGIN) {
            return Err("not a login name".to_owned());
        }
        let word = |s: &str| s.chars().all(|c| c.is_ascii_graphic());
        if !(self.tag.is_empty() || (plain(&self.tag, MAX_TAG) && word(&self.tag))) {
            return Err("not an IMAP tag".to_owned());
        }
        if !plain(&self.mechanism, 32) || !word(&self.mechanism) {
            return Err("not a SASL mechanism name".to_owned());
        }
        for addr in [&self.peer, &self.local] {
            addr.parse::<SocketAddr>()
                .map_err(|_| format!("{addr:?}: not an address"))?;
        }
        if self.timeout == 0 || self.timeout > MAX_TIMEOUT {
            return Err(format!("a timeout of {} s", self.timeout));
        }
        if self.max_line < 64 {
            return Err(format!("a line limit of {}", self.max_line));
        }
        if !log_filter_ok(&self.log_filter) {
            return Err("not a log filter".to_owned());
        }
        policy.mailbox(self.ids, &self.maildir)
    }
}

/// Whether a session process may be given `filter` as its log filter:
/// empty (the default level), or at most 16 ([`MAX_DIRECTIVES`]) directives
/// `LEVEL` or `TARGET=LEVEL` apart by commas, targets of ASCII letters,
/// digits and `_:/-` (`postern/pop3`, `postern_mailbox`), at most
/// [`MAX_LOG_FILTER`] bytes. No span or field filters: their values are
/// regular expressions, which a child need not compile for a log line.
pub fn log_filter_ok(filter: &str) -> bool {
    if filter.is_empty() {
        return true;
    }
    let level = |l: &str| LEVELS.iter().any(|n| n.eq_ignore_ascii_case(l));
    let target = |t: &str| {
        t.starts_with(|c: char| c.is_ascii_alphanumeric())
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_:/-".contains(c))
    };
    filter.len() <= MAX_LOG_FILTER
        && filter.split(',').count() <= MAX_DIRECTIVES
        && filter.split(',').all(|d| match d.split_once('=') {
            Some((t, l)) => target(t) && level(l),
            None => level(d),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Request;

    fn session(uid: u32, maildir: &str) -> MailSession {
        MailSession {
            ids: Ids { uid, gid: uid },
            protocol: "pop3".into(),
            login: "alice".into(),
            maildir: maildir.into(),
            peer: "127.0.0.1:40000".into(),
            local: "127.0.0.1:110".into(),
            tls: false,
            tag: String::new(),
            mechanism: "PLAIN".into(),
            timeout: 600,
            max_line: 4096,
            max_literal: 1 << 20,
            log_filter: String::new(),
        }
    }

    fn policy(dir: &std::path::Path) -> Policy {
        let passwd = dir.join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/sh\n\
             alice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        Policy {
            roots: vec!["/var/lib/postern/mail".into()],
            passwd,
            ..Policy::new()
        }
    }

    #[test]
    fn round_trips() {
        let mut s = session(1000, "/home/alice/Maildir/");
        s.tls = true;
        s.tag = "a1".into();
        s.log_filter = "info,postern/pop3=debug".into();
        let r = Request::Session(s);
        assert_eq!(Request::decode(&r.encode(3)), (Some(3), Ok(r.clone())));
        let good = r.encode(3);
        for n in 0..good.len() {
            assert!(Request::decode(&good[..n]).1.is_err(), "{n}");
        }
    }

    #[test]
    fn only_an_owner_on_their_own_maildir() {
        let dir = tempfile_dir("privsep-session");
        let p = policy(&dir);
        let check = |s: MailSession| p.check(&Request::Session(s));
        check(session(1000, "/home/alice/Maildir/")).unwrap();
        check(session(
            1000,
            "/var/lib/postern/mail/example.org/alice/Maildir/",
        ))
        .unwrap();
        // Root, a system uid, another home, a way out.
        assert!(
            check(session(0, "/root/Maildir/"))
                .unwrap_err()
                .contains("root")
        );
        let mut gid0 = session(1000, "/home/alice/Maildir/");
        gid0.ids.gid = 0;
        assert!(check(gid0).unwrap_err().contains("root"));
        assert!(
            check(session(2, "/home/alice/Maildir/"))
                .unwrap_err()
                .contains("below")
        );
        assert!(
            check(session(1000, "/etc/Maildir/"))
                .unwrap_err()
                .contains("not under")
        );
        assert!(
            check(session(1000, "/home/alice/../bob/Maildir/"))
                .unwrap_err()
                .contains("..")
        );
        // What reaches the child's command line is plain.
        let forged = [
            MailSession {
                protocol: "smtp".into(),
                ..session(1000, "/home/alice/Maildir/")
            },
            MailSession {
                login: "--config=/x".into(),
                ..session(1000, "/home/alice/Maildir/")
            },
            MailSession {
                login: "a\nb".into(),
                ..session(1000, "/home/alice/Maildir/")
            },
            MailSession {
                tag: "a b".into(),
                ..session(1000, "/home/alice/Maildir/")
            },
            MailSession {
                peer: "nowhere".into(),
                ..session(1000, "/home/alice/Maildir/")
            },
            MailSession {
                timeout: 0,
                ..session(1000, "/home/alice/Maildir/")
            },
            MailSession {
                log_filter: "debug --config=/x".into(),
                ..session(1000, "/home/alice/Maildir/")
            },
        ];
        for s in forged {
            assert!(check(s.clone()).is_err(), "{s:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The daemon's filter reaches the child only in the plain shape
    /// `POSTERN_LOG` takes: levels and targets, short, on one line.
    #[test]
    fn a_log_filter_is_levels_and_targets_only() {
        for good in [
            "",
            "debug",
            "info,cranelift=warn,wasmtime=warn",
            "info,postern/mail-session=DEBUG",
            "postern_mailbox=trace",
        ] {
            assert!(log_filter_ok(good), "{good:?}");
        }
        let long = "info,".repeat(MAX_DIRECTIVES) + "info";
        let huge = format!("a{}=info", "b".repeat(MAX_LOG_FILTER));
        for bad in [
            "loud",
            "debug,",
            ",debug",
            "=debug",
            "-x=debug",
            "x=",
            "x=debug=y",
            "x[span{f=.*}]=debug",
            "debug\n",
            "info debug",
            "x\u{e9}=info",
            long.as_str(),
            huge.as_str(),
        ] {
            assert!(!log_filter_ok(bad), "{bad:?}");
        }
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
