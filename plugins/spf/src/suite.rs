//! check_host() against RFC 7208 Appendix A and the cases of the RFC 7208
//! test suite (the one pyspf and Mail::SPF run, by its group and case
//! names), over DNS answered from a table; then the plugin's verdicts and
//! headers.
//!
//! This file holds the harness (the made-up DNS of [`Zone`], the cases and
//! their runner) and Appendix A; the suite's groups are apart, by the
//! part of RFC 7208 they test:
//! - `processing`: initial processing, record selection and the
//!   processing limits (§4);
//! - `mechanisms`: record evaluation, mechanism syntax and each mechanism
//!   (§4.6, §5);
//! - `exp_and_macros`: `exp=` and the other modifiers (§6), macro
//!   expansion (§7).

#![allow(clippy::unwrap_used)]

mod exp_and_macros;
mod mechanisms;
mod processing;

use std::collections::HashMap;
use std::net::IpAddr;

use postern_plugin_sdk::dns::{DnsError, Exchanger};
use postern_plugin_sdk::resolver::Resolver;

use crate::eval::{Query, SpfResult, VOID_LIMIT, check_host};

/// A zone: (name, type, value) rows. Type `TIMEOUT` makes every query of
/// the name time out; `SERVFAIL` fail. A name with rows of other types
/// answers an empty list for a type it lacks; a name without rows is
/// NXDOMAIN. PTR rows are keyed by the address.
#[derive(Default)]
pub(crate) struct Zone {
    rows: HashMap<String, Vec<(String, String)>>,
}

impl Zone {
    pub(crate) fn new(rows: &[(&str, &str, &str)]) -> Zone {
        let mut zone = Zone::default();
        zone.add(rows);
        zone
    }

    fn add(&mut self, rows: &[(&str, &str, &str)]) {
        for (name, kind, value) in rows {
            self.rows
                .entry(key(name))
                .or_default()
                .push(((*kind).to_owned(), (*value).to_owned()));
        }
    }

    fn get(&self, kind: &str, name: &str) -> Result<Vec<String>, DnsError> {
        let Some(rows) = self.rows.get(&key(name)) else {
            return Err(DnsError::Nxdomain);
        };
        if rows.iter().any(|(k, _)| k == "TIMEOUT") {
            return Err(DnsError::Timeout);
        }
        if rows.iter().any(|(k, _)| k == "SERVFAIL") {
            return Err(DnsError::Servfail);
        }
        Ok(rows
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, v)| v.clone())
            .collect())
    }
}

fn key(name: &str) -> String {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name,
    }
}

impl Resolver for Zone {
    fn a(&self, name: &str) -> Result<Vec<String>, DnsError> {
        self.get("A", name)
    }
    fn aaaa(&self, name: &str) -> Result<Vec<String>, DnsError> {
        self.get("AAAA", name)
    }
    fn mx(&self, name: &str) -> Result<Vec<Exchanger>, DnsError> {
        Ok(self
            .get("MX", name)?
            .iter()
            .map(|v| {
                let (pref, exchange) = v.split_once(' ').unwrap();
                Exchanger {
                    preference: pref.parse().unwrap(),
                    exchange: exchange.trim_end_matches('.').to_owned(),
                }
            })
            .collect())
    }
    fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        self.get("TXT", name)
    }
    fn ptr(&self, address: &str) -> Result<Vec<String>, DnsError> {
        self.get("PTR", address)
    }
}

/// Expected: a result (several when the suite allows either), and for a
/// fail the explanation ("DEFAULT": none of the domain's).
pub(crate) struct Case<'a> {
    name: &'a str,
    host: &'a str,
    helo: &'a str,
    mailfrom: &'a str,
    results: &'a [&'a str],
    explanation: Option<&'a str>,
}

const fn case<'a>(
    name: &'a str,
    host: &'a str,
    helo: &'a str,
    mailfrom: &'a str,
    results: &'a [&'a str],
) -> Case<'a> {
    Case {
        name,
        host,
        helo,
        mailfrom,
        results,
        explanation: None,
    }
}

pub(crate) const fn exp<'a>(
    name: &'a str,
    host: &'a str,
    mailfrom: &'a str,
    result: &'a [&'a str],
    explanation: &'a str,
) -> Case<'a> {
    Case {
        name,
        host,
        helo: "mail.example.com",
        mailfrom,
        results: result,
        explanation: Some(explanation),
    }
}

