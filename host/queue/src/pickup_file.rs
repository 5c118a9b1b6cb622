//! The maildrop file format: what `postern sendmail` writes into the
//! maildrop directory or down the pickup socket ([`crate::pickup`]), the
//! counterpart of Postfix's postdrop record stream. A first line naming
//! the format, `key: value` envelope lines (uid, size, sender, each
//! recipient with its DSN NOTIFY and ORCPT, RET, ENVID, the `-bs` HELO
//! name and reserved queue id), an empty line, then the message.
//!
//! Decoding trusts nothing: the file may come from any local user. Every
//! line is checked, unknown keys are refused, and the `size` line must
//! match the content so that a truncated file is refused rather than
//! queued.

use postern_mail::{Address, Notify, Orcpt, QueueId, Recipient, Ret, ReversePath};

/// The first line of a maildrop file: its format and version.
const MAGIC: &str = "POSTERN-MAILDROP 1";

/// One message as `sendmail` hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The submitting user's uid (for the Received line and the log). The
    /// pickup takes it from the file's owner, whatever the file says.
    pub uid: u32,
    /// The envelope sender, already qualified with `myorigin`.
    pub sender: ReversePath,
    /// `-F`: the sender's full name, for a `From:` header made here.
    pub full_name: Option<String>,
    /// The envelope recipients, qualified, at least one, each with the
    /// DSN `NOTIFY` and `ORCPT` it was given (`sendmail -bs`).
    pub recipients: Vec<Recipient>,
    /// The message, CRLF line ends, as read (no dot-stuffing).
    pub content: Vec<u8>,
    /// `-N`: RFC 3461 NOTIFY for every recipient that has none of its own.
    pub notify: Option<Notify>,
    /// `-R`: RFC 3461 RET.
    pub ret: Option<Ret>,
    /// `-V`: RFC 3461 ENVID.
    pub envid: Option<String>,
    /// `-bs`: the id [`reserve_id`](crate::pickup::reserve_id) gave for this message, which the
    /// daemon uses if it reserved it for this caller.
    pub queue_id: Option<String>,
    /// `-bs`: the HELO/EHLO name and the protocol (`SMTP`, `ESMTP`), for
    /// the one `Received:` line the message gets.
    pub helo: Option<(String, String)>,
}

/// Whether `name` may stand in a `Received: from NAME` (RFC 5321 §4.4):
/// a HELO argument of printable ASCII without spaces, 255 at most.
fn check_helo(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 || !name.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(format!("bad HELO name {name:?}"));
    }
    Ok(())
}

/// The protocols a `-bs` session may name.
const PROTOCOLS: &[&str] = &["SMTP", "ESMTP", "UTF8SMTP"];

/// `never` or a comma list of `success`, `failure`, `delay` (sendmail's
/// `-N`, RFC 3461 §4.1), any case.
pub fn parse_notify(value: &str) -> Result<Notify, String> {
    let mut notify = Notify::default();
    let words: Vec<String> = value
        .split(',')
        .map(|w| w.trim().to_ascii_lowercase())
        .collect();
    if words.len() == 1 && words[0] == "never" {
        return Ok(notify);
    }
    for word in &words {
        match word.as_str() {
            "success" => notify.success = true,
            "failure" => notify.failure = true,
            "delay" => notify.delay = true,
            _ => {
                return Err(format!(
                    "{value:?}: expected never, or success, failure and delay"
                ));
            }
        }
    }
    Ok(notify)
}

/// `full` or `hdrs` (sendmail's `-R`, RFC 3461 §4.3), any case.
pub fn parse_ret(value: &str) -> Result<Ret, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "full" => Ok(Ret::Full),
        "hdrs" => Ok(Ret::Headers),
        _ => Err(format!("{value:?}: expected full or hdrs")),
    }
}

/// An ENVID (RFC 3461 §4.4): printable ASCII without spaces, 100 at most.
pub fn check_envid(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 100 || !value.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(format!(
            "{value:?}: an envelope id is 1 to 100 printable characters without spaces"
        ));
    }
    Ok(())
}

