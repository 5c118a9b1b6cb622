//! A `[[service]]` that listens on a UNIX socket (`listen =
//! "unix:/path"`, the lmtp service only), with the keys of Dovecot's
//! `unix_listener`: `mode` (default `"0660"`), `user` and `group` (names
//! or numeric ids, looked up as Postfix looks up its accounts).
//!
//! ```toml
//! [[service]]
//! name = "lmtp"
//! listen = "unix:/var/spool/postfix/private/postern-lmtp"
//! mode = "0600"
//! user = "postfix"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::{ConfigError, Source};

/// A UNIX-domain socket to listen on, as Dovecot's `unix_listener`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixListen {
    /// Where the socket file is made (a stale one is replaced at start,
    /// and it is removed at stop).
    pub path: PathBuf,
    /// Its permission bits (`mode = "0660"`, the default): who may
    /// connect is who may write to it.
    pub mode: u32,
    /// `user`: the socket's owner (the server's own when unset).
    pub uid: Option<u32>,
    /// `group`: the socket's group (the server's own when unset).
    pub gid: Option<u32>,
}

/// A UNIX socket's mode when the service does not set one: owner and
/// group may connect, as for Dovecot's lmtp listener under Postfix.
const DEFAULT_MODE: u32 = 0o660;

/// The service keys that describe the socket.
pub(super) const KEYS: [&str; 3] = ["mode", "user", "group"];

/// `listen = "unix:/path"` with the socket keys in `keys`: the socket to
/// listen on, `None` for a TCP service; `Err` once an error is pushed.
pub(super) fn unix_listen(
    name: &str,
    listen: Option<&(String, usize)>,
    keys: &BTreeMap<&'static str, (String, usize)>,
    src: &Source,
    errors: &mut Vec<ConfigError>,
) -> Result<Option<UnixListen>, ()> {
    let path = listen.and_then(|(l, at)| l.trim().strip_prefix("unix:").map(|p| (p, *at)));
    let Some((path, at)) = path else {
        if let Some((key, (_, at))) = keys.iter().next() {
            errors.push(src.error(
                Some(*at),
                &format!("service.{key}"),
                format!("{key} is for a UNIX socket (listen = \"unix:/path\")"),
            ));
            return Err(());
        }
        return Ok(None);
    };
    if name != "lmtp" {
        errors.push(src.error(
            Some(at),
            "service.listen",
            format!("service {name:?} listens on TCP only (a UNIX socket is for lmtp)"),
        ));
        return Err(());
    }
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        errors.push(src.error(
            Some(at),
            "service.listen",
            format!(
                "{:?} is not an absolute path (such as unix:/var/lib/postern/lmtp)",
                path.display()
            ),
        ));
        return Err(());
    }
    let mut failed = false;
    let mut read = |key: &str, parse: fn(&str) -> Result<u32, String>| {
        let (text, at) = keys.get(key)?;
        match parse(text) {
            Ok(v) => Some(v),
            Err(why) => {
                errors.push(src.error(Some(*at), &format!("service.{key}"), why));
                failed = true;
                None
            }
        }
    };
    let mode = read("mode", mode).unwrap_or(DEFAULT_MODE);
    let uid = read("user", user);
    let gid = read("group", group);
    if failed {
        return Err(());
    }
    Ok(Some(UnixListen {
        path,
        mode,
        uid,
        gid,
    }))
}

/// `"0660"`: octal permission bits.
fn mode(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text, 8) {
        Ok(mode) if text.bytes().all(|b| b.is_ascii_digit()) && mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "{text:?} is not a permission mode such as \"0660\""
        )),
    }
}

/// A user name (asked of the C library, so NSS sources count) or a uid.
fn user(text: &str) -> Result<u32, String> {
    if let Ok(uid) = text.parse() {
        return Ok(uid);
    }
    match nix::unistd::User::from_name(text) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        Ok(None) => Err(format!("{text:?}: no such user")),
        Err(e) => Err(format!("{text:?}: cannot look the user up: {e}")),
    }
}

/// A group name or a gid.
fn group(text: &str) -> Result<u32, String> {
    if let Ok(gid) = text.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(text) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("{text:?}: no such group")),
        Err(e) => Err(format!("{text:?}: cannot look the group up: {e}")),
    }
}
