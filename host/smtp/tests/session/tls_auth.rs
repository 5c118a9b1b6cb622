//! STARTTLS, smtps and AUTH at the session level, over real TCP and a real
//! rustls client: what a client that is *not* on loopback sees
//! (`smtpd_tls_auth_only`), the CVE-2011-0411 injection, submission's
//! rules, and the failed-login delay and limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_auth::{Authenticator, FailurePolicy, UserDb};
use postern_smtp::{SessionSettings, TlsConfig};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::harness::{Server, WAIT, relay_rule, settings};

/// A client outside loopback, as the session is told.
const REMOTE: &str = "192.0.2.7:4000";

fn b64(input: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// A self-signed certificate for mx.test and its PEM key.
fn certificate() -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["mx.test".to_owned()]).unwrap();
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

fn tls_settings(cert: &(String, String), failures: FailurePolicy) -> SessionSettings {
    let users = UserDb::parse(
        "alice@example.org:{PLAIN}secret\nbob@example.org:{PLAIN}pw\n",
        "users",
    )
    .unwrap();
    SessionSettings {
        tls: Some(Arc::new(
            TlsConfig::from_pem(cert.0.as_bytes(), cert.1.as_bytes()).unwrap(),
        )),
        auth: Some(Arc::new(Authenticator::new(Arc::new(users), failures))),
        ..settings()
    }
}

fn quick_failures() -> FailurePolicy {
    FailurePolicy {
        delay: Duration::from_millis(200),
        limit: 3,
    }
}

/// A line-level client over TLS.
struct TlsClient {
    stream: BufReader<TlsStream<TcpStream>>,
}

impl TlsClient {
    async fn handshake(tcp: TcpStream, cert_pem: &str) -> TlsClient {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        let der = rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        roots.add(der).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from("mx.test").unwrap();
        let stream = tokio::time::timeout(WAIT, connector.connect(name, tcp))
            .await
            .unwrap()
            .unwrap();
        TlsClient {
            stream: BufReader::new(stream),
        }
    }

    async fn reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut line = Vec::new();
            let n = tokio::time::timeout(WAIT, self.stream.read_until(b'\n', &mut line))
                .await
                .expect("no reply in time")
                .unwrap();
            assert!(n > 0, "connection closed; got so far {out:?}");
            let line = String::from_utf8_lossy(&line).into_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            out.push_str(&line);
            if last {
                return out;
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.stream
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }
}

