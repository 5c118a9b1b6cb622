//! Between `postern_mail`'s policy types and the WIT ones: the request goes
//! out as is; the verdict comes back from an untrusted plugin and is
//! checked ("parse, don't validate") before the server sees it.

use postern_mail::{Address, DomainClass, EnhancedCode, PolicyRequest, Reply, Stage, Verdict};

use crate::bindings::postern::policy::types;
use crate::host::one_line;

/// The longest line of reply text kept. RFC 5321 §4.5.3.1.5 allows 512
/// octets per reply line, code and enhanced code included.
const MAX_REPLY_LINE: usize = 480;

/// The most lines of a multi-line reply kept.
const MAX_REPLY_LINES: usize = 8;

/// The longest header a `prepend` may add: RFC 5322 §2.1.1's line limit.
const MAX_HEADER: usize = 998;

/// The longest `hold`, `discard` or `warn` text kept, for the log.
const MAX_TEXT: usize = 512;
/// The longest `filter` next hop kept (a host name is 255 at most).
const MAX_FILTER: usize = 300;

/// The request in WIT terms. Fails only for a stage this version of the
/// WIT package cannot express, which the caller treats as a plugin failure.
pub(crate) fn request(r: &PolicyRequest) -> Result<types::Request, String> {
    let stage = match r.stage {
        Stage::Client => types::Stage::Client,
        Stage::Helo => types::Stage::Helo,
        Stage::Sender => types::Stage::Sender,
        Stage::Relay => types::Stage::Relay,
        Stage::Recipient => types::Stage::Recipient,
        Stage::Data => types::Stage::Data,
        Stage::EndOfData => types::Stage::EndOfData,
        other => return Err(format!("stage {other} is not in postern:policy@0.1.0")),
    };
    let recipient_class = r.recipient_class.map(domain_class);
    let sender_class = r.sender_class.map(domain_class);
    Ok(types::Request {
        stage,
        protocol_name: r.protocol_name.clone(),
        instance: r.instance.clone(),
        queue_id: r.queue_id.clone(),
        client_address: r.client_address.map(|a| a.to_string()).unwrap_or_default(),
        client_port: r.client_port,
        client_name: r.client_name.clone(),
        reverse_client_name: r.reverse_client_name.clone(),
        helo_name: r.helo_name.clone(),
        sender: r.sender.clone(),
        recipient: r.recipient.clone(),
        recipient_count: r.recipient_count,
        size: r.size,
        sasl_method: r.sasl_method.clone(),
        sasl_username: r.sasl_username.clone(),
        encryption_protocol: r.encryption_protocol.clone(),
        encryption_cipher: r.encryption_cipher.clone(),
        server_address: r.server_address.map(|a| a.to_string()).unwrap_or_default(),
        server_port: r.server_port,
        tls_sni: r.tls_sni.clone(),
        trusted: r.trusted,
        recipient_class,
        pop_before_smtp: r.pop_before_smtp,
        illegal_pipelining: r.illegal_pipelining,
        sender_class,
        sender_known: r.sender_known,
        recipient_known: r.recipient_known,
    })
}

/// A domain class in WIT terms.
fn domain_class(c: DomainClass) -> types::DomainClass {
    match c {
        DomainClass::Local => types::DomainClass::Local,
        DomainClass::Virtual => types::DomainClass::Virtual,
        DomainClass::Relay => types::DomainClass::Relay,
        // Anything newer than this WIT version: the class that grants
        // nothing, so that no plugin relays by mistake.
        _ => types::DomainClass::Other,
    }
}

/// A plugin's verdict, checked. An answer the server cannot act on (a
/// reject with a 2xx code, a redirect to something that is not an address,
/// a header without a name) is an error naming what was wrong; the caller
/// treats it as a plugin failure.
pub(crate) fn verdict(v: types::Verdict) -> Result<Verdict, String> {
    Ok(match v {
        types::Verdict::Dunno => Verdict::Dunno,
        types::Verdict::Permit => Verdict::Permit,
        // access(5): "4NN text" and "5NN text" both refuse.
        types::Verdict::Reject(r) => Verdict::Reject(reply(r, "reject", 400..=599)?),
        types::Verdict::Defer(r) => Verdict::Defer(reply(r, "defer", 400..=499)?),
        types::Verdict::DeferIfPermit(r) => {
            Verdict::DeferIfPermit(reply(r, "defer-if-permit", 400..=499)?)
        }
        types::Verdict::DeferIfReject(r) => {
            Verdict::DeferIfReject(reply(r, "defer-if-reject", 400..=499)?)
        }
        types::Verdict::Hold(t) => Verdict::Hold(one_line(&t, MAX_TEXT)),
        types::Verdict::Discard(t) => Verdict::Discard(one_line(&t, MAX_TEXT)),
        types::Verdict::Warn(t) => Verdict::Warn(one_line(&t, MAX_TEXT)),
        types::Verdict::Prepend(h) => Verdict::Prepend(header(&h)?),
        types::Verdict::Redirect(a) => Verdict::Redirect(address(&a, "redirect")?),
        types::Verdict::Bcc(a) => Verdict::Bcc(address(&a, "bcc")?),
        types::Verdict::Filter(f) => Verdict::Filter(filter(&f)?),
        types::Verdict::Info(t) => Verdict::Info(one_line(&t, MAX_TEXT)),
        types::Verdict::Hangup(t) => Verdict::Hangup(hangup(&t)),
        types::Verdict::Restriction(names) => Verdict::Restriction(restriction(&names)?),
    })
}

