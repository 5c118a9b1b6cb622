//! A real name server for the tests: hickory-server on an ephemeral
//! 127.0.0.1 port (UDP and TCP, the same port) serving one in-memory zone,
//! on a thread of its own. Servers under test reach it through
//! `[dns] nameservers`.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server as DnsServer;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, MX, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

use crate::support::WAIT;

/// An absolute name.
pub fn name(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

/// An A record.
pub fn a(owner: &str, ip: Ipv4Addr) -> (Name, RData) {
    (name(owner), RData::A(A(ip)))
}

/// An MX record; `exchange` "." is a null MX (RFC 7505).
pub fn mx(owner: &str, preference: u16, exchange: &str) -> (Name, RData) {
    (name(owner), RData::MX(MX::new(preference, name(exchange))))
}

/// A TXT record.
pub fn txt(owner: &str, text: &str) -> (Name, RData) {
    (name(owner), RData::TXT(TXT::new(vec![text.to_owned()])))
}

/// Starts a name server authoritative for `zone` (such as `test.`) with
/// `records` (and an SOA) and returns its address.
pub fn start(zone: &str, records: Vec<(Name, RData)>) -> SocketAddr {
    let origin = name(zone);
    let mut handler = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let soa = SOA::new(
        name(&format!("ns.{zone}")),
        name(&format!("hostmaster.{zone}")),
        1,
        3600,
        600,
        86400,
        60,
    );
    handler.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
    for (owner, data) in records {
        handler.upsert_mut(Record::from_rdata(owner, 60, data), 1);
    }
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(handler)]);

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
            let mut server = DnsServer::new(catalog);
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 4096);
            tx.send(addr).unwrap();
            let _ = server.block_until_done().await;
        });
    });
    rx.recv_timeout(WAIT).unwrap()
}
