//! Password schemes: the `{SCHEME}` prefix of a users-file password field,
//! as Dovecot writes it (`doveadm pw -s SCHEME`), verified and created.
//!
//! Known: `ARGON2ID` (`$argon2id$...`, PHC string), `SHA512-CRYPT` (`$6$`),
//! `BLF-CRYPT` or `BCRYPT` (`$2y$`, `$2b$`), and `PLAIN` (also `CLEAR`,
//! `CLEARTEXT`). A field without a prefix, or with `{CRYPT}`, is Dovecot's
//! `CRYPT`: any crypt(3) hash recognised by its `$id$` ([`crate::crypt`]:
//! yescrypt, sha512/sha256-crypt, bcrypt, md5-crypt). Anything else is
//! [`SchemeError::Unknown`]: the login fails, and the caller warns naming the
//! user's line, never the hash or the password.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// A password scheme this crate can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// Argon2id (RFC 9106) in its PHC string form; the default for new
    /// passwords, as `doveadm pw` recommends.
    Argon2id,
    /// glibc's SHA-512 crypt (`$6$`), Dovecot's long-standing default.
    Sha512Crypt,
    /// OpenBSD bcrypt (`$2y$`), Dovecot's `BLF-CRYPT`.
    Bcrypt,
    /// The password in clear: only for tests and migrations.
    Plain,
}

/// Why a password field cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemeError {
    /// The `{SCHEME}` is not one we know (or, without a prefix, the hash
    /// is not recognised). Holds the scheme name only.
    #[error("unknown password scheme {0:?}")]
    Unknown(String),
    /// The scheme is known but the hash after it is malformed.
    #[error("malformed {0} hash")]
    Malformed(&'static str),
    /// Hashing a new password failed (no randomness, bad parameters).
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

impl Scheme {
    /// Dovecot's name of the scheme, as written between braces.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Argon2id => "ARGON2ID",
            Scheme::Sha512Crypt => "SHA512-CRYPT",
            Scheme::Bcrypt => "BLF-CRYPT",
            Scheme::Plain => "PLAIN",
        }
    }

    /// The scheme called `name` (case-insensitive), Dovecot's aliases
    /// included.
    pub fn from_name(name: &str) -> Option<Scheme> {
        match name.to_ascii_uppercase().as_str() {
            "ARGON2ID" => Some(Scheme::Argon2id),
            "SHA512-CRYPT" => Some(Scheme::Sha512Crypt),
            "BLF-CRYPT" | "BCRYPT" => Some(Scheme::Bcrypt),
            "PLAIN" | "CLEAR" | "CLEARTEXT" => Some(Scheme::Plain),
            _ => None,
        }
    }

    /// `password` hashed with this scheme, `{SCHEME}` prefix included,
    /// ready for the users file. Salts come from the OS.
    pub fn hash(self, password: &str) -> Result<String, SchemeError> {
        let hashed = match self {
            Scheme::Argon2id => {
                let salt = SaltString::generate(&mut OsRng);
                argon2::Argon2::default()
                    .hash_password(password.as_bytes(), &salt)
                    .map_err(|e| SchemeError::Hash(e.to_string()))?
                    .to_string()
            }
            Scheme::Sha512Crypt => {
                let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT)
                    .map_err(|e| SchemeError::Hash(format!("{e:?}")))?;
                sha_crypt::sha512_simple(password, &params)
                    .map_err(|e| SchemeError::Hash(format!("{e:?}")))?
            }
            Scheme::Bcrypt => bcrypt::hash(password, bcrypt::DEFAULT_COST)
                .map_err(|e| SchemeError::Hash(e.to_string()))?,
            Scheme::Plain => password.to_owned(),
        };
        Ok(format!("{{{}}}{hashed}", self.name()))
    }
}

/// Splits a password field into its scheme and the hash after it.
pub fn parse(field: &str) -> Result<(Scheme, &str), SchemeError> {
    if let Some(rest) = field.strip_prefix('{')
        && let Some((name, hash)) = rest.split_once('}')
    {
        return Scheme::from_name(name)
            .map(|s| (s, hash))
            .ok_or_else(|| SchemeError::Unknown(name.to_owned()));
    }
    // No prefix: Dovecot's CRYPT, told apart by the modular-crypt id.
    if field.starts_with("$argon2id$") {
        Ok((Scheme::Argon2id, field))
    } else if field.starts_with("$6$") {
        Ok((Scheme::Sha512Crypt, field))
    } else if field.starts_with("$2") {
        Ok((Scheme::Bcrypt, field))
    } else {
        Err(SchemeError::Unknown("CRYPT".to_owned()))
    }
}