impl Submission {
    /// The maildrop file's bytes: a small text envelope, a blank line,
    /// the content.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "{MAGIC}\nuid: {}\nsize: {}\nsender: {}\n",
            self.uid,
            self.content.len(),
            self.sender
        );
        if let Some(id) = self
            .queue_id
            .as_ref()
            .filter(|i| QueueId::parse(i).is_some())
        {
            out.push_str(&format!("queue-id: {id}\n"));
        }
        if let Some((helo, protocol)) = self
            .helo
            .as_ref()
            .filter(|(h, p)| check_helo(h).is_ok() && PROTOCOLS.contains(&p.as_str()))
        {
            out.push_str(&format!("helo: {helo} {protocol}\n"));
        }
        if let Some(name) = &self.full_name {
            // One line: a name cannot add envelope lines.
            let name: String = name.chars().filter(|c| !c.is_control()).collect();
            out.push_str(&format!("full-name: {name}\n"));
        }
        if let Some(n) = self.notify {
            out.push_str(&format!("notify: {}\n", n.keywords()));
        }
        if let Some(r) = self.ret {
            out.push_str(&format!("ret: {}\n", r.keyword()));
        }
        if let Some(e) = self.envid.as_ref().filter(|e| check_envid(e).is_ok()) {
            out.push_str(&format!("envid: {e}\n"));
        }
        for r in &self.recipients {
            out.push_str(&format!("recipient: {}\n", r.address));
            if let Some(n) = r.notify {
                out.push_str(&format!("recipient-notify: {}\n", n.keywords()));
            }
            if let Some(o) = &r.orcpt {
                // One line: an ORCPT cannot add envelope lines.
                let o: String = o.to_string().chars().filter(|c| !c.is_control()).collect();
                out.push_str(&format!("recipient-orcpt: {o}\n"));
            }
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.content);
        bytes
    }

    /// Reads a maildrop file; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Submission, String> {
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or("no end of envelope")?;
        let head = std::str::from_utf8(&bytes[..split]).map_err(|_| "envelope is not UTF-8")?;
        let mut lines = head.lines();
        if lines.next() != Some(MAGIC) {
            return Err(format!("not a maildrop file (expected {MAGIC:?})"));
        }
        let mut submission = Submission {
            uid: u32::MAX,
            sender: ReversePath::Null,
            full_name: None,
            recipients: Vec::new(),
            content: bytes[split + 2..].to_vec(),
            notify: None,
            ret: None,
            envid: None,
            queue_id: None,
            helo: None,
        };
        let mut has_sender = false;
        let mut size = None;
        for line in lines {
            let (key, value) = line.split_once(": ").unwrap_or((line, ""));
            match key {
                "uid" => {
                    submission.uid = value.parse().map_err(|_| format!("bad uid {value:?}"))?
                }
                "size" => {
                    size = Some(
                        value
                            .parse::<usize>()
                            .map_err(|_| format!("bad size {value:?}"))?,
                    )
                }
                "queue-id" => {
                    QueueId::parse(value).ok_or_else(|| format!("bad queue id {value:?}"))?;
                    submission.queue_id = Some(value.to_owned());
                }
                "helo" => {
                    let (helo, protocol) = value
                        .split_once(' ')
                        .filter(|(h, p)| check_helo(h).is_ok() && PROTOCOLS.contains(p))
                        .ok_or_else(|| format!("bad helo line {value:?}"))?;
                    submission.helo = Some((helo.to_owned(), protocol.to_owned()));
                }
                "sender" if value.is_empty() || value == "<>" => has_sender = true,
                "sender" => {
                    submission.sender = ReversePath::Address(
                        Address::parse(value).map_err(|e| format!("sender {value:?}: {e}"))?,
                    );
                    has_sender = true;
                }
                // A lone CR would survive `lines()`: no control
                // characters reach the From: header made of this.
                "full-name" => {
                    submission.full_name = Some(value.chars().filter(|c| !c.is_control()).collect())
                }
                "notify" => submission.notify = Some(parse_notify(value)?),
                "ret" => submission.ret = Some(parse_ret(value)?),
                "envid" => {
                    check_envid(value)?;
                    submission.envid = Some(value.to_owned());
                }
                "recipient" => submission.recipients.push(Recipient::new(
                    Address::parse(value).map_err(|e| format!("recipient {value:?}: {e}"))?,
                )),
                // These say more of the recipient just before them.
                "recipient-notify" | "recipient-orcpt" => {
                    let Some(r) = submission.recipients.last_mut() else {
                        return Err(format!("{key} before any recipient"));
                    };
                    if key == "recipient-notify" {
                        r.notify = Some(parse_notify(value)?);
                    } else {
                        let (addr_type, address) = value
                            .split_once(';')
                            .ok_or_else(|| format!("bad ORCPT {value:?}"))?;
                        r.orcpt = Some(Orcpt {
                            addr_type: addr_type.to_owned(),
                            address: address.to_owned(),
                        });
                    }
                }
                other => return Err(format!("unknown envelope line {other:?}")),
            }
        }
        if !has_sender || submission.uid == u32::MAX || submission.recipients.is_empty() {
            return Err("incomplete envelope (uid, sender, recipient)".to_owned());
        }
        // A file cut short (a writer that died, a full disk) is refused,
        // not queued as a shorter message.
        match size {
            None => return Err("incomplete envelope (no size)".to_owned()),
            Some(n) if n != submission.content.len() => {
                return Err(format!(
                    "truncated or padded: the envelope says {n} bytes, the content has {}",
                    submission.content.len()
                ));
            }
            Some(_) => {}
        }
        Ok(submission)
    }
}

