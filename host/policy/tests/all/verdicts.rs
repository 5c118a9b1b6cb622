//! Verdicts kept for plugins that declare what they depend on
//! (`host.cache-verdicts`): a request like an earlier one is answered
//! without a call; the plugin sees only what it declared; what depends on
//! more than the request (kv, a log line, a failed DNS lookup) is not
//! kept; a kept verdict goes with its TTL, at a reload, or never comes
//! with `verdict_cache = 0`; the access maps declare theirs from their
//! table's results.

use std::net::IpAddr;
use std::time::Duration;

use postern_mail::{DomainClass, PolicyRequest, Verdict};
use postern_policy::{Limits, PluginStats, Snapshot};

use crate::dns_server::DNS;
use crate::{RUNTIME, config, lines, rcpt, table};

fn load(pairs: &[(&str, &str)], limits: Limits) -> Snapshot {
    let mut config = config(vec![table(pairs)]);
    config.limits = limits;
    config.dns.nameservers = vec![*DNS];
    config.dns.timeout = Duration::from_secs(2);
    RUNTIME.load(&config).unwrap()
}

fn stats(s: &Snapshot, name: &str) -> PluginStats {
    s.stats().into_iter().find(|p| p.name == name).unwrap()
}

/// (calls, requests answered from kept verdicts) of `name`.
fn counts(s: &Snapshot, name: &str) -> (u64, u64) {
    let p = stats(s, name);
    (p.calls, p.cached)
}

fn from(client: [u8; 4], sender: &str) -> PolicyRequest {
    let mut r = rcpt(false, None);
    r.client_address = Some(IpAddr::from(client));
    r.sender = sender.to_owned();
    r
}

/// The text of a refusal, or the verdict's name.
async fn answer(s: &Snapshot, r: &PolicyRequest) -> String {
    let d = s.check(r).await;
    match d.refusal() {
        Some(reply) => reply.to_wire().trim_end().to_owned(),
        None => format!("{:?}", d.verdict),
    }
}

const ECHO: &[(&str, &str)] = &[
    ("plugin", "test_answer"),
    ("verdict", "reject"),
    ("code", "554"),
    (
        "text",
        "client={client_address} trusted={trusted} sender={sender} instance={instance} \
         queue={queue_id}",
    ),
    ("cache", "client-address,trusted"),
];

#[tokio::test]
async fn a_request_like_an_earlier_one_is_answered_without_a_call() {
    let s = load(ECHO, Limits::default());
    let mut first = from([198, 51, 100, 20], "a@example.net");
    first.queue_id = "4AbCd".to_owned();
    first.instance = "t1".to_owned();
    // The plugin saw what it declared and nothing else.
    let seen = "554 5.7.1 client=198.51.100.20 trusted=false sender= instance= queue=";
    assert_eq!(answer(&s, &first).await, seen);
    assert_eq!(counts(&s, "test_answer"), (1, 0));
    // Another sender, transaction and queue id: the kept verdict answers.
    let mut second = from([198, 51, 100, 20], "b@example.org");
    second.queue_id = "5EfGh".to_owned();
    second.instance = "t2".to_owned();
    assert_eq!(answer(&s, &second).await, seen);
    assert_eq!(counts(&s, "test_answer"), (1, 1));
    // A declared attribute differs: a call.
    assert_eq!(
        answer(&s, &from([198, 51, 100, 21], "a@example.net")).await,
        "554 5.7.1 client=198.51.100.21 trusted=false sender= instance= queue="
    );
    let mut trusted = from([198, 51, 100, 20], "a@example.net");
    trusted.trusted = true;
    assert!(answer(&s, &trusted).await.contains("trusted=true"));
    assert_eq!(counts(&s, "test_answer"), (3, 1));
    // Kept verdicts count among the verdicts, not among the calls.
    assert_eq!(stats(&s, "test_answer").verdicts, [("reject", 4)]);
}

