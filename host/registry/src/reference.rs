//! Plugin references: `oci://HOST[:PORT]/NS/NAME:TAG[@sha256:HEX]`, and
//! `file:///DIR/NAME:TAG[@sha256:HEX]` for an OCI image layout directory
//! (air-gapped sites). The tag may instead be a semver constraint
//! (`oci://h/ns/greylist:^1.2`): it resolves to the highest tag that
//! satisfies it, at install and at each `update`.

use std::fmt;
use std::path::PathBuf;

use semver::VersionReq;

use crate::error::Error;

/// Where a plugin's artifacts live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An OCI distribution registry.
    Oci {
        /// `HOST[:PORT]`.
        host: String,
        /// `NS/NAME`.
        repository: String,
    },
    /// An OCI image layout directory.
    Layout {
        /// The directory (absolute).
        dir: PathBuf,
    },
}

/// A parsed plugin reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    /// The registry and repository, or the layout directory.
    pub location: Location,
    /// The tag, or a version constraint (see [`PluginRef::constraint`]).
    pub tag: Option<String>,
    /// A pinned digest, `sha256:HEX`: the manifest's or the component's.
    pub digest: Option<String>,
}

/// An OCI tag (distribution spec): `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn is_tag(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `sha256:` and 64 lower-case hex digits.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl PluginRef {
    /// Parses a reference; without a scheme, `oci://` is assumed.
    pub fn parse(text: &str) -> Result<PluginRef, Error> {
        let bad = |why: &str| Error::BadReference {
            reference: text.to_owned(),
            why: why.to_owned(),
        };
        let trimmed = text.trim();
        let (rest, digest) = match trimmed.split_once('@') {
            Some((r, d)) if is_digest(d) => (r, Some(d.to_owned())),
            Some(_) => return Err(bad("a digest is sha256: and 64 lower-case hex digits")),
            None => (trimmed, None),
        };
        // The tag follows the last ':' after the last '/' (a port's colon
        // comes before the first '/').
        let last_slash = rest.rfind('/').unwrap_or(0);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        let tag = match tag {
            None => None,
            Some(t) if is_tag(t) || VersionReq::parse(t).is_ok() => Some(t.to_owned()),
            Some(t) => {
                return Err(bad(&format!(
                    "{t:?} is neither a tag nor a version constraint"
                )));
            }
        };
        if tag.is_none() && digest.is_none() {
            return Err(bad(
                "name a tag (NAME:TAG), a constraint (NAME:^1.2) or a digest (NAME@sha256:...)",
            ));
        }
        let location = if let Some(dir) = path.strip_prefix("file://") {
            let dir = PathBuf::from(dir);
            if !dir.is_absolute() || dir.file_name().is_none() {
                return Err(bad(
                    "a file:// reference names an absolute layout directory",
                ));
            }
            Location::Layout { dir }
        } else {
            let path = path.strip_prefix("oci://").unwrap_or(path);
            let Some((host, repository)) = path.split_once('/') else {
                return Err(bad("expected HOST/NAMESPACE/NAME"));
            };
            let repo_ok = repository.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            });
            if host.is_empty() || host.contains("://") || !repo_ok {
                return Err(bad(
                    "expected HOST[:PORT]/NAMESPACE/NAME, the name in lower case, digits, '.', '_', '-'",
                ));
            }
            Location::Oci {
                host: host.to_owned(),
                repository: repository.to_owned(),
            }
        };
        Ok(PluginRef {
            location,
            tag,
            digest,
        })
    }

    /// The version constraint, if the tag is one rather than a tag
    /// (`^1.2`, `>=1, <2`; a plain `1.2.3` is a tag).
    pub fn constraint(&self) -> Option<VersionReq> {
        let tag = self.tag.as_deref()?;
        if is_tag(tag) {
            return None;
        }
        VersionReq::parse(tag).ok()
    }

    /// The plugin's name: the last part of the repository or directory,
    /// made a valid entry name (lower case, digits, `_`, `-`).
    pub fn name(&self) -> String {
        let last = match &self.location {
            Location::Oci { repository, .. } => repository.rsplit('/').next().unwrap_or(repository),
            Location::Layout { dir } => {
                dir.file_name().and_then(|n| n.to_str()).unwrap_or("plugin")
            }
        };
        last.chars()
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
                _ => '-',
            })
            .collect()
    }

    /// The same reference without its digest: how `plugins.lock` and a
    /// chain entry name it.
    pub fn without_digest(&self) -> PluginRef {
        PluginRef {
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> PluginRef {
        PluginRef {
            location: self.location.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        }
    }

    /// The registry: `HOST[:PORT]` or the layout directory.
    pub fn registry(&self) -> String {
        match &self.location {
            Location::Oci { host, .. } => host.clone(),
            Location::Layout { dir } => dir.display().to_string(),
        }
    }
}

/// Whether `host` (`HOST[:PORT]`) is this machine: the only registries
/// spoken to in plain HTTP.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::Oci { host, repository } => write!(f, "oci://{host}/{repository}")?,
            Location::Layout { dir } => write!(f, "file://{}", dir.display())?,
        }
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const D: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn oci_references() {
        let r = PluginRef::parse("oci://127.0.0.1:5000/postern/greylist:1.0").unwrap();
        assert_eq!(
            r.location,
            Location::Oci {
                host: "127.0.0.1:5000".into(),
                repository: "postern/greylist".into()
            }
        );
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.name(), "greylist");
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/postern/greylist:1.0");
        let bare = PluginRef::parse(&format!("localhost:5000/a/b@{D}")).unwrap();
        assert_eq!(bare.tag, None);
        assert_eq!(bare.digest.as_deref(), Some(D));
        assert_eq!(bare.to_string(), format!("oci://localhost:5000/a/b@{D}"));
    }

    #[test]
    fn constraints_are_not_tags() {
        let r = PluginRef::parse("oci://h/ns/p:^1.2").unwrap();
        assert_eq!(r.constraint().unwrap().to_string(), "^1.2");
        assert!(
            PluginRef::parse("oci://h/ns/p:1.2.3")
                .unwrap()
                .constraint()
                .is_none()
        );
    }

    #[test]
    fn layout_references() {
        let r = PluginRef::parse("file:///srv/plugins/Greylist.v2:1.0").unwrap();
        assert_eq!(
            r.location,
            Location::Layout {
                dir: "/srv/plugins/Greylist.v2".into()
            }
        );
        assert_eq!(r.name(), "greylist-v2");
        assert!(PluginRef::parse("file://relative/x:1").is_err());
    }

    #[test]
    fn bad_references_say_why() {
        for bad in [
            "oci://h/ns/p",
            "oci://h/ns/p:1@sha256:xyz",
            "oci://h/NS/p:1",
            "oci://h:1",
            "oci://h/ns/p:-bad!",
            "",
        ] {
            assert!(PluginRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("registry.example:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
