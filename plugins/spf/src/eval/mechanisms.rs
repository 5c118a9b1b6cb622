//! The mechanisms of §5, each as it matches the client (`all`, `ip4`,
//! `ip6`, `include`, `a`, `mx`, `ptr`, `exists`), the PTR names of the
//! client that validate (§5.5), which `ptr` and `%{p}` (§7.3) share, and
//! the per-mechanism name limits of §4.6.4. The lookup counters and the
//! records themselves are [`super`]'s.

use std::net::IpAddr;

use postern_plugin_sdk::dns::DnsError;
use postern_plugin_sdk::resolver::Resolver;

use super::{Eval, SpfResult, Stop, in_network, temporary, valid_domain};
use crate::macros::MacroString;
use crate::record::Mechanism;

/// §4.6.4: no more than 10 MX names, and 10 PTR names, per mechanism.
const NAME_LIMIT: usize = 10;

impl<R: Resolver> Eval<'_, R> {
    /// The addresses of `name` in the client's family; `Ok(None)` for a
    /// void answer.
    fn addresses(&mut self, name: &str) -> Result<Option<Vec<IpAddr>>, Stop> {
        if !valid_domain(name) {
            return Ok(None);
        }
        let answer = match self.query.ip {
            IpAddr::V4(_) => self.dns.a(name),
            IpAddr::V6(_) => self.dns.aaaa(name),
        };
        match answer {
            Ok(list) if list.is_empty() => Ok(None),
            Ok(list) => Ok(Some(list.iter().filter_map(|a| a.parse().ok()).collect())),
            Err(e) if temporary(&e) => Err(Stop::Temp(format!("DNS error looking up {name}"))),
            Err(_) => Ok(None),
        }
    }

    /// Whether `mechanism` of `domain`'s record matches the client.
    pub(super) fn matches(&mut self, mechanism: &Mechanism, domain: &str) -> Result<bool, Stop> {
        let ip = self.query.ip;
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4(net, bits) => Ok(in_network(ip, IpAddr::V4(*net), *bits, 0)),
            Mechanism::Ip6(net, bits) => Ok(in_network(ip, IpAddr::V6(*net), 0, *bits)),
            Mechanism::Include(spec) => {
                self.count()?;
                let target = self.target(spec, domain)?;
                // §5.2: pass matches; fail, softfail, neutral do not;
                // none is a permerror.
                let answer = self.check(&target)?;
                match answer.result {
                    SpfResult::Pass => Ok(true),
                    SpfResult::None => Err(Stop::Perm(format!("include:{target}: no SPF record"))),
                    _ => Ok(false),
                }
            }
            Mechanism::A(spec, v4, v6) => {
                self.count()?;
                let target = self.optional_target(spec.as_ref(), domain)?;
                match self.addresses(&target)? {
                    None => self.void().map(|()| false),
                    Some(list) => Ok(list.iter().any(|a| in_network(ip, *a, *v4, *v6))),
                }
            }
            Mechanism::Mx(spec, v4, v6) => {
                self.count()?;
                let target = self.optional_target(spec.as_ref(), domain)?;
                let exchangers = if valid_domain(&target) {
                    match self.dns.mx(&target) {
                        Ok(list) => list,
                        Err(e) if temporary(&e) => {
                            return Err(Stop::Temp(format!("DNS error looking up MX {target}")));
                        }
                        Err(_) => Vec::new(),
                    }
                } else {
                    Vec::new()
                };
                if exchangers.is_empty() {
                    return self.void().map(|()| false);
                }
                if exchangers.len() > NAME_LIMIT {
                    return Err(Stop::Perm(format!(
                        "mx:{target}: more than {NAME_LIMIT} MX records (RFC 7208 4.6.4)"
                    )));
                }
                for mx in &exchangers {
                    // A null MX (RFC 7505) names no host.
                    if mx.exchange.is_empty() || mx.exchange == "." {
                        continue;
                    }
                    if let Some(list) = self.addresses(&mx.exchange)?
                        && list.iter().any(|a| in_network(ip, *a, *v4, *v6))
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                self.count()?;
                let target = self.optional_target(spec.as_ref(), domain)?;
                let names = self.validated_names()?;
                let target = target.to_ascii_lowercase();
                Ok(names.iter().any(|n| {
                    let n = n.to_ascii_lowercase();
                    n == target || n.ends_with(&format!(".{target}"))
                }))
            }
            Mechanism::Exists(spec) => {
                self.count()?;
                let target = self.target(spec, domain)?;
                if !valid_domain(&target) {
                    return Ok(false);
                }
                // §5.7: an A query whatever the client's family.
                match self.dns.a(&target) {
                    Ok(list) if !list.is_empty() => Ok(true),
                    Err(e) if temporary(&e) => {
                        Err(Stop::Temp(format!("DNS error looking up {target}")))
                    }
                    _ => self.void().map(|()| false),
                }
            }
        }
    }

    /// The target of `a`, `mx`, `ptr`: the domain-spec, or the current
    /// domain (§4.8).
    fn optional_target(
        &mut self,
        spec: Option<&MacroString>,
        domain: &str,
    ) -> Result<String, Stop> {
        match spec {
            Some(spec) => self.target(spec, domain),
            None => Ok(domain.to_owned()),
        }
    }

    /// §5.5: the PTR names of the client (the first 10) whose addresses
    /// include it. A failed PTR lookup matches nothing; a failed address
    /// lookup skips that name. A void PTR lookup counts as one.
    fn validated_names(&mut self) -> Result<Vec<String>, Stop> {
        let ip = self.query.ip;
        let names = match self.dns.ptr(&ip.to_string()) {
            Ok(names) if !names.is_empty() => names,
            Ok(_) | Err(DnsError::Nxdomain) => {
                self.void()?;
                return Ok(Vec::new());
            }
            Err(_) => return Ok(Vec::new()),
        };
        let mut validated = Vec::new();
        for name in names.into_iter().take(NAME_LIMIT) {
            let name = name.strip_suffix('.').unwrap_or(&name).to_owned();
            let found = match ip {
                IpAddr::V4(_) => self.dns.a(&name),
                IpAddr::V6(_) => self.dns.aaaa(&name),
            };
            if let Ok(list) = found
                && list.iter().any(|a| a.parse::<IpAddr>().ok() == Some(ip))
            {
                validated.push(name);
            }
        }
        Ok(validated)
    }

    /// `%{p}` (§7.3): the validated name that is `domain`, else one of its
    /// subdomains, else any; none when no name validates.
    pub(super) fn validated_name(&mut self, domain: &str) -> Option<String> {
        // %{p} is not one of the terms §4.6.4 counts; its own failures
        // make it "unknown".
        let voids = self.voids;
        let names = self.validated_names().unwrap_or_default();
        self.voids = voids;
        let domain = domain.to_ascii_lowercase();
        let suffix = format!(".{domain}");
        names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(&domain))
            .or_else(|| {
                names
                    .iter()
                    .find(|n| n.to_ascii_lowercase().ends_with(&suffix))
            })
            .or_else(|| names.first())
            .cloned()
    }
}
