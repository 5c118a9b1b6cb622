//! Whole lookups through [`AccessMap`] with a table in memory: the keys
//! each kind asks, in Postfix's order, and the verdict their answer gives.

use std::collections::HashMap;

use super::{r, refused, request};
use crate::access::{AccessMap, Kind};
use crate::{Reply, Request, Stage, Verdict};

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