/// The reply of a `hangup`: 421 4.7.0 (RFC 5321 §3.8: the server closes
/// the channel) with the plugin's text, or Postfix's words for the action.
fn hangup(text: &str) -> Reply {
    let text = one_line(text, MAX_REPLY_LINE);
    let text = if text.trim().is_empty() {
        "triggers HANGUP action".to_owned()
    } else {
        text
    };
    Reply::new(421, EnhancedCode::new(4, 7, 0), text)
}

/// The most restriction names one `restriction` verdict may carry.
const MAX_RESTRICTION_NAMES: usize = 16;

/// A `restriction` verdict's names, separated by commas or white space,
/// each a name a config could give a class (letters, digits, `_`, `-`);
/// returned joined by `, `. Whether each is known is the caller's
/// business: an unknown one is the operator's mistake, not the plugin's.
fn restriction(names: &str) -> Result<String, String> {
    let words: Vec<&str> = names
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let shown = || one_line(names, MAX_TEXT);
    if words.is_empty() || words.len() > MAX_RESTRICTION_NAMES {
        return Err(format!(
            "restriction {:?}: expected 1 to {MAX_RESTRICTION_NAMES} restriction names",
            shown()
        ));
    }
    if let Some(bad) = words.iter().find(|w| {
        w.len() > 64
            || !w
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }) {
        return Err(format!(
            "restriction {:?}: {:?} is not a restriction name",
            shown(),
            one_line(bad, MAX_TEXT)
        ));
    }
    Ok(words.join(", "))
}

/// A reply whose code must lie in `codes`. An empty enhanced code gets
/// Postfix's default for the class (4.7.1, 5.7.1); one whose class differs
/// from the code's gets the code's class, as Postfix's smtpd does; one
/// that does not parse is an error. Text is made safe for the wire.
fn reply(
    r: types::Reply,
    what: &str,
    codes: std::ops::RangeInclusive<u16>,
) -> Result<Reply, String> {
    if !codes.contains(&r.code) {
        return Err(format!(
            "{what} with reply code {} (must be {}xx-{}xx)",
            r.code,
            codes.start() / 100,
            codes.end() / 100
        ));
    }
    // The range above makes this 4 or 5.
    let class = (r.code / 100) as u8;
    let mut enhanced = if r.enhanced.is_empty() {
        EnhancedCode::new(class, 7, 1)
    } else {
        EnhancedCode::parse(&r.enhanced).ok_or_else(|| {
            format!(
                "{what} with enhanced status code {:?} (expected like 5.7.1)",
                r.enhanced
            )
        })?
    };
    enhanced.class = class;
    let mut text: Vec<String> = r
        .text
        .split('\n')
        .take(MAX_REPLY_LINES)
        .map(|l| one_line(l, MAX_REPLY_LINE))
        .collect();
    if text.iter().all(|l| l.trim().is_empty()) {
        text = vec![
            if class == 5 {
                "Access denied"
            } else {
                "Try again later"
            }
            .to_owned(),
        ];
    }
    Ok(Reply::new(r.code, enhanced, text.join("\n")))
}

/// A `prepend` header: `Name: value`, the name printable ASCII without a
/// colon (RFC 5322 §2.2).
fn header(h: &str) -> Result<String, String> {
    let h = one_line(h, MAX_HEADER);
    match h.split_once(':') {
        Some((name, _)) if !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b)) => {
            Ok(h)
        }
        _ => Err(format!("prepend {h:?}: not a header (Name: value)")),
    }
}

/// A `redirect` or `bcc` target: an address, angle brackets allowed.
fn address(a: &str, what: &str) -> Result<Address, String> {
    let bare = a.trim();
    let bare = bare
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(bare);
    Address::parse(bare).map_err(|e| format!("{what} to {:?}: {e}", one_line(a, MAX_TEXT)))
}

