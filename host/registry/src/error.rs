//! What can go wrong between a registry and `plugins.lock`, each case with
//! the reference, digest, file or key it concerns, so that a command can
//! print it as it is.

use std::path::PathBuf;

/// An error of the registry crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference that does not parse.
    #[error("bad plugin reference {reference:?}: {why}")]
    BadReference {
        /// The text as given.
        reference: String,
        /// What is wrong with it.
        why: String,
    },
    /// The registry could not be reached (refused, timed out, name unknown).
    #[error("registry {registry} is unreachable: {why}")]
    Unreachable {
        /// `HOST[:PORT]` or the layout directory.
        registry: String,
        /// The transport's words.
        why: String,
    },
    /// No manifest under that tag or digest.
    #[error("{reference}: no such tag or digest in the registry")]
    UnknownTag {
        /// The reference as resolved.
        reference: String,
    },
    /// No tag of the repository satisfies a version constraint.
    #[error("{reference}: no tag satisfies {constraint} (tags: {tags})")]
    NoMatchingVersion {
        /// The reference.
        reference: String,
        /// The constraint (`^1.2`).
        constraint: String,
        /// The tags the registry has, comma-separated.
        tags: String,
    },
    /// Bytes that do not hash to the digest that names them: a tampered
    /// blob, a moved tag under a pinned digest, a changed installed file.
    #[error("digest mismatch for {what}: expected {expected}, found {found}")]
    DigestMismatch {
        /// Which bytes (the manifest, the component, a file).
        what: String,
        /// The digest they should have.
        expected: String,
        /// The digest they have.
        found: String,
    },
    /// An artifact that is not a Postern plugin in the CNCF Wasm layout.
    #[error("{reference}: not a plugin artifact: {why}")]
    NotAPlugin {
        /// The reference or file.
        reference: String,
        /// What is wrong (media types, layers, not a component).
        why: String,
    },
    /// A component for a WIT world this server does not run.
    #[error("{reference}: the component targets world {found}, this server runs {expected}")]
    WrongWorld {
        /// The reference.
        reference: String,
        /// The world the artifact declares.
        found: String,
        /// The world this server supports.
        expected: String,
    },
    /// An artifact without a signature where one is required.
    #[error("{reference}: not signed, and [plugins] require_signatures = true")]
    Unsigned {
        /// The reference.
        reference: String,
    },
    /// A signature by a key that is not in `[plugins] trusted_keys`.
    #[error("{reference}: signed by key {key}, which is not in [plugins] trusted_keys")]
    UntrustedKey {
        /// The reference.
        reference: String,
        /// The key id.
        key: String,
    },
    /// A signature that does not verify.
    #[error("{reference}: bad signature by key {key}: {why}")]
    BadSignature {
        /// The reference.
        reference: String,
        /// The key id.
        key: String,
        /// Why it fails.
        why: String,
    },
    /// A key (trusted key or secret key file) that does not parse.
    #[error("bad key {key}: {why}")]
    BadKey {
        /// The key text or file.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// `plugins.lock` cannot be read, parsed or written.
    #[error("{}: {why}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A reference that `plugins.lock` does not hold.
    #[error("{reference} is not in {}; run `postern plugin install {reference}`", path.display())]
    NotLocked {
        /// The reference.
        reference: String,
        /// The lock file.
        path: PathBuf,
    },
    /// A file of the store, the plugin directory or a layout.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The registry wants credentials and has none (or refused them).
    #[error(
        "registry {registry}: authentication required: {why}; set [plugins.registries.\"{registry}\"] \
         username and password_file, or log in with `docker login` / `podman login`"
    )]
    AuthRequired {
        /// `HOST[:PORT]`.
        registry: String,
        /// What happened (no credentials, or whose were refused).
        why: String,
    },
    /// A credentials file (password file, docker/podman auth file) that
    /// cannot be used; its content is never quoted.
    #[error("{}: {why}", path.display())]
    Credentials {
        /// The file, or the config section.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A registry answer larger than its bound (a manifest past 4 MiB, a
    /// component past `max_plugin_size` or past its declared size).
    #[error("registry {registry}: {what} is larger than {max} bytes; refused")]
    TooLarge {
        /// `HOST[:PORT]`.
        registry: String,
        /// Which answer.
        what: String,
        /// The bound.
        max: usize,
    },
    /// A registry command that did not finish in time.
    #[error("registry {registry} did not finish within {}s (its timeout)", after.as_secs())]
    Timeout {
        /// `HOST[:PORT]`.
        registry: String,
        /// The bound.
        after: std::time::Duration,
    },
    /// Anything else the registry said.
    #[error("registry {registry}: {why}")]
    Registry {
        /// `HOST[:PORT]` or the layout directory.
        registry: String,
        /// What it said.
        why: String,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