#[tokio::test]
async fn a_kept_verdict_goes_with_its_ttl_with_a_reload_or_with_no_room() {
    let mut pairs = ECHO.to_vec();
    pairs.push(("cache_ttl", "1"));
    let s = load(&pairs, Limits::default());
    let r = from([198, 51, 100, 30], "a@example.net");
    answer(&s, &r).await;
    answer(&s, &r).await;
    assert_eq!(counts(&s, "test_answer"), (1, 1));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    answer(&s, &r).await;
    assert_eq!(counts(&s, "test_answer"), (2, 1), "expired after 1 s");
    // A reload's snapshot keeps nothing of the last one's.
    let s = load(&pairs, Limits::default());
    answer(&s, &r).await;
    assert_eq!(counts(&s, "test_answer"), (1, 0));
    // `verdict_cache = 0`: nothing is kept, and the plugin still sees
    // only what it declared.
    let none = Limits {
        verdict_cache: 0,
        ..Limits::default()
    };
    let s = load(ECHO, none);
    assert!(answer(&s, &r).await.ends_with("sender= instance= queue="));
    answer(&s, &r).await;
    assert_eq!(counts(&s, "test_answer"), (2, 0));
}

#[tokio::test]
async fn a_call_that_wrote_to_kv_is_not_kept() {
    let s = load(
        &[
            ("plugin", "test_lookup"),
            ("check", "kv"),
            ("limit", "100"),
            ("cache", "client-address"),
        ],
        Limits::default(),
    );
    let r = from([198, 51, 100, 40], "a@example.net");
    let d1 = s.check(&r).await;
    let d2 = s.check(&r).await;
    assert_ne!(d1.actions, d2.actions, "the count went on: {d1:?} {d2:?}");
    assert_eq!(counts(&s, "test_lookup"), (2, 0));
}

#[tokio::test]
async fn a_failed_dns_lookup_is_not_kept_and_an_answer_is() {
    let s = load(
        &[
            ("plugin", "test_lookup"),
            ("check", "dns"),
            ("cache", "helo-name,client-address"),
        ],
        Limits::default(),
    );
    // Answers and NXDOMAIN from the test server: kept.
    let mut known = from([192, 0, 2, 10], "a@example.net");
    known.helo_name = "mail.test".to_owned();
    s.check(&known).await;
    s.check(&known).await;
    assert_eq!(counts(&s, "test_lookup"), (1, 1));
    // A name outside its zones, which it refuses (SERVFAIL): not kept.
    let mut refused = from([192, 0, 2, 10], "a@example.net");
    refused.helo_name = "elsewhere.example".to_owned();
    s.check(&refused).await;
    s.check(&refused).await;
    assert_eq!(counts(&s, "test_lookup"), (3, 1));
}

#[tokio::test]
async fn the_default_chain_is_answered_from_kept_verdicts() {
    let mut config = config(lines(&[
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "reject_unauth_destination",
    ]));
    config.limits = Limits::default();
    let s = RUNTIME.load(&config).unwrap();
    let local = |sender: &str| {
        let mut r = rcpt(false, Some(DomainClass::Local));
        r.sender = sender.to_owned();
        r
    };
    for sender in ["a@example.net", "b@example.net", "c@example.net"] {
        assert_eq!(s.check(&local(sender)).await.verdict, Verdict::Permit);
    }
    for name in [
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "reject_unauth_destination",
    ] {
        assert_eq!(counts(&s, name), (1, 2), "{name}");
    }
    // What each depends on is declared: the relay test quotes the
    // recipient, and a trusted client or a login still permits.
    let relay = rcpt(false, Some(DomainClass::Other));
    assert_eq!(
        answer(&s, &relay).await,
        "554 5.7.1 <x@example.com>: Relay access denied"
    );
    let mut other = rcpt(false, Some(DomainClass::Other));
    other.recipient = "y@example.com".to_owned();
    assert_eq!(
        answer(&s, &other).await,
        "554 5.7.1 <y@example.com>: Relay access denied"
    );
    assert_eq!(
        s.check(&rcpt(true, Some(DomainClass::Other))).await.verdict,
        Verdict::Permit
    );
    let mut login = rcpt(false, Some(DomainClass::Other));
    login.sasl_username = "alice".to_owned();
    assert_eq!(s.check(&login).await.verdict, Verdict::Permit);
}

