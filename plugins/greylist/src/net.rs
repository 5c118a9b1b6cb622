//! Client networks: the client part of a greylisting triplet (postgrey's
//! `--lookup-by-subnet`), and the client whitelist.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `addr` with all but its first `bits` bits cleared.
fn mask(addr: IpAddr, v4: u8, v6: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(v6)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// The client part of the triplet: the client's network (`subnet`: the
/// IPv4 and IPv6 prefix lengths), or its whole address. As postgrey, an
/// IPv4 client whose name holds its last two octets as words
/// (`dsl-10-20.pool.example`) is a dial-up pool where a retry comes from
/// the same address or not at all: its whole address is used. Text that
/// is not an address is used as it is.
pub fn client_key(address: &str, name: &str, subnet: Option<(u8, u8)>) -> String {
    let Ok(addr) = address.parse::<IpAddr>() else {
        return address.to_owned();
    };
    let Some((v4, v6)) = subnet else {
        return addr.to_string();
    };
    if let IpAddr::V4(a) = addr {
        let [_, _, c, d] = a.octets();
        let words: Vec<&str> = name.split(|ch: char| !ch.is_ascii_alphanumeric()).collect();
        if words.contains(&c.to_string().as_str()) && words.contains(&d.to_string().as_str()) {
            return addr.to_string();
        }
    }
    mask(addr, v4, v6).to_string()
}

/// One item of `whitelist_clients`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Client {
    /// An address or network.
    Net(IpAddr, u8),
    /// A host name: the client's verified name or one below it.
    Name(String),
}

/// The clients never greylisted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientList(Vec<Client>);

impl ClientList {
    /// Reads `192.0.2.1 198.51.100.0/24 2001:db8::/32 mail.example.com`
    /// (spaces or commas between items).
    pub fn parse(list: &str) -> Result<ClientList, String> {
        let mut items = Vec::new();
        for word in crate::words(list) {
            let (host, bits) = match word.split_once('/') {
                Some((h, b)) => (h, Some(b)),
                None => (word, None),
            };
            let item = match (host.parse::<IpAddr>(), bits) {
                (Ok(ip), bits) => {
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    let bits = match bits {
                        None => max,
                        Some(b) => b
                            .parse::<u8>()
                            .ok()
                            .filter(|&n| n <= max)
                            .ok_or_else(|| format!("{word}: bad prefix length"))?,
                    };
                    Client::Net(ip, bits)
                }
                (Err(_), None)
                    if word.contains('.')
                        && word
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') =>
                {
                    Client::Name(word.trim_matches('.').to_ascii_lowercase())
                }
                _ => return Err(format!("{word}: not an address, network or host name")),
            };
            items.push(item);
        }
        Ok(ClientList(items))
    }

    /// Whether the client (`address`, verified `name` or "unknown") is
    /// listed.
    pub fn matches(&self, address: &str, name: &str) -> bool {
        let addr = address.parse::<IpAddr>().ok();
        let name = name.to_ascii_lowercase();
        self.0.iter().any(|item| match item {
            Client::Net(net, bits) => addr.is_some_and(|a| {
                a.is_ipv4() == net.is_ipv4() && mask(a, *bits, *bits) == mask(*net, *bits, *bits)
            }),
            Client::Name(n) => {
                name == *n
                    || name
                        .strip_suffix(n.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn client_networks_as_postgrey() {
        let s = Some((24, 64));
        assert_eq!(client_key("192.0.2.77", "unknown", s), "192.0.2.0");
        assert_eq!(client_key("192.0.2.77", "unknown", None), "192.0.2.77");
        // A dial-up pool: the name holds the last two octets.
        assert_eq!(
            client_key("10.1.20.77", "dsl-20-77.pool.example", s),
            "10.1.20.77"
        );
        assert_eq!(client_key("10.1.20.77", "mx20.example", s), "10.1.20.0");
        assert_eq!(
            client_key("2001:db8:1:2:3::9", "unknown", s),
            "2001:db8:1:2::"
        );
        assert_eq!(client_key("2001:db8::9", "x", Some((24, 48))), "2001:db8::");
        assert_eq!(client_key("", "unknown", s), "");
    }

    #[test]
    fn whitelist() {
        let l =
            ClientList::parse("192.0.2.1, 198.51.100.0/24 2001:db8::/32 Mail.Example.com").unwrap();
        assert!(l.matches("192.0.2.1", "unknown"));
        assert!(!l.matches("192.0.2.2", "unknown"));
        assert!(l.matches("198.51.100.200", "unknown"));
        assert!(l.matches("2001:db8:ffff::1", "unknown"));
        assert!(!l.matches("2001:db9::1", "unknown"));
        assert!(l.matches("203.0.113.5", "mail.example.com"));
        assert!(l.matches("203.0.113.5", "out.MAIL.example.com"));
        assert!(!l.matches("203.0.113.5", "xmail.example.com"));
        assert!(!l.matches("203.0.113.5", "unknown"));
        assert!(ClientList::parse("10.0.0.0/33").is_err());
        assert!(ClientList::parse("not_a_host").is_err());
        assert_eq!(ClientList::parse(" , ").unwrap(), ClientList::default());
    }
}
