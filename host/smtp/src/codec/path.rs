//! The arguments of MAIL and RCPT: a path in angle brackets (RFC 5321
//! §4.1.2) and ESMTP parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531
//! SMTPUTF8, RFC 3461 DSN: RET, ENVID, NOTIFY, ORCPT).
//!
//! As Postfix with `strict_rfc821_envelopes = no`, a space after the colon
//! and a path without brackets are accepted; a source route
//! (`<@relay:user@domain>`) is accepted and ignored (RFC 5321 §4.1.2,
//! Appendix C).

use postern_mail::{Address, Notify, Orcpt, Ret, ReversePath};

use super::command::{ParseError, Verb};
use super::xtext;

/// RFC 3461 §4.4: an ENVID is at most 100 characters.
const MAX_ENVID: usize = 100;

/// RFC 3461 §4.2: an ORCPT value is at most 500 characters.
const MAX_ORCPT: usize = 500;

/// `MAIL FROM:` parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom {
    /// The reverse-path: an address or the null sender `<>`.
    pub sender: ReversePath,
    /// RFC 1870 `SIZE=`: the client's estimate of the message size, so the
    /// server can refuse an oversized message before it is sent.
    pub size: Option<u64>,
    /// RFC 6152 `BODY=`: 7BIT or 8BITMIME.
    pub body: Option<Body>,
    /// RFC 6531 §3.4 `SMTPUTF8`: addresses and headers may be UTF-8.
    pub smtputf8: bool,
    /// RFC 3461 §4.3 `RET=FULL|HDRS`.
    pub ret: Option<Ret>,
    /// RFC 3461 §4.4 `ENVID=`, xtext-decoded.
    pub envid: Option<String>,
}

/// RFC 6152 `BODY=` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
}

/// `RCPT TO:` parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo {
    /// The forward-path.
    pub recipient: ForwardPath,
    /// RFC 3461 §4.1 `NOTIFY=`.
    pub notify: Option<Notify>,
    /// RFC 3461 §4.2 `ORCPT=`, decoded.
    pub orcpt: Option<Orcpt>,
}

/// A forward-path: an address, or the bare `<Postmaster>` that RFC 5321
/// §4.5.1 requires every server to accept; the session completes it with
/// its own host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    /// `<Postmaster>` without a domain, in any case.
    Postmaster,
    /// `<local@domain>`.
    Address(Address),
}

/// Parses what follows `MAIL`.
pub(super) fn mail(args: &str) -> Result<MailFrom, ParseError> {
    let rest = strip_prefix_ignore_case(args, "FROM:").ok_or(ParseError::Syntax(Verb::Mail))?;
    let (path, params) = split_path(rest)
        .ok_or(ParseError::Syntax(Verb::Mail))?
        .ok_or(ParseError::BadSender)?;
    let sender = if path.is_empty() {
        ReversePath::Null
    } else {
        ReversePath::Address(Address::parse(strip_route(path)).map_err(|_| ParseError::BadSender)?)
    };
    let mut mail = MailFrom {
        sender,
        size: None,
        body: None,
        smtputf8: false,
        ret: None,
        envid: None,
    };
    for param in params.split_ascii_whitespace() {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        if key.eq_ignore_ascii_case("SIZE") {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::BadSize);
            }
            mail.size = Some(value.parse().map_err(|_| ParseError::SizeOverflow)?);
        } else if key.eq_ignore_ascii_case("BODY") && value.eq_ignore_ascii_case("7BIT") {
            mail.body = Some(Body::SevenBit);
        } else if key.eq_ignore_ascii_case("BODY") && value.eq_ignore_ascii_case("8BITMIME") {
            mail.body = Some(Body::EightBitMime);
        } else if param.eq_ignore_ascii_case("SMTPUTF8") {
            mail.smtputf8 = true;
        } else if key.eq_ignore_ascii_case("RET") {
            // RFC 3461 §4.3: once, FULL or HDRS.
            let ret = if value.eq_ignore_ascii_case("FULL") {
                Ret::Full
            } else if value.eq_ignore_ascii_case("HDRS") {
                Ret::Headers
            } else {
                return Err(ParseError::BadRet);
            };
            if mail.ret.replace(ret).is_some() {
                return Err(ParseError::BadRet);
            }
        } else if key.eq_ignore_ascii_case("ENVID") {
            // RFC 3461 §4.4: once, xtext of printable ASCII, 100 at most.
            let envid = xtext::decode(value)
                .filter(|v| {
                    !v.is_empty()
                        && v.len() <= MAX_ENVID
                        && v.bytes().all(|b| (0x20..0x7f).contains(&b))
                })
                .ok_or(ParseError::BadEnvid)?;
            if mail.envid.replace(envid).is_some() {
                return Err(ParseError::BadEnvid);
            }
        } else {
            return Err(ParseError::UnsupportedOption {
                verb: Verb::Mail,
                option: param.to_owned(),
            });
        }
    }
    Ok(mail)
}

