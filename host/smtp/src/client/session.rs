//! One connection to a server: greeting, EHLO (HELO when EHLO is refused)
//! or LHLO, STARTTLS at the security level, AUTH, and the reads and writes
//! every command shares, each bounded by its Postfix timeout.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use postern_mail::Reply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

use super::reply::ReplyReader;
use super::stream::Stream;
use super::tls::{TlsLevel, server_name};
use super::{ClientError, ClientSettings};

/// What the server's EHLO (or LHLO) reply offered (RFC 5321 §4.1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// SIZE and its limit, 0 for none (RFC 1870).
    pub size: Option<u64>,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// The AUTH mechanisms, upper case (RFC 4954).
    pub auth: Vec<String>,
    /// DSN (RFC 3461).
    pub dsn: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
}

impl Extensions {
    /// Reads the keyword lines after the first of an EHLO reply.
    pub fn parse(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in reply.text.lines().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => ext.eight_bit_mime = true,
                "STARTTLS" => ext.starttls = true,
                "DSN" => ext.dsn = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "AUTH" => ext.auth = words.map(str::to_ascii_uppercase).collect(),
                _ => {}
            }
        }
        ext
    }
}

/// An open, greeted connection to an SMTP or LMTP server.
#[derive(Debug)]
pub struct Session {
    stream: Stream,
    /// Bytes read and not yet consumed as replies; bounded by the reply
    /// reader's limits.
    buf: Vec<u8>,
    reader: ReplyReader,
    /// What the server offers (after STARTTLS: what it offers then).
    pub extensions: Extensions,
    /// The server as logs name it: `host[ip]:port` or the socket path.
    pub relay: String,
    /// Whether the session runs over TLS.
    pub tls: bool,
    /// Whether the last transaction ended somewhere other than its
    /// end-of-data reply (a refusal, an abort): the next one starts with
    /// RSET. After the end-of-data reply the server has cleared its
    /// buffers (RFC 5321 §4.1.1.4), so a reused connection goes straight
    /// to MAIL: one round trip less per message.
    pub(crate) needs_reset: bool,
    /// When it last did something, for the connection cache.
    pub(crate) idle_since: Instant,
    /// When the connection was made: Postfix's
    /// `smtp_connection_reuse_time_limit` counts from here.
    pub(crate) connected_at: Instant,
    /// Transactions sent on it (`smtp_connection_reuse_count_limit`).
    pub(crate) transactions: u32,
    pub(crate) settings: ClientSettings,
}

impl Session {
    /// Connects to `addr` (the server called `host`), reads the greeting,
    /// says EHLO (or LHLO) and runs STARTTLS as `settings.tls_level` asks.
    pub async fn connect(
        addr: SocketAddr,
        host: &str,
        settings: &ClientSettings,
    ) -> Result<Session, ClientError> {
        let relay = format!("{host}[{}]:{}", addr.ip(), addr.port());
        let tcp =
            match tokio::time::timeout(settings.timeouts.connect, TcpStream::connect(addr)).await {
                Err(_) => {
                    return Err(ClientError::Timeout {
                        relay,
                        stage: "connect",
                    });
                }
                Ok(Err(e)) => {
                    return Err(ClientError::Connect {
                        relay,
                        error: postern_mail::io_reason(&e),
                    });
                }
                Ok(Ok(tcp)) => tcp,
            };
        let _ = tcp.set_nodelay(true);
        let mut session = Session::new(Stream::Tcp(tcp), relay, settings);
        session.greet().await?;
        if !settings.lmtp {
            session.starttls(host).await?;
        }
        Ok(session)
    }

