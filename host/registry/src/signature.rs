//! Ed25519 signatures over a component's digest, and the operator's trust.
//!
//! The publisher signs the text `postern-plugin-v1 sha256:HEX` (the
//! component layer's digest) with a secret key; the signature and the
//! key's id travel as manifest annotations ([`crate::artifact`]) and are
//! copied into `plugins.lock`, so `postern plugin verify` checks them
//! offline. The operator trusts public keys, written `ed25519:BASE64` in
//! `[plugins] trusted_keys`; with `require_signatures = true` a plugin
//! without a signature by one of them is refused. Not cosign: its
//! signatures live in a separate artifact and need a transparency log to
//! check the way it means them to be checked.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature as EdSignature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// What is signed: a fixed context, then the digest, so that a signature
/// for something else can never pass for a plugin's.
fn message(digest: &str) -> Vec<u8> {
    format!("postern-plugin-v1 {digest}").into_bytes()
}

/// A signature and the id of the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The key id ([`key_id`]).
    pub key: String,
    /// The 64 signature bytes, base64.
    pub value: String,
}

/// A key's id: the first 16 hex digits of the SHA-256 of its 32 bytes,
/// short enough to read in a lock file and a log line.
pub fn key_id(key: &VerifyingKey) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A public key as config writes it: `ed25519:BASE64`.
pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("ed25519:{}", B64.encode(key.as_bytes()))
}

/// Parses `ed25519:BASE64`.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, Error> {
    let bad = |why: &str| Error::BadKey {
        key: text.to_owned(),
        why: why.to_owned(),
    };
    let b64 = text
        .trim()
        .strip_prefix("ed25519:")
        .ok_or_else(|| bad("expected ed25519:BASE64"))?;
    let bytes = B64.decode(b64).map_err(|e| bad(&e.to_string()))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| bad("an ed25519 public key is 32 bytes"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| bad(&e.to_string()))
}

/// The secret-key file's first word.
const SECRET_PREFIX: &str = "ed25519-secret:";

/// A new secret key from the kernel's random source, as the text of a key
/// file, and its public key.
pub fn generate() -> Result<(String, VerifyingKey), Error> {
    let mut seed = [0u8; 32];
    let random = Path::new("/dev/urandom");
    let mut f = std::fs::File::open(random).map_err(Error::io(random))?;
    std::io::Read::read_exact(&mut f, &mut seed).map_err(Error::io(random))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((
        format!("{SECRET_PREFIX}{}\n", B64.encode(seed)),
        key.verifying_key(),
    ))
}

/// Reads a secret key file written by [`generate`].
pub fn read_secret_key(path: &Path) -> Result<SigningKey, Error> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let bad = |why: &str| Error::BadKey {
        key: path.display().to_string(),
        why: why.to_owned(),
    };
    let b64 = text
        .trim()
        .strip_prefix(SECRET_PREFIX)
        .ok_or_else(|| bad("expected a file written by `postern plugin keygen`"))?;
    let seed: [u8; 32] = B64
        .decode(b64)
        .map_err(|e| bad(&e.to_string()))?
        .try_into()
        .map_err(|_| bad("an ed25519 secret key is 32 bytes"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Signs `digest` (`sha256:HEX`) with `key`.
pub fn sign(key: &SigningKey, digest: &str) -> Signature {
    Signature {
        key: key_id(&key.verifying_key()),
        value: B64.encode(key.sign(&message(digest)).to_bytes()),
    }
}

/// The operator's trust: `[plugins] trusted_keys` and `require_signatures`.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The trusted public keys.
    pub keys: Vec<VerifyingKey>,
    /// Whether an unsigned plugin, or one signed by a key not trusted, is
    /// refused.
    pub require: bool,
}

impl Trust {
    /// Trust in the keys written `ed25519:BASE64`.
    pub fn new(keys: &[String], require: bool) -> Result<Trust, Error> {
        Ok(Trust {
            keys: keys
                .iter()
                .map(|k| parse_public_key(k))
                .collect::<Result<_, _>>()?,
            require,
        })
    }

    /// Checks the signature of `reference`'s component `digest`. `Ok(Some(id))`: signed by
    /// trusted key `id`; `Ok(None)`: unsigned, or by a key not trusted,
    /// where signatures are not required. A signature that does not
    /// verify is always an error: it means the bytes or the signature were
    /// changed.
    pub fn check(
        &self,
        reference: &str,
        digest: &str,
        signature: Option<&Signature>,
    ) -> Result<Option<String>, Error> {
        let Some(sig) = signature else {
            return if self.require {
                Err(Error::Unsigned {
                    reference: reference.to_owned(),
                })
            } else {
                Ok(None)
            };
        };
        let bad = |why: String| Error::BadSignature {
            reference: reference.to_owned(),
            key: sig.key.clone(),
            why,
        };
        let Some(key) = self.keys.iter().find(|k| key_id(k) == sig.key) else {
            return if self.require {
                Err(Error::UntrustedKey {
                    reference: reference.to_owned(),
                    key: sig.key.clone(),
                })
            } else {
                Ok(None)
            };
        };
        let bytes = B64.decode(&sig.value).map_err(|e| bad(e.to_string()))?;
        let sig_bytes: [u8; 64] = bytes
            .try_into()
            .map_err(|_| bad("an ed25519 signature is 64 bytes".to_owned()))?;
        key.verify(&message(digest), &EdSignature::from_bytes(&sig_bytes))
            .map_err(|_| bad(format!("it does not sign {digest}")))?;
        Ok(Some(key_id(key)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const D1: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const D2: &str = "sha256:aa7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn key() -> (SigningKey, String) {
        let dir = tempfile::tempdir().unwrap();
        let (text, public) = generate().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, text).unwrap();
        (read_secret_key(&path).unwrap(), public_key_text(&public))
    }

    #[test]
    fn signed_by_a_trusted_key() {
        let (secret, public) = key();
        let trust = Trust::new(&[public], true).unwrap();
        let sig = sign(&secret, D1);
        assert_eq!(
            trust.check("r", D1, Some(&sig)).unwrap(),
            Some(key_id(&secret.verifying_key()))
        );
        // The same signature over other bytes.
        assert!(matches!(
            trust.check("r", D2, Some(&sig)),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn unsigned_and_untrusted() {
        let (secret, _) = key();
        let (_, other) = key();
        let required = Trust::new(std::slice::from_ref(&other), true).unwrap();
        assert!(matches!(
            required.check("r", D1, None),
            Err(Error::Unsigned { .. })
        ));
        let sig = sign(&secret, D1);
        assert!(matches!(
            required.check("r", D1, Some(&sig)),
            Err(Error::UntrustedKey { .. })
        ));
        let optional = Trust::new(&[other], false).unwrap();
        assert_eq!(optional.check("r", D1, None).unwrap(), None);
        assert_eq!(optional.check("r", D1, Some(&sig)).unwrap(), None);
    }

    #[test]
    fn bad_keys_say_why() {
        assert!(parse_public_key("rsa:abc").is_err());
        assert!(parse_public_key("ed25519:AAAA").is_err());
        assert!(parse_public_key("ed25519:!!").is_err());
    }
}
