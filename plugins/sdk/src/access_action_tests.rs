//! access(5) corner cases: every action, the reply shapes and codes, and
//! whole lookups through [`AccessMap`] with a table in memory.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use super::*;
use crate::access::{AccessMap, Kind};
use crate::{DomainClass, Stage};

fn request() -> Request {
    Request {
        instance: "1".to_owned(),
        client_address: "192.0.2.66".to_owned(),
        client_port: 4242,
        reverse_client_name: "mail.spam.example.org".to_owned(),
        helo_name: "badhelo.example.org".to_owned(),
        sender: "spammer@example.org".to_owned(),
        recipient: "User+Tag@example.com".to_owned(),
        server_address: "127.0.0.1".to_owned(),
        server_port: 25,
        recipient_class: Some(DomainClass::Other),
        ..Request::empty(Stage::Recipient)
    }
}

/// Evaluates `value` as the answer for a sender.
fn sender(value: &str) -> Outcome {
    class(value, "Sender address")
}

fn class(value: &str, class: &str) -> Outcome {
    let req = request();
    let cx = Context {
        table: "hash:/etc/postfix/access",
        key: "example.org",
        reply_name: "spammer@example.org",
        class,
        codes: Codes::default(),
        request: &req,
    };
    evaluate(value, &cx)
}

fn refused(o: &Outcome) -> (u16, String, String) {
    match &o.verdict {
        Verdict::Reject(r)
        | Verdict::Defer(r)
        | Verdict::DeferIfPermit(r)
        | Verdict::DeferIfReject(r) => (r.code, r.enhanced.clone(), r.text.clone()),
        other => panic!("not a refusal: {other:?}"),
    }
}

fn r(code: u16, dsn: &str, text: &str) -> (u16, String, String) {
    (code, dsn.to_owned(), text.to_owned())
}

#[test]
fn reject_and_defer_with_postfix_texts_and_codes() {
    let o = sender("REJECT");
    assert!(matches!(o.verdict, Verdict::Reject(_)));
    assert_eq!(
        refused(&o),
        r(
            554,
            "5.7.1",
            "<spammer@example.org>: Sender address rejected: Access denied"
        )
    );
    assert_eq!(
        refused(&sender("reject Go away")).2,
        "<spammer@example.org>: Sender address rejected: Go away"
    );
    let o = sender("DEFER");
    assert!(matches!(o.verdict, Verdict::Defer(_)));
    assert_eq!(refused(&o).0, 450);
    assert_eq!(refused(&o).1, "4.7.1");
    // An enhanced code in the text replaces the default, its class digit
    // following the reply code.
    assert_eq!(
        refused(&sender("REJECT 5.7.26 No SPF")),
        r(
            554,
            "5.7.26",
            "<spammer@example.org>: Sender address rejected: No SPF"
        )
    );
    assert_eq!(refused(&sender("DEFER 5.7.1 later")).1, "4.7.1");
    // Not a code: kept as text.
    assert_eq!(
        refused(&sender("REJECT 5.7 half")).2,
        "<spammer@example.org>: Sender address rejected: 5.7 half"
    );
}

#[test]
fn address_codes_follow_what_is_rejected() {
    // smtpd_dsn_fix: a recipient code while rejecting a sender, and back.
    assert_eq!(refused(&sender("REJECT 5.1.1 no such user")).1, "5.1.0");
    assert_eq!(refused(&sender("REJECT 5.1.2 bad")).1, "5.1.8");
    assert_eq!(
        refused(&class("REJECT 5.1.8 bad", "Recipient address")).1,
        "5.1.2"
    );
    assert_eq!(
        refused(&class("REJECT 5.1.7 bad", "Recipient address")).1,
        "5.1.3"
    );
    assert_eq!(
        refused(&class("REJECT 5.1.1 x", "Recipient address")).1,
        "5.1.1"
    );
    assert_eq!(
        refused(&class("REJECT 5.1.9 x", "Recipient address")).1,
        "5.1.0"
    );
    assert_eq!(refused(&class("REJECT 5.1.1 x", "Client host")).1, "5.0.0");
    assert_eq!(refused(&class("450 4.1.1 x", "Client host")).1, "4.0.0");
    assert_eq!(fix_dsn("5.7.1", 450, "Client host"), "4.7.1");
}

