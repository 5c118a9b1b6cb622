//! The plugin's verdicts, Received-SPF headers, per-transaction cache and
//! arguments, and its behaviour with hostile records and odd sessions,
//! over the made-up DNS of `suite`.

#![allow(clippy::unwrap_used)]

use postern_plugin_sdk::dns::{DnsError, Exchanger};
use postern_plugin_sdk::resolver::Resolver;

use crate::eval::{Query, VOID_LIMIT, check_host};
use crate::suite::{FAIL, Zone, exp, run};

/// A RCPT request from `client` with this HELO and sender.
fn request<'a>(client: &'a str, helo: &'a str, sender: &'a str) -> crate::policy::Session<'a> {
    crate::policy::Session {
        stage: postern_plugin_sdk::Stage::Recipient,
        client_address: client,
        helo_name: helo,
        sender,
        recipient: "rcpt@example.org",
        instance: "1",
    }
}

fn config(pairs: &[(&str, &str)]) -> Result<crate::config::Config, String> {
    crate::config::Config::from_args(postern_plugin_sdk::args::pairs(pairs))
}

#[test]
fn verdicts_and_received_spf_headers() {
    use crate::Verdict;
    use crate::policy::{Cache, check};

    let zone = Zone::new(&[
        ("pass.test", "TXT", "v=spf1 ip4:192.0.2.1 -all"),
        ("fail.test", "TXT", "v=spf1 -all exp=why.fail.test"),
        ("why.fail.test", "TXT", "%{i} may not send for %{d}"),
        ("soft.test", "TXT", "v=spf1 ~all"),
        ("broken.test", "TXT", "v=spf1 foo"),
        ("down.test", "SERVFAIL", ""),
        ("helo.test", "TXT", "v=spf1 a -all"),
        ("helo.test", "A", "192.0.2.9"),
    ]);
    let ask = |pairs: &[(&str, &str)], helo: &str, sender: &str| {
        let cache = Cache::default();
        check(
            &config(pairs).unwrap(),
            &zone,
            &request("192.0.2.1", helo, sender),
            &cache,
            0,
        )
    };
    let prefix = "<rcpt@example.org>: Recipient address rejected: Message rejected due to: ";
    assert_eq!(
        ask(&[], "client.example", "a@pass.test"),
        Verdict::Prepend(
            "Received-SPF: pass (unknown: domain of a@pass.test designates 192.0.2.1 as \
             permitted sender) client-ip=192.0.2.1; envelope-from=\"a@pass.test\"; \
             helo=client.example; receiver=unknown; identity=mailfrom; \
             mechanism=\"ip4:192.0.2.1\";"
                .to_owned()
        )
    );
    assert_eq!(
        ask(&[], "client.example", "a@fail.test"),
        postern_plugin_sdk::reject(
            550,
            "5.7.23",
            format!("{prefix}192.0.2.1 may not send for fail.test")
        )
    );
    // Softfail: a header by default, refused with Mail_From_reject = Softfail.
    let Verdict::Prepend(h) = ask(&[], "client.example", "a@soft.test") else {
        panic!("no header");
    };
    assert!(h.starts_with("Received-SPF: softfail ("), "{h}");
    assert!(h.contains("mechanism=\"~all\""), "{h}");
    assert_eq!(
        ask(
            &[("Mail_From_reject", "softfail")],
            "client.example",
            "a@soft.test"
        ),
        postern_plugin_sdk::reject(
            550,
            "5.7.23",
            format!(
                "{prefix}SPF softfail - not authorized. Please see \
                 http://www.open-spf.org/Why?s=mfrom;id=a@soft.test;ip=192.0.2.1;r=unknown"
            )
        )
    );
    // Errors: a header unless PermError_reject / TempError_Defer.
    let Verdict::Prepend(h) = ask(&[], "client.example", "a@broken.test") else {
        panic!("no header");
    };
    assert!(
        h.contains("problem=\"broken.test: foo: unknown mechanism\""),
        "{h}"
    );
    assert!(matches!(
        ask(&[("PermError_reject", "True")], "client.example", "a@broken.test"),
        Verdict::Reject(r) if r.code == 550 && r.enhanced == "5.7.24"
    ));
    let Verdict::Prepend(h) = ask(&[], "client.example", "a@down.test") else {
        panic!("no header");
    };
    assert!(h.starts_with("Received-SPF: temperror"), "{h}");
    assert!(matches!(
        ask(&[("TempError_Defer", "yes")], "client.example", "a@down.test"),
        Verdict::Defer(r) if r.code == 451 && r.enhanced == "4.7.24"
    ));
    // HELO: a fail refuses (HELO_reject = Fail) even for a passing sender;
    // for the null sender the HELO result stands for MAIL FROM.
    assert!(matches!(
        ask(&[], "helo.test", "a@pass.test"),
        Verdict::Reject(r) if r.enhanced == "5.7.23"
    ));
    assert!(matches!(
        ask(&[("HELO_reject", "False")], "helo.test", "a@pass.test"),
        Verdict::Prepend(_)
    ));
    assert!(matches!(
        ask(&[("HELO_reject", "Null")], "helo.test", ""),
        Verdict::Reject(_)
    ));
    let Verdict::Prepend(h) = ask(&[], "client.example", "") else {
        panic!("no header");
    };
    assert!(
        h.starts_with("Received-SPF: none (unknown: domain of postmaster@client.example"),
        "{h}"
    );
    assert!(
        h.contains("envelope-from=\"\"; helo=client.example; receiver=unknown; identity=helo"),
        "{h}"
    );
    // Skipped clients and headers turned off.
    assert_eq!(
        ask(
            &[("Skip_Addresses", "127.0.0.0/8, 192.0.2.0/24")],
            "x.example",
            "a@fail.test"
        ),
        Verdict::Dunno
    );
    assert_eq!(
        ask(
            &[("Header_Type", "None"), ("Authserv_Id", "mx.example")],
            "x.example",
            "a@pass.test"
        ),
        Verdict::Dunno
    );
}

