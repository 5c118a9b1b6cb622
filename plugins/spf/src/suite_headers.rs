//! `Header_Type`: Authentication-Results fields (RFC 8601) beside or
//! instead of Received-SPF, at RCPT and at the end of data, and the
//! Authentication-Results fields a message arrives with (§5), over the
//! made-up DNS of `suite`.

#![allow(clippy::unwrap_used)]

use std::cell::RefCell;

use postern_plugin_sdk::{Stage, Verdict};

use crate::config::Config;
use crate::end_of_data::{self, Fields};
use crate::header::authserv_id;
use crate::policy::{Cache, Session, check};
use crate::suite::Zone;

fn zone() -> Zone {
    Zone::new(&[
        ("pass.test", "TXT", "v=spf1 ip4:192.0.2.1 -all"),
        ("fail.test", "TXT", "v=spf1 -all"),
        ("broken.test", "TXT", "v=spf1 foo"),
        ("helo.test", "TXT", "v=spf1 ip4:192.0.2.1 -all"),
    ])
}

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_args(postern_plugin_sdk::args::pairs(pairs)).unwrap()
}

fn request<'a>(stage: Stage, helo: &'a str, sender: &'a str) -> Session<'a> {
    Session {
        stage,
        client_address: "192.0.2.1",
        helo_name: helo,
        sender,
        recipient: "rcpt@example.org",
        instance: "1",
    }
}

/// A message's fields in memory, and the fields added (which, as in the
/// server, are not among those read).
#[derive(Default)]
struct Message {
    fields: Vec<(String, String)>,
    added: RefCell<Vec<String>>,
}

impl Message {
    fn with(fields: &[(&str, &str)]) -> Message {
        Message {
            fields: fields
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            added: RefCell::default(),
        }
    }

    fn added(&self) -> Vec<String> {
        self.added.borrow().clone()
    }
}

impl Fields for Message {
    fn header(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn add(&self, name: &str, value: &str) -> Result<(), String> {
        self.added.borrow_mut().push(format!("{name}: {value}"));
        Ok(())
    }
}

#[test]
fn authentication_results_name_the_identity_that_decided() {
    let zone = zone();
    let ar = config(&[("Header_Type", "AR"), ("Authserv_Id", "mx.example.org")]);
    let ask = |c: &Config, helo: &str, sender: &str| {
        check(
            c,
            &zone,
            &request(Stage::Recipient, helo, sender),
            &Cache::default(),
            0,
        )
    };
    assert_eq!(
        ask(&ar, "client.example", "a@pass.test"),
        Verdict::Prepend(
            "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=pass.test".to_owned()
        )
    );
    // The null sender: the HELO identity decided (RFC 7208 §2.4).
    assert_eq!(
        ask(&ar, "helo.test", ""),
        Verdict::Prepend(
            "Authentication-Results: mx.example.org; spf=pass smtp.helo=helo.test".to_owned()
        )
    );
    // Errors carry a reason; an address literal is quoted.
    assert_eq!(
        ask(&ar, "[192.0.2.1]", "a@broken.test"),
        Verdict::Prepend(
            "Authentication-Results: mx.example.org; spf=permerror \
             reason=\"broken.test: foo: unknown mechanism\" smtp.mailfrom=broken.test"
                .to_owned()
        )
    );
    // A refusal is a refusal whatever the header type.
    assert!(matches!(
        ask(&ar, "client.example", "a@fail.test"),
        Verdict::Reject(r) if r.enhanced == "5.7.23"
    ));
    // The long spelling; Both at RCPT gives the first field, Received-SPF.
    let long = config(&[
        ("Header_Type", "authentication-results"),
        ("Authserv_Id", "mx.example.org"),
    ]);
    assert_eq!(
        ask(&long, "client.example", "a@pass.test"),
        ask(&ar, "client.example", "a@pass.test")
    );
    let both = config(&[("Header_Type", "Both"), ("Authserv_Id", "mx.example.org")]);
    let Verdict::Prepend(h) = ask(&both, "client.example", "a@pass.test") else {
        panic!("no header");
    };
    assert!(h.starts_with("Received-SPF: pass (mx.example.org: "), "{h}");
}

#[test]
fn at_the_end_of_data_both_fields_are_added() {
    let zone = zone();
    let both = config(&[("Header_Type", "Both"), ("Authserv_Id", "mx.example.org")]);
    let message = Message::with(&[("Subject", "hi")]);
    let req = request(Stage::EndOfData, "client.example", "a@pass.test");
    let verdict = end_of_data::check(&both, &zone, &req, &Cache::default(), 0, &message);
    assert_eq!(verdict, Verdict::Dunno);
    let added = message.added();
    assert_eq!(added.len(), 2, "{added:?}");
    assert!(added[0].starts_with("Received-SPF: pass ("), "{added:?}");
    assert_eq!(
        added[1],
        "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=pass.test"
    );
    // A refusal adds nothing.
    let message = Message::default();
    let req = request(Stage::EndOfData, "client.example", "a@fail.test");
    let verdict = end_of_data::check(&both, &zone, &req, &Cache::default(), 0, &message);
    assert!(
        matches!(&verdict, Verdict::Reject(r) if r.code == 550),
        "{verdict:?}"
    );
    assert!(message.added().is_empty());
}

#[test]
fn our_authserv_id_from_outside_is_not_trusted() {
    let zone = zone();
    let ar = config(&[("Header_Type", "AR"), ("Authserv_Id", "mx.example.org")]);
    let message = Message::with(&[
        (
            "Authentication-Results",
            "MX.example.org.; spf=pass smtp.mailfrom=bank.example",
        ),
        (
            "Authentication-Results",
            "(comment) \"mx.example.org\"; dkim=pass",
        ),
        (
            "Authentication-Results",
            "other.example; spf=pass smtp.mailfrom=x.example",
        ),
        ("Authentication-Results", "mx.example.org.evil; spf=pass"),
    ]);
    assert_eq!(end_of_data::forged(&ar, &message), 2);
    let req = request(Stage::EndOfData, "client.example", "a@pass.test");
    let Verdict::Warn(text) = end_of_data::check(&ar, &zone, &req, &Cache::default(), 0, &message)
    else {
        panic!("no warning");
    };
    assert!(
        text.starts_with(
            "2 Authentication-Results field(s) with this host's authserv-id mx.example.org"
        ),
        "{text}"
    );
    // Ours is still added (at the top, above them).
    assert_eq!(
        message.added(),
        ["Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=pass.test"]
    );
    // Without Authserv_Id the plugin does not know its name: nothing is
    // called forged.
    let unnamed = config(&[]);
    let message = Message::with(&[("Authentication-Results", "unknown; spf=pass")]);
    assert_eq!(end_of_data::forged(&unnamed, &message), 0);
}

#[test]
fn authserv_ids_are_read_as_rfc_8601_writes_them() {
    for (body, id) in [
        ("mx.example.org; spf=pass", Some("mx.example.org")),
        ("  mx.example.org 1; none", Some("mx.example.org")),
        ("(c (nested) \\) x) mx.example.org;", Some("mx.example.org")),
        ("\"quoted \\\"id\\\"\"; none", Some("quoted \"id\"")),
        ("mx.example.org(comment); none", Some("mx.example.org")),
        ("", None),
        ("; spf=pass", None),
        ("(unclosed comment", None),
        ("\"unclosed", None),
    ] {
        assert_eq!(authserv_id(body).as_deref(), id, "{body:?}");
    }
}
