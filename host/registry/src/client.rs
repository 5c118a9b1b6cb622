//! What the commands ask of a registry, whichever kind it is: fetch a
//! plugin (resolving a version constraint, checking every digest, the
//! layout and the world), publish one, sign one in place, list tags.

use oci_client::manifest::OciImageManifest;
use semver::Version;

use crate::access::Access;
use crate::artifact::{self, WasmConfig};
use crate::error::Error;
use crate::layout::Layout;
use crate::reference::PluginRef;
use crate::remote::Remote;
use crate::signature::Signature;

/// A registry: remote, or a layout directory.
enum Registry {
    // Boxed: two HTTP clients beside a path.
    Remote(Box<Remote>),
    Layout(Layout),
}

impl Registry {
    fn of(r: &PluginRef, access: &Access) -> Result<Registry, Error> {
        Ok(match &r.location {
            crate::reference::Location::Layout { dir } => Registry::Layout(Layout::new(dir)),
            crate::reference::Location::Oci { host, repository } => Registry::Remote(Box::new(
                Remote::new(host, repository, access.credentials(host)?)?,
            )),
        })
    }

    async fn manifest(
        &self,
        reference: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Vec<u8>, Error> {
        match self {
            Registry::Remote(r) => r.manifest(reference, tag, digest).await,
            Registry::Layout(l) => l.manifest(reference, tag, digest),
        }
    }

    /// Blob `digest`, at most `max` bytes (what the manifest announced).
    async fn blob(&self, reference: &str, digest: &str, max: i64) -> Result<Vec<u8>, Error> {
        let max = usize::try_from(max).unwrap_or(0);
        match self {
            Registry::Remote(r) => r.blob(reference, digest, max).await,
            Registry::Layout(l) => l.blob(reference, digest, max),
        }
    }

    async fn tags(&self, reference: &str) -> Result<Vec<String>, Error> {
        match self {
            Registry::Remote(r) => r.tags(reference).await,
            Registry::Layout(l) => l.tags(),
        }
    }

    async fn push(
        &self,
        reference: &str,
        tag: &str,
        blobs: &[(&str, &[u8])],
        manifest: &OciImageManifest,
    ) -> Result<String, Error> {
        match self {
            Registry::Remote(r) => r.push(reference, tag, blobs, manifest).await,
            Registry::Layout(l) => l.push(tag, blobs, manifest),
        }
    }
}

/// A plugin pulled and checked: every digest, the artifact layout, a
/// component (not a core module) for this server's world. Its signature
/// is checked by the caller against the operator's trust.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The tag it was found under (a constraint resolved), if any.
    pub tag: Option<String>,
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The component's digest: what `plugins.lock` pins.
    pub digest: String,
    /// The config blob.
    pub config: WasmConfig,
    /// The signature the manifest carries.
    pub signature: Option<Signature>,
    /// The component.
    pub component: Vec<u8>,
}

/// The highest tag of `r`'s repository that satisfies its constraint.
async fn resolve_constraint(registry: &Registry, r: &PluginRef) -> Result<Option<String>, Error> {
    let Some(req) = r.constraint() else {
        return Ok(r.tag.clone());
    };
    let tags = registry.tags(&r.to_string()).await?;
    let best = tags
        .iter()
        .filter_map(|t| {
            Version::parse(t.trim_start_matches('v'))
                .ok()
                .map(|v| (v, t))
        })
        .filter(|(v, _)| req.matches(v))
        .max_by(|a, b| a.0.cmp(&b.0));
    match best {
        Some((_, tag)) => Ok(Some(tag.clone())),
        None => Err(Error::NoMatchingVersion {
            reference: r.to_string(),
            constraint: req.to_string(),
            tags: if tags.is_empty() {
                "none".to_owned()
            } else {
                tags.join(", ")
            },
        }),
    }
}

/// Runs `work` against `r`'s registry within its timeout.
async fn bounded<T>(
    r: &PluginRef,
    access: &Access,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let crate::reference::Location::Oci { host, .. } = &r.location else {
        return work.await;
    };
    let after = access.timeout(host);
    tokio::time::timeout(after, work)
        .await
        .map_err(|_| Error::Timeout {
            registry: host.clone(),
            after,
        })?
}

/// Pulls `r` and checks it. A digest pinned in `r` must be the manifest's
/// or the component's; with a tag too, the tag must still point at it.
/// The component may be at most `access.max_plugin_size` bytes.
pub async fn fetch(r: &PluginRef, access: &Access) -> Result<Fetched, Error> {
    bounded(r, access, fetch_unbounded(r, access)).await
}