#[test]
fn results_are_kept_for_the_transaction() {
    use crate::policy::{Cache, check};

    /// Counts TXT lookups.
    struct Counting(Zone, std::cell::Cell<u32>);
    impl Resolver for Counting {
        fn a(&self, n: &str) -> Result<Vec<String>, DnsError> {
            self.0.a(n)
        }
        fn aaaa(&self, n: &str) -> Result<Vec<String>, DnsError> {
            self.0.aaaa(n)
        }
        fn mx(&self, n: &str) -> Result<Vec<Exchanger>, DnsError> {
            self.0.mx(n)
        }
        fn txt(&self, n: &str) -> Result<Vec<String>, DnsError> {
            self.1.set(self.1.get() + 1);
            self.0.txt(n)
        }
        fn ptr(&self, a: &str) -> Result<Vec<String>, DnsError> {
            self.0.ptr(a)
        }
    }
    let dns = Counting(
        Zone::new(&[("pass.test", "TXT", "v=spf1 +all")]),
        std::cell::Cell::new(0),
    );
    let c = config(&[]).unwrap();
    let cache = Cache::default();
    let req = request("192.0.2.1", "h.example", "a@pass.test");
    let first = check(&c, &dns, &req, &cache, 0);
    assert_eq!(dns.1.get(), 2, "HELO and MAIL FROM");
    assert_eq!(check(&c, &dns, &req, &cache, 0), first);
    assert_eq!(dns.1.get(), 2, "the second recipient costs no lookup");
    let other = request("192.0.2.1", "h.example", "b@pass.test");
    check(&c, &dns, &other, &cache, 0);
    assert_eq!(dns.1.get(), 4);
    // The same identities in the next transaction (an instance serves
    // many, host.reuse-instances) are checked again.
    let next = crate::policy::Session {
        instance: "2",
        ..other
    };
    check(&c, &dns, &next, &cache, 0);
    assert_eq!(dns.1.get(), 6, "a new transaction looks up afresh");
}

#[test]
fn arguments_are_checked_and_named() {
    let c = config(&[
        ("HELO_reject", "SPF_Not_Pass"),
        ("Mail_From_reject", "No_Check"),
        ("Void_Limit", "3"),
    ])
    .unwrap();
    assert_eq!(c.void_limit, 3);
    for (pairs, error) in [
        (
            &[("HELO_reject", "sometimes")][..],
            "HELO_reject: \"sometimes\": expected",
        ),
        (
            &[("Mail_From_reject", "Null")][..],
            "Mail_From_reject: \"Null\": expected",
        ),
        (&[("PermError_reject", "maybe")][..], "PermError_reject"),
        (
            &[("Header_Type", "DKIM")][..],
            "Header_Type: \"DKIM\": expected SPF, AR, Both or None",
        ),
        (
            &[("Header_Type", "AR")][..],
            "Header_Type: Authentication-Results needs Authserv_Id",
        ),
        (&[("Skip_Addresses", "10.0.0.0/33")][..], "Skip_Addresses"),
        (&[("Authserv_Id", "a b")][..], "Authserv_Id"),
        (
            &[("reject_fail", "yes")][..],
            "reject_fail: unknown argument",
        ),
    ] {
        let e = config(pairs).unwrap_err();
        assert!(e.starts_with(error), "{pairs:?}: {e}");
    }
}

#[test]
fn hostile_records_are_bounded() {
    // Thousands of macros in an explanation: cut, not megabytes.
    let big = "%{s}".repeat(4000);
    let zone = Zone::new(&[
        ("big.test", "TXT", "v=spf1 -all exp=why.big.test"),
        ("why.big.test", "TXT", &big),
        ("weird.test", "TXT", "v=spf1 +all"),
    ]);
    run(
        &zone,
        &[exp(
            "huge-explanation",
            "192.0.2.1",
            "x@big.test",
            FAIL,
            "DEFAULT",
        )],
    );
    // Odd characters in the session reach the header quoted or replaced.
    let outcome = check_host(
        &zone,
        &Query {
            ip: "192.0.2.1".parse().unwrap(),
            sender: "\"a (b)\\\"\"@weird.test",
            helo: "bad helo\"",
            receiver: "r",
            now: 0,
            void_limit: VOID_LIMIT,
        },
    );
    let session = request("192.0.2.1", "bad helo\"", "\"a (b)\\\"\"@weird.test");
    let h = crate::header::received_spf(&outcome, "mailfrom", &session, Some(session.sender), "r");
    assert_eq!(
        h,
        "Received-SPF: pass (r: domain of \"a _b__\"\"@weird.test designates 192.0.2.1 as \
         permitted sender) client-ip=192.0.2.1; envelope-from=\"\\\"a (b)\\\\\\\"\\\"@weird.test\"; \
         helo=\"bad helo\\\"\"; receiver=r; identity=mailfrom; mechanism=\"+all\";"
    );
    // The HELO list checks the HELO identity only.
    let c = config(&[]).unwrap();
    let mut helo_stage = request("192.0.2.1", "weird.test", "");
    helo_stage.stage = postern_plugin_sdk::Stage::Helo;
    let r = crate::policy::results(&c, &zone, &helo_stage, "192.0.2.1".parse().unwrap(), 0);
    assert!(r.helo.is_some() && r.mail_from.is_none());
}
