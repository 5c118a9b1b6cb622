//! The network and identity checks of the standard plugins through the
//! runtime: `permit_auth_destination`, `reject_multi_recipient_bounce`,
//! `reject_unlisted_recipient` and `reject_unlisted_sender` (over an
//! operator's table, and over the server's answer in the request) and
//! `reject_unauth_pipelining` (on the request's `illegal_pipelining`).

use std::path::Path;
use std::sync::Arc;

use postern_mail::{Decision, DomainClass, PolicyRequest, Stage, Verdict};
use postern_policy::Snapshot;
use postern_tables::{HashTable, Table, Tables};

use crate::{RUNTIME, config, lines, rcpt, table};

/// `entries` as the recipient list, with a hash table `users`.
fn load(entries: Vec<postern_policy::Entry>) -> Snapshot {
    let mut tables = Tables::default();
    let users = HashTable::parse(
        Path::new("users"),
        "alice@example.org  ok\nbob  ok\n@virtual.example  catch-all\n",
    )
    .unwrap();
    tables.insert("users", Table::Hash(users));
    let mut c = config(entries);
    c.tables = Arc::new(tables);
    RUNTIME.load(&c).unwrap()
}

/// The refusal's wire text, "permit by NAME", or "dunno" (end of list).
async fn decide(s: &Snapshot, r: &PolicyRequest) -> String {
    let d: Decision = s.check(r).await;
    let by = d.decided_by.clone().unwrap_or_default();
    match (&d.verdict, d.refusal()) {
        (Verdict::Permit, _) if by.is_empty() => "dunno".to_owned(),
        (Verdict::Permit, _) => format!("permit by {by}"),
        (_, Some(reply)) => format!("{} by {by}", reply.to_wire().trim_end()),
        (other, None) => format!("{other:?} by {by}"),
    }
}

fn to(recipient: &str, class: Option<DomainClass>) -> PolicyRequest {
    let mut r = rcpt(false, class);
    r.recipient = recipient.to_owned();
    r
}

#[tokio::test]
async fn permit_auth_destination_permits_our_domains_only() {
    let s = load(lines(&["permit_auth_destination"]));
    for class in [DomainClass::Local, DomainClass::Virtual, DomainClass::Relay] {
        assert_eq!(
            decide(&s, &to("x@example.com", Some(class))).await,
            "permit by permit_auth_destination"
        );
    }
    assert_eq!(
        decide(&s, &to("x@example.com", Some(DomainClass::Other))).await,
        "dunno"
    );
    assert_eq!(decide(&s, &to("", None)).await, "dunno");
}

#[tokio::test]
async fn multi_recipient_bounces_are_rejected_from_the_second_recipient() {
    // In the recipient list and the data list.
    let c = config(lines(&["reject_multi_recipient_bounce"]))
        .with(Stage::Data, lines(&["reject_multi_recipient_bounce"]));
    let s = RUNTIME.load(&c).unwrap();
    let bounce = |stage: Stage, count: u32, sender: &str| {
        let mut r = rcpt(false, None);
        r.stage = stage;
        r.sender = sender.to_owned();
        r.recipient_count = count;
        r
    };
    let refused = "550 5.5.3 <>: Sender address rejected: Multi-recipient bounce \
                   by reject_multi_recipient_bounce";
    assert_eq!(decide(&s, &bounce(Stage::Recipient, 0, "")).await, "dunno");
    assert_eq!(decide(&s, &bounce(Stage::Recipient, 1, "")).await, refused);
    assert_eq!(
        decide(&s, &bounce(Stage::Recipient, 1, "a@b.example")).await,
        "dunno"
    );
    assert_eq!(decide(&s, &bounce(Stage::Data, 1, "")).await, "dunno");
    assert_eq!(decide(&s, &bounce(Stage::Data, 2, "")).await, refused);
}

