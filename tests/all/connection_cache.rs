//! The SMTP connection cache end to end (Postfix's
//! `smtp_connection_cache_time_limit` and `smtp_connection_reuse_*`):
//! messages to the same relayhost share one connection, with no RSET
//! between clean transactions; a cached connection past a limit is closed
//! and not reused; one the next hop closed meanwhile (silently, or with
//! 421 on its idle timeout) costs the next message nothing but a new
//! connection: nothing deferred, nothing lost.
//!
//! The next hop is a small SMTP server in Python on 127.0.0.1 that
//! counts connections and logs each event (`connect N`, `message N`,
//! `rset N`, `quit N`, `timeout N`, `drop N`: N the connection).

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use crate::sink::PythonSmtp;
use crate::support::*;

/// The counting next hop. argv: MODE LOGFILE [IDLE]. MODE `ok` keeps
/// connections open; `drop` closes each one, without a word, right after
/// its first message; with IDLE (seconds) a connection idle that long
/// gets `421` and is closed, as Postfix's smtpd does on its timeout.
/// Prints the port once listening.
const NEXT_HOP: &str = r#"
import asyncio, sys
mode, out = sys.argv[1], sys.argv[2]
idle = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
conns = 0
def log(line):
    with open(out, "a") as f:
        f.write(line + "\n")