#[test]
fn numeric_replies() {
    assert_eq!(
        refused(&sender("550 5.7.1 Go away")),
        r(
            550,
            "5.7.1",
            "<spammer@example.org>: Sender address rejected: Go away"
        )
    );
    let o = sender("450 Try again later");
    assert!(
        matches!(o.verdict, Verdict::Reject(_)),
        "Postfix rejects with the 4xx code"
    );
    assert_eq!(refused(&o).0, 450);
    assert_eq!(refused(&o).1, "4.7.1");
    assert_eq!(refused(&sender("421 bye")).0, 421);
    assert_eq!(refused(&sender("521 5.7.0 bye")).0, 521);
    // All-numeric: OK (Postfix's time-stamp convention), even "450" alone.
    assert_eq!(sender("1700000000").verdict, Verdict::Permit);
    assert_eq!(sender("450").verdict, Verdict::Permit);
    // 3xx or 6xx with text are not replies; they are unknown restrictions.
    assert!(matches!(sender("250 fine").verdict, Verdict::Reject(ref r) if r.code == 451));
}

#[test]
fn permits_and_passes() {
    assert_eq!(sender("OK").verdict, Verdict::Permit);
    assert_eq!(sender("ok trailing text ignored").verdict, Verdict::Permit);
    assert_eq!(sender("RELAY").verdict, Verdict::Permit);
    assert_eq!(sender("DUNNO").verdict, Verdict::Dunno);
    assert_eq!(sender("dunno with text").verdict, Verdict::Dunno);
    let o = sender("");
    assert_eq!(o.verdict, Verdict::Permit);
    assert_eq!(o.log.len(), 1, "an empty value is warned about");
}

#[test]
fn conditional_deferrals() {
    let o = sender("DEFER_IF_PERMIT");
    assert!(matches!(o.verdict, Verdict::DeferIfPermit(_)));
    assert_eq!(
        refused(&o),
        r(
            450,
            "4.7.1",
            "<spammer@example.org>: Sender address rejected: Service unavailable"
        )
    );
    let o = sender("defer_if_reject 4.7.0 greylisted");
    assert!(matches!(o.verdict, Verdict::DeferIfReject(_)));
    assert_eq!(refused(&o).1, "4.7.0");
    assert_eq!(
        refused(&o).2,
        "<spammer@example.org>: Sender address rejected: greylisted"
    );
}

#[test]
fn actions_that_let_the_list_go_on() {
    assert_eq!(
        sender("HOLD").verdict,
        Verdict::Hold("<spammer@example.org>: Sender address triggers HOLD action".to_owned())
    );
    assert_eq!(
        sender("HOLD look at it").verdict,
        Verdict::Hold("<spammer@example.org>: Sender address look at it".to_owned())
    );
    assert_eq!(
        sender("DISCARD").verdict,
        Verdict::Discard(
            "<spammer@example.org>: Sender address triggers DISCARD action".to_owned()
        )
    );
    assert_eq!(
        sender("PREPEND X-Spam: yes").verdict,
        Verdict::Prepend("X-Spam: yes".to_owned())
    );
    assert_eq!(
        sender("REDIRECT abuse@example.net").verdict,
        Verdict::Redirect("abuse@example.net".to_owned())
    );
    assert_eq!(
        sender("BCC archive@example.net").verdict,
        Verdict::Bcc("archive@example.net".to_owned())
    );
    assert_eq!(sender("WARN odd").verdict, Verdict::Warn("odd".to_owned()));
    let o = sender("INFO seen");
    assert_eq!(o.verdict, Verdict::Info("seen".to_owned()));
    assert!(o.log.is_empty(), "the server logs it, in Postfix's shape");
    assert_eq!(
        sender("hangup go away").verdict,
        Verdict::Hangup("go away".to_owned())
    );
    assert_eq!(sender("HANGUP").verdict, Verdict::Hangup(String::new()));
}

