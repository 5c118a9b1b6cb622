//! The DNS checks of the standard plugins (`reject_rbl_client`,
//! `permit_dnswl_client`, `reject_rhsbl_*`, `reject_unknown_*`) through the
//! runtime, against a real name server of their own: hickory-server on
//! 127.0.0.1 serving a DNS block list with TXT reasons, an allow list,
//! PTR and A records that do and do not confirm each other, mail domains
//! with MX, with only an address, with a null MX (RFC 7505). Names outside
//! its zones are refused (the plugins see SERVFAIL); `SILENT` never
//! answers (timeouts). Also the syntax checks that need no DNS.
//!
//! | name | records |
//! |---|---|
//! | `mail.test` | A 192.0.2.10, MX 10 mail.test |
//! | `forged.test` | A 192.0.2.99 |
//! | `addr.test` | A 192.0.2.20 (no MX) |
//! | `null.test` | MX 0 . |
//! | `2.2.0.192.rbl.test` | A 127.0.0.2, TXT "listed: see https://rbl.test/" |
//! | `3.2.0.192.rbl.test` | A 127.0.0.20, TXT "other list" |
//! | `spam.test.dbl.test` | A 127.0.1.2, TXT "spammy domain" |
//! | `10.2.0.192.wl.test` | A 127.0.0.5 |
//! | `10.2.0.192.in-addr.arpa` | PTR mail.test |
//! | `11.2.0.192.in-addr.arpa` | PTR forged.test |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use hickory_server::proto::rr::RData;
use hickory_server::proto::rr::rdata::{A, MX, PTR, TXT};
use hickory_server::zone_handler::Catalog;
use postern_mail::{Decision, DomainClass, PolicyRequest, Verdict};
use postern_policy::{DnsConfig, Snapshot};

use crate::dns_server::{SILENT, name, serve, zone};
use crate::{RUNTIME, config, lines, rcpt, table};

fn a(ip: [u8; 4]) -> RData {
    RData::A(A(Ipv4Addr::from(ip)))
}

fn txt(text: &str) -> RData {
    RData::TXT(TXT::new(vec![text.to_owned()]))
}

fn catalog() -> Catalog {
    let forward = zone(
        "test.",
        vec![
            ("mail.test.", a([192, 0, 2, 10])),
            ("mail.test.", RData::MX(MX::new(10, name("mail.test.")))),
            ("forged.test.", a([192, 0, 2, 99])),
            ("addr.test.", a([192, 0, 2, 20])),
            ("null.test.", RData::MX(MX::new(0, name(".")))),
            ("2.2.0.192.rbl.test.", a([127, 0, 0, 2])),
            ("2.2.0.192.rbl.test.", txt("listed: see https://rbl.test/")),
            ("3.2.0.192.rbl.test.", a([127, 0, 0, 20])),
            ("3.2.0.192.rbl.test.", txt("other list")),
            ("spam.test.dbl.test.", a([127, 0, 1, 2])),
            ("spam.test.dbl.test.", txt("spammy domain")),
            ("10.2.0.192.wl.test.", a([127, 0, 0, 5])),
        ],
    );
    let reverse = zone(
        "2.0.192.in-addr.arpa.",
        vec![
            (
                "10.2.0.192.in-addr.arpa.",
                RData::PTR(PTR(name("mail.test."))),
            ),
            (
                "11.2.0.192.in-addr.arpa.",
                RData::PTR(PTR(name("forged.test."))),
            ),
        ],
    );
    let mut catalog = Catalog::new();
    for (origin, handler) in [forward, reverse] {
        catalog.upsert(origin, vec![Arc::new(handler)]);
    }
    catalog
}

/// The server's address, started once per test binary.
static DNS: LazyLock<SocketAddr> = LazyLock::new(|| serve(catalog(), "dns-checks"));

