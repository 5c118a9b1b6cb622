//! The local content store and the installed plugins.
//!
//! Every component installed is kept by digest in
//! `PLUGIN_DIR/.store/sha256/HEX`; the one a lock entry names is copied to
//! `PLUGIN_DIR/NAME.wasm`, where the policy runtime finds plugins. A chain
//! entry `{ plugin = "oci://..." }` resolves ([`Store::resolve`]) through
//! `plugins.lock` to that name, after checking that the file still hashes
//! to the locked digest and that its signature is one the operator
//! trusts: all local, so start-up and reload work with the registry down.

use std::fs;
use std::path::{Path, PathBuf};

use crate::artifact;
use crate::error::Error;
use crate::layout::write_atomic;
use crate::lock::{Lock, Locked};
use crate::reference::PluginRef;
use crate::signature::Trust;

/// The plugin directory, with its store and lock.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store of plugin directory `dir`.
    pub fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    /// The plugin directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the component `digest` is kept.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join(".store").join("sha256").join(hex)
    }

    /// Where plugin `name` is installed.
    pub fn plugin_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.wasm"))
    }

    /// Keeps `bytes` in the store; returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<String, Error> {
        let digest = artifact::digest(bytes);
        let path = self.blob_path(&digest);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        if !path.exists() {
            write_atomic(&path, bytes)?;
        }
        Ok(digest)
    }

    /// The stored component `digest`, its digest checked.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).map_err(Error::io(&path))?;
        artifact::check_digest(&path.display().to_string(), digest, &bytes)?;
        Ok(bytes)
    }

    /// Puts the stored `digest` in service as `NAME.wasm` (replacing what
    /// was there; atomically, so a reload sees the old file or the new).
    pub fn activate(&self, name: &str, digest: &str) -> Result<(), Error> {
        let bytes = self.get(digest)?;
        write_atomic(&self.plugin_path(name), &bytes)
    }

    /// Takes `NAME.wasm` out of service.
    pub fn deactivate(&self, name: &str) -> Result<(), Error> {
        let path = self.plugin_path(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Removes stored components no lock entry names.
    pub fn collect_garbage(&self, lock: &Lock) -> Result<(), Error> {
        let dir = self.dir.join(".store").join("sha256");
        let Ok(items) = fs::read_dir(&dir) else {
            return Ok(());
        };
        for item in items {
            let path = item.map_err(Error::io(&dir))?.path();
            let Some(hex) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let used = lock
                .plugin
                .iter()
                .any(|l| l.digest.strip_prefix("sha256:") == Some(hex));
            if !used {
                fs::remove_file(&path).map_err(Error::io(&path))?;
            }
        }
        Ok(())
    }

    /// Checks one installed entry: the stored component and `NAME.wasm`
    /// hash to the locked digest, and its signature passes `trust`.
    pub fn check(&self, locked: &Locked, trust: &Trust) -> Result<(), Error> {
        self.get(&locked.digest)?;
        let path = self.plugin_path(&locked.name);
        let bytes = fs::read(&path).map_err(Error::io(&path))?;
        artifact::check_digest(&path.display().to_string(), &locked.digest, &bytes)?;
        trust.check(
            &locked.reference,
            &locked.digest,
            locked.signature().as_ref(),
        )?;
        Ok(())
    }

    /// The plugin name a chain entry's `reference` runs as: its lock
    /// entry's, once [`Store::check`] passes. A digest in the reference
    /// must be the locked one. Reads only local files.
    pub fn resolve(&self, reference: &str, trust: &Trust) -> Result<String, Error> {
        let r = PluginRef::parse(reference)?;
        let key = r.without_digest().to_string();
        let lock = Lock::load(&self.dir)?;
        let Some(locked) = lock.get(&key) else {
            return Err(Error::NotLocked {
                reference: key,
                path: Lock::path(&self.dir),
            });
        };
        if let Some(pin) = &r.digest
            && *pin != locked.digest
            && *pin != locked.manifest
        {
            return Err(Error::DigestMismatch {
                what: format!("{key} in {}", Lock::path(&self.dir).display()),
                expected: pin.clone(),
                found: locked.digest.clone(),
            });
        }
        self.check(locked, trust)?;
        Ok(locked.name.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const C: &[u8] = b"\0asm\x0d\0\x01\0body";

    fn installed(dir: &Path) -> (Store, Locked) {
        let store = Store::new(dir);
        let digest = store.put(C).unwrap();
        store.activate("p", &digest).unwrap();
        let locked = Locked {
            reference: "oci://h/a/p:1.0".to_owned(),
            name: "p".to_owned(),
            tag: Some("1.0".to_owned()),
            digest,
            manifest: "sha256:11".to_owned(),
            world: artifact::WORLD.to_owned(),
            version: None,
            key: None,
            signature: None,
        };
        let mut lock = Lock::default();
        lock.put(locked.clone());
        lock.save(dir).unwrap();
        (store, locked)
    }

    #[test]
    fn resolves_through_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (store, locked) = installed(dir.path());
        let trust = Trust::default();
        assert_eq!(store.resolve("oci://h/a/p:1.0", &trust).unwrap(), "p");
        let pinned = format!("oci://h/a/p:1.0@{}", locked.digest);
        assert_eq!(store.resolve(&pinned, &trust).unwrap(), "p");
        let e = store
            .resolve("oci://h/a/p:2.0", &trust)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not in") && e.contains("plugins.lock"), "{e}");
        let required = Trust {
            keys: vec![],
            require: true,
        };
        assert!(matches!(
            store.resolve("oci://h/a/p:1.0", &required),
            Err(Error::Unsigned { .. })
        ));
    }

    #[test]
    fn a_changed_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = installed(dir.path());
        fs::write(store.plugin_path("p"), b"\0asm\x0d\0\x01\0evil").unwrap();
        let e = store
            .resolve("oci://h/a/p:1.0", &Trust::default())
            .unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    }

    #[test]
    fn garbage_is_collected() {
        let dir = tempfile::tempdir().unwrap();
        let (store, locked) = installed(dir.path());
        let other = store.put(b"other").unwrap();
        store
            .collect_garbage(&Lock::load(dir.path()).unwrap())
            .unwrap();
        assert!(store.blob_path(&locked.digest).exists());
        assert!(!store.blob_path(&other).exists());
    }
}