/// Runs the cases: the MAIL FROM identity, or `postmaster@HELO` for an
/// empty one, as the suite's drivers do.
pub(crate) fn run(zone: &Zone, cases: &[Case<'_>]) {
    let mut failures = Vec::new();
    for c in cases {
        let helo_sender = format!("postmaster@{}", c.helo);
        let sender = if c.mailfrom.is_empty() {
            &helo_sender
        } else {
            c.mailfrom
        };
        let query = Query {
            ip: c.host.parse().unwrap(),
            sender,
            helo: c.helo,
            receiver: "receiver.example.net",
            now: 1_000_000_000,
            void_limit: VOID_LIMIT,
        };
        let out = check_host(zone, &query);
        let got = out.result.as_str();
        if !c.results.contains(&got) {
            failures.push(format!(
                "{}: {got} ({:?}), want {:?}",
                c.name, out, c.results
            ));
            continue;
        }
        if let Some(want) = c.explanation {
            let got = out.explanation.as_deref().unwrap_or("DEFAULT");
            if !got.eq_ignore_ascii_case(want) {
                failures.push(format!("{}: explanation {got:?}, want {want:?}", c.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const PASS: &[&str] = &["pass"];
pub(crate) const FAIL: &[&str] = &["fail"];
const SOFTFAIL: &[&str] = &["softfail"];
const NEUTRAL: &[&str] = &["neutral"];
const NONE: &[&str] = &["none"];
const PERM: &[&str] = &["permerror"];
const TEMP: &[&str] = &["temperror"];
const M: &str = "mail.example.com";

/// RFC 7208 Appendix A's zone, with `example.com`'s record as given.
#[rustfmt::skip]
fn appendix_a(record: &str) -> Zone {
    let mut zone = Zone::new(&[
        ("example.com", "MX", "10 mail-a.example.com"),
        ("example.com", "MX", "20 mail-b.example.com"),
        ("example.com", "A", "192.0.2.10"),
        ("example.com", "A", "192.0.2.11"),
        ("amy.example.com", "A", "192.0.2.65"),
        ("bob.example.com", "A", "192.0.2.66"),
        ("mail-a.example.com", "A", "192.0.2.129"),
        ("mail-b.example.com", "A", "192.0.2.130"),
        ("example.org", "MX", "10 mail-c.example.org"),
        ("mail-c.example.org", "A", "192.0.2.140"),
        ("192.0.2.10", "PTR", "example.com"),
        ("192.0.2.11", "PTR", "example.com"),
        ("192.0.2.65", "PTR", "amy.example.com"),
        ("192.0.2.66", "PTR", "bob.example.com"),
        ("192.0.2.129", "PTR", "mail-a.example.com"),
        ("192.0.2.130", "PTR", "mail-b.example.com"),
        ("192.0.2.140", "PTR", "mail-c.example.org"),
        ("10.0.0.4", "PTR", "bob.example.com"),
        ("ip4._spf.example.com", "TXT", "v=spf1 -ip4:192.0.2.0/24 +all"),
        ("ptr._spf.example.com", "TXT", "v=spf1 -ptr:example.com +all"),
    ]);
    zone.add(&[("example.com", "TXT", record)]);
    zone
}

#[test]
fn rfc7208_appendix_a() {
    let hosts = [
        "192.0.2.10",
        "192.0.2.11",
        "192.0.2.65",
        "192.0.2.66",
        "192.0.2.129",
        "192.0.2.130",
        "192.0.2.140",
        "10.0.0.4",
    ];
    // Each record of A.1 and A.4 with the hosts it lets pass.
    for (record, passing) in [
        ("v=spf1 +all", &hosts[..]),
        ("v=spf1 a -all", &hosts[..2]),
        ("v=spf1 a:example.org -all", &[][..]),
        ("v=spf1 mx -all", &hosts[4..6]),
        ("v=spf1 mx:example.org -all", &hosts[6..7]),
        ("v=spf1 mx mx:example.org -all", &hosts[4..7]),
        ("v=spf1 mx/30 mx:example.org/30 -all", &hosts[4..7]),
        ("v=spf1 ptr -all", &hosts[..6]),
        ("v=spf1 ip4:192.0.2.128/28 -all", &hosts[4..7]),
        (
            "v=spf1 -include:ip4._spf.%{d} -include:ptr._spf.%{d} +all",
            &hosts[..6],
        ),
    ] {
        let zone = appendix_a(record);
        for host in hosts {
            let out = check_host(
                &zone,
                &Query {
                    ip: host.parse().unwrap(),
                    sender: "someone@example.com",
                    helo: "h.example.net",
                    receiver: "r",
                    now: 0,
                    void_limit: VOID_LIMIT,
                },
            );
            let want = if passing.contains(&host) {
                SpfResult::Pass
            } else {
                SpfResult::Fail
            };
            assert_eq!(out.result, want, "{record} from {host}: {out:?}");
        }
    }
}
