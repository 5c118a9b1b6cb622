//! Host name and address syntax as Postfix judges it
//! (`util/valid_hostname.c`): what `reject_invalid_helo_hostname`,
//! `reject_non_fqdn_*` and the RHSBL checks accept.

use std::net::{IpAddr, Ipv6Addr};

/// RFC 1035 §2.3.4: a label is at most 63 octets.
const MAX_LABEL: usize = 63;
/// RFC 1035 §2.3.4: a name is at most 255 octets.
const MAX_NAME: usize = 255;

/// `name` without one trailing dot (`a.example.` -> `a.example`), as
/// Postfix truncates names "ending in dot but not dot-dot" before judging
/// them.
pub fn truncate_dot(name: &str) -> &str {
    match name.strip_suffix('.') {
        Some(rest) if name.len() > 1 && !rest.ends_with('.') => rest,
        _ => name,
    }
}

/// Postfix's `valid_hostname`: labels of letters, digits, `_` (tolerated,
/// as Postfix does) and inner hyphens, separated by single dots, 63 octets
/// a label and 255 in all, and not all-numeric (an IPv4 address is not a
/// host name).
pub fn valid_hostname(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_NAME {
        return false;
    }
    let mut numeric = true;
    for label in name.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL {
            return false;
        }
        if label.starts_with('-') || label.ends_with('-') {
            return false;
        }
        for c in label.chars() {
            match c {
                '0'..='9' => {}
                'a'..='z' | 'A'..='Z' | '_' | '-' => numeric = false,
                _ => return false,
            }
        }
    }
    !numeric
}

/// Postfix's `valid_mailhost_addr`: an IPv4 address, or `IPv6:` and an
/// IPv6 address, as inside an address literal `[...]` (RFC 5321 §4.1.3).
pub fn valid_mailhost_addr(text: &str) -> bool {
    match text.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => text[5..].parse::<Ipv6Addr>().is_ok(),
        _ => text.parse::<std::net::Ipv4Addr>().is_ok(),
    }
}

/// Postfix's `valid_hostaddr`: a bare IPv4 or IPv6 address.
pub fn valid_hostaddr(text: &str) -> bool {
    text.parse::<IpAddr>().is_ok()
}

/// Whether `name` is an address literal `[...]` (skipped by the
/// host-name checks, which judge names only).
pub fn is_literal(name: &str) -> bool {
    name.starts_with('[') && name.ends_with(']')
}

/// Whether `name` is a fully-qualified host name in the sense of
/// `reject_non_fqdn_*`: valid, and with a dot, after truncating one
/// trailing dot.
pub fn is_fqdn_hostname(name: &str) -> bool {
    let name = truncate_dot(name);
    valid_hostname(name) && name.contains('.')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn hostnames_as_postfix_judges_them() {
        for good in [
            "mail.example.org",
            "a",
            "x_y.example",
            "a-b.c",
            "1a.example",
            "123.com4",
        ] {
            assert!(valid_hostname(good), "{good}");
        }
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "-a.example",
            "a-.example",
            "a b",
            "a@b",
            "1.2.3.4",
            "123",
            &"x".repeat(64),
            &["a"; 200].join("."),
        ] {
            assert!(!valid_hostname(bad), "{bad}");
        }
    }

    #[test]
    fn truncation_and_fqdn() {
        assert_eq!(truncate_dot("a.example."), "a.example");
        assert_eq!(truncate_dot("a.example.."), "a.example..");
        assert_eq!(truncate_dot("."), ".");
        assert!(is_fqdn_hostname("mail.example."));
        assert!(!is_fqdn_hostname("localhost"));
        assert!(!is_fqdn_hostname("1.2.3.4"));
        assert!(!is_fqdn_hostname("bad_.."));
    }

    #[test]
    fn address_literals() {
        assert!(valid_mailhost_addr("192.0.2.1"));
        assert!(valid_mailhost_addr("IPv6:2001:db8::1"));
        assert!(valid_mailhost_addr("ipv6:::1"));
        assert!(!valid_mailhost_addr("2001:db8::1"));
        assert!(!valid_mailhost_addr("300.1.1.1"));
        assert!(valid_hostaddr("2001:db8::1"));
        assert!(is_literal("[192.0.2.1]"));
        assert!(!is_literal("[192.0.2.1"));
    }
}
