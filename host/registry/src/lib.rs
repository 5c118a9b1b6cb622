//! Postern's plugin registry client: plugins shared the way the Wasm
//! ecosystem shares components, as OCI artifacts, and pinned by digest.
//!
//! It speaks the OCI distribution API (reads through reqwest with every
//! body bounded, pushes through `oci-client`; Basic or Bearer-token
//! authentication with the operator's credentials) in the CNCF
//! Wasm artifact layout: a config blob `application/vnd.wasm.config.v0+json`
//! that names the WIT world and the plugin's version, and one
//! `application/wasm` layer, the component. HTTPS, except plain HTTP for
//! a registry on loopback; a `file:///DIR` reference reads and writes an
//! OCI image layout directory instead, for air-gapped sites. What gets
//! installed is kept in a content store by digest, put in service as
//! `NAME.wasm` in the plugin directory, and pinned in `plugins.lock`;
//! signatures are ed25519 over the component's digest, checked against the
//! operator's trusted keys. Commands that change `plugins.lock` take turns
//! on a file lock beside it.
//!
//! Postfix and Dovecot have no counterpart: their policy services are
//! installed by hand. Not here: running plugins, or checking that a
//! component really implements the plugin world by linking it (the
//! `policy` crate's job; the server asks it before installing), and any
//! fetching at start, reload or on the request path: the server resolves
//! `oci://` entries from local files only ([`Store::resolve`]).
//!
//! # Layout
//! - [`reference`](mod@reference): [`PluginRef`], `oci://` and `file://` references, tags,
//!   version constraints, digests; which hosts get plain HTTP.
//! - [`artifact`]: the CNCF Wasm layout, media types, the config blob,
//!   annotations, digests, component-not-module.
//! - [`access`]: [`Access`], credentials ([`Credentials`]: config, or the
//!   docker/podman auth files), timeouts, the plugin size bound.
//! - [`client`]: [`fetch`], [`publish`], [`sign`], [`tags`] on any kind of
//!   registry.
//! - `remote`: an OCI distribution registry over HTTP(S).
//! - `http`: the registry's reads, every body bounded, authentication
//!   challenges (Basic, Bearer tokens) answered.
//! - `layout`: an OCI image layout directory.
//! - [`lock`]: `plugins.lock`, [`Lock`] and [`Locked`].
//! - [`store`]: [`Store`], the content store and installed plugins.
//! - [`signature`]: keys, [`Signature`], [`Trust`].
//! - [`error`]: [`Error`], what went wrong and where.

pub mod access;
pub mod artifact;
pub mod client;
pub mod error;
mod http;
mod layout;
pub mod lock;
pub mod reference;
mod remote;
pub mod signature;
pub mod store;

pub use access::{Access, Credentials};
pub use client::{Fetched, fetch, publish, sign, tags};
pub use error::Error;
pub use lock::{LOCK_FILE, Lock, Locked};
pub use reference::PluginRef;
/// Versions and constraints, as `update` compares them.
pub use semver::{Version, VersionReq};
pub use signature::{Signature, Trust};
pub use store::Store;