/// `entries` as the recipient list, resolving through `server`.
fn load_with(entries: Vec<postern_policy::Entry>, server: SocketAddr) -> Snapshot {
    let mut c = config(entries);
    c.dns = DnsConfig {
        nameservers: vec![server],
        timeout: Duration::from_millis(500),
        ..DnsConfig::default()
    };
    RUNTIME.load(&c).unwrap()
}

fn load(entries: &[&str]) -> Snapshot {
    load_with(lines(entries), *DNS)
}

/// A RCPT request from `client`, with `helo`, `sender` and a recipient
/// at an other domain.
fn req(client: [u8; 4], helo: &str, sender: &str) -> PolicyRequest {
    let mut r = rcpt(false, None);
    r.client_address = Some(IpAddr::from(client));
    r.helo_name = helo.to_owned();
    r.sender = sender.to_owned();
    r
}

/// What the list decided, as the wire reply ("permit", "dunno" for the
/// end of the list) and the entry that decided.
async fn decide(s: &Snapshot, r: &PolicyRequest) -> String {
    let d: Decision = s.check(r).await;
    let by = d.decided_by.clone().unwrap_or_default();
    match &d.verdict {
        Verdict::Permit if by.is_empty() => "dunno".to_owned(),
        Verdict::Permit => format!("permit by {by}"),
        _ => match d.refusal() {
            Some(reply) => format!("{} by {by}", reply.to_wire().trim_end()),
            None => format!("{:?} by {by}", d.verdict),
        },
    }
}

const GOOD: [u8; 4] = [192, 0, 2, 10];

#[tokio::test]
async fn rbl_client_rejects_with_postfix_default_reply_and_the_txt_reason() {
    let s = load(&["reject_rbl_client rbl.test"]);
    assert_eq!(
        decide(&s, &req([192, 0, 2, 2], "h.test", "a@mail.test")).await,
        "554 5.7.1 Service unavailable; Client host [192.0.2.2] blocked using rbl.test; \
         listed: see https://rbl.test/ by reject_rbl_client"
    );
    // Any answer lists without a filter; not listed is dunno.
    assert!(
        decide(&s, &req([192, 0, 2, 3], "h", ""))
            .await
            .starts_with("554 5.7.1 Service unavailable; Client host [192.0.2.3]")
    );
    assert_eq!(decide(&s, &req(GOOD, "h", "")).await, "dunno");
}

#[tokio::test]
async fn rbl_filters_as_postfix_parses_them() {
    for (filter, listed) in [
        ("rbl.test=127.0.0.[2..11]", [true, false]),
        ("rbl.test=127.0.0.2", [true, false]),
        ("rbl.test=127.0.0.[1;20]", [false, true]),
        ("rbl.test=127.0.0.[3..19]", [false, false]),
    ] {
        let s = load(&[&format!("reject_rbl_client {filter}")]);
        for (last, listed) in [2, 3].into_iter().zip(listed) {
            let got = decide(&s, &req([192, 0, 2, last], "h", "")).await;
            assert_eq!(
                got.starts_with("554 5.7.1"),
                listed,
                "{filter} .{last}: {got}"
            );
        }
    }
}

#[tokio::test]
async fn rbl_reply_templates_and_bad_arguments() {
    let s = load_with(
        vec![table(&[
            ("plugin", "reject_rbl_client"),
            ("domain", "rbl.test=127.0.0.2"),
            ("code", "550"),
            (
                "reply",
                "$rbl_code 5.7.0 $client_address listed by $rbl_domain${rbl_reason?: $rbl_reason}",
            ),
        ])],
        *DNS,
    );
    assert_eq!(
        decide(&s, &req([192, 0, 2, 2], "h", "")).await,
        "550 5.7.0 192.0.2.2 listed by rbl.test: listed: see https://rbl.test/ by reject_rbl_client"
    );
    let mut c = config(lines(&["reject_rbl_client rbl.test=127.0.0.[9..2]"]));
    c.dns.nameservers = vec![*DNS];
    let err = RUNTIME.load(&c).unwrap_err().to_string();
    assert!(
        err.contains("reject_rbl_client") && err.contains("bad range"),
        "{err}"
    );
    let c = config(lines(&["reject_rbl_client"]));
    let err = RUNTIME.load(&c).unwrap_err().to_string();
    assert!(err.contains("missing the DNS list domain"), "{err}");
}

