//! The suite's groups on check_host()'s own processing (§4): initial
//! processing (§4.3), record lookup and selection (§4.4, §4.5), and the
//! processing limits (§4.6.4): DNS-querying terms, void lookups, loops.

use super::{FAIL, M, NEUTRAL, NONE, PASS, PERM, SOFTFAIL, TEMP};
use super::{Zone, case, exp, run};

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