#[test]
fn malformed_actions_are_warned_about_and_ignored() {
    for (value, why) in [
        ("PREPEND no header", "requires header: text"),
        ("PREPEND", "requires header: text"),
        ("REDIRECT nobody", "requires user@domain target"),
        ("BCC", "requires user@domain target"),
        ("FILTER", "has FILTER entry without value"),
        ("FILTER smtp", "requires transport:destination"),
        ("FILTER smtp:[a] b", "requires transport:destination"),
    ] {
        let o = sender(value);
        assert_eq!(o.verdict, Verdict::Dunno, "{value}");
        assert_eq!(
            o.log,
            [(
                LogLevel::Warn,
                format!("access table hash:/etc/postfix/access entry \"example.org\" {why}")
            )],
            "{value}"
        );
    }
    // A well-formed FILTER is the filter verdict; smtpd logs it.
    let o = sender("filter  smtp:[127.0.0.1]:10025");
    assert_eq!(
        o.verdict,
        Verdict::Filter("smtp:[127.0.0.1]:10025".to_owned())
    );
    assert!(o.log.is_empty(), "{:?}", o.log);
}

#[test]
fn restriction_names_on_the_right_hand_side() {
    // The request: untrusted, unauthenticated, a recipient elsewhere.
    let o = sender("permit_mynetworks, reject_unauth_destination");
    assert_eq!(
        refused(&o),
        r(554, "5.7.1", "<User+Tag@example.com>: Relay access denied")
    );
    assert_eq!(sender("permit_sasl_authenticated").verdict, Verdict::Dunno);
    assert_eq!(sender("permit_mynetworks permit").verdict, Verdict::Permit);
    assert_eq!(
        refused(&sender("reject")),
        r(
            554,
            "5.7.1",
            "<spammer@example.org>: Sender address rejected: Access denied"
        )
    );
    assert_eq!(
        refused(&sender("DEFER_UNAUTH_DESTINATION")),
        r(454, "4.7.1", "<User+Tag@example.com>: Relay access denied")
    );
    assert_eq!(sender("reject_non_fqdn_sender").verdict, Verdict::Dunno);
    // Other names go to the server, the rest of the list with them: it
    // knows the restriction classes (and answers 451 4.3.5 to others).
    let o = sender("permit_mynetworks from_freemail, reject");
    assert_eq!(
        o.verdict,
        Verdict::Restriction("from_freemail, reject".to_owned())
    );
    assert!(o.log.is_empty());
    assert_eq!(
        sender("Reject_RBL_Client").verdict,
        Verdict::Restriction("Reject_RBL_Client".to_owned())
    );
    // What cannot be a name: a configuration error here, as in Postfix.
    let o = sender("permit_mynetworks 3x from_freemail");
    assert_eq!(refused(&o), r(451, "4.3.5", "Server configuration error"));
    assert!(
        o.log[0].1.contains("unknown smtpd restriction: \"3x\""),
        "{:?}",
        o.log
    );
    let o = sender("check_sender_access hash:/etc/other");
    assert_eq!(refused(&o).0, 451);
    assert!(
        o.log[0].1.contains("do not specify lookup tables"),
        "{:?}",
        o.log
    );
}