#[tokio::test]
async fn rbl_unavailable_gives_the_benefit_of_the_doubt_and_dnswl_defers_a_reject() {
    // The name server refuses names outside its zones: SERVFAIL.
    let s = load(&["reject_rbl_client other.example"]);
    assert_eq!(decide(&s, &req([192, 0, 2, 2], "h", "")).await, "dunno");
    let s = load_with(lines(&["reject_rbl_client rbl.test"]), *SILENT);
    assert_eq!(decide(&s, &req([192, 0, 2, 2], "h", "")).await, "dunno");
    // An allow list permits, so that a block list after it is skipped...
    let ours = |client: [u8; 4]| {
        let mut r = req(client, "h", "");
        r.recipient_class = Some(DomainClass::Local);
        r
    };
    let s = load(&["permit_dnswl_client wl.test", "reject_rbl_client rbl.test"]);
    assert_eq!(
        decide(&s, &ours(GOOD)).await,
        "permit by permit_dnswl_client"
    );
    // ...but never for a recipient this server does not accept mail for
    // (it could open the relay), as in Postfix...
    assert_eq!(decide(&s, &req(GOOD, "h", "")).await, "dunno");
    // ...and, when it cannot be asked, turns a later reject into a defer.
    let s = load(&[
        "permit_dnswl_client other.example",
        "reject_rbl_client rbl.test",
    ]);
    assert_eq!(
        decide(&s, &ours([192, 0, 2, 2])).await,
        "450 4.7.1 <192.0.2.2>: Client host rejected: Service unavailable by permit_dnswl_client"
    );
}

#[tokio::test]
async fn rhsbl_checks_look_up_the_domain_of_each_name() {
    let listed = |class: &str, what: &str| {
        format!(
            "554 5.7.1 Service unavailable; {class} [{what}] blocked using dbl.test; spammy domain"
        )
    };
    let s = load(&["reject_rhsbl_helo dbl.test"]);
    assert!(
        decide(&s, &req(GOOD, "spam.test", ""))
            .await
            .starts_with(&listed("Helo command", "spam.test"))
    );
    assert_eq!(decide(&s, &req(GOOD, "mail.test", "")).await, "dunno");
    let s = load(&["reject_rhsbl_sender dbl.test"]);
    assert!(
        decide(&s, &req(GOOD, "h", "x@spam.test"))
            .await
            .starts_with(&listed("Sender address", "x@spam.test"))
    );
    assert_eq!(decide(&s, &req(GOOD, "h", "")).await, "dunno");
    let s = load(&["reject_rhsbl_recipient dbl.test"]);
    let mut r = req(GOOD, "h", "");
    r.recipient = "y@SPAM.test".to_owned();
    assert!(
        decide(&s, &r)
            .await
            .starts_with(&listed("Recipient address", "y@SPAM.test"))
    );
    // The client's names come from the DNS when the server has none:
    // 192.0.2.10 is mail.test, not listed; a made-up server name is used.
    let s = load(&[
        "reject_rhsbl_client dbl.test",
        "reject_rhsbl_reverse_client dbl.test",
    ]);
    assert_eq!(decide(&s, &req(GOOD, "h", "")).await, "dunno");
    let mut r = req(GOOD, "h", "");
    r.client_name = "spam.test".to_owned();
    assert!(
        decide(&s, &r)
            .await
            .starts_with(&listed("Client host", "spam.test"))
    );
    let mut r = req(GOOD, "h", "");
    r.reverse_client_name = "spam.test".to_owned();
    assert!(
        decide(&s, &r)
            .await
            .starts_with(&listed("Unverified Client host", "spam.test"))
    );
}

