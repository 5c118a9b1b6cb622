//! A real DNS server for the tests: hickory-server on 127.0.0.1, UDP and
//! TCP on one ephemeral port, serving an in-memory zone `test.` and its
//! reverse zone `2.0.192.in-addr.arpa.`. Anything else is refused (the
//! resolver reports servfail); `missing.test` does not exist (nxdomain).
//!
//! | name | records |
//! |---|---|
//! | `mail.test` | A 192.0.2.10, AAAA 2001:db8::10, MX 10 mx1.test / 20 mx2.test, TXT "v=spf1 " "-all" |
//! | `10.2.0.192.in-addr.arpa` | PTR mail.test |
//! | `rbl.test` | TXT "listed" at `2.0.2.192.rbl.test`, A 127.0.0.2 there |

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, AAAA, MX, PTR, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

/// An absolute name.
pub fn name(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

/// A zone with an SOA and `records` (owner name, data).
pub fn zone(origin: &str, records: Vec<(&str, RData)>) -> (LowerName, InMemoryZoneHandler) {
    let origin = name(origin);
    let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let soa = SOA::new(
        name("ns.test."),
        name("hostmaster.test."),
        1,
        3600,
        600,
        86400,
        60,
    );
    zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
    for (owner, data) in records {
        zone.upsert_mut(Record::from_rdata(name(owner), 60, data), 1);
    }
    (LowerName::new(&origin), zone)
}

fn catalog() -> Catalog {
    let mut catalog = Catalog::new();
    let forward = zone(
        "test.",
        vec![
            ("mail.test.", RData::A(A(Ipv4Addr::new(192, 0, 2, 10)))),
            (
                "mail.test.",
                RData::AAAA(AAAA(Ipv6Addr::from_str("2001:db8::10").unwrap())),
            ),
            ("mail.test.", RData::MX(MX::new(10, name("mx1.test.")))),
            ("mail.test.", RData::MX(MX::new(20, name("mx2.test.")))),
            (
                "mail.test.",
                RData::TXT(TXT::new(vec!["v=spf1 ".to_owned(), "-all".to_owned()])),
            ),
            (
                "2.0.2.192.rbl.test.",
                RData::A(A(Ipv4Addr::new(127, 0, 0, 2))),
            ),
            (
                "2.0.2.192.rbl.test.",
                RData::TXT(TXT::new(vec!["listed".to_owned()])),
            ),
        ],
    );
    let reverse = zone(
        "2.0.192.in-addr.arpa.",
        vec![(
            "10.2.0.192.in-addr.arpa.",
            RData::PTR(PTR(name("mail.test."))),
        )],
    );
    for (origin, handler) in [forward, reverse] {
        catalog.upsert(origin, vec![Arc::new(handler)]);
    }
    catalog
}

/// The server's address, started once per test binary.
pub static DNS: LazyLock<SocketAddr> = LazyLock::new(|| serve(catalog(), "test-dns"));

/// Serves `catalog` on 127.0.0.1 (UDP and TCP, one ephemeral port) on a
/// thread of its own, so that it outlives every test's runtime; its
/// address.
pub fn serve(catalog: Catalog, thread: &str) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(thread.to_owned())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                // UDP and TCP on the same port: try until one is free for
                // both.
                let (udp, tcp) = loop {
                    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                    let addr = udp.local_addr().unwrap();
                    if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
                        break (udp, tcp);
                    }
                };
                let addr = udp.local_addr().unwrap();
                let mut server = Server::new(catalog);
                server.register_socket(udp);
                server.register_listener(tcp, Duration::from_secs(5), 4096);
                tx.send(addr).unwrap();
                let _ = server.block_until_done().await;
            });
        })
        .unwrap();
    rx.recv().unwrap()
}

/// A UDP port that never answers (and no TCP listener behind it... or
/// one that never answers either): for timeouts.
pub static SILENT: LazyLock<SocketAddr> = LazyLock::new(|| {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp.local_addr().unwrap();
    // Held open for the binary's life, never read: queries time out.
    let tcp = std::net::TcpListener::bind(addr).ok();
    std::mem::forget((udp, tcp));
    addr
});