/// Parses what follows `RCPT`.
pub(super) fn rcpt(args: &str) -> Result<RcptTo, ParseError> {
    let rest = strip_prefix_ignore_case(args, "TO:").ok_or(ParseError::Syntax(Verb::Rcpt))?;
    let (path, params) = split_path(rest)
        .ok_or(ParseError::Syntax(Verb::Rcpt))?
        .ok_or(ParseError::BadRecipient)?;
    let (mut notify, mut orcpt) = (None, None);
    for param in params.split_ascii_whitespace() {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        if key.eq_ignore_ascii_case("NOTIFY") {
            let n = parse_notify(value).ok_or(ParseError::BadNotify)?;
            if notify.replace(n).is_some() {
                return Err(ParseError::BadNotify);
            }
        } else if key.eq_ignore_ascii_case("ORCPT") {
            let o = parse_orcpt(value).ok_or(ParseError::BadOrcpt)?;
            if orcpt.replace(o).is_some() {
                return Err(ParseError::BadOrcpt);
            }
        } else {
            return Err(ParseError::UnsupportedOption {
                verb: Verb::Rcpt,
                option: param.to_owned(),
            });
        }
    }
    let recipient = if path.eq_ignore_ascii_case("postmaster") {
        ForwardPath::Postmaster
    } else if path.is_empty() {
        return Err(ParseError::BadRecipient);
    } else {
        ForwardPath::Address(
            Address::parse(strip_route(path)).map_err(|_| ParseError::BadRecipient)?,
        )
    };
    Ok(RcptTo {
        recipient,
        notify,
        orcpt,
    })
}

/// RFC 3461 §4.1: `NEVER` alone, or one or more of `SUCCESS`, `FAILURE`,
/// `DELAY` separated by commas, each once.
fn parse_notify(value: &str) -> Option<Notify> {
    if value.eq_ignore_ascii_case("NEVER") {
        return Some(Notify::default());
    }
    let mut n = Notify::default();
    for word in value.split(',') {
        let slot = if word.eq_ignore_ascii_case("SUCCESS") {
            &mut n.success
        } else if word.eq_ignore_ascii_case("FAILURE") {
            &mut n.failure
        } else if word.eq_ignore_ascii_case("DELAY") {
            &mut n.delay
        } else {
            return None;
        };
        if std::mem::replace(slot, true) {
            return None;
        }
    }
    Some(n)
}

/// RFC 3461 §4.2: `addr-type ";" xtext`, the type an atom, the decoded
/// address without control characters.
fn parse_orcpt(value: &str) -> Option<Orcpt> {
    if value.len() > MAX_ORCPT {
        return None;
    }
    let (addr_type, address) = value.split_once(';')?;
    let atom = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
    };
    if !atom(addr_type) {
        return None;
    }
    let address =
        xtext::decode(address).filter(|a| !a.is_empty() && !a.chars().any(char::is_control))?;
    Some(Orcpt {
        addr_type: addr_type.to_ascii_lowercase(),
        address,
    })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Splits `<path> params` into the path (without brackets) and the rest.