#[tokio::test]
async fn unknown_client_hostname_needs_forward_confirmed_reverse_dns() {
    let s = load(&["reject_unknown_client_hostname"]);
    assert_eq!(decide(&s, &req(GOOD, "h", "")).await, "dunno");
    // The PTR name's A record is another address: forged.
    assert_eq!(
        decide(&s, &req([192, 0, 2, 11], "h", "")).await,
        "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.11] \
         by reject_unknown_client_hostname"
    );
    // No PTR record; a code of the operator's for that.
    let s = load_with(
        vec![table(&[
            ("plugin", "reject_unknown_client_hostname"),
            ("code", "550"),
        ])],
        *DNS,
    );
    assert_eq!(
        decide(&s, &req([192, 0, 2, 12], "h", "")).await,
        "550 5.7.25 Client host rejected: cannot find your hostname, [192.0.2.12] \
         by reject_unknown_client_hostname"
    );
    // A temporary failure is 450 whatever the code.
    assert!(
        decide(&s, &req([198, 51, 100, 1], "h", ""))
            .await
            .starts_with("450 4.7.25 ")
    );
    let s = load(&["reject_unknown_reverse_client_hostname"]);
    assert_eq!(decide(&s, &req([192, 0, 2, 11], "h", "")).await, "dunno");
    assert_eq!(
        decide(&s, &req([192, 0, 2, 12], "h", "")).await,
        "450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.12] \
         by reject_unknown_reverse_client_hostname"
    );
}

#[tokio::test]
async fn helo_hostname_checks() {
    let s = load(&[
        "reject_invalid_helo_hostname",
        "reject_non_fqdn_helo_hostname",
        "reject_unknown_helo_hostname",
    ]);
    let helo = |h: &str| req(GOOD, h, "");
    assert_eq!(decide(&s, &helo("mail.test")).await, "dunno");
    assert_eq!(decide(&s, &helo("[192.0.2.10]")).await, "dunno");
    assert_eq!(
        decide(&s, &helo("bad!name")).await,
        "501 5.5.2 <bad!name>: Helo command rejected: Invalid name by reject_invalid_helo_hostname"
    );
    assert_eq!(
        decide(&s, &helo("[1.2.3]")).await,
        "501 5.5.2 <[1.2.3]>: Helo command rejected: invalid ip address \
         by reject_invalid_helo_hostname"
    );
    assert_eq!(
        decide(&s, &helo("localhost")).await,
        "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname \
         by reject_non_fqdn_helo_hostname"
    );
    assert_eq!(
        decide(&s, &helo("nowhere.test")).await,
        "450 4.7.1 <nowhere.test>: Helo command rejected: Host not found \
         by reject_unknown_helo_hostname"
    );
    // SERVFAIL: defer_if_permit, which the end of the list turns into a
    // deferral.
    assert_eq!(
        decide(&s, &helo("host.example")).await,
        "450 4.7.1 <host.example>: Helo command rejected: Host not found \
         by reject_unknown_helo_hostname"
    );
}