    /// Connects to an LMTP server on a UNIX-domain socket.
    pub async fn connect_unix(
        path: &Path,
        settings: &ClientSettings,
    ) -> Result<Session, ClientError> {
        let relay = path.display().to_string();
        let unix = match tokio::time::timeout(settings.timeouts.connect, UnixStream::connect(path))
            .await
        {
            Err(_) => {
                return Err(ClientError::Timeout {
                    relay,
                    stage: "connect",
                });
            }
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    relay,
                    error: postern_mail::io_reason(&e),
                });
            }
            Ok(Ok(s)) => s,
        };
        let mut session = Session::new(Stream::Unix(unix), relay, settings);
        session.greet().await?;
        Ok(session)
    }

    fn new(stream: Stream, relay: String, settings: &ClientSettings) -> Session {
        Session {
            stream,
            buf: Vec::new(),
            reader: ReplyReader::new(),
            extensions: Extensions::default(),
            relay,
            tls: false,
            needs_reset: false,
            idle_since: Instant::now(),
            connected_at: Instant::now(),
            transactions: 0,
            settings: settings.clone(),
        }
    }

    /// The greeting, then EHLO, or HELO when EHLO is refused (RFC 5321
    /// §4.1.4 leaves a server that predates ESMTP the choice); LHLO for
    /// LMTP (RFC 2033 §4.1), which has no fallback.
    async fn greet(&mut self) -> Result<(), ClientError> {
        let t = self.settings.timeouts.helo;
        let greeting = self.read_reply(t, "greeting").await?;
        if greeting.code != 220 {
            return Err(self.refused("greeting", greeting));
        }
        self.hello().await
    }

    async fn hello(&mut self) -> Result<(), ClientError> {
        let t = self.settings.timeouts.helo;
        let name = self.settings.helo_name.clone();
        if self.settings.lmtp {
            let reply = self.command(&format!("LHLO {name}"), t, "LHLO").await?;
            if reply.code != 250 {
                return Err(self.refused("LHLO", reply));
            }
            self.extensions = Extensions::parse(&reply);
            return Ok(());
        }
        let reply = self.command(&format!("EHLO {name}"), t, "EHLO").await?;
        if reply.code == 250 {
            self.extensions = Extensions::parse(&reply);
            return Ok(());
        }
        let reply = self.command(&format!("HELO {name}"), t, "HELO").await?;
        if reply.code != 250 {
            return Err(self.refused("HELO", reply));
        }
        self.extensions = Extensions::default();
        Ok(())
    }

    /// STARTTLS (RFC 3207) when the level asks for it and the server
    /// offers it; EHLO again after the handshake (§4.2: what was offered
    /// before is forgotten).
    async fn starttls(&mut self, host: &str) -> Result<(), ClientError> {
        let level = self.settings.tls_level;
        if level == TlsLevel::None {
            return Ok(());
        }
        if !self.extensions.starttls {
            if level.required() {
                return Err(ClientError::TlsRequired {
                    relay: self.relay.clone(),
                });
            }
            return Ok(());
        }
        let Some(tls) = self.settings.tls.clone() else {
            return Err(ClientError::Tls {
                relay: self.relay.clone(),
                error: "no TLS client configuration".to_owned(),
            });
        };
        let t = self.settings.timeouts.starttls;
        let reply = self.command("STARTTLS", t, "STARTTLS").await?;
        if reply.code != 220 {
            if level.required() {
                return Err(self.refused("STARTTLS", reply));
            }
            return Ok(());
        }
        if !self.buf.is_empty() {
            // Bytes sent before the handshake would be read as if they had
            // come over TLS (the STARTTLS command injection of CVE-2011-0411
            // in reverse): refuse them.
            return Err(ClientError::Protocol {
                relay: self.relay.clone(),
                stage: "STARTTLS",
                error: "data after the 220 reply to STARTTLS".to_owned(),
            });
        }
        let Some(name) = server_name(host) else {
            return Err(ClientError::Tls {
                relay: self.relay.clone(),
                error: format!("{host:?} is not a valid TLS server name"),
            });
        };
        let Stream::Tcp(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(ClientError::Tls {
                relay: self.relay.clone(),
                error: "STARTTLS on a connection that is not plain TCP".to_owned(),
            });
        };
        let connector = TlsConnector::from(tls.config(level));
        match tokio::time::timeout(t, connector.connect(name, tcp)).await {
            Err(_) => {
                return Err(ClientError::Timeout {
                    relay: self.relay.clone(),
                    stage: "TLS handshake",
                });
            }
            Ok(Err(e)) => {
                return Err(ClientError::Tls {
                    relay: self.relay.clone(),
                    error: postern_mail::io_reason(&e),
                });
            }
            Ok(Ok(stream)) => self.stream = Stream::Tls(Box::new(stream)),
        }
        self.tls = true;
        self.hello().await
    }

    /// SASL AUTH (RFC 4954) with PLAIN (RFC 4616) when offered, else
    /// LOGIN. A refusal is an error that names the server's reply.
    pub async fn authenticate(&mut self, user: &str, password: &str) -> Result<(), ClientError> {
        let t = self.settings.timeouts.helo;
        let offered = |m: &str| self.extensions.auth.iter().any(|a| a == m);
        let reply = if offered("PLAIN") || !offered("LOGIN") {
            let token = BASE64.encode(format!("\0{user}\0{password}"));
            self.command(&format!("AUTH PLAIN {token}"), t, "AUTH")
                .await?
        } else {
            let reply = self.command("AUTH LOGIN", t, "AUTH").await?;
            if reply.code != 334 {
                return Err(self.refused("AUTH", reply));
            }
            let reply = self.command(&BASE64.encode(user), t, "AUTH").await?;
            if reply.code != 334 {
                return Err(self.refused("AUTH", reply));
            }
            self.command(&BASE64.encode(password), t, "AUTH").await?
        };
        if reply.code != 235 {
            return Err(self.refused("AUTH", reply));
        }
        Ok(())
    }

    /// How long the session has been idle.
    pub fn idle_for(&self) -> Duration {
        self.idle_since.elapsed()
    }

    /// How long ago the connection was made.
    pub fn age(&self) -> Duration {
        self.connected_at.elapsed()
    }

    /// How many transactions were sent on it.
    pub fn transactions(&self) -> u32 {
        self.transactions
    }

    /// RSET (RFC 5321 §4.1.1.5): what [`Session::send`] starts with after
    /// a transaction that did not end with its end-of-data reply. After it
    /// the session counts as fresh: `send` sends no second RSET.
    pub async fn reset(&mut self) -> Result<(), ClientError> {
        let reply = self
            .command("RSET", self.settings.timeouts.rset, "RSET")
            .await?;
        if reply.code != 250 {
            return Err(self.refused("RSET", reply));
        }
        self.needs_reset = false;
        Ok(())
    }

    /// QUIT, waiting for the reply at most `smtp_quit_timeout`; errors do
    /// not matter any more.
    pub async fn quit(mut self) {
        let _ = self
            .command("QUIT", self.settings.timeouts.quit, "QUIT")
            .await;
        let _ = self.stream.shutdown().await;
    }

    /// Sends one command line and reads its reply.
    pub(crate) async fn command(
        &mut self,
        line: &str,
        limit: Duration,
        stage: &'static str,
    ) -> Result<Reply, ClientError> {
        self.write(format!("{line}\r\n").as_bytes(), limit, stage)
            .await?;
        self.read_reply(limit, stage).await
    }

    /// Writes `bytes` within `limit`.
    pub(crate) async fn write(
        &mut self,
        bytes: &[u8],
        limit: Duration,
        stage: &'static str,
    ) -> Result<(), ClientError> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Err(_) => Err(ClientError::Timeout {
                relay: self.relay.clone(),
                stage,
            }),
            Ok(Err(e)) => Err(ClientError::Lost {
                relay: self.relay.clone(),
                stage,
                error: postern_mail::io_reason(&e),
            }),
            Ok(Ok(())) => {
                self.idle_since = Instant::now();
                Ok(())
            }
        }
    }

    /// Reads one whole reply within `limit`.
    pub(crate) async fn read_reply(
        &mut self,
        limit: Duration,
        stage: &'static str,
    ) -> Result<Reply, ClientError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let (used, reply) =
                self.reader
                    .decode(&self.buf)
                    .map_err(|e| ClientError::Protocol {
                        relay: self.relay.clone(),
                        stage,
                        error: e.to_string(),
                    })?;
            self.buf.drain(..used);
            if let Some(reply) = reply {
                self.idle_since = Instant::now();
                return Ok(reply);
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => {
                    return Err(ClientError::Timeout {
                        relay: self.relay.clone(),
                        stage,
                    });
                }
                Ok(Ok(0)) => {
                    return Err(ClientError::Lost {
                        relay: self.relay.clone(),
                        stage,
                        error: "connection closed".to_owned(),
                    });
                }
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => {
                    return Err(ClientError::Lost {
                        relay: self.relay.clone(),
                        stage,
                        error: postern_mail::io_reason(&e),
                    });
                }
            }
        }
    }

    /// The error for an unwanted reply at `stage`.
    pub(crate) fn refused(&self, stage: &'static str, reply: Reply) -> ClientError {
        ClientError::Refused {
            relay: self.relay.clone(),
            stage,
            reply,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn extensions_from_ehlo() {
        let reply = Reply::plain(
            250,
            "mx.example\nPIPELINING\nSIZE 10240000\n8BITMIME\nSTARTTLS\nAUTH PLAIN login\nDSN",
        );
        let ext = Extensions::parse(&reply);
        assert!(ext.pipelining && ext.eight_bit_mime && ext.starttls);
        assert_eq!(ext.size, Some(10_240_000));
        assert_eq!(ext.auth, ["PLAIN", "LOGIN"]);
        assert!(ext.dsn && !ext.smtputf8);
        let ext = Extensions::parse(&Reply::plain(250, "mx.example\nSIZE nonsense"));
        assert_eq!(ext.size, Some(0));
    }
}
