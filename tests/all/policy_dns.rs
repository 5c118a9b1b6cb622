//! `[dns] nameservers`: a plugin's lookups in a real server go to the
//! name server the config names, here hickory-server on an ephemeral
//! 127.0.0.1 port (UDP and TCP) serving an in-memory zone.

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

use crate::policy_tables::guest_dir;
use crate::support::*;

fn name(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

/// Starts a name server for zone `test.` on a thread of its own and
/// returns its address: `mail.test` has an A, an MX and a TXT record.
fn start_dns() -> SocketAddr {
    let origin = name("test.");
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
    let records = [
        (origin.clone(), RData::SOA(soa)),
        (
            name("mail.test."),
            RData::A(A(Ipv4Addr::new(192, 0, 2, 10))),
        ),
        (
            name("mail.test."),
            RData::MX(MX::new(10, name("mx1.test."))),
        ),
        (
            name("mail.test."),
            RData::TXT(TXT::new(vec!["v=spf1 -all".to_owned()])),
        ),
    ];
    for (owner, data) in records {
        zone.upsert_mut(Record::from_rdata(owner, 60, data), 1);
    }
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);

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

#[test]
fn plugins_resolve_through_the_configured_name_server() {
    let dns = start_dns();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("users"), USERS).unwrap();
    let plugins = guest_dir(tmp.path(), "test_lookup");
    let extra = format!(
        "plugin_directory = \"{}\"\n\
         smtpd_helo_restrictions = [{{ plugin = \"test_lookup\", check = \"dns\" }}]\n\
         [dns]\nnameservers = [\"{dns}\"]\ntimeout = \"2s\"\n",
        plugins.display()
    );
    std::fs::write(
        tmp.path().join("postern.toml"),
        config_text(tmp.path(), &extra),
    )
    .unwrap();
    let server = Server::start_in(tmp.path());

    // The helo list runs at RCPT (smtpd_delay_reject); the guest's
    // answer is a warn, which the session logs. The PTR of 127.0.0.1 is
    // answered by the resolver itself (RFC 6761 localhost).
    let rcpt = |helo: &str| {
        let mut c = Client::connect(server.smtp);
        assert!(c.cmd(&format!("EHLO {helo}")).starts_with("250"));
        assert!(
            c.cmd("MAIL FROM:<s@client.test.example>")
                .starts_with("250")
        );
        let r = c.cmd("RCPT TO:<alice@example.org>");
        assert!(r.starts_with("250"), "{r}");
    };
    rcpt("mail.test");
    let log = server.wait_log("mx=[\"10 mx1.test\"]");
    assert!(
        log.contains(
            "a=[\"192.0.2.10\"] aaaa=[] mx=[\"10 mx1.test\"] txt=[\"v=spf1 -all\"] ptr=[\"localhost\"]"
        ),
        "{log}"
    );
    rcpt("missing.test");
    let log = server.wait_log("a=nxdomain");
    assert!(
        log.contains("a=nxdomain aaaa=nxdomain mx=nxdomain txt=nxdomain"),
        "{log}"
    );
}
