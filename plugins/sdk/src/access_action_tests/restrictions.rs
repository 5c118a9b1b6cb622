//! Restriction names on the right-hand side of an access table answer:
//! those evaluated in-process, those handed to the server, and what cannot
//! be a name; then the restrictions that read the host's facts about the
//! request.

use super::{r, refused, request, sender};
use crate::access_action::{Codes, Context, evaluate};
use crate::{DomainClass, Request, Verdict};

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

#[test]
fn which_answers_are_lists_of_restriction_names() {
    use crate::access_action::restriction_names;
    for action in [
        "OK",
        "relay",
        "REJECT go away",
        "550 5.7.1 no",
        "DUNNO",
        "HOLD",
        "PREPEND X-Seen: yes",
        "1234567890",
        "",
        "check_sender_access hash:/x",
    ] {
        assert_eq!(restriction_names(action), None, "{action:?}");
    }
    assert_eq!(
        restriction_names(" Permit_MyNetworks, reject_unauth_destination my_class"),
        Some(vec![
            "permit_mynetworks".to_owned(),
            "reject_unauth_destination".to_owned(),
            "my_class".to_owned()
        ])
    );
}
