//! crypt(3) hashes as the system writes them in `/etc/shadow`: the
//! Modular Crypt Format `$id$...` families that glibc's and libxcrypt's
//! `crypt()` verify, which is what Dovecot's `CRYPT` scheme and its
//! `shadow` passdb hand the password to.
//!
//! Known: yescrypt (`$y$`, Debian 11+, Fedora 35+ and Ubuntu 22.04+
//! default), sha512-crypt (`$6$`), sha256-crypt (`$5$`), bcrypt (`$2b$`,
//! `$2a$`, `$2y$`) and md5-crypt (`$1$`, legacy).
//!
//! Why pure-Rust crates and not the system's libcrypt or PAM: the
//! workspace forbids `unsafe` code, so linking `crypt_r` ourselves is out,
//! and PAM through a crate would add a C build dependency (libpam headers)
//! for every developer and CI and a PAM service file for every site, for
//! checks that are, for mail, a password comparison plus the shadow(5)
//! ageing fields (read in [`crate::system`]). Each family is verified by
//! the maintained crate for it: RustCrypto's `yescrypt` (a port of the
//! Openwall reference, tested against its answers) and `sha-crypt`, the
//! `bcrypt` crate the users file already uses, and `pwhash` for md5-crypt
//! only, the one family RustCrypto does not carry. Older families (DES,
//! `$sha1$`, `$7$`, `$gy$`) are [`SchemeError::Unknown`]: the login fails.

use yescrypt::{PasswordVerifier, Yescrypt};

use crate::scheme::SchemeError;

/// The crypt family of `hash`, by its `$id$`, as Dovecot names it; `None`
/// for one this module cannot verify.
pub fn family(hash: &str) -> Option<&'static str> {
    let id = hash.strip_prefix('$')?.split('$').next()?;
    Some(match id {
        "y" => "YESCRYPT",
        "6" => "SHA512-CRYPT",
        "5" => "SHA256-CRYPT",
        "2a" | "2b" | "2y" => "BLF-CRYPT",
        "1" => "MD5-CRYPT",
        _ => return None,
    })
}

/// Whether `password` matches the crypt(3) `hash`. `Ok(false)` is a wrong
/// password, `Err` a hash of an unknown family or malformed. Slow on
/// purpose: call it off the async workers.
pub fn verify(hash: &str, password: &str) -> Result<bool, SchemeError> {
    let Some(name) = family(hash) else {
        // The id only: a hash never appears in an error.
        let id = hash
            .strip_prefix('$')
            .and_then(|h| h.split('$').next())
            .unwrap_or("DES");
        return Err(SchemeError::Unknown(format!("CRYPT ${id}$")));
    };
    let malformed = || SchemeError::Malformed(name);
    match name {
        "YESCRYPT" => match Yescrypt::default().verify_password(password.as_bytes(), hash) {
            Ok(()) => Ok(true),
            Err(yescrypt::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(_) => Err(malformed()),
        },
        "SHA512-CRYPT" | "SHA256-CRYPT" => {
            let checked = if name == "SHA512-CRYPT" {
                sha_crypt::sha512_check(password, hash)
            } else {
                sha_crypt::sha256_check(password, hash)
            };
            match checked {
                Ok(()) => Ok(true),
                // sha-crypt 0.5 does not export its CheckError, only its
                // Debug: a mismatch is a wrong password, the rest a bad hash.
                Err(e) if format!("{e:?}") == "HashMismatch" => Ok(false),
                Err(_) => Err(malformed()),
            }
        }
        "BLF-CRYPT" => bcrypt::verify(password, hash).map_err(|_| malformed()),
        // md5-crypt: a hash pwhash cannot read is a mismatch, not an
        // error (its verify does not tell the two apart).
        _ => Ok(pwhash::md5_crypt::verify(password, hash)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Hashes of `secret` as the system's libxcrypt writes them (Perl's
    /// `crypt()` on Debian 12, the function /etc/shadow is written with).
    const SECRET: [&str; 5] = [
        "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$GmcwIgvdUC9qLWcKCi6gklUa1dM3ziD43YxYNURLKy0",
        "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
        "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
        "$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW",
        "$1$saltsalt$9xy1btjgzLYfb7hivXtC//",
    ];

    #[test]
    fn every_family_verifies() {
        for hash in SECRET {
            assert_eq!(verify(hash, "secret"), Ok(true), "{hash}");
            assert_eq!(verify(hash, "Secret"), Ok(false), "{hash}");
        }
    }

    #[test]
    fn yescrypt_reference_answers() {
        // From the yescrypt reference implementation's TESTS-OK.
        let hash = "$y$jD5.7$LdJMENpBABJJ3hIHjB1Bi.$HboGM6qPrsK.StKYGt6KErmUYtioHreJd98oIugoNB6";
        assert_eq!(verify(hash, "pleaseletmein"), Ok(true));
        assert_eq!(verify(hash, "pleaseletmeout"), Ok(false));
    }

    #[test]
    fn unknown_and_malformed() {
        assert_eq!(
            verify("abJnggxhB/yWI", "x"),
            Err(SchemeError::Unknown("CRYPT $DES$".to_owned()))
        );
        assert_eq!(
            verify("$7$abc$def", "x"),
            Err(SchemeError::Unknown("CRYPT $7$".to_owned()))
        );
        assert_eq!(
            verify("$y$nonsense", "x"),
            Err(SchemeError::Malformed("YESCRYPT"))
        );
        assert!(verify("$6$", "x").is_err());
        assert!(verify("$2b$99$x", "x").is_err());
        assert_eq!(verify("$1$", "x"), Ok(false));
    }
}
