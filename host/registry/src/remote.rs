//! An OCI distribution registry, through `oci-client`: manifests and blobs
//! by tag or digest, pushes, tag lists. HTTPS, except for a registry on
//! this machine (loopback), which is spoken to in plain HTTP.

use std::error::Error as _;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::artifact::{self, MANIFEST_MEDIA_TYPE};
use crate::error::Error;
use crate::reference::is_loopback;

/// How long a connection may take to open: a registry that is down
/// should be said so quickly, not after the kernel's minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read may stall.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A client for one registry host.
pub(crate) struct Remote {
    client: Client,
    host: String,
    repository: String,
}

impl Remote {
    /// A client for repository `repository` of registry `host`.
    pub(crate) fn new(host: &str, repository: &str) -> Remote {
        // reqwest is built without a crypto provider of its own; use ring,
        // as the rest of the server does. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let protocol = if is_loopback(host) {
            ClientProtocol::HttpsExcept(vec![host.to_owned()])
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            // Pushes of one small layer: one request each is enough.
            use_monolithic_push: true,
            ..ClientConfig::default()
        });
        Remote {
            client,
            host: host.to_owned(),
            repository: repository.to_owned(),
        }
    }

    fn reference(&self, tag: Option<&str>, digest: Option<&str>) -> Reference {
        match (digest, tag) {
            (Some(d), _) => {
                Reference::with_digest(self.host.clone(), self.repository.clone(), d.to_owned())
            }
            (None, t) => Reference::with_tag(
                self.host.clone(),
                self.repository.clone(),
                t.unwrap_or("latest").to_owned(),
            ),
        }
    }

    fn map(&self, reference: &str, e: OciDistributionError) -> Error {
        let unknown = || Error::UnknownTag {
            reference: reference.to_owned(),
        };
        match e {
            OciDistributionError::RequestError(re) if re.is_connect() || re.is_timeout() => {
                let mut why = re.to_string();
                let mut source = re.source();
                while let Some(s) = source {
                    why = format!("{why}: {s}");
                    source = s.source();
                }
                Error::Unreachable {
                    registry: self.host.clone(),
                    why,
                }
            }
            OciDistributionError::ImageManifestNotFoundError(_) => unknown(),
            OciDistributionError::ServerError { code: 404, .. } => unknown(),
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown
                    )
                }) =>
            {
                unknown()
            }
            other => Error::Registry {
                registry: self.host.clone(),
                why: other.to_string(),
            },
        }
    }

    /// The raw manifest under `tag` or `digest`.
    pub(crate) async fn manifest(
        &self,
        reference: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Vec<u8>, Error> {
        let r = self.reference(tag, digest);
        let (raw, _) = self
            .client
            .pull_manifest_raw(&r, &RegistryAuth::Anonymous, &[MANIFEST_MEDIA_TYPE])
            .await
            .map_err(|e| self.map(reference, e))?;
        Ok(raw.to_vec())
    }

    /// The blob `digest` of the repository, at most `max` bytes; its
    /// digest is checked.
    pub(crate) async fn blob(
        &self,
        reference: &str,
        digest: &str,
        max: usize,
    ) -> Result<Vec<u8>, Error> {
        let r = self.reference(None, Some(digest));
        let mut out = Capped {
            bytes: Vec::new(),
            max,
        };
        self.client
            .pull_blob(&r, digest, &mut out)
            .await
            .map_err(|e| match e {
                OciDistributionError::DigestError(d) => Error::DigestMismatch {
                    what: format!("{reference} blob {digest}"),
                    expected: digest.to_owned(),
                    // oci-client says "Invalid digest. Expected X, got Y".
                    found: d
                        .to_string()
                        .rsplit("got ")
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                },
                OciDistributionError::IoError(e)
                    if e.kind() == std::io::ErrorKind::FileTooLarge =>
                {
                    Error::NotAPlugin {
                        reference: reference.to_owned(),
                        why: format!("blob {digest} is larger than {max} bytes"),
                    }
                }
                e => self.map(reference, e),
            })?;
        artifact::check_digest(&format!("{reference} blob"), digest, &out.bytes)?;
        Ok(out.bytes)
    }

    /// The repository's tags.
    pub(crate) async fn tags(&self, reference: &str) -> Result<Vec<String>, Error> {
        let r = self.reference(Some("latest"), None);
        let tags = self
            .client
            .list_tags(&r, &RegistryAuth::Anonymous, None, None)
            .await
            .map_err(|e| self.map(reference, e))?;
        Ok(tags.tags)
    }

    /// Pushes the blobs (if the registry lacks them) and the manifest
    /// under `tag`; returns the manifest's digest.
    pub(crate) async fn push(
        &self,
        reference: &str,
        tag: &str,
        blobs: &[(&str, &[u8])],
        manifest: &OciImageManifest,
    ) -> Result<String, Error> {
        let r = self.reference(Some(tag), None);
        for (digest, bytes) in blobs {
            let exists = self
                .client
                .blob_exists(&r, digest)
                .await
                .map_err(|e| self.map(reference, e))?;
            if !exists {
                self.client
                    .push_blob(&r, bytes.to_vec(), digest)
                    .await
                    .map_err(|e| self.map(reference, e))?;
            }
        }
        self.client
            .push_manifest(&r, &OciManifest::Image(manifest.clone()))
            .await
            .map_err(|e| self.map(reference, e))?;
        // What the registry stores is the client's serialisation; read it
        // back for the digest a pull by digest will use.
        let raw = self.manifest(reference, Some(tag), None).await?;
        Ok(artifact::digest(&raw))
    }
}

/// A blob's bytes in memory, refused past `max`: a registry that sends
/// more than the manifest said (or endlessly) costs an error, not memory.
struct Capped {
    bytes: Vec<u8>,
    max: usize,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.bytes.len() + buf.len() > self.max {
            return std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "blob larger than announced",
            )));
        }
        self.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
