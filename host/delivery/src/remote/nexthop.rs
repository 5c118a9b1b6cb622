//! Where a recipient goes, in Postfix's spellings: a next hop
//! (`[host]:port` without MX lookup, `host:port` with it) and a transport
//! (`smtp:`, `lmtp:`, `local:`, `error:text`), as `relayhost` and
//! transport(5) tables write them.

use std::fmt;
use std::path::PathBuf;

/// The default LMTP port (RFC 2033 §5 suggests none; Postfix uses 24).
const LMTP_PORT: u16 = 24;

/// A next hop for SMTP.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// A domain (looked up for MX), a host name or an address literal.
    pub host: String,
    /// The port; `None`: `smtp_tcp_port`.
    pub port: Option<u16>,
    /// Whether MX records are looked up (`host`), or the host is
    /// connected to directly (`[host]`).
    pub mx: bool,
}

impl NextHop {
    /// Reads `[host]:port`, `[host]`, `host:port` or `host`.
    pub fn parse(text: &str) -> Result<NextHop, String> {
        let text = text.trim();
        let bad = |why: &str| format!("{text:?}: {why}");
        let (host, port, mx) = match text.strip_prefix('[') {
            Some(inner) => {
                let (host, rest) = inner.split_once(']').ok_or_else(|| bad("missing \"]\""))?;
                match rest.strip_prefix(':') {
                    Some(port) => (host, Some(port), false),
                    None if rest.is_empty() => (host, None, false),
                    None => return Err(bad("unexpected text after \"]\"")),
                }
            }
            None => match text.split_once(':') {
                Some((host, port)) if !port.contains(':') => (host, Some(port), true),
                Some(_) => return Err(bad("an IPv6 address must be in brackets")),
                None => (text, None, true),
            },
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad("bad port"))?),
            None => None,
        };
        if host.is_empty()
            || host
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_')))
        {
            return Err(bad("not a host name or address"));
        }
        Ok(NextHop {
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            port,
            mx,
        })
    }

    /// The recipient domain as next hop: MX lookup, default port.
    pub fn domain(domain: &str) -> NextHop {
        NextHop {
            host: domain.to_ascii_lowercase(),
            port: None,
            mx: true,
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mx {
            f.write_str(&self.host)?;
        } else {
            write!(f, "[{}]", self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// Where an LMTP server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LmtpTarget {
    /// `unix:/path`.
    Unix(PathBuf),
    /// `[host]:port` or `inet:host:port` (no MX lookup; port 24 by
    /// default).
    Inet(NextHop),
}

impl fmt::Display for LmtpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LmtpTarget::Unix(p) => write!(f, "unix:{}", p.display()),
            LmtpTarget::Inet(h) => h.fmt(f),
        }
    }
}

/// A transport(5) entry's meaning.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// `local:` (or `virtual:`): local delivery.
    Local,
    /// `smtp:nexthop` (or `relay:`); `None`: the recipient's domain.
    Smtp(Option<NextHop>),
    /// `lmtp:unix:/path`, `lmtp:[host]:port`.
    Lmtp(LmtpTarget),
    /// `error:text`: bounce at once with the text.
    Error(String),
    /// `retry:text`: defer with the text.
    Retry(String),
}

impl Transport {
    /// Reads `transport:nexthop` as a transport(5) value.
    pub fn parse(value: &str) -> Result<Transport, String> {
        let value = value.trim();
        let (name, next) = value.split_once(':').unwrap_or((value, ""));
        let next = next.trim();
        Ok(match name.to_ascii_lowercase().as_str() {
            "local" | "virtual" => Transport::Local,
            "smtp" | "relay" if next.is_empty() => Transport::Smtp(None),
            "smtp" | "relay" => Transport::Smtp(Some(NextHop::parse(next)?)),
            "lmtp" => Transport::Lmtp(lmtp_target(next)?),
            "error" => Transport::Error(next.to_owned()),
            "retry" => Transport::Retry(next.to_owned()),
            "" if !next.is_empty() => Transport::Smtp(Some(NextHop::parse(next)?)),
            other => {
                return Err(format!(
                    "{value:?}: unknown transport {other:?} (expected smtp, relay, lmtp, local, \
                     virtual, error or retry)"
                ));
            }
        })
    }
}

fn lmtp_target(next: &str) -> Result<LmtpTarget, String> {
    if let Some(path) = next.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("lmtp:unix: needs a socket path".to_owned());
        }
        return Ok(LmtpTarget::Unix(PathBuf::from(path)));
    }
    if next.starts_with('/') {
        return Ok(LmtpTarget::Unix(PathBuf::from(next)));
    }
    let inet = next.strip_prefix("inet:").unwrap_or(next);
    if inet.is_empty() {
        return Err("lmtp: needs unix:/path or [host]:port".to_owned());
    }
    let mut hop = NextHop::parse(inet)?;
    hop.mx = false;
    hop.port = hop.port.or(Some(LMTP_PORT));
    Ok(LmtpTarget::Inet(hop))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn next_hops() {
        let hop = NextHop::parse("[Relay.Example]:587").unwrap();
        assert_eq!(
            (hop.host.as_str(), hop.port, hop.mx),
            ("relay.example", Some(587), false)
        );
        assert_eq!(hop.to_string(), "[relay.example]:587");
        let hop = NextHop::parse("example.net:2525").unwrap();
        assert_eq!((hop.port, hop.mx), (Some(2525), true));
        let hop = NextHop::parse("[127.0.0.1]").unwrap();
        assert_eq!(
            (hop.host.as_str(), hop.port, hop.mx),
            ("127.0.0.1", None, false)
        );
        assert!(NextHop::parse("[::1]:25").is_ok());
        for bad in ["", "[x", "host:port", "[h]x", "a b", "::1", "h:99999"] {
            assert!(NextHop::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn transports() {
        assert_eq!(Transport::parse("local:").unwrap(), Transport::Local);
        assert_eq!(Transport::parse("smtp:").unwrap(), Transport::Smtp(None));
        assert_eq!(
            Transport::parse("smtp:[127.0.0.1]:2525").unwrap(),
            Transport::Smtp(Some(NextHop::parse("[127.0.0.1]:2525").unwrap()))
        );
        assert_eq!(
            Transport::parse("error:no mail here").unwrap(),
            Transport::Error("no mail here".to_owned())
        );
        assert_eq!(
            Transport::parse("lmtp:unix:/run/dovecot/lmtp").unwrap(),
            Transport::Lmtp(LmtpTarget::Unix("/run/dovecot/lmtp".into()))
        );
        let Transport::Lmtp(LmtpTarget::Inet(hop)) = Transport::parse("lmtp:[10.0.0.1]").unwrap()
        else {
            panic!()
        };
        assert_eq!(hop.port, Some(24));
        assert!(Transport::parse("uucp:x").is_err());
        assert!(Transport::parse("lmtp:").is_err());
    }
}
