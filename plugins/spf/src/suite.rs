//! check_host() against RFC 7208 Appendix A and the cases of the RFC 7208
//! test suite (the one pyspf and Mail::SPF run, by its group and case
//! names), over DNS answered from a table; then the plugin's verdicts and
//! headers.

#![allow(clippy::unwrap_used)]

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

#[test]
#[rustfmt::skip]
fn initial_processing_and_record_selection() {
    let long63 = "a12345678901234567890123456789012345678901234567890123456789012.example.com";
    let zone = Zone::new(&[
        ("example.net", "TXT", "v=spf1 -all exp=exp.example.net"),
        ("exp.example.net", "TXT", "%{l}"),
        (long63, "TXT", "v=spf1 -all"),
        ("hosed.example.com", "TXT", "v=spf1 a:\u{ef}\u{bb}\u{bf}garbage.example.net -all"),
        ("hosed2.example.com", "TXT", "v=spf1 \u{fffd}a:example.net -all"),
        ("hosed3.example.com", "TXT", "v=spf1 a:example.net \u{fffd}all"),
        ("nothosed.example.com", "TXT", "v=spf1 a:example.net -all"),
        ("nothosed.example.com", "TXT", "\u{fffd}"),
        ("alltimeout.example.net", "TIMEOUT", ""),
        ("txtonly.example.net", "TXT", "v=spf1 -all"),
        ("spfonly.example.net", "SPF", "v=spf1 -all"),
        ("example1.com", "TXT", "v=spf1"),
        ("example2.com", "TXT", "v=spf1mx"),
        ("example3.com", "TXT", "v=spf10"),
        ("example3.com", "TXT", "v=spf1 mx"),
        ("example3.com", "MX", "0 mail.example1.com"),
        ("example5.com", "TXT", "v=spf1 -all"),
        ("example5.com", "TXT", "v=spf1 +all"),
        ("example6.com", "TXT", "v=spf1 -all"),
        ("example6.com", "TXT", "V=sPf1 +all"),
        ("example9.com", "TXT", "v=SpF1 ~all"),
        ("mail.example1.com", "A", "1.2.3.4"),
    ]);
    let long64 =
        "lyme.eater@A123456789012345678901234567890123456789012345678901234567890123.example.com";
    run(
        &zone,
        &[
            case("non-ascii-policy", "1.2.3.4", "hosed", "foobar@hosed.example.com", PERM),
            case("non-ascii-mech", "1.2.3.4", "hosed", "foobar@hosed2.example.com", PERM),
            case("non-ascii-result", "1.2.3.4", "hosed", "foobar@hosed3.example.com", PERM),
            exp("non-ascii-non-spf", "1.2.3.4", "foobar@nothosed.example.com", FAIL, "DEFAULT"),
            case("toolonglabel", "1.2.3.5", "mail.example.net", long64, NONE),
            case("longlabel", "1.2.3.5", "mail.example.net", &format!("lyme.eater@{long63}"), FAIL),
            case("emptylabel", "1.2.3.5", "mail.example.net", "lyme.eater@A...example.com", NONE),
            case("helo-not-fqdn", "1.2.3.5", "A2345678", "", NONE),
            case("helo-domain-literal", "1.2.3.5", "[1.2.3.5]", "", NONE),
            case("domain-literal", "1.2.3.5", "OEMCOMPUTER", "foo@[1.2.3.5]", NONE),
            exp("nolocalpart", "1.2.3.4", "@example.net", FAIL, "postmaster"),
            case("alltimeout", "1.2.3.4", M, "foo@alltimeout.example.net", TEMP),
            case("txtonly", "1.2.3.4", M, "foo@txtonly.example.net", FAIL),
            case("spfonly", "1.2.3.4", M, "foo@spfonly.example.net", NONE),
            case("nospf", "1.2.3.4", M, "foo@mail.example1.com", NONE),
            case("empty", "1.2.3.4", M, "foo@example1.com", NEUTRAL),
            case("nospace1", "1.2.3.4", M, "foo@example2.com", NONE),
            case("nospace2", "1.2.3.4", M, "foo@example3.com", PASS),
            case("multitxt1", "1.2.3.4", M, "foo@example5.com", PERM),
            case("multitxt2", "1.2.3.4", M, "foo@example6.com", PERM),
            case("case-insensitive", "1.2.3.4", M, "foo@example9.com", SOFTFAIL),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn record_evaluation_and_mechanism_syntax() {
    let zone = Zone::new(&[
        ("mail.example.com", "A", "1.2.3.4"),
        ("t1.example.com", "TXT", "v=spf1 ip4:1.2.3.4 -all moo"),
        ("t2.example.com", "TXT", "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all"),
        ("t3.example.com", "TXT", "v=spf1 moo.cow/far_out=man:dog/cat ip4:1.2.3.4 -all"),
        ("t5.example.com", "TXT", "v=spf1 redirect=t5.example.com ~all"),
        ("t6.example.com", "TXT", "v=spf1 ip4:1.2.3.4 redirect=t2.example.com"),
        ("t7.example.com", "TXT", "v=spf1 ip4:1.2.3.4"),
        ("t8.example.com", "TXT", "v=spf1 ip4:1.2.3.4 redirect:t2.example.com"),
        ("t9.example.com", "TXT", "v=spf1 a:foo-bar -all"),
        ("t10.example.com", "TXT", "v=spf1 a:mail.example...com -all"),
        ("t12.example.com", "TXT", "v=spf1 a:%{H}.bar -all"),
        ("e1.example.com", "TXT", "v=spf1 -all."),
        ("e5.example.com", "TXT", "v=spf1 all -all"),
        ("e4.example.com", "TXT", "v=spf1 ?all"),
        ("foo.example.com", "A", "1.1.1.1"),
        ("foo.example.com", "A", "1.2.3.5"),
        ("a2.example.com", "A", "1.1.1.1"),
        ("a2.example.com", "AAAA", "1234::2"),
        ("a2.example.com", "TXT", "v=spf1 a/0 -all"),
        ("a2a.example.com", "AAAA", "1234::1"),
        ("a2a.example.com", "TXT", "v=spf1 a//0 -all"),
        ("a8.example.com", "A", "1.2.3.5"),
        ("a8.example.com", "AAAA", "2001:db8:1234::dead:beef"),
        ("a8.example.com", "TXT", "v=spf1 a/24//64 -all"),
        ("a10.example.com", "TXT", "v=spf1 a:foo.example.com/24"),
        ("a11.example.com", "TXT", "v=spf1 a:foo:bar/baz.example.com"),
        ("foo:bar/baz.example.com", "A", "1.2.3.4"),
        ("a14.example.com", "TXT", "v=spf1 a:foo.example.xn--zckzah -all"),
        ("foo.example.xn--zckzah", "A", "1.2.3.4"),
        ("ipv6.example.com", "AAAA", "1234::1"),
        ("ipv6.example.com", "A", "1.1.1.1"),
        ("ipv6.example.com", "TXT", "v=spf1 a -all"),
        ("a5.example.com", "TXT", "v=spf1 a:museum"),
        ("a4.example.com", "TXT", "v=spf1 a:111.222.33.44"),
    ]);
    let h = "1.2.3.4";
    run(
        &zone,
        &[
            case("detect-errors-anywhere", h, M, "foo@t1.example.com", PERM),
            case("modifier-charset-good", h, M, "foo@t2.example.com", PASS),
            case("modifier-charset-bad1", h, M, "foo@t3.example.com", PERM),
            case("redirect-after-mechanisms1", h, M, "foo@t5.example.com", SOFTFAIL),
            case("redirect-after-mechanisms2", "1.2.3.5", M, "foo@t6.example.com", FAIL),
            case("default-result", "1.2.3.5", M, "foo@t7.example.com", NEUTRAL),
            case("redirect-is-modifier", h, M, "foo@t8.example.com", PERM),
            case("invalid-domain", h, M, "foo@t9.example.com", PERM),
            case("invalid-domain-empty-label", h, M, "foo@t10.example.com", &["fail", "permerror"]),
            case("invalid-domain-long-via-macro", h, "%%%%%%%%%%%%%%%%%%%%%%", "foo@t12.example.com", &["fail", "permerror"]),
            case("all-dot", h, M, "foo@e1.example.com", PERM),
            case("all-double", h, M, "foo@e5.example.com", PASS),
            case("all-neutral", h, M, "foo@e4.example.com", NEUTRAL),
            case("a-cidr4-0", h, M, "foo@a2.example.com", PASS),
            case("a-cidr4-0-ip6", "1234::1", M, "foo@a2.example.com", FAIL),
            case("a-cidr6-0-ip4", h, M, "foo@a2a.example.com", FAIL),
            case("a-cidr6-0-ip4mapped", "::FFFF:1.2.3.4", M, "foo@a2a.example.com", FAIL),
            case("a-cidr6-0-ip6", "1234::1", M, "foo@a2a.example.com", PASS),
            case("a-dual-cidr-ip4-match", h, M, "foo@a8.example.com", PASS),
            case("a-dual-cidr-ip6-match", "2001:db8:1234::cafe:babe", M, "foo@a8.example.com", PASS),
            case("a-multi-ip1", h, M, "foo@a10.example.com", PASS),
            case("a-colon-domain", h, M, "foo@a11.example.com", PASS),
            case("a-colon-domain-ip4mapped", "::FFFF:1.2.3.4", M, "foo@a11.example.com", PASS),
            case("a-dash-in-toplabel", h, M, "foo@a14.example.com", PASS),
            case("a-ip6-dualstack", "1234::1", M, "foo@ipv6.example.com", PASS),
            case("a-only-toplabel", h, M, "foo@a5.example.com", PERM),
            case("a-numeric", h, M, "foo@a4.example.com", PERM),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn include_mx_ptr_exists_ip() {
    let zone = Zone::new(&[
        ("mail.example.com", "A", "1.2.3.4"),
        ("i1.example.com", "TXT", "v=spf1 include:ip5.example.com ~all"),
        ("i2.example.com", "TXT", "v=spf1 include:ip6.example.com all"),
        ("i3.example.com", "TXT", "v=spf1 include:ip7.example.com -all"),
        ("i4.example.com", "TXT", "v=spf1 include:ip8.example.com -all"),
        ("i5.example.com", "TXT", "v=spf1 include:i6.example.com -all"),
        ("i6.example.com", "TXT", "v=spf1 include +all"),
        ("i7.example.com", "TXT", "v=spf1 include:erehwon.example.com -all"),
        ("erehwon.example.com", "TXT", "v=spfl am not an SPF record"),
        ("ip5.example.com", "TXT", "v=spf1 ip4:1.2.3.5 -all"),
        ("ip6.example.com", "TXT", "v=spf1 ip4:1.2.3.6 ~all"),
        ("ip7.example.com", "TXT", "v=spf1 ip4:1.2.3.7 ?all"),
        ("ip8.example.com", "TIMEOUT", ""),
        ("m1.example.com", "TXT", "v=spf1 mx/0 -all"),
        ("m1.example.com", "MX", "0 m1.example.com"),
        ("m2.example.com", "A", "1.1.1.1"),
        ("m2.example.com", "AAAA", "1234::2"),
        ("m2.example.com", "MX", "0 m2.example.com"),
        ("m2.example.com", "TXT", "v=spf1 mx/0 -all"),
        ("m3.example.com", "TXT", "v=spf1 mx:foo.example.com"),
        ("foo.example.com", "MX", "0 foo1.example.com"),
        ("foo1.example.com", "A", "1.1.1.1"),
        ("foo1.example.com", "A", "1.2.3.5"),
        ("m4.example.com", "TXT", "v=spf1 mx"),
        ("m4.example.com", "A", "1.2.3.4"),
        ("m10.example.com", "TXT", "v=spf1 mx:foo.example.com/24"),
        ("null.example.com", "A", "1.2.3.4"),
        ("null.example.com", "MX", "0 ."),
        ("null.example.com", "TXT", "v=spf1 mx"),
        ("1.2.3.4", "PTR", "p3.example.com"),
        ("1.2.3.4", "PTR", "p4.example.com"),
        ("1.2.3.4", "PTR", "mail.example.com"),
        ("cafe:babe::1", "PTR", "p3.example.com"),
        ("p2.example.com", "TXT", "v=spf1 ptr:example.com -all"),
        ("p3.example.com", "TXT", "v=spf1 ptr -all"),
        ("p3.example.com", "A", "1.2.3.4"),
        ("p3.example.com", "AAAA", "CAFE:BABE::1"),
        ("p4.example.com", "TXT", "v=spf1 ptr -all"),
        ("x4.example.com", "TXT", "v=spf1 exists:mail.example.com"),
        ("x5.example.com", "TXT", "v=spf1 exists:mail6.example.com -all"),
        ("mail6.example.com", "AAAA", "CAFE:BABE::4"),
        ("x6.example.com", "TXT", "v=spf1 exists:err.example.com -all"),
        ("err.example.com", "TIMEOUT", ""),
        ("ip4map.example.com", "TXT", "v=spf1 -ip4:1.2.3.4 ip6:::FFFF:1.2.3.4"),
        ("any6.example.com", "TXT", "v=spf1 ip6:::1.1.1.1/0"),
        ("c33.example.com", "TXT", "v=spf1 ip6:CAFE:BABE:8000::/33"),
        ("c0.example.com", "TXT", "v=spf1 ip4:1.1.1.1/0 -all"),
    ]);
    let h = "1.2.3.4";
    run(
        &zone,
        &[
            case("include-fail", h, M, "foo@i1.example.com", SOFTFAIL),
            case("include-softfail", h, M, "foo@i2.example.com", PASS),
            case("include-neutral", h, M, "foo@i3.example.com", FAIL),
            case("include-temperror", h, M, "foo@i4.example.com", TEMP),
            case("include-permerror", h, M, "foo@i5.example.com", PERM),
            case("include-none", h, M, "foo@i7.example.com", PERM),
            case("mx-nxdomain", h, M, "foo@m1.example.com", FAIL),
            case("mx-cidr4-0", h, M, "foo@m2.example.com", PASS),
            case("mx-cidr4-0-ip6", "1234::1", M, "foo@m2.example.com", FAIL),
            case("mx-null", "1.2.3.5", M, "foo@m3.example.com", PASS),
            case("mx-implicit", h, M, "foo@m4.example.com", NEUTRAL),
            case("mx-multi-ip1", h, M, "foo@m10.example.com", PASS),
            case("mx-empty", h, "null.example.com", "", NEUTRAL),
            case("ptr-match-target", h, M, "foo@p2.example.com", PASS),
            case("ptr-match-implicit", h, M, "foo@p3.example.com", PASS),
            case("ptr-match-ip6", "CAFE:BABE::1", M, "foo@p3.example.com", PASS),
            case("ptr-nomatch-invalid", h, M, "foo@p4.example.com", FAIL),
            case("exists-ip4", h, M, "foo@x4.example.com", PASS),
            case("exists-ip6", "CAFE:BABE::3", M, "foo@x4.example.com", PASS),
            case("exists-ip6only", "CAFE:BABE::3", M, "foo@x5.example.com", FAIL),
            case("exists-dnserr", "CAFE:BABE::3", M, "foo@x6.example.com", TEMP),
            case("ip4-mapped-ip6", "::FFFF:1.2.3.4", M, "foo@ip4map.example.com", FAIL),
            case("cidr6-0", "DEAF:BABE::CAB:FEE", M, "foo@any6.example.com", PASS),
            case("cidr6-0-ip4", h, M, "foo@any6.example.com", NEUTRAL),
            case("cidr6-ip4", "::FFFF:1.2.3.4", M, "foo@any6.example.com", NEUTRAL),
            case("cidr6-33", "CAFE:BABE:8000::", M, "foo@c33.example.com", PASS),
            case("cidr6-33-ip4", h, M, "foo@c33.example.com", NEUTRAL),
            case("cidr4-0", h, M, "foo@c0.example.com", PASS),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn exp_and_modifiers() {
    let zone = Zone::new(&[
        ("mail.example.com", "A", "1.2.3.4"),
        ("e1.example.com", "TXT", "v=spf1 exp=exp1.example.com redirect=e2.example.com"),
        ("e2.example.com", "TXT", "v=spf1 -all"),
        ("e3.example.com", "TXT", "v=spf1 exp=exp1.example.com redirect=e4.example.com"),
        ("e4.example.com", "TXT", "v=spf1 -all exp=exp2.example.com"),
        ("exp1.example.com", "TXT", "No-see-um"),
        ("exp2.example.com", "TXT", "See me."),
        ("exp3.example.com", "TXT", "Correct!"),
        ("exp4.example.com", "TXT", "%{l} in implementation"),
        ("e7.example.com", "TXT", "v=spf1 include:e3.example.com -all exp=exp3.example.com"),
        ("e8.example.com", "TXT", "v=spf1 -all exp=exp4.example.com"),
        ("e10.example.com", "TXT", "v=spf1 redirect=erehwon.example.com"),
        ("e11.example.com", "TXT", "v=spf1 -all exp=e11msg.example.com"),
        ("e11msg.example.com", "TXT", "Answer a fool according to his folly."),
        ("e11msg.example.com", "TXT", "Do not answer a fool according to his folly."),
        ("e13.example.com", "TXT", "v=spf1 exp=e13msg.example.com -all"),
        ("e13msg.example.com", "TXT", "The %{x}-files."),
        ("e19.example.com", "TXT", "v=spf1 default=pass"),
        ("e21.example.com", "TXT", "v=spf1 exp=e21msg.example.com -all"),
        ("e21msg.example.com", "TIMEOUT", ""),
        ("e22.example.com", "TXT", "v=spf1 exp=mail.example.com -all"),
        ("e23.example.com", "TXT", "v=spf1 a:erehwon.example.com a:foobar.com exp=nxdomain.com -all"),
        ("nonascii.example.com", "TXT", "v=spf1 exp=badexp.example.com -all"),
        ("badexp.example.com", "TXT", "\u{ef}\u{bb}\u{bf}Explanation"),
    ]);
    let h = "1.2.3.4";
    run(
        &zone,
        &[
            exp("redirect-cancels-exp", h, "foo@e1.example.com", FAIL, "DEFAULT"),
            exp("redirect-cancels-prior-exp", h, "foo@e3.example.com", FAIL, "See me."),
            exp("include-ignores-exp", h, "foo@e7.example.com", FAIL, "Correct!"),
            exp("dorky-sentinel", h, "Macro Error@e8.example.com", FAIL, "Macro Error in implementation"),
            case("redirect-none", h, M, "foo@e10.example.com", PERM),
            exp("exp-multiple-txt", h, "foo@e11.example.com", FAIL, "DEFAULT"),
            exp("explanation-syntax-error", h, "foo@e13.example.com", FAIL, "DEFAULT"),
            case("default-modifier-obsolete", h, M, "foo@e19.example.com", NEUTRAL),
            exp("exp-dns-error", h, "foo@e21.example.com", FAIL, "DEFAULT"),
            exp("exp-no-txt", h, "foo@e22.example.com", FAIL, "DEFAULT"),
            exp("exp-void", h, "foo@e23.example.com", FAIL, "DEFAULT"),
            exp("non-ascii-exp", h, "foobar@nonascii.example.com", FAIL, "DEFAULT"),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn macro_expansion() {
    let long = "somewhat.long.exp.example.com";
    let target = format!("{}.example.com", [long; 8].join("."));
    let zone = Zone::new(&[
        ("e1a.example.com", "TXT", "v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all"),
        ("macro%percent  space%20url-space.example.com", "A", "1.2.3.4"),
        ("e3.example.com", "TXT", "v=spf1 -all exp=%{ir}.example.com"),
        ("40.218.168.192.example.com", "TXT", "Connections from %{c} not authorized."),
        ("e4.example.com", "TXT", "v=spf1 -all exp=e4msg.example.com"),
        ("e4msg.example.com", "TXT", "%{c} is queried as %{ir}.%{v}.arpa"),
        ("e6.example.com", "TXT", "v=spf1 -all exp=e6msg.example.com"),
        ("e6msg.example.com", "TXT", "connect from %{p}"),
        ("e7.example.com", "TXT", "v=spf1 exists:%{p}.should.example.com ~exists:%{p}.ok.example.com"),
        ("mx.e7.example.com.should.example.com", "A", "127.0.0.2"),
        ("mx.example.com.ok.example.com", "A", "127.0.0.2"),
        ("e8.example.com", "TXT", "v=spf1 -all exp=msg8.%{D2}"),
        ("msg8.example.com", "TXT", "http://example.com/why.html?l=%{L}"),
        ("e9.example.com", "TXT", "v=spf1 a:%{H} -all"),
        ("e10.example.com", "TXT", "v=spf1 -include:_spfh.%{d2} ip4:1.2.3.0/24 -all"),
        ("_spfh.example.com", "TXT", "v=spf1 -a:%{h} +all"),
        ("e11.example.com", "TXT", "v=spf1 exists:%{i}.%{l2r-}.user.%{d2}"),
        ("1.2.3.4.gladstone.philip.user.example.com", "A", "127.0.0.2"),
        ("e12.example.com", "TXT", "v=spf1 exists:%{l2r+-}.user.%{d2}"),
        ("bar.foo.user.example.com", "A", "127.0.0.2"),
        ("e1.example.com", "TXT", "v=spf1 -exists:%(ir).sbl.example.com ?all"),
        ("e2.example.com", "TXT", "v=spf1 -all exp=%{r}.example.com"),
        ("e5.example.com", "TXT", "v=spf1 a:%{a}.example.com -all"),
        ("example.com", "A", "192.168.90.76"),
        ("example.com", "TXT", "v=spf1 redirect=%{d}.d.spf.example.com."),
        ("example.com.d.spf.example.com", "TXT", "v=spf1 redirect=a.spf.example.com"),
        ("a.spf.example.com", "TXT", "v=spf1 include:o.spf.example.com. ~all"),
        ("o.spf.example.com", "TXT", "v=spf1 ip4:192.168.218.40"),
        ("exp.example.com", "TXT", "v=spf1 exp=msg.example.com. -all"),
        ("msg.example.com", "TXT", "This is a test."),
        (long, "TXT", "v=spf1 -all exp=foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com"),
        (&target, "TXT", "Congratulations!  That was tricky."),
        ("msgbas2x.cos.example.com", "A", "192.168.218.40"),
        ("mx.example.com", "A", "192.168.218.41"),
        ("mx.example.com", "A", "192.168.218.42"),
        ("mx.example.com", "AAAA", "CAFE:BABE::2"),
        ("mx.example.com", "AAAA", "CAFE:BABE::3"),
        ("mx.e7.example.com", "A", "192.168.218.42"),
        ("192.168.218.40", "PTR", "mx.example.com"),
        ("192.168.218.41", "PTR", "mx.example.com"),
        ("192.168.218.42", "PTR", "mx.example.com"),
        ("192.168.218.42", "PTR", "mx.e7.example.com"),
        ("cafe:babe::1", "PTR", "mx.example.com"),
        ("cafe:babe::3", "PTR", "mx.example.com"),
    ]);
    let hb = "msgbas2x.cos.example.com";
    let ip = "192.168.218.40";
    let with_helo = |name, host, helo, from, results| case(name, host, helo, from, results);
    run(
        &zone,
        &[
            case("macro-mania-in-domain", "1.2.3.4", M, "test@e1a.example.com", PASS),
            exp("exp-txt-macro-char", ip, "test@e3.example.com", FAIL, "Connections from 192.168.218.40 not authorized."),
            exp("v-macro-ip4", ip, "test@e4.example.com", FAIL, "192.168.218.40 is queried as 40.218.168.192.in-addr.arpa"),
            exp("v-macro-ip6", "CAFE:BABE::1", "test@e4.example.com", FAIL, "cafe:babe::1 is queried as 1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C.ip6.arpa"),
            exp("p-macro-ip4-novalid", ip, "test@e6.example.com", FAIL, "connect from unknown"),
            exp("p-macro-ip4-valid", "192.168.218.41", "test@e6.example.com", FAIL, "connect from mx.example.com"),
            exp("p-macro-ip6-novalid", "CAFE:BABE::1", "test@e6.example.com", FAIL, "connect from unknown"),
            exp("p-macro-ip6-valid", "CAFE:BABE::3", "test@e6.example.com", FAIL, "connect from mx.example.com"),
            with_helo("p-macro-multiple", "192.168.218.42", hb, "test@e7.example.com", &["pass", "softfail"]),
            exp("upper-macro", "192.168.218.42", "jack&jill=up@e8.example.com", FAIL, "http://example.com/why.html?l=jack%26jill%3Dup"),
            with_helo("hello-macro", ip, hb, "test@e9.example.com", PASS),
            with_helo("invalid-hello-macro", ip, "JUMPIN' JUPITER", "test@e9.example.com", FAIL),
            with_helo("hello-domain-literal", ip, "[192.168.218.40]", "test@e9.example.com", FAIL),
            with_helo("require-valid-helo", "1.2.3.4", "OEMCOMPUTER", "test@e10.example.com", FAIL),
            case("macro-reverse-split-on-dash", "1.2.3.4", M, "philip-gladstone-test@e11.example.com", PASS),
            case("macro-multiple-delimiters", "1.2.3.4", M, "foo-bar+zip+quux@e12.example.com", PASS),
            case("invalid-macro-char", ip, hb, "test@e1.example.com", PERM),
            case("exp-only-macro-char", ip, hb, "test@e2.example.com", PERM),
            case("undef-macro", "CAFE:BABE::192.168.218.40", hb, "test@e5.example.com", PERM),
            case("trailing-dot-domain", ip, hb, "test@example.com", PASS),
            exp("trailing-dot-exp", ip, "test@exp.example.com", FAIL, "This is a test."),
            exp("domain-name-truncation", ip, &format!("test@{long}"), FAIL, "Congratulations!  That was tricky."),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn processing_limits() {
    let mut zone = Zone::new(&[
        ("mail.example.com", "A", "1.2.3.4"),
        ("e1.example.com", "TXT", "v=spf1 ip4:1.1.1.1 redirect=e1.example.com"),
        ("e2.example.com", "TXT", "v=spf1 include:e3.example.com"),
        ("e3.example.com", "TXT", "v=spf1 include:e2.example.com"),
        ("e4.example.com", "TXT", "v=spf1 mx"),
        ("e4.example.com", "A", "1.2.3.5"),
        ("e5.example.com", "TXT", "v=spf1 ptr"),
        ("e5.example.com", "A", "1.2.3.5"),
        ("e6.example.com", "TXT", "v=spf1 a mx a mx a mx a mx a ptr ip4:1.2.3.4 -all"),
        ("e6.example.com", "A", "1.2.3.8"),
        ("e6.example.com", "MX", "10 e6.example.com"),
        ("e7.example.com", "TXT", "v=spf1 a mx a mx a mx a mx a ptr a ip4:1.2.3.4 -all"),
        ("e7.example.com", "A", "1.2.3.20"),
        ("e8.example.com", "TXT", "v=spf1 a include:inc.example.com ip4:1.2.3.4 mx -all"),
        ("e8.example.com", "A", "1.2.3.4"),
        ("e9.example.com", "TXT", "v=spf1 a include:inc.example.com a ip4:1.2.3.4 -all"),
        ("e9.example.com", "A", "1.2.3.21"),
        ("inc.example.com", "TXT", "v=spf1 a a a a a a a a"),
        ("inc.example.com", "A", "1.2.3.10"),
        ("e10.example.com", "TXT", "v=spf1 a -all"),
        ("e11.example.com", "TXT", "v=spf1 a:err.example.com a:err1.example.com a:err2.example.com ?all"),
        ("e12.example.com", "TXT", "v=spf1 a:err.example.com a:err1.example.com ?all"),
    ]);
    for n in 0..10 {
        zone.add(&[("e4.example.com", "MX", &format!("{n} mail.example.com"))]);
    }
    zone.add(&[("e4.example.com", "MX", "10 e4.example.com")]);
    for n in 1..=12 {
        zone.add(&[("e10.example.com", "A", &format!("1.2.3.{n}"))]);
    }
    for n in [1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 5] {
        let name = if n == 12 {
            "example.com".to_owned()
        } else {
            format!("e{n}.example.com")
        };
        zone.add(&[("1.2.3.5", "PTR", &name)]);
    }
    let h = "1.2.3.4";
    run(
        &zone,
        &[
            case("redirect-loop", h, M, "foo@e1.example.com", PERM),
            case("include-loop", h, M, "foo@e2.example.com", PERM),
            case("mx-limit", "1.2.3.5", M, "foo@e4.example.com", PERM),
            case("ptr-limit", "1.2.3.5", M, "foo@e5.example.com", NEUTRAL),
            case("mech-at-limit", h, M, "foo@e6.example.com", PASS),
            case("mech-over-limit", h, M, "foo@e7.example.com", PERM),
            case("include-at-limit", h, M, "foo@e8.example.com", PASS),
            case("include-over-limit", h, M, "foo@e9.example.com", PERM),
            case("false-a-limit", "1.2.3.12", M, "foo@e10.example.com", PASS),
            case("void-over-limit", h, M, "foo@e11.example.com", PERM),
            case("void-at-limit", h, M, "foo@e12.example.com", NEUTRAL),
        ],
    );
}
