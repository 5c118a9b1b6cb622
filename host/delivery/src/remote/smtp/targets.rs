//! Where a batch goes: the servers of a next hop in the order to try
//! them (its MX hosts, or the host itself), and their addresses, less
//! any that would send the mail back to this server. Apart from the
//! session code because it is all DNS and loop detection, no SMTP.

use std::net::SocketAddr;

use postern_mail::{DeliveryStatus, EnhancedCode};

use crate::remote::RemoteDelivery;
use crate::remote::dns::{Exchangers, LookupError};
use crate::remote::nexthop::NextHop;

/// A server to try: the name it was found under and an address.
pub(super) type Target = (String, SocketAddr);

impl RemoteDelivery {
    /// The servers of `hop`, in the order to try them; a status for every
    /// recipient when there is none to try.
    pub(super) async fn targets(
        &self,
        hop: &NextHop,
        port: u16,
    ) -> Result<Vec<Target>, DeliveryStatus> {
        let hosts: Vec<String> = if hop.mx {
            match self.dns.exchangers(&hop.host).await {
                Err(e) => return Err(lookup_failure(&e)),
                Ok(Exchangers::Null) => {
                    return Err(DeliveryStatus::Bounced {
                        dsn: EnhancedCode::new(5, 1, 10),
                        detail: format!("Domain {} does not accept mail (nullMX)", hop.host),
                    });
                }
                Ok(Exchangers::Implicit) => vec![hop.host.clone()],
                Ok(Exchangers::Hosts(hosts)) => {
                    // RFC 5321 §5.1: when this host is an MX, only the
                    // better ones are tried; if it is the best, mail for
                    // the domain has come back to where it started.
                    let mine = hosts
                        .iter()
                        .position(|(_, h)| *h == self.settings.myhostname);
                    let better: Vec<String> = hosts
                        .into_iter()
                        .take(mine.unwrap_or(usize::MAX))
                        .map(|(_, h)| h)
                        .collect();
                    if better.is_empty() {
                        return Err(self.loops(hop));
                    }
                    better
                }
            }
        } else {
            vec![hop.host.clone()]
        };
        let mut targets = Vec::new();
        let mut failure = None;
        for host in hosts {
            match self.dns.addresses(&host).await {
                Ok(ips) => targets.extend(
                    ips.into_iter()
                        .map(|ip| (host.clone(), SocketAddr::new(ip, port))),
                ),
                Err(e) => failure = Some(e),
            }
        }
        let before = targets.len();
        targets.retain(|(_, addr)| !self.settings.own_addresses.contains(addr));
        if targets.is_empty() {
            return Err(match failure {
                _ if before > 0 => self.loops(hop),
                Some(e) => lookup_failure(&e),
                None => DeliveryStatus::Deferred {
                    dsn: EnhancedCode::new(4, 4, 3),
                    detail: format!("no address for {}", hop.host),
                },
            });
        }
        Ok(targets)
    }

    fn loops(&self, hop: &NextHop) -> DeliveryStatus {
        DeliveryStatus::Bounced {
            dsn: EnhancedCode::new(5, 4, 6),
            detail: format!("mail for {} loops back to myself", hop.host),
        }
    }
}

/// A failed DNS lookup: NXDOMAIN bounces (5.4.4), the rest defer (4.4.3).
fn lookup_failure(e: &LookupError) -> DeliveryStatus {
    if e.is_temporary() {
        DeliveryStatus::Deferred {
            dsn: EnhancedCode::new(4, 4, 3),
            detail: e.to_string(),
        }
    } else {
        DeliveryStatus::Bounced {
            dsn: EnhancedCode::new(5, 4, 4),
            detail: e.to_string(),
        }
    }
}
