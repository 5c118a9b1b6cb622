//! `smtpd_delay_reject = no` with the standard plugins over real SMTP:
//! a client `check_client_access` refuses gets the refusal for a greeting
//! and `503` until it quits; a bad HELO is refused at EHLO and a
//! non-FQDN sender at MAIL, where Postfix refuses them then.

use crate::support::*;

#[test]
fn each_list_refuses_at_its_own_command() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display();
    std::fs::write(tmp.path().join("clients"), "127.0.0.2 REJECT\n").unwrap();
    test_config(
        tmp.path(),
        &format!(
            "smtpd_delay_reject = \"no\"\n\
             smtpd_client_restrictions = [\"check_client_access cidr:{d}/clients\"]\n\
             smtpd_helo_restrictions = [\"reject_invalid_helo_hostname\"]\n\
             smtpd_sender_restrictions = [\"reject_non_fqdn_sender\"]\n"
        ),
    );
    let server = Server::start_in(tmp.path());

    let mut refused = Client::connect_raw(server.smtp, "127.0.0.2");
    let greeting = refused.reply();
    assert!(
        greeting.starts_with("554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied"),
        "{greeting}"
    );
    let r = refused.cmd("EHLO client.test.example");
    assert_eq!(
        r,
        "503 5.7.0 Error: access denied for unknown[127.0.0.2]\r\n"
    );
    assert!(refused.cmd("QUIT").starts_with("221"));
    server.wait_log("NOQUEUE: reject: CONNECT from unknown[127.0.0.2]: 554 5.7.1");

    let mut c = Client::connect(server.smtp);
    let r = c.cmd("EHLO bad_name!");
    assert!(
        r.starts_with("501 5.5.2 <bad_name!>: Helo command rejected"),
        "{r}"
    );
    assert!(c.cmd("EHLO client.test.example").starts_with("250"));
    let r = c.cmd("MAIL FROM:<someone@nodots>");
    assert!(
        r.starts_with("504 5.5.2 <someone@nodots>: Sender address rejected"),
        "{r}"
    );
    let r = send_message(
        &mut c,
        "someone@sender.test.example",
        &["alice@example.org"],
        "Subject: fine\r\n\r\nhi\r\n",
    );
    assert!(r.starts_with("250"), "{r}");
    wait_messages(&server.new_dir("alice"), 1);
}
