//! `check_host()` (RFC 7208 §4): the evaluation of a domain's SPF record
//! for a client address, with includes and redirects, the limit of 10
//! mechanisms and modifiers that look names up and of 2 void lookups
//! (§4.6.4), and the explanation of a fail (§6.2). DNS goes through a
//! [`Resolver`], so that unit tests answer from a table. How each
//! mechanism matches is in `mechanisms` (§5).

use std::net::IpAddr;

use postern_plugin_sdk::dns::DnsError;
use postern_plugin_sdk::resolver::Resolver;

use crate::macros::{Context, MacroString};
use crate::record::{self, Qualifier, Record};

mod mechanisms;

/// §4.6.4: "SPF implementations MUST limit the total number of those
/// terms to 10 during SPF evaluation".
const LOOKUP_LIMIT: u32 = 10;

/// §4.6.4: "SPF implementations SHOULD limit "void lookups" to two", the
/// default of an operator's `Void_Limit`.
pub const VOID_LIMIT: u32 = 2;

/// The results of §2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfResult {
    /// No record, or no checkable domain.
    None,
    /// The domain states nothing about the address.
    Neutral,
    /// The address is authorized.
    Pass,
    /// The address is not authorized.
    Fail,
    /// Probably not authorized.
    SoftFail,
    /// A transient (DNS) error.
    TempError,
    /// The domain's records cannot be interpreted.
    PermError,
}

impl SpfResult {
    /// The result's name as RFC 7208 writes it in Received-SPF (§9.1).
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The result.
    pub result: SpfResult,
    /// The mechanism that matched, as written (`default` when none did,
    /// as pyspf says).
    pub mechanism: Option<String>,
    /// For a fail, the domain's explanation (`exp=`), if it had a usable
    /// one.
    pub explanation: Option<String>,
    /// For an error, what went wrong.
    pub problem: Option<String>,
}

/// The arguments of `check_host(<ip>, <domain>, <sender>)` (§4.1), with
/// what the macros need besides.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    /// The client address; an IPv4-mapped IPv6 address counts as IPv4
    /// (§5, "IPv4-mapped IPv6 ... MUST still be considered an IPv4").
    pub ip: IpAddr,
    /// The sender, `local@domain` (for the HELO identity,
    /// `postmaster@helo`).
    pub sender: &'a str,
    /// The HELO/EHLO name, for `%{h}`.
    pub helo: &'a str,
    /// The receiving host, for `%{r}`.
    pub receiver: &'a str,
    /// Seconds since the epoch, for `%{t}`.
    pub now: u64,
    /// The void lookup limit (§4.6.4).
    pub void_limit: u32,
}

/// Why evaluation stopped early.
enum Stop {
    Temp(String),
    Perm(String),
}

/// What a (possibly nested) check_host answered: the result, the term
/// that decided it, and the `exp=` of the record that did (§6.2: an
/// include's own `exp` is never used; a redirect's is).
struct Answer {
    result: SpfResult,
    mechanism: String,
    exp: Option<(MacroString, String)>,
}

/// One evaluation's state: the DNS, the counters of §4.6.4, and `%{p}`
/// once computed.
struct Eval<'a, R: Resolver> {
    dns: &'a R,
    query: &'a Query<'a>,
    local: String,
    sender_domain: String,
    lookups: u32,
    voids: u32,
    validated: Option<Option<String>>,
}

/// Runs check_host() for `query`: the domain is the sender's (§4.1).
pub fn check_host<R: Resolver>(dns: &R, query: &Query<'_>) -> Outcome {
    let (local, domain) = match query.sender.rsplit_once('@') {
        Some((local, domain)) => (local, domain),
        None => ("", query.sender),
    };
    // §4.3: an empty local part is "postmaster".
    let local = if local.is_empty() {
        "postmaster"
    } else {
        local
    };
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    // §4.3: a malformed or single-label domain (an address literal too)
    // has no SPF: none.
    if !valid_domain(domain) || !domain.contains('.') || domain.starts_with('[') {
        return outcome(SpfResult::None, None, None, None);
    }
    let sender = format!("{local}@{domain}");
    let query = Query {
        ip: canonical(query.ip),
        sender: &sender,
        ..query.clone()
    };
    let mut eval = Eval {
        dns,
        query: &query,
        local: local.to_owned(),
        sender_domain: domain.to_owned(),
        lookups: 0,
        voids: 0,
        validated: None,
    };
    match eval.check(domain) {
        Ok(answer) => {
            let explanation = match (&answer.result, &answer.exp) {
                (SpfResult::Fail, Some((spec, domain))) => eval.explain(spec, domain),
                _ => None,
            };
            outcome(answer.result, Some(answer.mechanism), explanation, None)
        }
        Err(Stop::Temp(why)) => outcome(SpfResult::TempError, None, None, Some(why)),
        Err(Stop::Perm(why)) => outcome(SpfResult::PermError, None, None, Some(why)),
    }
}

