//! The embedded `check_*_access` plugins through the runtime: a table
//! named `hash:/...` as the server declares it, lookups through the
//! `tables` import, Postfix's replies, the actions that let the list go
//! on, and load-time refusal of bad arguments.

use std::path::Path;
use std::sync::Arc;

use postern_mail::{DomainClass, EnhancedCode, PolicyRequest, Reply, Stage, Verdict};
use postern_policy::{PolicyConfig, Snapshot};
use postern_tables::{HashTable, Table, Tables};

use crate::{Logs, RUNTIME, lines, rcpt};

const TABLE: &str = "hash:/etc/postfix/access";

fn tables(text: &str) -> Arc<Tables> {
    let mut tables = Tables::default();
    let t = HashTable::parse(Path::new("/etc/postfix/access"), text).unwrap();
    tables.insert(TABLE, Table::Hash(t));
    Arc::new(tables)
}

fn load(stage: Stage, entries: &[&str], table: &str) -> Snapshot {
    let mut config = PolicyConfig::default().with(stage, lines(entries));
    config.tables = tables(table);
    RUNTIME.load(&config).unwrap()
}

fn request(stage: Stage) -> PolicyRequest {
    let mut r = rcpt(false, Some(DomainClass::Other));
    r.stage = stage;
    r
}

#[tokio::test]
async fn sender_access_rejects_with_postfix_text_and_names_the_plugin() {
    let s = load(
        Stage::Sender,
        &["check_sender_access hash:/etc/postfix/access"],
        "example.net   REJECT Not from you\n",
    );
    let d = s.check(&request(Stage::Sender)).await;
    assert_eq!(
        d.verdict,
        Verdict::Reject(Reply::new(
            554,
            EnhancedCode::new(5, 7, 1),
            "<a@example.net>: Sender address rejected: Not from you"
        ))
    );
    assert_eq!(d.decided_by.as_deref(), Some("check_sender_access"));
}

#[tokio::test]
async fn actions_go_on_and_a_restriction_name_decides() {
    let s = load(
        Stage::Recipient,
        &[
            "check_client_access hash:/etc/postfix/access",
            "check_recipient_access hash:/etc/postfix/access",
        ],
        "192.0.2     PREPEND X-Seen: yes\n\
         x@example.com  permit_mynetworks reject_unauth_destination\n",
    );
    let d = s.check(&request(Stage::Recipient)).await;
    assert_eq!(
        d.verdict,
        Verdict::Reject(Reply::new(
            554,
            EnhancedCode::new(5, 7, 1),
            "<x@example.com>: Relay access denied"
        ))
    );
    assert_eq!(d.actions, [Verdict::Prepend("X-Seen: yes".to_owned())]);
    // From mynetworks the nested permit_mynetworks permits.
    let mut trusted = request(Stage::Recipient);
    trusted.trusted = true;
    assert_eq!(s.check(&trusted).await.verdict, Verdict::Permit);
}

#[tokio::test]
async fn an_unknown_restriction_is_a_configuration_error() {
    let logs = Logs::capture("reject_rhsbl_sender");
    let s = load(
        Stage::Helo,
        &["check_helo_access hash:/etc/postfix/access"],
        "client.example.net  reject_rhsbl_sender dbl.example\n",
    );
    let d = s.check(&request(Stage::Helo)).await;
    assert_eq!(
        d.verdict,
        Verdict::Reject(Reply::new(
            451,
            EnhancedCode::new(4, 3, 5),
            "Server configuration error"
        ))
    );
    let text = logs.text();
    assert!(
        text.contains("unknown smtpd restriction: \\\"reject_rhsbl_sender\\\"")
            || text.contains("unknown smtpd restriction: \"reject_rhsbl_sender\""),
        "{text}"
    );
}

#[test]
fn bad_arguments_stop_the_load() {
    for (line, why) in [
        ("check_sender_access", "missing table"),
        ("check_sender_access ldap:/x", "unsupported table type"),
        ("check_sender_access hash:/a hash:/b", "takes one table"),
    ] {
        let config = PolicyConfig::default().with(Stage::Sender, lines(&[line]));
        let err = RUNTIME.load(&config).unwrap_err().to_string();
        assert!(err.contains(why), "{line}: {err}");
    }
}

#[tokio::test]
async fn two_entries_of_one_plugin_keep_their_own_tables() {
    let mut tables = Tables::default();
    for (name, text) in [
        ("hash:/a", "other.example   REJECT from a\n"),
        ("hash:/b", "example.net   REJECT from b\n"),
    ] {
        tables.insert(
            name,
            Table::Hash(HashTable::parse(Path::new(name), text).unwrap()),
        );
    }
    let mut config = PolicyConfig::default().with(
        Stage::Sender,
        lines(&["check_sender_access hash:/a", "check_sender_access hash:/b"]),
    );
    config.tables = Arc::new(tables);
    let s = RUNTIME.load(&config).unwrap();
    for _ in 0..2 {
        let d = s.check(&request(Stage::Sender)).await;
        assert_eq!(
            d.refusal().map(|r| r.text.clone()).as_deref(),
            Some("<a@example.net>: Sender address rejected: from b")
        );
    }
}
