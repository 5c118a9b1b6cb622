//! `plugins.lock`: which bytes each installed reference runs, beside the
//! plugins in the plugin directory. Written by `postern plugin
//! install|update|remove`, read at start and reload to resolve
//! `{ plugin = "oci://..." }` entries without the network, and by
//! `postern plugin verify`.
//!
//! ```toml
//! [[plugin]]
//! ref = "oci://127.0.0.1:5000/postern/greylist:^1.2"
//! name = "greylist"
//! tag = "1.2.5"
//! digest = "sha256:..."        # the component (the layer), what runs
//! manifest = "sha256:..."
//! world = "postern:policy/plugin@0.1.0"
//! version = "1.2.5"
//! key = "3f2a..."              # the signing key's id, if signed
//! signature = "base64..."
//! ```
//!
//! Every command that changes it holds [`Lock::hold`], an exclusive
//! advisory lock (flock(2)) on `.plugins.lock.lck` beside it, from reading
//! the lock to collecting the store's garbage: two installs at once (or an
//! install and a remove) run one after the other instead of each writing
//! back what it read and losing the other's entry, and one cannot collect
//! the component another has stored but not locked yet.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::layout::write_atomic;
use crate::signature::Signature;

/// The lock file's name in the plugin directory.
pub const LOCK_FILE: &str = "plugins.lock";

/// The file whose flock(2) serializes the commands that change the lock.
/// A file of its own, never renamed: `plugins.lock` itself is replaced by
/// a rename on every save, and a lock on a replaced file guards nothing.
pub const GUARD_FILE: &str = ".plugins.lock.lck";

/// An exclusive hold on a plugin directory's lock, released when dropped
/// (or when the process ends, however it ends: the kernel drops a flock
/// with the last descriptor).
#[derive(Debug)]
pub struct Held {
    _file: std::fs::File,
}

/// One installed reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locked {
    /// The reference as installed, without a digest: what a chain entry
    /// names.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The plugin name it is installed as (`NAME.wasm`).
    pub name: String,
    /// The tag it resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The component's digest, `sha256:HEX`.
    pub digest: String,
    /// The manifest's digest.
    pub manifest: String,
    /// The WIT world the artifact declares.
    pub world: String,
    /// The plugin's version, if published with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The id of the key that signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The signature, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Locked {
    /// The signature recorded, if any.
    pub fn signature(&self) -> Option<Signature> {
        Some(Signature {
            key: self.key.clone()?,
            value: self.signature.clone()?,
        })
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// The installed references, in install order.
    #[serde(default)]
    pub plugin: Vec<Locked>,
}

impl Lock {
    /// The lock file of plugin directory `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(LOCK_FILE)
    }

    /// Waits for, then holds, the exclusive lock on `dir`'s lock file;
    /// `waiting` is called once if another command holds it now.
    pub fn hold(dir: &Path, waiting: impl FnOnce(&Path)) -> Result<Held, Error> {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let path = dir.join(GUARD_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                waiting(&path);
                file.lock().map_err(Error::io(&path))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path)(e)),
        }
        Ok(Held { _file: file })
    }

    /// Reads `dir`'s lock file; none yet is an empty lock.
    pub fn load(dir: &Path) -> Result<Lock, Error> {
        let path = Lock::path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lock::default()),
            Err(e) => return Err(Error::io(&path)(e)),
        };
        toml::from_str(&text).map_err(|e| Error::Lock {
            path,
            why: e.to_string(),
        })
    }

    /// Writes it to `dir` (atomically).
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        let path = Lock::path(dir);
        let body = toml::to_string(self).map_err(|e| Error::Lock {
            path: path.clone(),
            why: e.to_string(),
        })?;
        let text = format!(
            "# Written by `postern plugin install|update|remove`: the exact bytes each\n\
             # installed plugin reference runs. Check with `postern plugin verify`.\n\n{body}"
        );
        write_atomic(&path, text.as_bytes())
    }

    /// The entry of `reference` (as written, without a digest).
    pub fn get(&self, reference: &str) -> Option<&Locked> {
        self.plugin.iter().find(|l| l.reference == reference)
    }

    /// Adds `locked`, or replaces the entry of the same reference.
    pub fn put(&mut self, locked: Locked) {
        match self
            .plugin
            .iter_mut()
            .find(|l| l.reference == locked.reference)
        {
            Some(old) => *old = locked,
            None => self.plugin.push(locked),
        }
    }

    /// Removes `reference`'s entry, returning it.
    pub fn remove(&mut self, reference: &str) -> Option<Locked> {
        let i = self.plugin.iter().position(|l| l.reference == reference)?;
        Some(self.plugin.remove(i))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn locked(r: &str) -> Locked {
        Locked {
            reference: r.to_owned(),
            name: "p".to_owned(),
            tag: Some("1.0".to_owned()),
            digest: "sha256:00".to_owned(),
            manifest: "sha256:11".to_owned(),
            world: crate::artifact::WORLD.to_owned(),
            version: Some("1.0.0".to_owned()),
            key: None,
            signature: None,
        }
    }

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Lock::load(dir.path()).unwrap(), Lock::default());
        let mut lock = Lock::default();
        lock.put(locked("oci://h/a/p:1.0"));
        lock.put(locked("oci://h/a/q:1.0"));
        lock.put(Locked {
            digest: "sha256:22".to_owned(),
            ..locked("oci://h/a/p:1.0")
        });
        lock.save(dir.path()).unwrap();
        let back = Lock::load(dir.path()).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.plugin.len(), 2);
        assert_eq!(back.get("oci://h/a/p:1.0").unwrap().digest, "sha256:22");
        let mut back = back;
        assert!(back.remove("oci://h/a/q:1.0").is_some());
        assert!(back.get("oci://h/a/q:1.0").is_none());
    }

    #[test]
    fn the_hold_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let held = Lock::hold(dir.path(), |_| panic!("nobody holds it")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let d = dir.path().to_path_buf();
        let other = std::thread::spawn(move || {
            // A second open file description: flock excludes it as it
            // would another process.
            let _second = Lock::hold(&d, |_| tx.send(()).unwrap()).unwrap();
        });
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        drop(held);
        other.join().unwrap();
    }

    #[test]
    fn a_broken_lock_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(Lock::path(dir.path()), "[[plugin]]\nref = 1\n").unwrap();
        let e = Lock::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("plugins.lock"), "{e}");
    }
}
