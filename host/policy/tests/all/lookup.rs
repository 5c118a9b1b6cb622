//! The `dns`, `tables` and `kv` host imports, used by the `test_lookup`
//! guest against a real DNS server (hickory-server), real table files and
//! the runtime's store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_mail::{EnhancedCode, PolicyRequest, Reply, Verdict};
use postern_policy::{DnsConfig, Limits, PolicyConfig, Snapshot};
use postern_tables::{HashTable, Table, Tables};

use crate::dns_server::{DNS, SILENT};
use crate::{Logs, RUNTIME, config, rcpt, rcpt_id, table};

fn load(args: &[(&str, &str)], edit: impl FnOnce(&mut PolicyConfig)) -> Snapshot {
    let mut pairs = vec![("plugin", "test_lookup")];
    pairs.extend_from_slice(args);
    let mut config = config(vec![table(&pairs)]);
    edit(&mut config);
    RUNTIME.load(&config).unwrap()
}

fn dns(servers: Vec<std::net::SocketAddr>, timeout: Duration) -> DnsConfig {
    DnsConfig {
        nameservers: servers,
        timeout,
        ..DnsConfig::default()
    }
}

/// The `warn` text the guest answered.
async fn warned(s: &Snapshot, req: &PolicyRequest) -> String {
    let d = s.check(req).await;
    match d.actions.as_slice() {
        [Verdict::Warn(text)] => text.clone(),
        other => panic!("expected one warn, got {:?} / {other:?}", d.verdict),
    }
}

fn from(helo: &str, client: [u8; 4]) -> PolicyRequest {
    let mut r = rcpt(false, None);
    r.helo_name = helo.to_owned();
    r.client_address = Some(client.into());
    r
}

#[tokio::test]
async fn dns_answers_every_record_type_from_a_real_server() {
    let s = load(&[("check", "dns")], |c| {
        c.dns = dns(vec![*DNS], Duration::from_secs(2));
    });
    assert_eq!(
        warned(&s, &from("mail.test", [192, 0, 2, 10])).await,
        "a=[\"192.0.2.10\"] aaaa=[\"2001:db8::10\"] mx=[\"10 mx1.test\", \"20 mx2.test\"] \
         txt=[\"v=spf1 -all\"] ptr=[\"mail.test\"]"
    );
    // A name that exists without the type asked for: empty answers.
    assert_eq!(
        warned(&s, &from("2.0.2.192.rbl.test.", [192, 0, 2, 10])).await,
        "a=[\"127.0.0.2\"] aaaa=[] mx=[] txt=[\"listed\"] ptr=[\"mail.test\"]"
    );
}

#[tokio::test]
async fn nxdomain_servfail_and_bad_names_are_told_apart() {
    let s = load(&[("check", "dns")], |c| {
        c.dns = dns(vec![*DNS], Duration::from_secs(2));
    });
    assert_eq!(
        warned(&s, &from("missing.test", [192, 0, 2, 99])).await,
        "a=nxdomain aaaa=nxdomain mx=nxdomain txt=nxdomain ptr=nxdomain"
    );
    // Outside every zone the server serves: it refuses. (Not .invalid:
    // the resolver answers that RFC 6761 name itself.)
    let text = warned(&s, &from("example.org", [198, 51, 100, 1])).await;
    assert_eq!(
        text,
        "a=servfail aaaa=servfail mx=servfail txt=servfail ptr=servfail"
    );
    let mut r = from("bad..name", [192, 0, 2, 10]);
    r.client_address = None;
    let text = warned(&s, &r).await;
    assert!(text.starts_with("a=other("), "{text}");
    assert!(
        text.ends_with("ptr=other(\"\" is not an IP address)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out_without_costing_the_plugin_its_deadline() {
    // Each lookup may wait 300 ms, far beyond the plugin's 100 ms
    // deadline, and the call's DNS budget is 1 s: the plugin sees
    // timeouts (the last ones at once, the budget spent), not a deadline.
    let s = load(&[("check", "dns")], |c| {
        c.dns = DnsConfig {
            nameservers: vec![*SILENT],
            timeout: Duration::from_millis(300),
            budget: Duration::from_secs(1),
        };
        c.plugin_limits.insert(
            "test_lookup".to_owned(),
            Limits {
                deadline: Duration::from_millis(100),
                ..Limits::default()
            },
        );
    });
    let started = Instant::now();
    assert_eq!(
        warned(&s, &from("mail.test", [192, 0, 2, 10])).await,
        "a=timeout aaaa=timeout mx=timeout txt=timeout ptr=timeout"
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(950), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn tables_answer_through_the_import_and_an_undeclared_one_fails_the_call() {
    let logs = Logs::capture("TABLE1");
    let mut tables = Tables::default();
    let access = HashTable::parse(
        std::path::Path::new("access"),
        "a@example.net   Not from you\n",
    )
    .unwrap();
    tables.insert("access", Table::Hash(access));
    let tables = Arc::new(tables);
    let s = load(&[("check", "table"), ("table", "access")], |c| {
        c.tables = tables.clone();
    });
    let d = s.check(&rcpt(false, None)).await;
    assert_eq!(
        d.verdict,
        Verdict::Reject(Reply::new(554, EnhancedCode::new(5, 7, 1), "Not from you"))
    );
    let mut other = rcpt(false, None);
    other.sender = "b@example.net".to_owned();
    assert_eq!(s.check(&other).await.verdict, Verdict::Permit);

    let s = load(&[("check", "table"), ("table", "nope")], |c| {
        c.tables = tables.clone();
    });
    let d = s.check(&rcpt_id("TABLE1", false, None)).await;
    assert!(
        matches!(d.verdict, Verdict::Defer(ref r) if r.code == 451),
        "{d:?}"
    );
    let text = logs.text();
    assert!(
        text.contains("no table \"nope\" is declared (add [tables.nope] to the config)"),
        "{text}"
    );
}

#[tokio::test]
async fn kv_counts_across_calls_and_reloads_per_plugin() {
    let args = [("check", "kv"), ("limit", "2"), ("ttl", "60")];
    let s = load(&args, |_| {});
    let mut r = rcpt(false, None);
    r.client_address = Some([203, 0, 113, 7].into());
    r.sender = "first@example.net".to_owned();
    assert_eq!(warned(&s, &r).await, "count=1 last=");
    r.sender = "second@example.net".to_owned();
    // A new snapshot (a reload) sees the same store.
    let s = load(&args, |_| {});
    assert_eq!(warned(&s, &r).await, "count=2 last=first@example.net");
    let d = s.check(&r).await;
    assert_eq!(
        d.verdict,
        Verdict::Defer(Reply::new(
            450,
            EnhancedCode::new(4, 7, 1),
            "rate limit: 3 > 2"
        ))
    );
    // Another client has its own counter.
    r.client_address = Some([203, 0, 113, 8].into());
    assert_eq!(warned(&s, &r).await, "count=1 last=second@example.net");
}
