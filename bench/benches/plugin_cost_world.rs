//! What the plugin cost benchmark's plugins see: a name server on
//! loopback (hickory-server, the same as the tests', counting the queries
//! it answers), a small access table, and for each standard plugin the
//! entry, stage and request of its usual use.
//!
//! The client is `mail.test` at 192.0.2.10, with forward-confirmed
//! reverse DNS, an SPF record that passes through an `include` and `mx`,
//! MX and NS records; it is on no DNS list (every list query is
//! NXDOMAIN). It sends from `a@mail.test` to `x@dest.test`, a local
//! domain. The access table has ten entries, none of them for this
//! client: the usual case, where every lookup key is tried.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::proto::rr::rdata::{A, MX, NS, PTR, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use postern_mail::{DomainClass, PolicyRequest, Stage};
use postern_policy::Entry;
use postern_tables::{HashTable, Table, Tables};

/// The table every `check_*_access` entry names.
pub const TABLE: &str = "hash:/etc/postfix/access";

/// Ten lines of a typical access map; none matches the benchmark's
/// client, HELO, sender, recipient, name servers or SASL login.
const ACCESS: &str = "\
198.51.100.7          REJECT known spammer
203.0.113             REJECT bad network
2001:db8:bad::        REJECT
spam.example          REJECT
.spam.example         REJECT
bad-helo.example      REJECT go away
user@partner.example  OK
partner.example       DUNNO
postmaster@           OK
abuse@                OK
";

/// The access table, as the server declares one for `TABLE`.
pub fn tables() -> Arc<Tables> {
    let mut tables = Tables::default();
    let table = HashTable::parse(Path::new("/etc/postfix/access"), ACCESS).unwrap();
    tables.insert(TABLE, Table::Hash(table));
    Arc::new(tables)
}

/// How one plugin is called.
pub struct Plan {
    pub stage: Stage,
    pub entry: Entry,
}

/// The entry and stage of `plugin`'s usual use: the `check_*_access`
/// family by its name (so that new members are covered), the others as
/// Postfix sites list them.
pub fn plan(plugin: &str) -> Plan {
    let line = |text: &str| Entry::from_line(text).unwrap();
    let table = |pairs: &[(&str, &str)]| {
        let map: BTreeMap<String, String> = [("plugin", plugin)]
            .iter()
            .chain(pairs)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Entry::from_table(map).unwrap()
    };
    if let Some(who) = plugin
        .strip_prefix("check_")
        .and_then(|rest| rest.strip_suffix("_access"))
    {
        let who = ["_a", "_mx", "_ns"]
            .iter()
            .find_map(|kind| who.strip_suffix(kind))
            .unwrap_or(who);
        return Plan {
            stage: stage_of(who),
            entry: line(&format!("{plugin} {TABLE}")),
        };
    }
    let (stage, entry) = match plugin {
        "reject_rbl_client" => (Stage::Client, line("reject_rbl_client rbl.test")),
        "permit_dnswl_client" => (Stage::Client, line("permit_dnswl_client wl.test")),
        "reject_rhsbl_client"
        | "reject_rhsbl_reverse_client"
        | "reject_rhsbl_helo"
        | "reject_rhsbl_sender"
        | "reject_rhsbl_recipient" => {
            let who = plugin.trim_start_matches("reject_rhsbl_");
            (stage_of(who), line(&format!("{plugin} dbl.test")))
        }
        "greylist" => (Stage::Recipient, table(&[("delay", "5m")])),
        // Limits no call of a run reaches: the count-and-compare path.
        "ratelimit" => (
            Stage::Recipient,
            table(&[("key", "client"), ("messages", "100000000/1d")]),
        ),
        "spf" => (Stage::Recipient, table(&[("Authserv_Id", "mx.dest.test")])),
        "reject_unknown_client_hostname" | "reject_unknown_reverse_client_hostname" => {
            (Stage::Client, line(plugin))
        }
        "reject_invalid_helo_hostname"
        | "reject_non_fqdn_helo_hostname"
        | "reject_unknown_helo_hostname" => (Stage::Helo, line(plugin)),
        "reject_non_fqdn_sender" | "reject_unknown_sender_domain" | "reject_unlisted_sender" => {
            (Stage::Sender, line(plugin))
        }
        _ => (Stage::Recipient, line(plugin)),
    };
    Plan { stage, entry }
}

/// The stage a `check_WHO_access` or `reject_rhsbl_WHO` runs at.
fn stage_of(who: &str) -> Stage {
    match who {
        "client" | "reverse_client" | "reverse_client_hostname" => Stage::Client,
        "helo" => Stage::Helo,
        "sender" => Stage::Sender,
        _ => Stage::Recipient,
    }
}

