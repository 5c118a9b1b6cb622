//! Mail addresses as RFC 5321 §4.1.2 defines them, parsed once at the edge.

use std::fmt;

/// Why a string is not an address or a domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The string was empty where a value is required.
    #[error("empty address")]
    Empty,
    /// No `@` separated a local part from a domain.
    #[error("missing '@domain' in address")]
    MissingDomain,
    /// RFC 5321 §4.5.3.1.1: the local part is at most 64 octets.
    #[error("local part longer than 64 octets")]
    LocalPartTooLong,
    /// RFC 5321 §4.5.3.1.2: a domain is at most 255 octets, a label 63.
    #[error("domain too long")]
    DomainTooLong,
    /// A character that cannot appear where it was found.
    #[error("invalid character {0:?} in {1}")]
    InvalidCharacter(char, &'static str),
    /// A domain label that is empty (two dots, a leading dot) or starts or
    /// ends with a hyphen.
    #[error("invalid domain label in {0:?}")]
    InvalidLabel(String),
}

/// A domain name, lower-cased for comparison. Address literals
/// (`[192.0.2.1]`, `[IPv6:...]`) are kept as written, brackets included.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Parses a domain (RFC 5321 `Domain` or `address-literal`). UTF-8
    /// labels are accepted as written (SMTPUTF8, RFC 6531).
    pub fn parse(s: &str) -> Result<Domain, AddressError> {
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.len() > 255 {
            return Err(AddressError::DomainTooLong);
        }
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or(AddressError::InvalidLabel(s.to_owned()))?;
            let ok = match inner.strip_prefix("IPv6:").or(inner.strip_prefix("ipv6:")) {
                Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
                None => inner.parse::<std::net::Ipv4Addr>().is_ok(),
            };
            return if ok {
                Ok(Domain(s.to_owned()))
            } else {
                Err(AddressError::InvalidLabel(s.to_owned()))
            };
        }
        for label in s.split('.') {
            if label.is_empty()
                || label.len() > 63
                || label.starts_with('-')
                || label.ends_with('-')
            {
                return Err(AddressError::InvalidLabel(s.to_owned()));
            }
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(AddressError::InvalidCharacter(c, "domain"));
            }
        }
        Ok(Domain(s.to_lowercase()))
    }

    /// The domain as text, lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `self` is `other` or a subdomain of it.
    pub fn is_within(&self, other: &Domain) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.ends_with(&other.0)
                && self.0.as_bytes()[self.0.len() - other.0.len() - 1] == b'.')
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mailbox `local@domain`. The local part keeps its case (RFC 5321 §2.4:
/// only the destination host may interpret it); the domain is lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    domain: Domain,
}

impl Address {
    /// Parses `local@domain`, without angle brackets. A quoted local part
    /// (`"john doe"@example.com`) is kept with its quotes.
    pub fn parse(s: &str) -> Result<Address, AddressError> {
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        let at = s.rfind('@').ok_or(AddressError::MissingDomain)?;
        let (local, domain) = (&s[..at], &s[at + 1..]);
        if local.is_empty() {
            return Err(AddressError::Empty);
        }
        if local.len() > 64 {
            return Err(AddressError::LocalPartTooLong);
        }
        let quoted = local.len() >= 2 && local.starts_with('"') && local.ends_with('"');
        if !quoted {
            if let Some(c) = local
                .chars()
                .find(|c| c.is_control() || c.is_whitespace() || "<>()[]\\,;:@\"".contains(*c))
            {
                return Err(AddressError::InvalidCharacter(c, "local part"));
            }
        } else if let Some(c) = quoted_string_error(&local[1..local.len() - 1]) {
            return Err(AddressError::InvalidCharacter(c, "local part"));
        }
        Ok(Address {
            local: local.to_owned(),
            domain: Domain::parse(domain)?,
        })
    }

