//! The CNCF Wasm OCI artifact layout (TAG Runtime's "Wasm OCI Artifact"):
//! a manifest whose config blob has media type
//! `application/vnd.wasm.config.v0+json` and whose one layer is the
//! component, `application/wasm`. The config carries the WIT world the
//! component targets (`component.target`) and, as Postern's addition, the
//! plugin's version; manifest annotations carry the version
//! (`org.opencontainers.image.version`) and the signature.

use std::collections::BTreeMap;

use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::signature::Signature;

/// The config blob's media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The component layer's media type.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The OCI image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The world this server's plugins implement (`wit/policy.wit`).
pub const WORLD: &str = "postern:policy/plugin@0.1.0";
/// The manifest annotation with the plugin's version.
pub const VERSION_ANNOTATION: &str = "org.opencontainers.image.version";
/// The manifest annotation with the signature (base64).
pub const SIGNATURE_ANNOTATION: &str = "dev.postern.signature.ed25519";
/// The manifest annotation with the signing key's id.
pub const KEY_ANNOTATION: &str = "dev.postern.signature.key";
/// The largest component accepted: far above any plugin (CPython in a
/// component is about 40 MB), low enough that a hostile registry cannot
/// fill memory.
pub const MAX_COMPONENT: usize = 256 << 20;

/// `sha256:HEX` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The `component` object of the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ComponentInfo {
    /// The world the component targets.
    #[serde(default)]
    pub target: String,
    /// The interfaces it exports.
    #[serde(default)]
    pub exports: Vec<String>,
}

/// The config blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// Always `wasm`.
    pub architecture: String,
    /// `wasip2`: a component.
    pub os: String,
    /// The digests of the layers, in order.
    #[serde(default)]
    pub layer_digests: Vec<String>,
    /// What the component is.
    #[serde(default)]
    pub component: ComponentInfo,
    /// The plugin's version (semver), if the publisher gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Checks that `bytes` are a WebAssembly component: the binary format's
/// magic, and the layer field of a component rather than a core module.
pub fn check_component(reference: &str, bytes: &[u8]) -> Result<(), Error> {
    let not = |why: &str| Error::NotAPlugin {
        reference: reference.to_owned(),
        why: why.to_owned(),
    };
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(not(
            "a core WebAssembly module, not a component (build for wasm32-wasip2, or wrap it with `wasm-tools component new`)",
        )),
        _ => Err(not("not a WebAssembly binary")),
    }
}

/// The manifest, config and layer of a component ready to push.
#[derive(Debug, Clone)]
pub struct Built {
    /// The manifest.
    pub manifest: OciImageManifest,
    /// The config blob's bytes.
    pub config: Vec<u8>,
    /// The component's digest.
    pub component_digest: String,
}

/// Builds the artifact of `component`, `version` in config and annotations,
/// signed with `signature` if given.
pub fn build(component: &[u8], version: Option<&str>, signature: Option<&Signature>) -> Built {
    let component_digest = digest(component);
    let config = WasmConfig {
        architecture: "wasm".to_owned(),
        os: "wasip2".to_owned(),
        layer_digests: vec![component_digest.clone()],
        component: ComponentInfo {
            target: WORLD.to_owned(),
            exports: vec!["init".to_owned(), "check".to_owned()],
        },
        version: version.map(str::to_owned),
    };
    // Serialising a struct of strings cannot fail.
    let config = serde_json::to_vec(&config).unwrap_or_default();
    let mut annotations = BTreeMap::new();
    if let Some(v) = version {
        annotations.insert(VERSION_ANNOTATION.to_owned(), v.to_owned());
    }
    let mut manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_owned()),
        config: OciDescriptor {
            media_type: CONFIG_MEDIA_TYPE.to_owned(),
            digest: digest(&config),
            size: config.len() as i64,
            ..OciDescriptor::default()
        },
        layers: vec![OciDescriptor {
            media_type: LAYER_MEDIA_TYPE.to_owned(),
            digest: component_digest.clone(),
            size: component.len() as i64,
            ..OciDescriptor::default()
        }],
        annotations: Some(annotations),
        ..OciImageManifest::default()
    };
    if let Some(sig) = signature {
        set_signature(&mut manifest, sig);
    }
    Built {
        manifest,
        config,
        component_digest,
    }
}

