//! access(5) corner cases: every action, the reply shapes and codes, and
//! whole lookups through [`AccessMap`](crate::access::AccessMap) with a
//! table in memory.
//!
//! This file holds the helpers and the actions themselves; apart:
//! `restrictions`, restriction names on the right-hand side, and
//! `lookups`, whole lookups (the keys asked, their order, the verdict).

#![allow(clippy::unwrap_used)]

#[path = "access_action_tests/lookups.rs"]
mod lookups;
#[path = "access_action_tests/restrictions.rs"]
mod restrictions;

use super::*;
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