/// A submission from uid 1000, `alice@mx.example.org` to `bob@example.org`,
/// for the tests of this file and of `pickup_cleanup`.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn submission(content: &[u8]) -> Submission {
    Submission {
        uid: 1000,
        sender: ReversePath::Address(Address::parse("alice@mx.example.org").unwrap()),
        full_name: Some("Alice \"A\" Example".to_owned()),
        recipients: vec![Recipient::new(Address::parse("bob@example.org").unwrap())],
        content: content.to_vec(),
        notify: None,
        ret: None,
        envid: None,
        queue_id: None,
        helo: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn maildrop_file_round_trip() {
        let s = submission(b"Subject: x\r\n\r\nbody\n\n\r\n");
        assert_eq!(Submission::decode(&s.encode()).unwrap(), s);
        let null = Submission {
            sender: ReversePath::Null,
            full_name: None,
            notify: Some(parse_notify("FAILURE,delay").unwrap()),
            ret: Some(Ret::Headers),
            envid: Some("QQ314159".to_owned()),
            queue_id: Some("0123456789ABCDEF0123".to_owned()),
            helo: Some(("client.example".to_owned(), "ESMTP".to_owned())),
            ..s
        };
        assert_eq!(Submission::decode(&null.encode()).unwrap(), null);
        let never = parse_notify("never").unwrap();
        assert!(!never.success && !never.failure && !never.delay);
        assert!(parse_notify("sometimes").is_err() && parse_ret("all").is_err());
        assert!(check_envid("with space").is_err());
        let env = crate::pickup_cleanup::local_envelope(&null, None);
        assert_eq!(env.ret, Some(Ret::Headers));
        assert_eq!(env.envid.as_deref(), Some("QQ314159"));
        assert!(
            env.recipients[0]
                .notify
                .is_some_and(|n| n.failure && n.delay)
        );
        // Each recipient's own NOTIFY and ORCPT (from `-bs`) travel too,
        // and win over `-N`.
        let mut carol = Recipient::new(Address::parse("carol@example.org").unwrap());
        carol.notify = Some(parse_notify("never").unwrap());
        carol.orcpt = Some(Orcpt {
            addr_type: "rfc822".to_owned(),
            address: "Carol@Example.ORG\r\nrecipient: evil@x".to_owned(),
        });
        let mut two = null.clone();
        two.recipients.push(carol);
        let back = Submission::decode(&two.encode()).unwrap();
        assert_eq!(back.recipients.len(), 2);
        let orcpt = back.recipients[1].orcpt.as_ref().unwrap();
        assert_eq!(orcpt.address, "Carol@Example.ORGrecipient: evil@x");
        let env = crate::pickup_cleanup::local_envelope(&back, None);
        assert!(env.recipients[1].notify.is_some_and(|n| !n.failure));
        assert!(env.recipients[0].notify.is_some_and(|n| n.failure));
        let good = b"POSTERN-MAILDROP 1\nuid: 1\nsize: 1\nsender: a@b\nrecipient: c@d\nhelo: [127.0.0.1] SMTP\n\nx";
        assert!(Submission::decode(good).is_ok());
        for bad in [
            &b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\nrecipient-notify: never\nrecipient: c@d\n\n"[..],
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\nrecipient: c@d\nrecipient-orcpt: x\n\n",
            &b"garbage"[..],
            b"POSTERN-MAILDROP 1\nuid: x\n\n",
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\n\n",
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\nrecipient: <<\n\n",
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\nevil: 1\nrecipient: c@d\n\n",
            // No size, a size that does not match (truncated), bad -bs lines.
            b"POSTERN-MAILDROP 1\nuid: 1\nsender: a@b\nrecipient: c@d\n\nx",
            b"POSTERN-MAILDROP 1\nuid: 1\nsize: 10\nsender: a@b\nrecipient: c@d\n\nx",
            b"POSTERN-MAILDROP 1\nuid: 1\nsize: 1\nsender: a@b\nrecipient: c@d\nhelo: a b\n\nx",
            b"POSTERN-MAILDROP 1\nuid: 1\nsize: 1\nsender: a@b\nrecipient: c@d\nqueue-id: ../x\n\nx",
        ] {
            assert!(Submission::decode(bad).is_err(), "{bad:?}");
        }
    }
}