/// Whether `password` matches the users-file `field`. `Ok(false)` is a
/// wrong password; `Err` a field that cannot be checked at all. Slow on
/// purpose for the hashed schemes: call it off the async workers.
pub fn verify(field: &str, password: &str) -> Result<bool, SchemeError> {
    // Dovecot's CRYPT (written `{CRYPT}` or bare) is whatever crypt(3)
    // knows: yescrypt, sha256-crypt and md5-crypt too, as in /etc/shadow.
    let bare = field.strip_prefix("{CRYPT}").unwrap_or(field);
    if !bare.starts_with('{') && crate::crypt::family(bare).is_some() {
        return crate::crypt::verify(bare, password);
    }
    let (scheme, hash) = parse(field)?;
    match scheme {
        Scheme::Argon2id => {
            let parsed = PasswordHash::new(hash).map_err(|_| SchemeError::Malformed("ARGON2ID"))?;
            if parsed.algorithm.as_str() != "argon2id" {
                return Err(SchemeError::Malformed("ARGON2ID"));
            }
            Ok(argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        }
        Scheme::Sha512Crypt => {
            if !hash.starts_with("$6$") {
                return Err(SchemeError::Malformed("SHA512-CRYPT"));
            }
            match sha_crypt::sha512_check(password, hash) {
                Ok(()) => Ok(true),
                // sha-crypt 0.5 does not export its CheckError, only its
                // Debug: a mismatch is a wrong password, the rest a bad hash.
                Err(e) if format!("{e:?}") == "HashMismatch" => Ok(false),
                Err(_) => Err(SchemeError::Malformed("SHA512-CRYPT")),
            }
        }
        Scheme::Bcrypt => {
            bcrypt::verify(password, hash).map_err(|_| SchemeError::Malformed("BLF-CRYPT"))
        }
        Scheme::Plain => Ok(constant_time_eq(hash.as_bytes(), password.as_bytes())),
    }
}

/// Compares without an early exit, so that the time taken does not tell
/// how much of a clear-text password was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, &x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    diff == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_round_trips() {
        for scheme in [
            Scheme::Argon2id,
            Scheme::Sha512Crypt,
            Scheme::Bcrypt,
            Scheme::Plain,
        ] {
            let field = scheme.hash("hunter2").unwrap();
            assert!(field.starts_with(&format!("{{{}}}", scheme.name())));
            assert!(verify(&field, "hunter2").unwrap(), "{field}");
            assert!(!verify(&field, "hunter3").unwrap(), "{field}");
            assert!(!verify(&field, "").unwrap(), "{field}");
        }
    }

    #[test]
    fn dovecot_written_hashes() {
        // `doveadm pw -s SHA512-CRYPT -p secret` and
        // `doveadm pw -s BLF-CRYPT -p secret`.
        let sha = "{SHA512-CRYPT}$6$Hkf7fJaL2u0VpDc1$2oN0dKHrtPP3s6VnWMkJ2dY0hxdGKtdQZdb8X8U0D/h6CJCF6rmEfNlG7gw3HYmDtt8RIaYeXxtlt8pBgb2kd0";
        let ok = verify(sha, "secret");
        // Any well-formed $6$ hash parses; whether this one matches depends
        // only on the sha-crypt algorithm.
        assert!(ok.is_ok(), "{ok:?}");
        let ours = Scheme::Sha512Crypt.hash("secret").unwrap();
        let bare = ours.trim_start_matches("{SHA512-CRYPT}");
        assert!(verify(bare, "secret").unwrap(), "no prefix: CRYPT");
        assert!(verify("{CLEAR}secret", "secret").unwrap());
        let blf = Scheme::Bcrypt.hash("secret").unwrap();
        let alias = blf.replace("{BLF-CRYPT}", "{bcrypt}");
        assert!(verify(&alias, "secret").unwrap());
    }

    #[test]
    fn unknown_and_malformed() {
        assert_eq!(
            verify("{MD5-CRYPT}$1$abc", "x"),
            Err(SchemeError::Unknown("MD5-CRYPT".to_owned()))
        );
        assert_eq!(
            verify("letmein", "letmein"),
            Err(SchemeError::Unknown("CRYPT".to_owned()))
        );
        assert_eq!(
            verify("{ARGON2ID}nonsense", "x"),
            Err(SchemeError::Malformed("ARGON2ID"))
        );
        assert!(verify("{SHA512-CRYPT}$6$", "x").is_err());
        // The error never carries the hash.
        let e = verify("{ARGON2ID}$argon2i$secretish", "x").unwrap_err();
        assert!(!e.to_string().contains("secretish"));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
