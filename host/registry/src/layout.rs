//! A directory as a registry: an OCI image layout (image-spec
//! `image-layout.md`: `oci-layout`, `index.json`, `blobs/sha256/HEX`), one
//! repository per directory, tags as `org.opencontainers.image.ref.name`
//! annotations of `index.json`. What `oras push --oci-layout` and
//! `skopeo copy oci:` read and write, so an air-gapped site can carry
//! plugins on a disk.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use oci_client::manifest::OciImageManifest;
use serde::{Deserialize, Serialize};

use crate::artifact::{self, MANIFEST_MEDIA_TYPE};
use crate::error::Error;

/// The largest manifest read: a plugin's is well under a kilobyte.
const MAX_MANIFEST: usize = 4 << 20;

/// The annotation of `index.json` that names a manifest's tag.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One manifest of `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexEntry {
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

/// A layout directory.
pub(crate) struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub(crate) fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join("blobs").join("sha256").join(hex)
    }

    fn index(&self) -> Result<Index, Error> {
        let path = self.index_path();
        let text = fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && !self.dir.exists() {
                Error::Unreachable {
                    registry: self.dir.display().to_string(),
                    why: "no such directory".to_owned(),
                }
            } else {
                Error::io(&path)(e)
            }
        })?;
        serde_json::from_slice(&text).map_err(|e| Error::Registry {
            registry: self.dir.display().to_string(),
            why: format!("bad index.json: {e}"),
        })
    }

    /// The raw manifest under `tag` or `digest`.
    pub(crate) fn manifest(
        &self,
        reference: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Vec<u8>, Error> {
        let index = self.index()?;
        let found = index.manifests.iter().find(|m| match (digest, tag) {
            (Some(d), _) => m.digest == d,
            (None, Some(t)) => m.annotations.get(REF_NAME).map(String::as_str) == Some(t),
            (None, None) => false,
        });
        let Some(entry) = found else {
            return Err(Error::UnknownTag {
                reference: reference.to_owned(),
            });
        };
        self.blob(reference, &entry.digest, MAX_MANIFEST)
    }

    /// The blob `digest`, at most `max` bytes; its digest is checked.
    pub(crate) fn blob(&self, reference: &str, digest: &str, max: usize) -> Result<Vec<u8>, Error> {
        if !crate::reference::is_digest(digest) {
            return Err(Error::Registry {
                registry: self.dir.display().to_string(),
                why: format!("bad digest {digest:?}"),
            });
        }
        let path = self.blob_path(digest);
        let len = fs::metadata(&path).map_err(Error::io(&path))?.len();
        if len > max as u64 {
            return Err(Error::NotAPlugin {
                reference: reference.to_owned(),
                why: format!("blob {digest} has {len} bytes, more than {max}"),
            });
        }
        let bytes = fs::read(&path).map_err(Error::io(&path))?;
        artifact::check_digest(&format!("{reference} blob"), digest, &bytes)?;
        Ok(bytes)
    }

    /// The tags of `index.json`.
    pub(crate) fn tags(&self) -> Result<Vec<String>, Error> {
        Ok(self
            .index()?
            .manifests
            .iter()
            .filter_map(|m| m.annotations.get(REF_NAME).cloned())
            .collect())
    }

    /// Writes the blobs and the manifest, and points `tag` at it (in place
    /// of what it named before); returns the manifest's digest.
    pub(crate) fn push(
        &self,
        tag: &str,
        blobs: &[(&str, &[u8])],
        manifest: &OciImageManifest,
    ) -> Result<String, Error> {
        let blob_dir = self.dir.join("blobs").join("sha256");
        fs::create_dir_all(&blob_dir).map_err(Error::io(&blob_dir))?;
        let layout = self.dir.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let raw = serde_json::to_vec(manifest).map_err(|e| Error::Registry {
            registry: self.dir.display().to_string(),
            why: e.to_string(),
        })?;
        let manifest_digest = artifact::digest(&raw);
        for (digest, bytes) in blobs
            .iter()
            .copied()
            .chain([(manifest_digest.as_str(), raw.as_slice())])
        {
            let path = self.blob_path(digest);
            if !path.exists() {
                write_atomic(&path, bytes)?;
            }
        }
        let mut index = match self.index() {
            Ok(index) => index,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Index {
                    schema_version: 2,
                    media_type: Some("application/vnd.oci.image.index.v1+json".to_owned()),
                    manifests: Vec::new(),
                }
            }
            Err(e) => return Err(e),
        };
        index
            .manifests
            .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != Some(tag));
        index.manifests.push(IndexEntry {
            media_type: MANIFEST_MEDIA_TYPE.to_owned(),
            digest: manifest_digest.clone(),
            size: raw.len() as i64,
            annotations: BTreeMap::from([(REF_NAME.to_owned(), tag.to_owned())]),
        });
        let text = serde_json::to_vec_pretty(&index).map_err(|e| Error::Registry {
            registry: self.dir.display().to_string(),
            why: e.to_string(),
        })?;
        write_atomic(&self.index_path(), &text)?;
        Ok(manifest_digest)
    }
}

/// Writes `path` through a temporary file and a rename, so that a reader
/// sees the old content or the new, never half of it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&tmp, bytes).map_err(Error::io(&tmp))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(Error::io(&tmp))?;
    fs::rename(&tmp, path).map_err(Error::io(path))?;
    // The rename is durable once the directory is.
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}