/// Connects, says EHLO, runs STARTTLS; returns the TLS client.
async fn starttls(server: &Server, cert: &str, pipelined: &[u8]) -> TlsClient {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut greeting = vec![0; 512];
    let n = tcp.read(&mut greeting).await.unwrap();
    assert!(greeting[..n].starts_with(b"220 "));
    tcp.write_all(b"EHLO client.test\r\n").await.unwrap();
    let mut buf = Vec::new();
    while !String::from_utf8_lossy(&buf).contains("\r\n250 ") {
        let mut chunk = [0; 512];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    let ehlo = String::from_utf8_lossy(&buf).into_owned();
    assert!(ehlo.contains("250-STARTTLS\r\n"), "{ehlo}");
    // One write, so that the server reads the pipelined bytes with the
    // command (the CVE-2011-0411 case).
    let mut command = b"STARTTLS\r\n".to_vec();
    command.extend_from_slice(pipelined);
    tcp.write_all(&command).await.unwrap();
    let mut ready = [0; 30];
    tcp.read_exact(&mut ready).await.unwrap();
    assert_eq!(&ready, b"220 2.0.0 Ready to start TLS\r\n");
    TlsClient::handshake(tcp, cert).await
}

#[tokio::test]
async fn auth_needs_tls_off_loopback_then_reaches_policy_log_and_received() {
    let cert = certificate();
    let peer: SocketAddr = REMOTE.parse().unwrap();
    let server = Server::start_as(
        tls_settings(&cert, quick_failures()),
        relay_rule(),
        Some(peer),
    )
    .await;
    let mut c = server.client().await;
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(ehlo.contains("250-STARTTLS\r\n"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "AUTH offered in clear: {ehlo}");
    let plain = b64("\0alice@example.org\0secret");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {plain}")).await,
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
    drop(c);
    let _ = server.done().await;

    let server = Server::start_as(
        tls_settings(&cert, quick_failures()),
        relay_rule(),
        Some(peer),
    )
    .await;
    let mut t = starttls(&server, &cert.0, b"").await;
    let ehlo = t.cmd("EHLO client.test").await;
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(
        t.cmd(&format!("AUTH PLAIN {plain}")).await,
        "235 2.7.0 Authentication successful\r\n"
    );
    assert!(
        t.cmd("MAIL FROM:<alice@example.org>")
            .await
            .starts_with("250")
    );
    assert!(t.cmd("RCPT TO:<u@relay.test>").await.starts_with("250"));
    assert!(t.cmd("DATA").await.starts_with("354"));
    assert!(t.cmd("Subject: x\r\n\r\nhi\r\n.").await.starts_with("250"));
    assert!(t.cmd("QUIT").await.starts_with("221"));
    let done = server.done().await;
    let content = String::from_utf8_lossy(&done.message().content).into_owned();
    assert!(
        content.contains("\t(using TLSv1.3 with cipher TLS_"),
        "{content}"
    );
    assert!(content.contains(" with ESMTPSA id "), "{content}");
    let rcpt = done
        .requests
        .iter()
        .find(|r| !r.recipient.is_empty())
        .unwrap();
    assert_eq!(rcpt.sasl_method, "PLAIN");
    assert_eq!(rcpt.sasl_username, "alice@example.org");
    assert_eq!(rcpt.encryption_protocol, "TLSv1.3");
    assert!(rcpt.encryption_cipher.starts_with("TLS_"));
    assert_eq!(rcpt.tls_sni, "mx.test");
    done.logged(
        "ABC00001: client=unknown[192.0.2.7], sasl_method=PLAIN, sasl_username=alice@example.org",
    );
    assert!(
        done.logs.iter().any(|l| l.starts_with(
            "Anonymous TLS connection established from unknown[192.0.2.7]: TLSv1.3 with cipher"
        )),
        "{:?}",
        done.logs
    );
}

#[tokio::test]
async fn plaintext_pipelined_after_starttls_is_discarded() {
    let cert = certificate();
    let server = Server::start(tls_settings(&cert, quick_failures()), relay_rule()).await;
    let mut t = starttls(&server, &cert.0, b"RSET\r\n").await;
    // The first reply over TLS is EHLO's, never the injected RSET's.
    let ehlo = t.cmd("EHLO client.test").await;
    assert!(ehlo.starts_with("250-mx.test\r\n"), "{ehlo}");
    assert!(t.cmd("QUIT").await.starts_with("221"));
    let done = server.done().await;
    let disconnect = done
        .logs
        .iter()
        .find(|l| l.starts_with("disconnect from"))
        .unwrap();
    assert!(!disconnect.contains("rset"), "{disconnect}");
}

#[tokio::test]
async fn submission_needs_auth_and_the_own_sender() {
    let cert = certificate();
    let settings = SessionSettings {
        auth_required: true,
        sender_login_check: true,
        ..tls_settings(&cert, quick_failures())
    };
    let server = Server::start(settings, relay_rule()).await;
    let mut c = server.client().await;
    // Loopback: AUTH offered without TLS.
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    assert_eq!(
        c.cmd("MAIL FROM:<alice@example.org>").await,
        "530 5.7.0 Authentication required\r\n"
    );
    // LOGIN, step by step.
    assert_eq!(c.cmd("AUTH LOGIN").await, "334 VXNlcm5hbWU6\r\n");
    assert_eq!(c.cmd(&b64("bob@example.org")).await, "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(
        c.cmd(&b64("pw")).await,
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<alice@example.org>").await,
        "553 5.7.1 <alice@example.org>: Sender address rejected: not owned by user bob@example.org\r\n"
    );
    assert!(
        c.cmd("MAIL FROM:<BOB@example.org>")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("RSET").await.starts_with("250"));
    assert!(c.cmd("MAIL FROM:<>").await.starts_with("250"));
    assert!(c.cmd("QUIT").await.starts_with("221"));
    server.done().await;
}

#[tokio::test]
async fn failed_logins_are_delayed_then_disconnected() {
    let cert = certificate();
    let server = Server::start(tls_settings(&cert, quick_failures()), relay_rule()).await;
    let mut c = server.client().await;
    c.ehlo().await;
    let wrong = b64("\0alice@example.org\0wrong");
    let start = Instant::now();
    let failed = "535 5.7.8 Error: authentication failed: authentication failure\r\n";
    assert_eq!(c.cmd(&format!("AUTH PLAIN {wrong}")).await, failed);
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(c.cmd(&format!("AUTH PLAIN {wrong}")).await, failed);
    assert!(start.elapsed() >= Duration::from_millis(600));
    c.send(format!("AUTH PLAIN {wrong}\r\n")).await;
    assert_eq!(
        c.rest().await,
        format!("{failed}421 4.7.0 mx.test Error: too many failed authentication attempts\r\n")
    );
    assert!(start.elapsed() >= Duration::from_millis(1400));
    let done = server.done().await;
    done.logged("unknown[127.0.0.1]: SASL PLAIN authentication failed: authentication failure, sasl_username=alice@example.org");
    assert!(done.logs.iter().all(|l| !l.contains("wrong")));
}

#[tokio::test]
async fn smtps_handshakes_before_the_greeting() {
    let cert = certificate();
    let settings = SessionSettings {
        implicit_tls: true,
        ..tls_settings(&cert, quick_failures())
    };
    let server = Server::start(settings, relay_rule()).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut t = TlsClient::handshake(tcp, &cert.0).await;
    assert_eq!(t.reply().await, "220 mx.test ESMTP Postern\r\n");
    let ehlo = t.cmd("EHLO client.test").await;
    assert!(
        !ehlo.contains("STARTTLS") && ehlo.contains("AUTH PLAIN LOGIN"),
        "{ehlo}"
    );
    assert_eq!(
        t.cmd("STARTTLS").await,
        "554 5.5.1 Error: TLS already active\r\n"
    );
    assert!(t.cmd("QUIT").await.starts_with("221"));
    server.done().await;
}
