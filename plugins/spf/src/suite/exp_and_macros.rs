//! The suite's groups on the modifiers (§6: `redirect=`, `exp=` and the
//! explanation string) and on macro expansion (§7): letters,
//! transformers, delimiters and `%{p}` through PTR lookups.

use super::{FAIL, M, NEUTRAL, PASS, PERM};
use super::{Zone, case, exp, run};

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
