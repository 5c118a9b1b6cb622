//! The pieces of a mail address Postfix's restrictions look at. The host
//! hands addresses over without angle brackets; the null sender is the
//! empty string.

/// The domain of `address` (after the last `@`), lower-cased; `None` for
/// an address without one (a bare local part, the null sender).
pub fn domain(address: &str) -> Option<String> {
    let (_, domain) = address.rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

/// The local part of `address` (before the last `@`), or the whole
/// address when it has no `@`.
pub fn local_part(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(local, _)| local)
}

/// `local` without its address extension: `user+ext` -> `user` for the
/// delimiter `+` (Postfix's recipient_delimiter; any of its characters).
pub fn without_extension<'a>(local: &'a str, delimiters: &str) -> &'a str {
    if delimiters.is_empty() {
        return local;
    }
    local
        .find(|c| delimiters.contains(c))
        .map_or(local, |at| &local[..at])
}

/// Whether `name` is a fully-qualified domain name in Postfix's sense
/// (reject_non_fqdn_*): at least one dot, and not ending in one.
pub fn is_fqdn(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.contains('.') && !name.starts_with('.')
}

/// `domain` and each of its parent domains, most specific first:
/// `a.b.example` -> `a.b.example`, `b.example`, `example`.
pub fn parents(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(domain), |d| d.split_once('.').map(|(_, rest)| rest))
        .filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces() {
        assert_eq!(domain("A@Example.ORG").as_deref(), Some("example.org"));
        assert_eq!(domain("a@b@c.example").as_deref(), Some("c.example"));
        assert_eq!(domain(""), None);
        assert_eq!(domain("postmaster"), None);
        assert_eq!(local_part("user+x@example.org"), "user+x");
        assert_eq!(without_extension("user+x", "+"), "user");
        assert_eq!(without_extension("user-x+y", "+-"), "user");
        assert_eq!(without_extension("user", ""), "user");
        assert!(is_fqdn("mx.example.org"));
        assert!(is_fqdn("mx.example.org."));
        assert!(!is_fqdn("localhost"));
        assert_eq!(
            parents("a.b.example").collect::<Vec<_>>(),
            ["a.b.example", "b.example", "example"]
        );
    }
}