    /// Builds an address from parts already known to be valid.
    pub fn new(local: impl Into<String>, domain: Domain) -> Address {
        Address {
            local: local.into(),
            domain,
        }
    }

    /// The local part, as the client wrote it.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The local part with any `+extension` (recipient_delimiter) removed.
    pub fn local_base(&self, delimiter: Option<char>) -> &str {
        match delimiter {
            Some(d) => self.local.split(d).next().unwrap_or(&self.local),
            None => &self.local,
        }
    }
}

/// RFC 5321 §4.1.2 Quoted-string, between its quotes: `"` and `\` only as
/// a quoted pair (`\"`, `\\`), no control character but tab. Returns the
/// first character at fault. Without this check `"x"\,y"@d` passed as
/// quoted, and our own `RCPT TO:<...>` for it would not parse at the next
/// hop (found by the fuzzer, fuzz/corpus/smtp_command/).
fn quoted_string_error(inner: &str) -> Option<char> {
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) if !n.is_control() || n == '\t' => {}
                Some(n) => return Some(n),
                None => return Some('\\'),
            },
            '"' => return Some('"'),
            c if c.is_control() && c != '\t' => return Some(c),
            _ => {}
        }
    }
    None
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// The envelope sender: an address, or the null reverse-path `<>` that
/// bounces use (RFC 5321 §4.5.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `MAIL FROM:<>`.
    Null,
    /// `MAIL FROM:<local@domain>`.
    Address(Address),
}

impl ReversePath {
    /// The address, or `None` for the null sender.
    pub fn address(&self) -> Option<&Address> {
        match self {
            ReversePath::Null => None,
            ReversePath::Address(a) => Some(a),
        }
    }
}

/// Displays as Postfix logs it: the address, or the empty string for `<>`.
impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => Ok(()),
            ReversePath::Address(a) => a.fmt(f),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_lowercases_domain() {
        let a = Address::parse("Alice@Example.COM").unwrap();
        assert_eq!(a.local(), "Alice");
        assert_eq!(a.domain().as_str(), "example.com");
        assert_eq!(a.to_string(), "Alice@example.com");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Address::parse("nodomain"), Err(AddressError::MissingDomain));
        assert!(Address::parse("a b@example.com").is_err());
        assert!(Address::parse("a@exa mple.com").is_err());
        assert!(Address::parse("a@.example.com").is_err());
        assert!(Address::parse("a@-x.com").is_err());
        assert!(Address::parse(&format!("{}@x.com", "a".repeat(65))).is_err());
        assert!(Address::parse("@x.com").is_err());
    }

    /// Found by the fuzzer: a local part that starts and ends with a quote
    /// is not a quoted string unless the inside is one.
    #[test]
    fn quoted_local_parts() {
        assert!(Address::parse("\"a b@c\"@example.com").is_ok());
        assert!(Address::parse("\"a\\\"b\\\\\"@example.com").is_ok());
        assert!(Address::parse("\"x\"\\,y\"@example.com").is_err());
        assert!(Address::parse("\"x\"y\"@example.com").is_err());
        assert!(Address::parse("\"x\\\"@example.com").is_err());
        assert!(Address::parse("\"\"@example.com").is_ok());
    }

    #[test]
    fn address_literals() {
        assert!(Domain::parse("[192.0.2.1]").is_ok());
        assert!(Domain::parse("[IPv6:::1]").is_ok());
        assert!(Domain::parse("[300.1.1.1]").is_err());
    }

    #[test]
    fn subdomains() {
        let d = Domain::parse("mail.example.com").unwrap();
        assert!(d.is_within(&Domain::parse("example.com").unwrap()));
        assert!(!d.is_within(&Domain::parse("ample.com").unwrap()));
    }

    #[test]
    fn extension() {
        let a = Address::parse("user+tag@x.org").unwrap();
        assert_eq!(a.local_base(Some('+')), "user");
        assert_eq!(a.local_base(None), "user+tag");
    }
}
