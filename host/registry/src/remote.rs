//! An OCI distribution registry: reads (manifests, blobs, tag lists)
//! through [`Http`], bounded and authenticated; pushes through
//! `oci-client`. HTTPS, except for a registry on this machine (loopback),
//! which is spoken to in plain HTTP.

use std::error::Error as _;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::access::Credentials;
use crate::artifact::{self, MANIFEST_MEDIA_TYPE};
use crate::error::Error;
use crate::http::{Http, MAX_MANIFEST};
use crate::reference::is_loopback;

/// How long a connection may take to open: a registry that is down
/// should be said so quickly, not after the kernel's minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read may stall.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A client for one registry host.
pub(crate) struct Remote {
    client: Client,
    http: Http,
    auth: RegistryAuth,
    host: String,
    repository: String,
}

impl Remote {
    /// A client for repository `repository` of registry `host`.
    pub(crate) fn new(
        host: &str,
        repository: &str,
        credentials: Option<Credentials>,
    ) -> Result<Remote, Error> {
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
        let auth = match &credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password().to_owned()),
            None => RegistryAuth::Anonymous,
        };
        Ok(Remote {
            client,
            http: Http::new(host, credentials)?,
            auth,
            host: host.to_owned(),
            repository: repository.to_owned(),
        })
    }

    fn reference(&self, tag: &str) -> Reference {
        Reference::with_tag(self.host.clone(), self.repository.clone(), tag.to_owned())
    }

    fn map(&self, reference: &str, e: OciDistributionError) -> Error {
        let unknown = || Error::UnknownTag {
            reference: reference.to_owned(),
        };
        let auth = |why: &str| Error::AuthRequired {
            registry: self.host.clone(),
            why: match &self.auth {
                RegistryAuth::Basic(user, _) => format!("the credentials of {user} were refused"),
                _ => why.to_owned(),
            },
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
            OciDistributionError::RequestError(re)
                if re.status() == Some(reqwest::StatusCode::UNAUTHORIZED) =>
            {
                auth("no credentials for it")
            }
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => auth("no credentials for it"),
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|e| {
                    matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)
                }) =>
            {
                auth("no credentials for it")
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

    /// The raw manifest under `tag` or `digest`, at most 4 MiB; one
    /// asked by digest is checked against it.
    pub(crate) async fn manifest(
        &self,
        reference: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Vec<u8>, Error> {
        let name = digest.or(tag).unwrap_or("latest");
        let path = format!("{}/manifests/{name}", self.repository);
        let raw = self
            .http
            .get(
                reference,
                &path,
                MANIFEST_MEDIA_TYPE,
                "the manifest",
                MAX_MANIFEST,
            )
            .await?;
        if let Some(d) = digest {
            artifact::check_digest(&format!("{reference} manifest"), d, &raw)?;
        }
        Ok(raw)
    }

    /// The blob `digest` of the repository, at most `max` bytes; its
    /// digest is checked.
    pub(crate) async fn blob(
        &self,
        reference: &str,
        digest: &str,
        max: usize,
    ) -> Result<Vec<u8>, Error> {
        let path = format!("{}/blobs/{digest}", self.repository);
        let what = format!("blob {digest}");
        let bytes = self.http.get(reference, &path, "*/*", &what, max).await?;
        artifact::check_digest(&format!("{reference} blob"), digest, &bytes)?;
        Ok(bytes)
    }

    /// The repository's tags.
    pub(crate) async fn tags(&self, reference: &str) -> Result<Vec<String>, Error> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let path = format!("{}/tags/list", self.repository);
        let raw = self
            .http
            .get(
                reference,
                &path,
                "application/json",
                "the tag list",
                MAX_MANIFEST,
            )
            .await?;
        let list: TagList = serde_json::from_slice(&raw).map_err(|e| Error::Registry {
            registry: self.host.clone(),
            why: format!("a tag list that is not JSON: {e}"),
        })?;
        Ok(list.tags.unwrap_or_default())
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
        let r = self.reference(tag);
        self.client
            .store_auth_if_needed(r.resolve_registry(), &self.auth)
            .await;
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