#[tokio::test]
async fn unlisted_recipients_are_looked_up_in_the_operators_tables() {
    let s = load(vec![table(&[
        ("plugin", "reject_unlisted_recipient"),
        ("maps", "users"),
        ("delimiter", "+"),
    ])]);
    let local = Some(DomainClass::Local);
    for known in [
        "alice@example.org",
        "Alice+news@example.org",
        "bob@example.org",
        "postmaster@x.example",
    ] {
        assert_eq!(decide(&s, &to(known, local)).await, "dunno", "{known}");
    }
    assert_eq!(
        decide(&s, &to("carol@example.org", local)).await,
        "550 5.1.1 <carol@example.org>: Recipient address rejected: User unknown in local \
         recipient table by reject_unlisted_recipient"
    );
    let virt = Some(DomainClass::Virtual);
    assert_eq!(decide(&s, &to("any@virtual.example", virt)).await, "dunno");
    assert_eq!(
        decide(&s, &to("bob@other.example", virt)).await,
        "550 5.1.1 <bob@other.example>: Recipient address rejected: User unknown in virtual \
         mailbox table by reject_unlisted_recipient"
    );
    // Not ours to verify; and without tables it has no opinion.
    let other = Some(DomainClass::Other);
    assert_eq!(decide(&s, &to("carol@else.example", other)).await, "dunno");
    let s = load(lines(&["reject_unlisted_recipient"]));
    assert_eq!(decide(&s, &to("carol@example.org", local)).await, "dunno");
}

#[tokio::test]
async fn unlisted_senders_at_the_named_domains_are_rejected() {
    let s = load(vec![table(&[
        ("plugin", "reject_unlisted_sender"),
        ("domains", "example.org"),
        ("maps", "users"),
    ])]);
    let from = |sender: &str| {
        let mut r = rcpt(false, None);
        r.sender = sender.to_owned();
        r
    };
    for ok in [
        "alice@example.org",
        "bob@example.org",
        "",
        "x@elsewhere.example",
    ] {
        assert_eq!(decide(&s, &from(ok)).await, "dunno", "{ok}");
    }
    assert_eq!(
        decide(&s, &from("mallory@example.org")).await,
        "550 5.1.0 <mallory@example.org>: Sender address rejected: User unknown in local \
         recipient table by reject_unlisted_sender"
    );
    let mut c = config(vec![table(&[
        ("plugin", "reject_unlisted_sender"),
        ("domains", "x"),
    ])]);
    c.tables = Arc::new(Tables::default());
    let err = RUNTIME.load(&c).unwrap_err().to_string();
    assert!(err.contains("domains and maps go together"), "{err}");
}

#[tokio::test]
async fn unauth_pipelining_rejects_on_the_sessions_flag() {
    let s = load(lines(&["reject_unauth_pipelining"]));
    assert_eq!(decide(&s, &rcpt(false, None)).await, "dunno");
    let mut r = rcpt(false, None);
    r.illegal_pipelining = true;
    let refused = decide(&s, &r).await;
    assert!(
        refused.starts_with("503 5.5.0 <")
            && refused.ends_with(
                ">: Recipient address rejected: Improper use of SMTP command pipelining \
                 by reject_unauth_pipelining"
            ),
        "{refused}"
    );
    let err = RUNTIME
        .load(&config(lines(&["reject_unauth_pipelining now"])))
        .unwrap_err()
        .to_string();
    assert!(err.contains("takes none"), "{err}");
}

#[tokio::test]
async fn unlisted_checks_without_tables_use_the_servers_answer() {
    let s = load(lines(&[
        "reject_unlisted_recipient",
        "reject_unlisted_sender",
    ]));
    let mut r = to("nobody@example.org", Some(DomainClass::Local));
    r.recipient_known = false;
    assert_eq!(
        decide(&s, &r).await,
        "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local \
         recipient table by reject_unlisted_recipient"
    );
    let mut r = to("alice@example.org", Some(DomainClass::Local));
    r.sender = "ghost@virtual.example".to_owned();
    r.sender_class = Some(DomainClass::Virtual);
    r.sender_known = false;
    assert_eq!(
        decide(&s, &r).await,
        "550 5.1.0 <ghost@virtual.example>: Sender address rejected: User unknown in virtual \
         mailbox table by reject_unlisted_sender"
    );
    r.sender_known = true;
    assert_eq!(decide(&s, &r).await, "dunno");
}
