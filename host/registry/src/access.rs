//! How a registry is reached: its credentials, how long an operation may
//! take, how large a plugin may be.
//!
//! Credentials come from the operator's config (`[plugins.registries."HOST"]
//! username`, `password_file`) or, for a host the config does not name,
//! from the files `docker login` and `podman login` write
//! (`$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`,
//! `~/.docker/config.json`: their `auths` entries, base64 `user:password`).
//! Never from the command line, where `ps` would show them, and never in a
//! log line or an error message: [`Credentials`] prints its user name only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use crate::error::Error;

/// The largest component an install downloads unless `[plugins]
/// max_plugin_size` says otherwise: a Python plugin (interpreter and all)
/// is about 40 MiB, a Rust one a few hundred KiB.
pub const DEFAULT_MAX_PLUGIN_SIZE: usize = 64 << 20;

/// How long one registry command (a pull with its blobs, a push) may take
/// in all unless the registry's `timeout` says otherwise: a registry that
/// answers one byte a minute holds a command this long, not forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of every debug print and log line.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Credentials from a user name and a password.
    pub fn new(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }

    /// The password, for the request that sends it.
    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    /// `username` with the password in `path` (its first line).
    pub fn from_password_file(username: &str, path: &Path) -> Result<Credentials, Error> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        let password = text.lines().next().unwrap_or_default();
        if password.is_empty() {
            return Err(Error::Credentials {
                path: path.to_path_buf(),
                why: "the password file is empty".to_owned(),
            });
        }
        Ok(Credentials::new(username, password))
    }

    /// The entry for `host` in a docker/podman auth file, if it has one.
    pub fn from_auth_file(path: &Path, host: &str) -> Result<Option<Credentials>, Error> {
        let bad = |why: &str| Error::Credentials {
            path: path.to_path_buf(),
            why: why.to_owned(),
        };
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path)(e)),
        };
        // serde's messages quote no input, so none can leak a secret.
        let file: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| bad(&format!("not JSON ({}:{})", e.line(), e.column())))?;
        let Some(auths) = file.get("auths").and_then(|a| a.as_object()) else {
            return Ok(None);
        };
        let Some(entry) = auths
            .iter()
            .find(|(key, _)| auth_key_host(key) == host)
            .map(|(_, v)| v)
        else {
            return Ok(None);
        };
        let field = |name: &str| entry.get(name).and_then(|v| v.as_str());
        if let Some(auth) = field("auth").filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad(&format!("auths.\"{host}\".auth is not base64")))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| bad(&format!("auths.\"{host}\".auth is not UTF-8")))?;
            let Some((user, password)) = decoded.split_once(':') else {
                return Err(bad(&format!(
                    "auths.\"{host}\".auth is not base64 of USER:PASSWORD"
                )));
            };
            return Ok(Some(Credentials::new(user, password)));
        }
        match (field("username"), field("password")) {
            (Some(user), Some(password)) => Ok(Some(Credentials::new(user, password))),
            _ => Err(bad(&format!(
                "auths.\"{host}\" has neither auth nor username and password \
                 (credential helpers are not supported)"
            ))),
        }
    }

    /// The first entry for `host` in the auth files `docker login` and
    /// `podman login` write, in the order podman reads them.
    pub fn from_auth_files(host: &str) -> Result<Option<Credentials>, Error> {
        for path in auth_files() {
            if let Some(found) = Credentials::from_auth_file(&path, host)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

/// The host of an `auths` key: `HOST[:PORT]`, `https://HOST[:PORT]/v1/`.
fn auth_key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// The auth files, most specific first.
fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(d).join("containers/auth.json"));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        files.push(PathBuf::from(d).join("config.json"));
    } else if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".docker/config.json"));
    }
    files
}

/// What the config says of one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// The user name to log in as.
    pub username: Option<String>,
    /// The file holding its password (first line).
    pub password_file: Option<PathBuf>,
    /// How long one command may take against it.
    pub timeout: Option<Duration>,
}

/// Everything a command needs to reach registries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `[plugins.registries."HOST[:PORT]"]`.
    pub registries: BTreeMap<String, RegistryConfig>,
    /// The largest component an install downloads.
    pub max_plugin_size: usize,
    /// Whether hosts the config does not name look in the docker/podman
    /// auth files.
    pub auth_files: bool,
}

impl Default for Access {
    fn default() -> Access {
        Access {
            registries: BTreeMap::new(),
            max_plugin_size: DEFAULT_MAX_PLUGIN_SIZE,
            auth_files: true,
        }
    }
}

impl Access {
    /// The credentials for `host`: the config's, or an auth file's, or
    /// none (anonymous).
    pub fn credentials(&self, host: &str) -> Result<Option<Credentials>, Error> {
        if let Some(r) = self.registries.get(host)
            && let Some(user) = &r.username
        {
            let Some(file) = &r.password_file else {
                return Err(Error::Credentials {
                    path: PathBuf::from(format!("[plugins.registries.\"{host}\"]")),
                    why: "username without password_file".to_owned(),
                });
            };
            return Credentials::from_password_file(user, file).map(Some);
        }
        if self.auth_files {
            Credentials::from_auth_files(host)
        } else {
            Ok(None)
        }
    }

    /// How long one command may take against `host`.
    pub fn timeout(&self, host: &str) -> Duration {
        self.registries
            .get(host)
            .and_then(|r| r.timeout)
            .unwrap_or(DEFAULT_TIMEOUT)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn auth_file_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        // "alice:s3cret:with:colons", and a username/password entry.
        std::fs::write(
            &path,
            r#"{"auths": {
                "https://reg.example:5000/v1/": {"auth": "YWxpY2U6czNjcmV0OndpdGg6Y29sb25z"},
                "other.example": {"username": "bob", "password": "pw"},
                "broken.example": {"auth": "!!"}
            }}"#,
        )
        .unwrap();
        let c = Credentials::from_auth_file(&path, "reg.example:5000")
            .unwrap()
            .unwrap();
        assert_eq!(c, Credentials::new("alice", "s3cret:with:colons"));
        let c = Credentials::from_auth_file(&path, "other.example")
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "bob");
        assert!(
            Credentials::from_auth_file(&path, "none.example")
                .unwrap()
                .is_none()
        );
        let e = Credentials::from_auth_file(&path, "broken.example")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not base64") && e.contains("config.json"), "{e}");
        assert!(
            Credentials::from_auth_file(&dir.path().join("none.json"), "x")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn passwords_stay_out_of_prints() {
        let c = Credentials::new("alice", "s3cret");
        let shown = format!("{c:?} {:?}", Some(&c));
        assert!(
            !shown.contains("s3cret") && shown.contains("alice"),
            "{shown}"
        );
    }

    #[test]
    fn config_credentials_come_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "hunter2\n").unwrap();
        let mut access = Access {
            auth_files: false,
            ..Access::default()
        };
        assert!(access.credentials("h:1").unwrap().is_none());
        access.registries.insert(
            "h:1".to_owned(),
            RegistryConfig {
                username: Some("u".to_owned()),
                password_file: Some(file),
                timeout: Some(Duration::from_secs(3)),
            },
        );
        assert_eq!(
            access.credentials("h:1").unwrap(),
            Some(Credentials::new("u", "hunter2"))
        );
        assert_eq!(access.timeout("h:1"), Duration::from_secs(3));
        assert_eq!(access.timeout("h:2"), DEFAULT_TIMEOUT);
    }
}