async def handle(reader, writer):
    global conns
    conns += 1
    n = conns
    log("connect %d" % n)
    writer.write(b"220 hop.test ESMTP\r\n")
    await writer.drain()
    in_data = False
    while True:
        try:
            if idle and not in_data:
                line = await asyncio.wait_for(reader.readline(), idle)
            else:
                line = await reader.readline()
        except asyncio.TimeoutError:
            log("timeout %d" % n)
            writer.write(b"421 4.4.2 hop.test Error: timeout exceeded\r\n")
            await writer.drain()
            break
        if not line:
            break
        if in_data:
            if line == b".\r\n":
                in_data = False
                log("message %d" % n)
                writer.write(b"250 2.0.0 Ok: queued\r\n")
                await writer.drain()
                if mode == "drop":
                    log("drop %d" % n)
                    break
            continue
        verb = line[:4].upper()
        if verb == b"EHLO":
            writer.write(b"250-hop.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        elif verb == b"DATA":
            in_data = True
            writer.write(b"354 go ahead\r\n")
        elif verb == b"QUIT":
            log("quit %d" % n)
            writer.write(b"221 2.0.0 Bye\r\n")
            await writer.drain()
            break
        else:
            if verb == b"RSET":
                log("rset %d" % n)
            writer.write(b"250 2.0.0 Ok\r\n")
        await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"#;

/// The next hop, killed when dropped.
struct NextHop {
    _process: PythonSmtp,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl NextHop {
    fn start(mode: &str, idle: Option<&str>) -> NextHop {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut args = vec![OsStr::new(mode), log.path().as_os_str()];
        args.extend(idle.map(OsStr::new));
        let (process, line) = PythonSmtp::start_plain("the next hop", NEXT_HOP, args);
        let port = line.trim().parse().unwrap();
        NextHop {
            _process: process,
            port,
            log,
        }
    }

    fn events(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn count(&self, word: &str) -> usize {
        self.events()
            .lines()
            .filter(|l| l.split(' ').next() == Some(word))
            .count()
    }

    /// Waits until `word` was logged `n` times.
    fn wait(&self, word: &str, n: usize) {
        let start = Instant::now();
        while self.count(word) < n {
            assert!(
                start.elapsed() < WAIT,
                "the next hop never logged {word:?} {n} times:\n{}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A Postern relaying everything to `hop`, with `extra` main.cf lines.
fn relaying(hop: &NextHop, extra: &str) -> (Server, tempfile::TempDir) {
    Server::start(&format!(
        "relayhost = \"[127.0.0.1]:{}\"\n{extra}",
        hop.port
    ))
}

/// Sends message `n` through `server` to a remote recipient.
fn send(server: &Server, n: usize) {
    let mut c = Client::connect(server.smtp);
    let r = send_message(
        &mut c,
        "alice@example.org",
        &["friend@far.test"],
        &format!("Subject: {n}\r\n\r\nmessage {n}\r\n"),
    );
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    c.cmd("QUIT");
}

/// Nothing was deferred: a fallback to a new connection is invisible.
fn nothing_deferred(server: &Server) {
    let log = server.log();
    assert!(!log.contains("status=deferred"), "{log}");
}

#[test]
fn messages_to_the_relayhost_share_one_connection() {
    let hop = NextHop::start("ok", None);
    let (server, _tmp) = relaying(&hop, "smtp_connection_cache_time_limit = \"30s\"\n");
    for n in 1..=3 {
        send(&server, n);
        hop.wait("message", n);
    }
    server.wait_log_count("status=sent", 3);
    assert_eq!(hop.count("connect"), 1, "{}", hop.events());
    // Each transaction ended with its end-of-data reply: the next one
    // goes straight to MAIL FROM, no RSET round trip.
    assert_eq!(hop.count("rset"), 0, "{}", hop.events());
    nothing_deferred(&server);
}

#[test]
fn a_cached_connection_the_next_hop_dropped_falls_back_to_a_new_one() {
    let hop = NextHop::start("drop", None);
    let (server, _tmp) = relaying(&hop, "smtp_connection_cache_time_limit = \"30s\"\n");
    for n in 1..=3 {
        send(&server, n);
        hop.wait("message", n);
        hop.wait("drop", n);
    }
    server.wait_log_count("status=sent", 3);
    // Each message found the cached connection closed before it sent
    // anything, and took a new one at once.
    assert_eq!(hop.count("connect"), 3, "{}", hop.events());
    nothing_deferred(&server);
}

#[test]
fn a_cached_connection_closed_with_421_falls_back_to_a_new_one() {
    // The next hop closes connections idle for 1 s with 421, the way
    // Postfix's smtpd does after smtpd_timeout.
    let hop = NextHop::start("ok", Some("1"));
    let (server, _tmp) = relaying(&hop, "smtp_connection_cache_time_limit = \"30s\"\n");
    send(&server, 1);
    hop.wait("message", 1);
    hop.wait("timeout", 1);
    send(&server, 2);
    hop.wait("message", 2);
    server.wait_log_count("status=sent", 2);
    assert_eq!(hop.count("connect"), 2, "{}", hop.events());
    nothing_deferred(&server);
}

#[test]
fn an_idle_connection_is_closed_after_the_cache_time_limit() {
    let hop = NextHop::start("ok", None);
    let (server, _tmp) = relaying(&hop, "smtp_connection_cache_time_limit = \"1s\"\n");
    send(&server, 1);
    hop.wait("message", 1);
    // Closed with QUIT once idle for the limit, not kept open.
    hop.wait("quit", 1);
    send(&server, 2);
    hop.wait("message", 2);
    assert_eq!(hop.count("connect"), 2, "{}", hop.events());
    nothing_deferred(&server);
}

#[test]
fn a_connection_older_than_the_reuse_time_limit_is_not_reused() {
    let hop = NextHop::start("ok", None);
    let (server, _tmp) = relaying(
        &hop,
        "smtp_connection_cache_time_limit = \"30s\"\n\
         smtp_connection_reuse_time_limit = \"1s\"\n",
    );
    send(&server, 1);
    hop.wait("message", 1);
    std::thread::sleep(Duration::from_millis(1200));
    send(&server, 2);
    hop.wait("message", 2);
    assert_eq!(hop.count("connect"), 2, "{}", hop.events());
    // The old one was closed politely when found too old.
    hop.wait("quit", 1);
    nothing_deferred(&server);
}

#[test]
fn the_reuse_count_limit_caps_transactions_per_connection() {
    let hop = NextHop::start("ok", None);
    let (server, _tmp) = relaying(
        &hop,
        "smtp_connection_cache_time_limit = \"30s\"\n\
         smtp_connection_reuse_count_limit = 2\n",
    );
    // Reused twice after its first message, as Postfix counts: three
    // messages per connection.
    for n in 1..=6 {
        send(&server, n);
        hop.wait("message", n);
    }
    assert_eq!(hop.count("connect"), 2, "{}", hop.events());
    nothing_deferred(&server);
}

#[test]
fn bad_reuse_limits_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for (line, key) in [
        (
            "smtp_connection_reuse_time_limit = \"soon\"",
            "smtp_connection_reuse_time_limit",
        ),
        (
            "smtp_connection_reuse_count_limit = -1",
            "smtp_connection_reuse_count_limit",
        ),
    ] {
        check_refuses(tmp.path(), line, key);
    }
}