/// A `filter` next hop: `transport:destination` (access(5) FILTER), one
/// word of printable ASCII with both parts present. Whether the server
/// has that transport is the queue's question, at delivery.
fn filter(f: &str) -> Result<String, String> {
    let f = f.trim();
    let well_formed = f.len() <= MAX_FILTER
        && f.bytes().all(|b| b.is_ascii_graphic())
        && f.split_once(':')
            .is_some_and(|(transport, next)| !transport.is_empty() && !next.is_empty());
    if well_formed {
        Ok(f.to_owned())
    } else {
        Err(format!(
            "filter {:?}: expected transport:destination, such as smtp:[127.0.0.1]:10025",
            one_line(f, MAX_TEXT)
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filter_needs_transport_and_destination() {
        assert_eq!(
            verdict(types::Verdict::Filter(" smtp:[127.0.0.1]:10025 ".into())).unwrap(),
            Verdict::Filter("smtp:[127.0.0.1]:10025".into())
        );
        for bad in ["", "smtp", "smtp:", ":x", "smtp:[a] b", "smtp:\r\nx"] {
            assert!(
                verdict(types::Verdict::Filter(bad.into())).is_err(),
                "{bad}"
            );
        }
        assert!(verdict(types::Verdict::Filter(format!("smtp:{}", "a".repeat(300)))).is_err());
    }

    fn r(code: u16, enhanced: &str, text: &str) -> types::Reply {
        types::Reply {
            code,
            enhanced: enhanced.to_owned(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn empty_enhanced_code_gets_postfix_default() {
        let v = verdict(types::Verdict::Reject(r(554, "", "no"))).unwrap();
        assert_eq!(
            v,
            Verdict::Reject(Reply::new(554, EnhancedCode::new(5, 7, 1), "no"))
        );
        let v = verdict(types::Verdict::Defer(r(450, "", ""))).unwrap();
        assert_eq!(
            v,
            Verdict::Defer(Reply::new(
                450,
                EnhancedCode::new(4, 7, 1),
                "Try again later"
            ))
        );
    }

    #[test]
    fn enhanced_class_follows_the_code() {
        let v = verdict(types::Verdict::Reject(r(450, "5.1.1", "later"))).unwrap();
        assert_eq!(
            v,
            Verdict::Reject(Reply::new(450, EnhancedCode::new(4, 1, 1), "later"))
        );
    }

    #[test]
    fn silly_answers_are_errors() {
        assert!(verdict(types::Verdict::Reject(r(250, "", "ok"))).is_err());
        assert!(verdict(types::Verdict::Reject(r(5540, "", "x"))).is_err());
        assert!(verdict(types::Verdict::Defer(r(554, "", "x"))).is_err());
        assert!(verdict(types::Verdict::Reject(r(554, "5.7", "x"))).is_err());
        assert!(verdict(types::Verdict::Prepend("no colon".to_owned())).is_err());
        assert!(verdict(types::Verdict::Prepend(": empty name".to_owned())).is_err());
        let err = verdict(types::Verdict::Redirect("nobody".to_owned())).unwrap_err();
        assert_eq!(err, "redirect to \"nobody\": missing '@domain' in address");
    }

    #[test]
    fn text_cannot_smuggle_protocol_lines() {
        let v = verdict(types::Verdict::Reject(r(554, "", "a\r\n250 ok\rb"))).unwrap();
        let Verdict::Reject(reply) = v else {
            panic!("not a reject")
        };
        assert_eq!(reply.to_wire(), "554-5.7.1 a \r\n554 5.7.1 250 ok b\r\n");
    }

    #[test]
    fn hangup_info_and_restriction() {
        assert_eq!(
            verdict(types::Verdict::Hangup(String::new())).unwrap(),
            Verdict::Hangup(Reply::new(
                421,
                EnhancedCode::new(4, 7, 0),
                "triggers HANGUP action"
            ))
        );
        assert_eq!(
            verdict(types::Verdict::Info("a\r\nb".to_owned())).unwrap(),
            Verdict::Info("a  b".to_owned())
        );
        assert_eq!(
            verdict(types::Verdict::Restriction(" from_freemail,reject ".into())).unwrap(),
            Verdict::Restriction("from_freemail, reject".to_owned())
        );
        for bad in ["", " , ", "a:b", "hash:/etc/x"] {
            assert!(
                verdict(types::Verdict::Restriction(bad.into())).is_err(),
                "{bad:?}"
            );
        }
        let many = vec!["c"; 17].join(" ");
        assert!(verdict(types::Verdict::Restriction(many)).is_err());
    }

    #[test]
    fn actions_pass() {
        assert_eq!(
            verdict(types::Verdict::Redirect("<a@example.com>".to_owned())).unwrap(),
            Verdict::Redirect(Address::parse("a@example.com").unwrap())
        );
        assert_eq!(
            verdict(types::Verdict::Prepend("X-Spam: yes".to_owned())).unwrap(),
            Verdict::Prepend("X-Spam: yes".to_owned())
        );
    }
}