async fn fetch_unbounded(r: &PluginRef, access: &Access) -> Result<Fetched, Error> {
    let registry = Registry::of(r, access)?;
    let reference = r.to_string();
    let tag = resolve_constraint(&registry, r).await?;
    // By tag when there is one, so a moved tag shows as a mismatch.
    let by_digest = if tag.is_none() {
        r.digest.as_deref()
    } else {
        None
    };
    let raw = registry
        .manifest(&reference, tag.as_deref(), by_digest)
        .await?;
    let manifest_digest = artifact::digest(&raw);
    let manifest = artifact::parse_manifest(&reference, &raw)?;
    let layer = &manifest.layers[0];
    if let Some(pin) = &r.digest
        && *pin != manifest_digest
        && *pin != layer.digest
    {
        return Err(Error::DigestMismatch {
            what: format!("{reference} (pinned)"),
            expected: pin.clone(),
            found: format!("manifest {manifest_digest}, component {}", layer.digest),
        });
    }
    let config_raw = registry
        .blob(&reference, &manifest.config.digest, manifest.config.size)
        .await?;
    let config = artifact::parse_config(&reference, &config_raw)?;
    if usize::try_from(layer.size).map_or(true, |n| n > access.max_plugin_size) {
        return Err(Error::NotAPlugin {
            reference,
            why: format!(
                "a component of {} bytes, more than [plugins] max_plugin_size ({} bytes)",
                layer.size, access.max_plugin_size
            ),
        });
    }
    let component = registry.blob(&reference, &layer.digest, layer.size).await?;
    artifact::check_component(&reference, &component)?;
    Ok(Fetched {
        tag,
        manifest_digest,
        digest: layer.digest.clone(),
        config,
        signature: artifact::signature(&manifest),
        component,
    })
}

/// Publishes `component` as `r` (a tag, not a constraint); returns the
/// manifest's digest and the component's. The caller checks that it is a
/// component ([`artifact::check_component`]) and a plugin, or chooses not
/// to (a test publishing a broken artifact).
pub async fn publish(
    r: &PluginRef,
    component: &[u8],
    version: Option<&str>,
    signature: Option<&Signature>,
    access: &Access,
) -> Result<(String, String), Error> {
    let reference = r.to_string();
    let Some(tag) = r
        .tag
        .as_deref()
        .filter(|_| r.constraint().is_none() && r.digest.is_none())
    else {
        return Err(Error::BadReference {
            reference,
            why: "publish to a tag (NAME:TAG), not a digest or a constraint".to_owned(),
        });
    };
    if component.len() > artifact::MAX_COMPONENT {
        return Err(Error::NotAPlugin {
            reference,
            why: format!(
                "{} bytes, more than {}",
                component.len(),
                artifact::MAX_COMPONENT
            ),
        });
    }
    let built = artifact::build(component, version, signature);
    let blobs = [
        (built.component_digest.as_str(), component),
        (
            built.manifest.config.digest.as_str(),
            built.config.as_slice(),
        ),
    ];
    let registry = Registry::of(r, access)?;
    let manifest_digest = bounded(
        r,
        access,
        registry.push(&reference, tag, &blobs, &built.manifest),
    )
    .await?;
    Ok((manifest_digest, built.component_digest))
}

/// Signs `r` in place: fetches it, adds `sign(digest)`'s signature to its
/// manifest and pushes the manifest back under the same tag. Returns the
/// component's digest.
pub async fn sign(
    r: &PluginRef,
    sign: impl FnOnce(&str) -> Signature,
    access: &Access,
) -> Result<String, Error> {
    let reference = r.to_string();
    let Some(tag) = r.tag.clone().filter(|_| r.constraint().is_none()) else {
        return Err(Error::BadReference {
            reference,
            why: "sign a tag (NAME:TAG)".to_owned(),
        });
    };
    let registry = Registry::of(r, access)?;
    let fetched = fetch(r, access).await?;
    bounded(r, access, async {
        let raw = registry.manifest(&reference, Some(&tag), None).await?;
        let mut manifest = artifact::parse_manifest(&reference, &raw)?;
        artifact::set_signature(&mut manifest, &sign(&fetched.digest));
        registry.push(&reference, &tag, &[], &manifest).await
    })
    .await?;
    Ok(fetched.digest)
}

/// The tags of `r`'s repository.
pub async fn tags(r: &PluginRef, access: &Access) -> Result<Vec<String>, Error> {
    let registry = Registry::of(r, access)?;
    bounded(r, access, registry.tags(&r.to_string())).await
}