#[test]
fn restrictions_on_the_hosts_facts() {
    let eval = |name: &str, req: &Request| {
        let cx = Context {
            table: "hash:/etc/postfix/access",
            key: "example.org",
            reply_name: "DATA",
            class: "Data command",
            codes: Codes::default(),
            request: req,
        };
        evaluate(name, &cx)
    };
    let mut req = request();
    for name in [
        "reject_unauth_pipelining",
        "reject_unlisted_recipient",
        "reject_unlisted_sender",
    ] {
        assert_eq!(eval(name, &req).verdict, Verdict::Dunno, "{name}");
    }
    req.illegal_pipelining = true;
    assert_eq!(
        refused(&eval("reject_unauth_pipelining", &req)),
        r(
            503,
            "5.5.0",
            "<DATA>: Data command rejected: Improper use of SMTP command pipelining"
        )
    );
    req.recipient = "nobody@local.test".to_owned();
    req.recipient_class = Some(DomainClass::Local);
    req.recipient_known = false;
    assert_eq!(
        refused(&eval("reject_unlisted_recipient", &req)),
        r(
            550,
            "5.1.1",
            "<nobody@local.test>: Recipient address rejected: User unknown in local recipient table"
        )
    );
    req.sender = "ghost@virt.test".to_owned();
    req.sender_class = Some(DomainClass::Virtual);
    req.sender_known = false;
    assert_eq!(
        refused(&eval("reject_unlisted_sender", &req)),
        r(
            550,
            "5.1.0",
            "<ghost@virt.test>: Sender address rejected: User unknown in virtual mailbox table"
        )
    );
    // A domain that is not ours is not ours to verify.
    req.sender_class = Some(DomainClass::Relay);
    assert_eq!(eval("reject_unlisted_sender", &req).verdict, Verdict::Dunno);
}