/// A snapshot with `entries` at the recipient stage and `text` as the
/// access table `hash:/etc/postfix/access`.
fn with_access_table(entries: &[&str], text: &str) -> Snapshot {
    let mut tables = postern_tables::Tables::default();
    let path = std::path::Path::new("/etc/postfix/access");
    let table = postern_tables::HashTable::parse(path, text).unwrap();
    tables.insert(
        "hash:/etc/postfix/access",
        postern_tables::Table::Hash(table),
    );
    let mut config = config(lines(entries));
    config.tables = std::sync::Arc::new(tables);
    RUNTIME.load(&config).unwrap()
}

#[tokio::test]
async fn an_access_map_keeps_verdicts_when_its_table_tells_what_they_depend_on() {
    // Plain actions: the verdict is the client's alone.
    let s = with_access_table(
        &["check_client_access hash:/etc/postfix/access"],
        "198.51.100.50 REJECT go away\n",
    );
    let r = from([198, 51, 100, 50], "a@example.net");
    let go_away = "554 5.7.1 <unknown[198.51.100.50]>: Client host rejected: go away";
    assert_eq!(answer(&s, &r).await, go_away);
    assert_eq!(
        answer(&s, &from([198, 51, 100, 50], "b@example.net")).await,
        go_away
    );
    assert_eq!(counts(&s, "check_client_access"), (1, 1));

    // A result that names restrictions: what they read is declared too,
    // so a trusted client still gets through and an untrusted one not.
    let s = with_access_table(
        &["check_helo_access hash:/etc/postfix/access"],
        "client.example.net permit_mynetworks, reject\n",
    );
    let untrusted = rcpt(false, None);
    let refused = "554 5.7.1 <client.example.net>: Helo command rejected: Access denied";
    assert_eq!(answer(&s, &untrusted).await, refused);
    assert_eq!(answer(&s, &untrusted).await, refused);
    assert_eq!(s.check(&rcpt(true, None)).await.verdict, Verdict::Permit);
    assert_eq!(counts(&s, "check_helo_access"), (2, 1));

    // The sender's map tells "no MAIL FROM yet" by the queue id: called
    // every time.
    let s = with_access_table(
        &["check_sender_access hash:/etc/postfix/access"],
        "example.net REJECT not you\n",
    );
    answer(&s, &r).await;
    answer(&s, &r).await;
    assert_eq!(counts(&s, "check_sender_access"), (2, 0));
}

#[tokio::test]
async fn a_call_that_logged_is_not_kept() {
    let mut pairs = ECHO.to_vec();
    pairs.push(("log", "a line the operator reads"));
    let s = load(&pairs, Limits::default());
    let r = from([198, 51, 100, 60], "a@example.net");
    answer(&s, &r).await;
    answer(&s, &r).await;
    assert_eq!(counts(&s, "test_answer"), (2, 0));
}

#[tokio::test]
async fn a_call_that_read_the_time_or_kv_is_not_kept() {
    for check in ["now", "clock", "kv_get"] {
        let s = load(
            &[
                ("plugin", "test_lookup"),
                ("check", check),
                ("cache", "client-address"),
            ],
            Limits::default(),
        );
        let r = from([198, 51, 100, 70], "a@example.net");
        s.check(&r).await;
        s.check(&r).await;
        assert_eq!(counts(&s, "test_lookup"), (2, 0), "{check}");
    }
}

#[tokio::test]
async fn a_plugin_that_reads_a_data_dir_keeps_no_verdicts() {
    // Its files are read at every call, so that a new one is heard
    // without a reload: a kept verdict would not hear it.
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = ECHO.to_vec();
    pairs.push(("data_dir", dir.path().to_str().unwrap()));
    let s = load(&pairs, Limits::default());
    let r = from([198, 51, 100, 80], "a@example.net");
    // The declaration is not taken: the plugin sees the whole request.
    assert!(answer(&s, &r).await.contains("sender=a@example.net"));
    answer(&s, &r).await;
    assert_eq!(counts(&s, "test_answer"), (2, 0));
}
