//! The SMTP side of the harness: a line-level client over a plain
//! socket for byte-exact tests, the transactions tests repeat (up to
//! RCPT, a whole message), and loopback ports.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::WAIT;

/// A line-level SMTP client over a plain socket, for byte-exact tests.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects from 127.0.0.1 (trusted in the test config).
    pub fn connect(server: SocketAddr) -> Client {
        Client::connect_from(server, "127.0.0.1")
    }

    /// Connects from a chosen loopback source address (127.0.0.2 is
    /// outside the test mynetworks).
    pub fn connect_from(server: SocketAddr, source: &str) -> Client {
        let stream = bind_connect(server, source);
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut c = Client {
            stream,
            buf: Vec::new(),
        };
        let greeting = c.reply();
        assert!(greeting.starts_with("220 "), "greeting: {greeting}");
        c
    }

    /// Connects from `source` without reading the greeting (which may be
    /// a refusal, or may not come at all).
    pub fn connect_raw(server: SocketAddr, source: &str) -> Client {
        let stream = bind_connect(server, source);
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sets how long a read may wait (reads give an empty reply after).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends a command line and returns the whole reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Reads one complete (possibly multi-line) reply; empty on EOF.
    pub fn reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                return out;
            }
            out.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return out;
            }
        }
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return String::from_utf8_lossy(&line).into_owned();
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    return String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads everything until the server closes the connection.
    pub fn rest(&mut self) -> String {
        let mut out = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
        let mut all = Vec::new();
        let _ = self.stream.read_to_end(&mut all);
        out.push_str(&String::from_utf8_lossy(&all));
        out
    }
}

fn bind_connect(server: SocketAddr, source: &str) -> TcpStream {
    // std has no bind-before-connect; a tokio TcpSocket does it, driven by
    // a throwaway current-thread runtime.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source: std::net::IpAddr = source.parse().unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        let stream = tokio::time::timeout(WAIT, socket.connect(server))
            .await
            .unwrap()
            .unwrap();
        stream.into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    stream
}

/// A port free on 127.0.0.1 a moment ago, for a peer that must be named
/// before it starts (connections to it are refused meanwhile).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `addr`.
pub fn wait_listening(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < WAIT, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A session from `source` to `server` up to RCPT: EHLO `helo` and MAIL
/// FROM `from` must be accepted; the reply to RCPT TO `to`, and the
/// session to go on with.
pub fn rcpt_from(
    server: SocketAddr,
    source: &str,
    helo: &str,
    from: &str,
    to: &str,
) -> (String, Client) {
    let mut c = Client::connect_from(server, source);
    let r = c.cmd(&format!("EHLO {helo}"));
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd(&format!("MAIL FROM:<{from}>"));
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd(&format!("RCPT TO:<{to}>"));
    (r, c)
}

/// [`send_message`], which must be accepted (`250 `); the reply, with the
/// queue id.
pub fn send_accepted(c: &mut Client, from: &str, rcpts: &[&str], body: &str) -> String {
    let r = send_message(c, from, rcpts, body);
    assert!(r.starts_with("250 "), "{r}");
    r
}

/// The queue id in `reply`, which must be `250 2.0.0 Ok: queued as ID`.
pub fn queued_id(reply: &str) -> String {
    let id = reply.trim().strip_prefix("250 2.0.0 Ok: queued as ");
    id.unwrap_or_else(|| panic!("not queued: {reply}"))
        .to_owned()
}

/// A transaction from `from` to `rcpts` with `body` (already CRLF, not
/// dot-stuffed: this stuffs it), returning the final reply.
pub fn send_message(c: &mut Client, from: &str, rcpts: &[&str], body: &str) -> String {
    let r = c.cmd("EHLO client.test.example");
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd(&format!("MAIL FROM:<{from}>"));
    assert!(r.starts_with("250"), "{r}");
    for rcpt in rcpts {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert!(r.starts_with("250"), "{r}");
    }
    let r = c.cmd("DATA");
    assert!(r.starts_with("354"), "{r}");
    let mut stuffed = String::new();
    for line in body.split_inclusive("\r\n") {
        if line.starts_with('.') {
            stuffed.push('.');
        }
        stuffed.push_str(line);
    }
    c.send(stuffed.as_bytes());
    c.send(b".\r\n");
    c.reply()
}