fn table(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Runs `kind` over `req` against `entries`; the verdict and the keys
/// looked up.
fn run(
    kind: Kind,
    args: &[(&str, &str)],
    req: &Request,
    entries: &[(&str, &str)],
) -> (Verdict, Vec<String>) {
    let map = AccessMap::from_args(kind, crate::args::pairs(args)).unwrap();
    let t = table(entries);
    let mut asked = Vec::new();
    let out = map.check(req, &mut |key| {
        asked.push(key.to_owned());
        t.get(&key.to_ascii_lowercase()).cloned()
    });
    (out.verdict, asked)
}

const HASH: &[(&str, &str)] = &[("1", "hash:/etc/postfix/access")];

#[test]
fn client_name_before_address() {
    let req = Request {
        client_name: "mail.friend.example.net".to_owned(),
        ..request()
    };
    let (v, asked) = run(Kind::Client, HASH, &req, &[("192.0.2", "REJECT")]);
    assert_eq!(
        asked,
        [
            "mail.friend.example.net",
            "friend.example.net",
            "example.net",
            "net",
            "192.0.2.66",
            "192.0.2"
        ]
    );
    assert_eq!(
        refused(&v.into()),
        r(
            554,
            "5.7.1",
            "<mail.friend.example.net[192.0.2.66]>: Client host rejected: Access denied"
        )
    );
    let (v, _) = run(
        Kind::Client,
        HASH,
        &req,
        &[("friend.example.net", "OK"), ("192.0.2", "REJECT")],
    );
    assert_eq!(v, Verdict::Permit);
    // The reverse name, unverified, and its own reply name.
    let (v, _) = run(
        Kind::ReverseClient,
        HASH,
        &req,
        &[("spam.example.org", "REJECT")],
    );
    assert_eq!(
        refused(&v.into()).2,
        "<mail.spam.example.org>: Unverified Client host rejected: Access denied"
    );
    // A cidr table sees the address once, whole.
    let (_, asked) = run(Kind::Client, &[("1", "cidr:/etc/nets")], &req, &[]);
    assert_eq!(asked, ["mail.friend.example.net", "192.0.2.66"]);
}

#[test]
fn helo_and_dot_domains() {
    let req = request();
    let no_parent = [("1", "hash:/x"), ("parent_domain_matches_subdomains", "no")];
    let (v, _) = run(Kind::Helo, &no_parent, &req, &[("example.org", "REJECT")]);
    assert_eq!(v, Verdict::Dunno, "example.org does not match subdomains");
    let (v, _) = run(Kind::Helo, &no_parent, &req, &[(".example.org", "REJECT")]);
    assert!(matches!(v, Verdict::Reject(_)));
    let (v, _) = run(Kind::Helo, HASH, &req, &[(".example.org", "REJECT")]);
    assert_eq!(v, Verdict::Dunno, ".example.org means nothing by default");
    let (v, asked) = run(
        Kind::Helo,
        HASH,
        &Request {
            helo_name: String::new(),
            ..req
        },
        &[],
    );
    assert_eq!((v, asked.len()), (Verdict::Dunno, 0), "no HELO yet");
}

#[test]
fn senders_recipients_and_the_null_sender() {
    let req = request();
    let plus = [("1", "hash:/x"), ("recipient_delimiter", "+")];
    let (v, asked) = run(Kind::Recipient, &plus, &req, &[("user@", "REJECT")]);
    assert_eq!(
        asked,
        [
            "User+Tag@example.com",
            "User@example.com",
            "example.com",
            "com",
            "User+Tag@",
            "User@"
        ]
    );
    assert_eq!(
        refused(&v.into()).2,
        "<User+Tag@example.com>: Recipient address rejected: Access denied"
    );
    let (v, _) = run(
        Kind::Sender,
        HASH,
        &req,
        &[("abuse@", "OK"), ("org", "REJECT")],
    );
    assert!(matches!(v, Verdict::Reject(_)), "domains before user@");
    let null = Request {
        sender: String::new(),
        ..request()
    };
    let (v, asked) = run(Kind::Sender, HASH, &null, &[("<>", "550 5.7.1 no bounces")]);
    assert_eq!(asked, ["<>"]);
    assert_eq!(
        refused(&v.into()),
        r(550, "5.7.1", "<>: Sender address rejected: no bounces")
    );
    let (_, asked) = run(
        Kind::Sender,
        &[("1", "hash:/x"), ("smtpd_null_access_lookup_key", "<null>")],
        &null,
        &[],
    );
    assert_eq!(asked, ["<null>"]);
    // Before MAIL FROM there is no sender at all, not the null one.
    let early = Request {
        stage: Stage::Client,
        ..null
    };
    assert_eq!(run(Kind::Sender, HASH, &early, &[]).1.len(), 0);
    // A regexp table gets the full address only.
    let (_, asked) = run(Kind::Sender, &[("1", "regexp:/x")], &req, &[]);
    assert_eq!(asked, ["spammer@example.org"]);
}

#[test]
fn sasl_login_names() {
    // No login: nothing to look up.
    let (v, asked) = run(Kind::Sasl, HASH, &request(), &[("alice@", "REJECT")]);
    assert_eq!(v, Verdict::Dunno);
    assert!(asked.is_empty());
    let req = Request {
        sasl_username: "alice@example.org".to_owned(),
        ..request()
    };
    let (v, asked) = run(
        Kind::Sasl,
        HASH,
        &req,
        &[("example.org", "REJECT Shared account, use your own")],
    );
    assert_eq!(asked, ["alice@example.org", "example.org"]);
    assert_eq!(
        v,
        Verdict::Reject(Reply {
            code: 554,
            enhanced: "5.7.1".to_owned(),
            text: "<alice@example.org>: SASL login name rejected: Shared account, use your own"
                .to_owned(),
        })
    );
    // A login without a domain: the name, then `name@`.
    let req = Request {
        sasl_username: "bob".to_owned(),
        ..request()
    };
    let (v, asked) = run(Kind::Sasl, HASH, &req, &[("bob@", "OK")]);
    assert_eq!(asked, ["bob", "bob@"]);
    assert_eq!(v, Verdict::Permit);
}

#[test]
fn prepend_is_unavailable_at_the_end_of_data() {
    let req = Request {
        stage: Stage::EndOfData,
        ..request()
    };
    let cx = Context {
        table: "hash:/etc/postfix/access",
        key: "example.org",
        reply_name: "spammer@example.org",
        class: "Sender address",
        codes: Codes::default(),
        request: &req,
    };
    let o = evaluate("PREPEND X-Spam: yes", &cx);
    assert_eq!(o.verdict, Verdict::Dunno);
    assert_eq!(
        o.log[0].1,
        "access table hash:/etc/postfix/access: action PREPEND is unavailable in \
         smtpd_end_of_data_restrictions"
    );
}