#[tokio::test]
async fn sender_and_recipient_domains() {
    let s = load(&["reject_non_fqdn_sender", "reject_unknown_sender_domain"]);
    let from = |a: &str| req(GOOD, "h", a);
    assert_eq!(decide(&s, &from("")).await, "dunno");
    assert_eq!(decide(&s, &from("a@mail.test")).await, "dunno");
    assert_eq!(decide(&s, &from("a@addr.test")).await, "dunno");
    assert_eq!(
        decide(&s, &from("a@null.test")).await,
        "550 5.7.27 <a@null.test>: Sender address rejected: Domain null.test does not accept \
         mail (nullMX) by reject_unknown_sender_domain"
    );
    assert_eq!(
        decide(&s, &from("a@gone.test")).await,
        "450 4.1.8 <a@gone.test>: Sender address rejected: Domain not found \
         by reject_unknown_sender_domain"
    );
    assert_eq!(
        decide(&s, &from("a@host.example")).await,
        "450 4.1.8 <a@host.example>: Sender address rejected: Domain not found \
         by reject_unknown_sender_domain"
    );
    assert_eq!(
        decide(&s, &from("a@localhost")).await,
        "504 5.5.2 <a@localhost>: Sender address rejected: need fully-qualified address \
         by reject_non_fqdn_sender"
    );
    let s = load(&[
        "reject_non_fqdn_recipient",
        "reject_unknown_recipient_domain",
    ]);
    let to = |a: &str| {
        let mut r = req(GOOD, "h", "");
        r.recipient = a.to_owned();
        r
    };
    assert_eq!(decide(&s, &to("b@mail.test")).await, "dunno");
    assert_eq!(
        decide(&s, &to("b@null.test")).await,
        "556 5.1.10 <b@null.test>: Recipient address rejected: Domain null.test does not \
         accept mail (nullMX) by reject_unknown_recipient_domain"
    );
    assert_eq!(
        decide(&s, &to("b@gone.test")).await,
        "450 4.1.2 <b@gone.test>: Recipient address rejected: Domain not found \
         by reject_unknown_recipient_domain"
    );
    assert_eq!(
        decide(&s, &to("b")).await,
        "504 5.5.2 <b>: Recipient address rejected: need fully-qualified address \
         by reject_non_fqdn_recipient"
    );
    // A timeout defers.
    let s = load_with(lines(&["reject_unknown_sender_domain"]), *SILENT);
    assert!(
        decide(&s, &from("a@mail.test"))
            .await
            .starts_with("450 4.1.8 ")
    );
}

#[tokio::test]
async fn reverse_client_hostname_server_access_judges_the_ptr_names_servers() {
    use postern_tables::{HashTable, Table, Tables};
    let table = "hash:/etc/postfix/rev";
    let load = |entry: &str, text: &str| {
        let mut c = config(lines(&[&format!("{entry} {table}")]));
        let mut tables = Tables::default();
        let t = HashTable::parse(std::path::Path::new("/etc/postfix/rev"), text).unwrap();
        tables.insert(table, Table::Hash(t));
        c.tables = Arc::new(tables);
        c.dns = DnsConfig {
            nameservers: vec![*DNS],
            timeout: Duration::from_millis(500),
            ..DnsConfig::default()
        };
        RUNTIME.load(&c).unwrap()
    };
    // 192.0.2.11's PTR name is forged.test (unverified: its A is
    // 192.0.2.99); it has no MX, so it is its own mail server.
    let s = load(
        "check_reverse_client_hostname_mx_access",
        "192.0.2.99  REJECT forged mail host\n",
    );
    assert_eq!(
        decide(&s, &req([192, 0, 2, 11], "h.test", "")).await,
        "554 5.7.1 <unknown[192.0.2.11]>: Unverified Client host rejected: forged mail host \
         by check_reverse_client_hostname_mx_access"
    );
    // 192.0.2.10 (mail.test, MX mail.test): by the exchanger's name.
    let s = load(
        "check_reverse_client_hostname_mx_access",
        "mail.test  REJECT by name\n",
    );
    assert_eq!(
        decide(&s, &req(GOOD, "h.test", "")).await,
        "554 5.7.1 <unknown[192.0.2.10]>: Unverified Client host rejected: by name by \
         check_reverse_client_hostname_mx_access"
    );
    // A: the PTR name's own address.
    let s = load(
        "check_reverse_client_hostname_a_access",
        "192.0.2.99  REJECT forged address\n",
    );
    assert!(
        decide(&s, &req([192, 0, 2, 11], "h.test", ""))
            .await
            .contains("Unverified Client host rejected: forged address")
    );
    // No PTR name (192.0.2.12): nothing to judge. NS: test. has no NS
    // records here, so no name server is found either.
    let s = load(
        "check_reverse_client_hostname_ns_access",
        "192.0.2.10  REJECT ns\n",
    );
    assert_eq!(
        decide(&s, &req([192, 0, 2, 12], "h.test", "")).await,
        "dunno"
    );
    assert_eq!(decide(&s, &req(GOOD, "h.test", "")).await, "dunno");
}
