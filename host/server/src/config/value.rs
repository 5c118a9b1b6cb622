//! Reading expanded parameter strings into their kinds, as Postfix's
//! `get_mail_conf_*` functions do. Each function returns a message fit
//! for a [`super::ConfigError`].

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use postern_mail::Domain;

/// Splits a Postfix list: items separated by commas and/or white space.
pub fn list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// `yes`/`no` (also `true`/`false`, as TOML writes booleans).
pub fn boolean(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        other => Err(format!("expected yes or no, found {other:?}")),
    }
}

/// A non-negative integer.
pub fn count(value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("expected a non-negative integer, found {value:?}"))
}

/// A duration with Postfix's units: s, m, h, d, w; a bare number is seconds.
pub fn time(value: &str) -> Result<Duration, String> {
    let v = value.trim();
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a time such as 300s, 5m, 4h or 5d, found {value:?}"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "unknown time unit {unit:?} in {value:?} (use s, m, h, d or w)"
            ));
        }
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("time {value:?} is too large"))
}

/// One domain.
pub fn domain(value: &str) -> Result<Domain, String> {
    Domain::parse(value.trim()).map_err(|e| format!("{value:?} is not a valid domain: {e}"))
}

/// A list of domains. Lookup tables (`hash:/etc/x`) come with the tables
/// issue; until then they are refused by name.
pub fn domains(value: &str) -> Result<Vec<Domain>, String> {
    list(value)
        .map(|item| {
            if item.contains(':') || item.starts_with('/') {
                return Err(format!(
                    "{item:?}: lookup tables in domain lists are not supported yet"
                ));
            }
            domain(item)
        })
        .collect()
}

/// A list of networks in Postfix's mynetworks syntax: `192.0.2.0/24`,
/// `192.0.2.7` (a /32), `[2001:db8::]/32`, `[::1]`.
pub fn networks(value: &str) -> Result<Vec<IpNet>, String> {
    list(value).map(network).collect()
}

fn network(item: &str) -> Result<IpNet, String> {
    let (addr, len) = match item.rsplit_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (item, None),
    };
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("{item:?} is not a network address (expected CIDR such as 192.0.2.0/24 or [2001:db8::]/32)"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{item:?}: prefix length must be 0..={max}"))?,
    };
    let net = IpNet::new(ip, len).map_err(|e| format!("{item:?}: {e}"))?;
    if net.trunc() != net {
        // Postfix refuses 192.0.2.1/24 too: the host bits hide a typo.
        return Err(format!(
            "{item:?}: non-zero host bits (did you mean {}?)",
            net.trunc()
        ));
    }
    Ok(net)
}

/// inet_interfaces: `all`, `loopback-only`, or a list of addresses.
pub fn interfaces(value: &str) -> Result<Vec<IpAddr>, String> {
    match value.trim() {
        "all" => Ok(vec![IpAddr::from([0, 0, 0, 0]), IpAddr::from([0u16; 8])]),
        "loopback-only" | "localhost" => Ok(vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
        ]),
        v => list(v)
            .map(|a| {
                let a = a
                    .strip_prefix('[')
                    .and_then(|x| x.strip_suffix(']'))
                    .unwrap_or(a);
                a.parse::<IpAddr>()
                    .map_err(|_| format!("{a:?} is not an IP address (or all, loopback-only)"))
            })
            .collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn networks_in_postfix_syntax() {
        let n = networks("127.0.0.0/8, [::1]/128 192.0.2.7 [2001:db8::]/32").unwrap();
        assert_eq!(n.len(), 4);
        assert_eq!(n[2].to_string(), "192.0.2.7/32");
        assert!(networks("300.0.0.0/8").is_err());
        assert!(networks("10.0.0.0/33").is_err());
        assert!(
            networks("10.0.0.1/8")
                .unwrap_err()
                .contains("did you mean 10.0.0.0/8")
        );
    }

    #[test]
    fn times_and_bools() {
        assert_eq!(time("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(time("5d").unwrap(), Duration::from_secs(432_000));
        assert_eq!(time("90").unwrap(), Duration::from_secs(90));
        assert!(time("5y").is_err());
        assert!(boolean("yes").unwrap());
        assert!(!boolean("False").unwrap());
        assert!(boolean("maybe").is_err());
    }

    #[test]
    fn domain_lists() {
        let d = domains("example.com, Mail.Example.COM localhost").unwrap();
        assert_eq!(d[1].as_str(), "mail.example.com");
        assert!(domains("hash:/etc/postfix/relay").is_err());
        assert!(domains("bad..domain").is_err());
    }
}