/// The request at `stage` of the benchmark's session, with what the
/// server knows by then; an authenticated one for the SASL plugins.
pub fn request(plugin: &str, stage: Stage) -> PolicyRequest {
    let mut r = PolicyRequest::new(stage);
    r.protocol_name = "ESMTP".to_owned();
    r.instance = "bench".to_owned();
    r.client_address = Some(IpAddr::from([192, 0, 2, 10]));
    r.client_port = 40000;
    r.client_name = "mail.test".to_owned();
    r.reverse_client_name = "mail.test".to_owned();
    r.server_address = Some(IpAddr::from([192, 0, 2, 25]));
    r.server_port = 25;
    if plugin.contains("sasl") {
        r.sasl_method = "PLAIN".to_owned();
        r.sasl_username = "alice@dest.test".to_owned();
    }
    if stage == Stage::Client {
        return r;
    }
    r.helo_name = "mail.test".to_owned();
    if stage == Stage::Helo {
        return r;
    }
    r.sender = "a@mail.test".to_owned();
    r.sender_class = Some(DomainClass::Other);
    r.sender_known = true;
    r.recipient_known = true;
    if stage == Stage::Sender {
        return r;
    }
    r.recipient = "x@dest.test".to_owned();
    r.recipient_class = Some(DomainClass::Local);
    r
}

fn name(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

fn a(ip: [u8; 4]) -> RData {
    RData::A(A(Ipv4Addr::from(ip)))
}

fn txt(text: &str) -> RData {
    RData::TXT(TXT::new(vec![text.to_owned()]))
}

/// A zone of `records` with an SOA, every record (and the negative
/// answers, through the SOA minimum, RFC 2308 §5) kept `ttl` seconds.
fn zone(origin: &str, ttl: u32, records: Vec<(&str, RData)>) -> (LowerName, InMemoryZoneHandler) {
    let origin = name(origin);
    let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let soa = SOA::new(
        name("ns1.test."),
        name("hostmaster.test."),
        1,
        3600,
        600,
        86400,
        ttl,
    );
    zone.upsert_mut(Record::from_rdata(origin.clone(), ttl, RData::SOA(soa)), 1);
    for (owner, data) in records {
        zone.upsert_mut(Record::from_rdata(name(owner), ttl, data), 1);
    }
    (LowerName::new(&origin), zone)
}

/// `mail.test` and `dest.test` are zones of their own, so that their NS
/// records are the apex's, not delegations inside `test.`.
fn catalog(ttl: u32) -> Catalog {
    let ns = || RData::NS(NS(name("ns1.test.")));
    let zones = [
        zone(
            "mail.test.",
            ttl,
            vec![
                ("mail.test.", ns()),
                ("mail.test.", a([192, 0, 2, 10])),
                ("mail.test.", RData::MX(MX::new(10, name("mail.test.")))),
                (
                    "mail.test.",
                    txt("v=spf1 ip4:198.51.100.0/24 include:_spf.dest.test mx -all"),
                ),
            ],
        ),
        zone(
            "dest.test.",
            ttl,
            vec![
                ("dest.test.", ns()),
                ("dest.test.", RData::MX(MX::new(10, name("mx.dest.test.")))),
                ("mx.dest.test.", a([192, 0, 2, 25])),
                ("_spf.dest.test.", txt("v=spf1 ip4:203.0.113.0/24 -all")),
            ],
        ),
        zone(
            "test.",
            ttl,
            vec![
                ("test.", ns()),
                ("ns1.test.", a([192, 0, 2, 53])),
                // Listed clients and domains, for the lists to be real ones.
                ("2.0.2.192.rbl.test.", a([127, 0, 0, 2])),
                ("spam.test.dbl.test.", a([127, 0, 1, 2])),
            ],
        ),
        zone(
            "2.0.192.in-addr.arpa.",
            ttl,
            vec![
                ("2.0.192.in-addr.arpa.", ns()),
                (
                    "10.2.0.192.in-addr.arpa.",
                    RData::PTR(PTR(name("mail.test."))),
                ),
            ],
        ),
    ];
    let mut catalog = Catalog::new();
    for (origin, handler) in zones {
        catalog.upsert(origin, vec![Arc::new(handler)]);
    }
    catalog
}

/// A catalog that counts the queries it answers.
struct Counting {
    catalog: Catalog,
    queries: Arc<AtomicU64>,
}

// The trait is an `async_trait` one; this is its expansion, so that the
// benchmark needs no macro crate of its own.
impl RequestHandler for Counting {
    fn handle_request<'this, 'request, 'call, R, T>(
        &'this self,
        request: &'request Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'call>>
    where
        R: ResponseHandler + 'call,
        T: Time + 'call,
        'this: 'call,
        'request: 'call,
        Self: 'call,
    {
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.catalog
            .handle_request::<R, T>(request, response_handle)
    }
}

/// A name server on 127.0.0.1 (UDP and TCP, one ephemeral port) on a
/// thread of its own, its records kept `ttl` seconds by resolvers: its
/// address and its query count.
pub fn name_server(ttl: u32) -> (SocketAddr, Arc<AtomicU64>) {
    let queries = Arc::new(AtomicU64::new(0));
    let handler = Counting {
        catalog: catalog(ttl),
        queries: Arc::clone(&queries),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (udp, tcp) = loop {
                let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                if let Ok(tcp) = tokio::net::TcpListener::bind(udp.local_addr().unwrap()).await {
                    break (udp, tcp);
                }
            };
            let addr = udp.local_addr().unwrap();
            let mut server = Server::new(handler);
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 4096);
            tx.send(addr).unwrap();
            let _ = server.block_until_done().await;
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (addr, queries)
}
