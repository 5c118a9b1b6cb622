//! A DNS list argument, `domain[=pattern]`, and its reply filter
//! (Postfix's `ip_match`): what `init` parses, apart from the lookups
//! that use it.

use std::net::Ipv4Addr;

use crate::hostname::valid_hostname;

/// The allowed values of one octet: inclusive ranges.
type Octet = Vec<(u8, u8)>;

/// A reply filter `d.d.d.d` whose fields may be `[list]`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter([Octet; 4]);

impl Filter {
    /// Parses an `ip_match` pattern such as `127.0.0.[2..11]`.
    pub fn parse(pattern: &str) -> Result<Filter, String> {
        let fields: Vec<&str> = pattern.split('.').collect();
        if fields.len() != 4 {
            // `[1..5]` splits at its own dots: rejoin bracketed fields.
            return Filter::parse_joined(pattern);
        }
        Filter::from_fields(pattern, fields)
    }

    fn parse_joined(pattern: &str) -> Result<Filter, String> {
        let mut fields = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            if rest.starts_with('[') {
                let end = rest
                    .find(']')
                    .ok_or_else(|| format!("{pattern:?}: missing ']'"))?;
                fields.push(&rest[..=end]);
                rest = &rest[end + 1..];
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                fields.push(&rest[..end]);
                rest = &rest[end..];
            }
            match rest.strip_prefix('.') {
                Some(r) if !r.is_empty() => rest = r,
                Some(_) => return Err(format!("{pattern:?}: ends in '.'")),
                None if rest.is_empty() => {}
                None => return Err(format!("{pattern:?}: expected '.' after ']'")),
            }
        }
        Filter::from_fields(pattern, fields)
    }

    fn from_fields(pattern: &str, fields: Vec<&str>) -> Result<Filter, String> {
        if fields.len() != 4 {
            return Err(format!(
                "{pattern:?}: expected four octet fields such as 127.0.0.[2..11]"
            ));
        }
        let mut octets: [Octet; 4] = Default::default();
        for (slot, field) in octets.iter_mut().zip(fields) {
            *slot = octet(field).map_err(|e| format!("{pattern:?}: {e}"))?;
        }
        Ok(Filter(octets))
    }

    /// Whether the list's answer `addr` passes the filter.
    pub fn matches(&self, addr: Ipv4Addr) -> bool {
        self.0
            .iter()
            .zip(addr.octets())
            .all(|(ranges, b)| ranges.iter().any(|&(lo, hi)| lo <= b && b <= hi))
    }
}

/// One octet field: `N` or `[N;N..N;...]`.
fn octet(field: &str) -> Result<Octet, String> {
    let number = |s: &str| {
        s.parse::<u8>()
            .map_err(|_| format!("bad octet value {s:?} (expected 0..255)"))
    };
    let Some(inner) = field.strip_prefix('[').and_then(|f| f.strip_suffix(']')) else {
        let n = number(field)?;
        return Ok(vec![(n, n)]);
    };
    inner
        .split(';')
        .map(|item| match item.split_once("..") {
            Some((lo, hi)) => {
                let (lo, hi) = (number(lo)?, number(hi)?);
                if lo > hi {
                    return Err(format!("bad range {item:?}: {lo} > {hi}"));
                }
                Ok((lo, hi))
            }
            None => number(item).map(|n| (n, n)),
        })
        .collect()
}

/// A list argument: `zen.spamhaus.org` or `zen.spamhaus.org=127.0.0.[2..11]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsList {
    /// The argument as written: the key of the reply map.
    pub spec: String,
    /// The list's domain, without the filter: `$rbl_domain`.
    pub domain: String,
    /// The filter on the list's A answers; none: any answer lists.
    pub filter: Option<Filter>,
}

impl DnsList {
    /// Parses a list argument.
    pub fn parse(spec: &str) -> Result<DnsList, String> {
        let (domain, filter) = match spec.split_once('=') {
            Some((d, f)) => (d, Some(Filter::parse(f)?)),
            None => (spec, None),
        };
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if !valid_hostname(domain) {
            return Err(format!("{spec:?}: {domain:?} is not a DNS list domain"));
        }
        Ok(DnsList {
            spec: spec.to_owned(),
            domain: domain.to_ascii_lowercase(),
            filter,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn filters_as_postfix_parses_them() {
        let f = Filter::parse("127.0.0.[2..11]").unwrap();
        assert!(f.matches(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(f.matches(Ipv4Addr::new(127, 0, 0, 11)));
        assert!(!f.matches(Ipv4Addr::new(127, 0, 0, 1)));
        assert!(!f.matches(Ipv4Addr::new(127, 0, 1, 2)));
        let f = Filter::parse("127.0.0.2").unwrap();
        assert!(f.matches(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(!f.matches(Ipv4Addr::new(127, 0, 0, 3)));
        let f = Filter::parse("127.0.0.[1;5]").unwrap();
        assert!(f.matches(Ipv4Addr::new(127, 0, 0, 5)));
        assert!(!f.matches(Ipv4Addr::new(127, 0, 0, 3)));
        let f = Filter::parse("127.[0..1].0.[1;3..4]").unwrap();
        assert!(f.matches(Ipv4Addr::new(127, 1, 0, 4)));
        for bad in [
            "127.0.0",
            "127.0.0.256",
            "127.0.0.[5..2]",
            "127.0.0.[2..11",
            "127.0.0.x",
            "127.0.0.2.",
            "127.0.0.[]",
            "",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_arguments() {
        let l = DnsList::parse("zen.spamhaus.org=127.0.0.[2..11]").unwrap();
        assert_eq!(l.domain, "zen.spamhaus.org");
        assert!(l.filter.is_some());
        assert_eq!(l.spec, "zen.spamhaus.org=127.0.0.[2..11]");
        assert!(DnsList::parse("bl.example.").unwrap().filter.is_none());
        assert!(DnsList::parse("bad domain").is_err());
        assert!(DnsList::parse("rbl.test=1.2").is_err());
    }
}
