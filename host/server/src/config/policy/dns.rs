//! `[dns]`: the resolver that plugins' lookups go through (name servers,
//! the timeout of one lookup, the DNS budget of one call). Apart because
//! it configures the policy runtime's resolver, not the plugins.

use std::net::SocketAddr;

use toml::de::DeTable;

use super::{Ctx, PolicySettings, duration};
use crate::config::toml_value;

impl PolicySettings {
    pub(super) fn read_dns(&mut self, table: &DeTable<'_>, cx: &mut Ctx<'_>) {
        for (key, v) in table.iter() {
            let k = key.get_ref().as_ref();
            let path = format!("dns.{k}");
            let at = v.span().start;
            match k {
                "nameservers" => {
                    let Some(s) = toml_value::scalar(v)
                        .map_err(|m| cx.error(at, &path, m))
                        .ok()
                    else {
                        continue;
                    };
                    let servers: Result<Vec<SocketAddr>, String> = s
                        .value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(nameserver)
                        .collect();
                    match servers {
                        Ok(servers) => self.dns.nameservers = servers,
                        Err(m) => cx.error(at, &path, m),
                    }
                }
                "timeout" | "budget" => {
                    let Some(d) = cx
                        .scalar(&path, v)
                        .and_then(|s| duration(&s).map_err(|m| cx.error(at, &path, m)).ok())
                    else {
                        continue;
                    };
                    if k == "timeout" {
                        self.dns.timeout = d;
                    } else {
                        self.dns.budget = d;
                    }
                }
                _ => cx.error(
                    key.span().start,
                    &path,
                    "unknown key (expected nameservers, timeout, budget)",
                ),
            }
        }
    }
}

/// `127.0.0.1:5353`, `[::1]:5353`, or an address on port 53.
fn nameserver(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not a name server address such as 127.0.0.1:5353"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nameservers() {
        assert_eq!(nameserver("127.0.0.1"), Ok("127.0.0.1:53".parse().unwrap()));
        assert!(nameserver("localhost:53").is_err());
    }
}