fn outcome(
    result: SpfResult,
    mechanism: Option<String>,
    explanation: Option<String>,
    problem: Option<String>,
) -> Outcome {
    Outcome {
        result,
        mechanism,
        explanation,
        problem,
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether `ip` (IPv4-mapped counting as IPv4) lies in `network`/`bits`.
pub fn contains(network: IpAddr, bits: u8, ip: IpAddr) -> bool {
    in_network(canonical(ip), network, bits, bits)
}

/// A name DNS can be asked about: labels of 1 to 63 bytes, 253 in all
/// (RFC 1035 §2.3.4), a trailing dot allowed.
fn valid_domain(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty() && name.len() <= 253 && name.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

/// §7.3: "if the expanded domain name exceeds 253 characters ..., the
/// left side is truncated to fit, by removing successive domain labels".
/// The trailing dot is dropped too (§7.3 examples treat it as absent).
fn truncate(name: &str) -> &str {
    let mut name = name.strip_suffix('.').unwrap_or(name);
    while name.len() > 253 {
        match name.split_once('.') {
            Some((_, rest)) => name = rest,
            None => break,
        }
    }
    name
}

/// Whether `ip` lies in `network`/`bits`.
fn in_network(ip: IpAddr, network: IpAddr, v4: u8, v6: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(v6)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// A DNS failure that is temporary (§5: "the mechanism stops and the
/// topmost check_host() returns temperror").
fn temporary(e: &DnsError) -> bool {
    matches!(e, DnsError::Servfail | DnsError::Timeout)
}

impl<R: Resolver> Eval<'_, R> {
    /// check_host() for `domain`: none when it has no record.
    fn check(&mut self, domain: &str) -> Result<Answer, Stop> {
        let none = Answer {
            result: SpfResult::None,
            mechanism: String::new(),
            exp: None,
        };
        if !valid_domain(domain) {
            return Ok(none);
        }
        // §4.4: the TXT lookup; NXDOMAIN is none, a failure temperror.
        let txt = match self.dns.txt(domain) {
            Ok(txt) => txt,
            Err(e) if temporary(&e) => {
                return Err(Stop::Temp(format!("DNS error looking up TXT {domain}")));
            }
            Err(_) => return Ok(none),
        };
        let record = match record::select(&txt).as_slice() {
            [] => return Ok(none),
            [one] => Record::parse(one).map_err(|e| Stop::Perm(format!("{domain}: {e}")))?,
            _ => {
                return Err(Stop::Perm(format!(
                    "{domain}: more than one SPF record (RFC 7208 4.5)"
                )));
            }
        };
        for directive in &record.directives {
            if self.matches(&directive.mechanism, domain)? {
                let result = match directive.qualifier {
                    Qualifier::Pass => SpfResult::Pass,
                    Qualifier::Fail => SpfResult::Fail,
                    Qualifier::SoftFail => SpfResult::SoftFail,
                    Qualifier::Neutral => SpfResult::Neutral,
                };
                return Ok(Answer {
                    result,
                    mechanism: directive.text.clone(),
                    exp: record.exp.map(|e| (e, domain.to_owned())),
                });
            }
        }
        if let Some(spec) = &record.redirect {
            // §6.1: the redirected domain's result is this one's; no
            // record there is a permerror.
            self.count()?;
            let target = self.target(spec, domain)?;
            let answer = self.check(&target)?;
            if answer.result == SpfResult::None {
                return Err(Stop::Perm(format!("redirect={target}: no SPF record")));
            }
            return Ok(answer);
        }
        // §4.7: nothing matched, no redirect.
        Ok(Answer {
            result: SpfResult::Neutral,
            mechanism: "default".to_owned(),
            exp: record.exp.map(|e| (e, domain.to_owned())),
        })
    }

    /// One more term that looks names up (§4.6.4).
    fn count(&mut self) -> Result<(), Stop> {
        self.lookups += 1;
        if self.lookups > LOOKUP_LIMIT {
            return Err(Stop::Perm(format!(
                "more than {LOOKUP_LIMIT} DNS lookups (RFC 7208 4.6.4)"
            )));
        }
        Ok(())
    }

    /// One more lookup that found nothing (§4.6.4).
    fn void(&mut self) -> Result<(), Stop> {
        self.voids += 1;
        if self.voids > self.query.void_limit {
            return Err(Stop::Perm(format!(
                "more than {} void DNS lookups (RFC 7208 4.6.4)",
                self.query.void_limit
            )));
        }
        Ok(())
    }

    /// The macro context with `domain` as `%{d}`.
    fn context<'b>(&'b self, domain: &'b str) -> Context<'b> {
        Context {
            sender: self.query.sender,
            local: &self.local,
            sender_domain: &self.sender_domain,
            domain,
            ip: self.query.ip,
            helo: self.query.helo,
            validated: self.validated.as_ref().and_then(|v| v.as_deref()),
            receiver: self.query.receiver,
            now: self.query.now,
        }
    }

    /// A domain-spec expanded into a target name (§4.8), truncated to fit.
    fn target(&mut self, spec: &MacroString, domain: &str) -> Result<String, Stop> {
        if spec.needs_ptr() && self.validated.is_none() {
            let name = self.validated_name(domain);
            self.validated = Some(name);
        }
        let expanded = spec
            .expand(&self.context(domain))
            .map_err(|e| Stop::Perm(format!("{domain}: {e}")))?;
        Ok(truncate(&expanded).to_owned())
    }

    /// §6.2: the explanation of a fail from `exp=`, or none if anything
    /// about it is wrong (DNS error, no or several TXT records, bad
    /// macro syntax, text that is not ASCII).
    fn explain(&mut self, spec: &MacroString, domain: &str) -> Option<String> {
        let target = self.target(spec, domain).ok()?;
        if !valid_domain(&target) {
            return None;
        }
        let txt = self.dns.txt(&target).ok()?;
        let [text] = txt.as_slice() else {
            return None;
        };
        let string = MacroString::parse(text, true).ok()?;
        if string.needs_ptr() && self.validated.is_none() {
            let name = self.validated_name(domain);
            self.validated = Some(name);
        }
        string.expand(&self.context(domain)).ok()
    }
}