/// `None`: nothing at all (a usage error). `Some(None)`: something that is
/// not a path (an unclosed bracket: an address error).
fn split_path(s: &str) -> Option<Option<(&str, &str)>> {
    let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    if s.is_empty() {
        return None;
    }
    let Some(inner) = s.strip_prefix('<') else {
        // strict_rfc821_envelopes = no: a bare address up to the space.
        let end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
        return Some(Some((&s[..end], &s[end..])));
    };
    // The closing bracket, skipping quoted strings and backslash escapes
    // (RFC 5321 §4.1.2 Quoted-string, quoted-pairSMTP).
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(Some((&inner[..i], &inner[i + 1..]))),
            _ => {}
        }
    }
    Some(None)
}

/// Drops an RFC 5321 source route: `@a,@b:user@d` becomes `user@d`.
fn strip_route(path: &str) -> &str {
    match path.split_once(':') {
        Some((_, mailbox)) if path.starts_with('@') => mailbox,
        _ => path,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::command::Command;
    use super::*;

    fn mail_of(line: &str) -> Result<MailFrom, ParseError> {
        match Command::parse(line.as_bytes())? {
            Command::Mail(m) => Ok(m),
            other => panic!("not MAIL: {other:?}"),
        }
    }

    fn rcpt_of(line: &str) -> Result<ForwardPath, ParseError> {
        match Command::parse(line.as_bytes())? {
            Command::Rcpt(r) => Ok(r.recipient),
            other => panic!("not RCPT: {other:?}"),
        }
    }

    fn addr(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    #[test]
    fn mail_from_address() {
        let m = mail_of("MAIL FROM:<Alice@Example.org>").unwrap();
        assert_eq!(m.sender, ReversePath::Address(addr("Alice@example.org")));
        assert_eq!((m.size, m.body), (None, None));
    }

    #[test]
    fn mail_from_null_sender() {
        assert_eq!(mail_of("MAIL FROM:<>").unwrap().sender, ReversePath::Null);
        assert_eq!(mail_of("mail from:<> SIZE=10").unwrap().size, Some(10));
    }

    #[test]
    fn mail_lenient_forms() {
        let want = ReversePath::Address(addr("a@b.org"));
        assert_eq!(mail_of("MAIL FROM: <a@b.org>").unwrap().sender, want);
        assert_eq!(mail_of("MAIL FROM:a@b.org").unwrap().sender, want);
        assert_eq!(
            mail_of("MAIL FROM:<@relay.org:a@b.org>").unwrap().sender,
            want
        );
        assert_eq!(mail_of("MAIL FROM:<@r1,@r2:a@b.org>").unwrap().sender, want);
    }

    #[test]
    fn mail_params() {
        let m = mail_of("MAIL FROM:<a@b.org> size=1000 BODY=8bitmime").unwrap();
        assert_eq!(m.size, Some(1000));
        assert_eq!(m.body, Some(Body::EightBitMime));
        let m = mail_of("MAIL FROM:<a@b.org> BODY=7BIT").unwrap();
        assert_eq!(m.body, Some(Body::SevenBit));
    }

    #[test]
    fn mail_param_errors() {
        assert_eq!(
            mail_of("MAIL FROM:<a@b.org> SIZE=ten")
                .unwrap_err()
                .reply()
                .to_wire(),
            "501 5.5.4 Bad message size syntax\r\n"
        );
        assert_eq!(
            mail_of("MAIL FROM:<a@b.org> SIZE=").unwrap_err(),
            ParseError::BadSize
        );
        assert_eq!(
            mail_of("MAIL FROM:<a@b.org> SIZE=99999999999999999999999")
                .unwrap_err()
                .reply()
                .to_wire(),
            "552 5.3.4 Message size exceeds file system imposed limit\r\n"
        );
        assert_eq!(
            mail_of("MAIL FROM:<a@b.org> BODY=BINARYMIME")
                .unwrap_err()
                .reply()
                .to_wire(),
            "555 5.5.4 Unsupported option: BODY=BINARYMIME\r\n"
        );
        assert_eq!(
            mail_of("MAIL FROM:<a@b.org> SMTPUTF8=yes")
                .unwrap_err()
                .reply()
                .to_wire(),
            "555 5.5.4 Unsupported option: SMTPUTF8=yes\r\n"
        );
        assert_eq!(
            mail_of("MAIL FROM:<a@b.org> X=\u{1}")
                .unwrap_err()
                .reply()
                .to_wire(),
            "555 5.5.4 Unsupported option: X=?\r\n"
        );
    }

    #[test]
    fn mail_syntax_errors() {
        let usage = "501 5.5.4 Syntax: MAIL FROM:<address>\r\n";
        let bad = "501 5.1.7 Bad sender address syntax\r\n";
        for (line, want) in [
            ("MAIL", usage),
            ("MAIL TO:<a@b.org>", usage),
            ("MAIL FROM:", usage),
            ("MAIL FROM:   ", usage),
            ("MAIL FROM:<a@b.org", bad),
            ("MAIL FROM:<a b@c.org>", bad),
            ("MAIL FROM:<nodomain>", bad),
            ("MAIL FROM:<a@-bad-.org>", bad),
            ("MAIL FROM:<@route-only>", bad),
        ] {
            assert_eq!(mail_of(line).unwrap_err().reply().to_wire(), want, "{line}");
        }
    }

    #[test]
    fn quoted_local_part_may_hold_a_bracket() {
        let m = mail_of(r#"MAIL FROM:<"a>b"@c.org> SIZE=5"#).unwrap();
        assert_eq!(m.sender.address().unwrap().local(), "\"a>b\"");
        assert_eq!(m.size, Some(5));
        let m = mail_of(r#"MAIL FROM:<"a\">b"@c.org>"#).unwrap();
        assert_eq!(m.sender.address().unwrap().local(), r#""a\">b""#);
    }

    #[test]
    fn rcpt_to() {
        assert_eq!(
            rcpt_of("RCPT TO:<Bob@Example.COM>").unwrap(),
            ForwardPath::Address(addr("Bob@example.com"))
        );
        assert_eq!(
            rcpt_of("rcpt to: bob@example.com").unwrap(),
            ForwardPath::Address(addr("bob@example.com"))
        );
    }

    #[test]
    fn rcpt_postmaster_without_domain() {
        assert_eq!(
            rcpt_of("RCPT TO:<postmaster>").unwrap(),
            ForwardPath::Postmaster
        );
        assert_eq!(
            rcpt_of("RCPT TO:<PostMaster>").unwrap(),
            ForwardPath::Postmaster
        );
        assert_eq!(
            rcpt_of("RCPT TO:<postmaster@x.org>").unwrap(),
            ForwardPath::Address(addr("postmaster@x.org"))
        );
    }

    #[test]
    fn rcpt_errors() {
        let usage = "501 5.5.4 Syntax: RCPT TO:<address>\r\n";
        let bad = "501 5.1.3 Bad recipient address syntax\r\n";
        for (line, want) in [
            ("RCPT", usage),
            ("RCPT FROM:<a@b.org>", usage),
            ("RCPT TO:", usage),
            ("RCPT TO:<>", bad),
            ("RCPT TO:<bob>", bad),
            ("RCPT TO:<a@b.org", bad),
            ("RCPT TO:<a@@b.org>", bad),
            (
                "RCPT TO:<a@b.org> X-FOO=1",
                "555 5.5.4 Unsupported option: X-FOO=1\r\n",
            ),
        ] {
            assert_eq!(rcpt_of(line).unwrap_err().reply().to_wire(), want, "{line}");
        }
    }

    fn rcpt_full(line: &str) -> Result<RcptTo, ParseError> {
        match Command::parse(line.as_bytes())? {
            Command::Rcpt(r) => Ok(r),
            other => panic!("not RCPT: {other:?}"),
        }
    }

    #[test]
    fn mail_smtputf8_and_dsn() {
        let m = mail_of("MAIL FROM:<jösé@bücher.example> SMTPUTF8 RET=hdrs ENVID=QQ+2B1").unwrap();
        assert!(m.smtputf8);
        assert_eq!(m.sender.address().unwrap().local(), "jösé");
        assert_eq!(m.ret, Some(Ret::Headers));
        assert_eq!(m.envid.as_deref(), Some("QQ+1"));
        let m = mail_of("MAIL FROM:<> RET=FULL").unwrap();
        assert_eq!(m.ret, Some(Ret::Full));
        assert!(!m.smtputf8);
    }

    #[test]
    fn mail_dsn_errors() {
        let ret = "501 5.5.4 Bad RET parameter syntax\r\n";
        let envid = "501 5.5.4 Bad ENVID parameter syntax\r\n";
        for (line, want) in [
            ("MAIL FROM:<a@b.org> RET=ALL", ret),
            ("MAIL FROM:<a@b.org> RET=", ret),
            ("MAIL FROM:<a@b.org> RET=FULL RET=HDRS", ret),
            ("MAIL FROM:<a@b.org> ENVID=", envid),
            ("MAIL FROM:<a@b.org> ENVID=a+", envid),
            ("MAIL FROM:<a@b.org> ENVID=a+0A", envid),
            ("MAIL FROM:<a@b.org> ENVID=a ENVID=b", envid),
        ] {
            assert_eq!(mail_of(line).unwrap_err().reply().to_wire(), want, "{line}");
        }
        let long = format!("MAIL FROM:<a@b.org> ENVID={}", "x".repeat(101));
        assert_eq!(mail_of(&long).unwrap_err(), ParseError::BadEnvid);
    }

    #[test]
    fn rcpt_dsn() {
        let r =
            rcpt_full("RCPT TO:<a@b.org> NOTIFY=SUCCESS,failure ORCPT=rfc822;A+2Bx@B.org").unwrap();
        assert_eq!(
            r.notify,
            Some(Notify {
                success: true,
                failure: true,
                delay: false
            })
        );
        let o = r.orcpt.unwrap();
        assert_eq!(o.to_string(), "rfc822;A+x@B.org");
        let r = rcpt_full("RCPT TO:<a@b.org> NOTIFY=NEVER").unwrap();
        assert_eq!(r.notify, Some(Notify::default()));
        assert_eq!(r.orcpt, None);
    }

    #[test]
    fn rcpt_dsn_errors() {
        let notify = "501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n";
        let orcpt = "501 5.5.4 Error: Bad ORCPT parameter syntax\r\n";
        for (line, want) in [
            ("RCPT TO:<a@b.org> NOTIFY=", notify),
            ("RCPT TO:<a@b.org> NOTIFY=NEVER,SUCCESS", notify),
            ("RCPT TO:<a@b.org> NOTIFY=SUCCESS,SUCCESS", notify),
            ("RCPT TO:<a@b.org> NOTIFY=SOMETIMES", notify),
            ("RCPT TO:<a@b.org> NOTIFY=DELAY NOTIFY=DELAY", notify),
            ("RCPT TO:<a@b.org> ORCPT=a@b.org", orcpt),
            ("RCPT TO:<a@b.org> ORCPT=;a@b.org", orcpt),
            ("RCPT TO:<a@b.org> ORCPT=rfc822;", orcpt),
            ("RCPT TO:<a@b.org> ORCPT=rfc822;a+0D+0A@b.org", orcpt),
            ("RCPT TO:<a@b.org> ORCPT=rfc822;x ORCPT=rfc822;y", orcpt),
        ] {
            assert_eq!(
                rcpt_full(line).unwrap_err().reply().to_wire(),
                want,
                "{line}"
            );
        }
    }
}