/// Puts `sig` in the manifest's annotations.
pub fn set_signature(manifest: &mut OciImageManifest, sig: &Signature) {
    let a = manifest.annotations.get_or_insert_with(BTreeMap::new);
    a.insert(SIGNATURE_ANNOTATION.to_owned(), sig.value.clone());
    a.insert(KEY_ANNOTATION.to_owned(), sig.key.clone());
}

/// The signature the manifest carries, if any.
pub fn signature(manifest: &OciImageManifest) -> Option<Signature> {
    let a = manifest.annotations.as_ref()?;
    Some(Signature {
        value: a.get(SIGNATURE_ANNOTATION)?.clone(),
        key: a.get(KEY_ANNOTATION)?.clone(),
    })
}

/// Parses a manifest and checks that it is a plugin artifact: one
/// `application/wasm` layer, a Wasm config, a size within bounds.
pub fn parse_manifest(reference: &str, raw: &[u8]) -> Result<OciImageManifest, Error> {
    let not = |why: String| Error::NotAPlugin {
        reference: reference.to_owned(),
        why,
    };
    let manifest: OciImageManifest =
        serde_json::from_slice(raw).map_err(|e| not(format!("bad manifest: {e}")))?;
    if manifest.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(not(format!(
            "config media type {}, expected {CONFIG_MEDIA_TYPE}",
            manifest.config.media_type
        )));
    }
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == LAYER_MEDIA_TYPE => {
            if !(0..=MAX_COMPONENT as i64).contains(&layer.size) {
                return Err(not(format!("a component of {} bytes", layer.size)));
            }
        }
        layers => {
            let types: Vec<&str> = layers.iter().map(|l| l.media_type.as_str()).collect();
            return Err(not(format!(
                "layers [{}], expected one {LAYER_MEDIA_TYPE}",
                types.join(", ")
            )));
        }
    }
    if !(0..=1 << 20).contains(&manifest.config.size) {
        return Err(not(format!("a config of {} bytes", manifest.config.size)));
    }
    Ok(manifest)
}

/// Parses the config blob and checks the world it declares.
pub fn parse_config(reference: &str, raw: &[u8]) -> Result<WasmConfig, Error> {
    let config: WasmConfig = serde_json::from_slice(raw).map_err(|e| Error::NotAPlugin {
        reference: reference.to_owned(),
        why: format!("bad config blob: {e}"),
    })?;
    if config.component.target != WORLD {
        return Err(Error::WrongWorld {
            reference: reference.to_owned(),
            found: if config.component.target.is_empty() {
                "(none)".to_owned()
            } else {
                config.component.target.clone()
            },
            expected: WORLD.to_owned(),
        });
    }
    Ok(config)
}

/// Checks that `bytes` hash to `expected`.
pub fn check_digest(what: &str, expected: &str, bytes: &[u8]) -> Result<(), Error> {
    let found = digest(bytes);
    if found == expected {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            what: what.to_owned(),
            expected: expected.to_owned(),
            found,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0rest";

    #[test]
    fn built_artifacts_parse_back() {
        let b = build(COMPONENT, Some("1.2.0"), None);
        let raw = serde_json::to_vec(&b.manifest).unwrap();
        let m = parse_manifest("r", &raw).unwrap();
        assert_eq!(m.layers[0].digest, digest(COMPONENT));
        let c = parse_config("r", &b.config).unwrap();
        assert_eq!(c.version.as_deref(), Some("1.2.0"));
        assert_eq!(c.layer_digests, [b.component_digest]);
        assert!(signature(&m).is_none());
    }

    #[test]
    fn the_world_must_match() {
        let other = br#"{"architecture":"wasm","os":"wasip2","component":{"target":"wasi:http/proxy@0.2.0"}}"#;
        assert!(matches!(
            parse_config("r", other),
            Err(Error::WrongWorld { .. })
        ));
    }

    #[test]
    fn components_not_modules() {
        assert!(check_component("r", COMPONENT).is_ok());
        let e = check_component("r", b"\0asm\x01\0\0\0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("core WebAssembly module"), "{e}");
        assert!(check_component("r", b"MZ").is_err());
    }

    #[test]
    fn digests_are_checked() {
        assert!(check_digest("x", &digest(b"a"), b"a").is_ok());
        assert!(matches!(
            check_digest("x", &digest(b"a"), b"b"),
            Err(Error::DigestMismatch { .. })
        ));
    }

    #[test]
    fn world_matches_the_wit() {
        let wit = include_str!("../../../wit/policy.wit");
        assert!(wit.contains("package postern:policy@0.1.0;"));
        assert!(wit.contains("world plugin {"));
    }
}
