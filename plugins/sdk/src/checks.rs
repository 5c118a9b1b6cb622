//! The decisions of Postfix's host-name and address restrictions
//! (`smtpd_check.c`), as functions of the request and a [`Resolver`], so
//! that each plugin crate is its `init` and a call, and the rules are unit
//! tested here. Codes, enhanced codes and texts are Postfix's; the
//! adjustable code of each is its Postfix parameter, taken from the
//! entry's `code` argument ([`Code`](crate::code::Code)).

use crate::address::domain;
use crate::hostname::{
    is_fqdn_hostname, is_literal, truncate_dot, valid_hostaddr, valid_hostname, valid_mailhost_addr,
};
use crate::lookup::{NameStatus, Resolves, host_name, mail_domain, reverse_name, verified_name};
use crate::resolver::Resolver;
use crate::template::fixed;
use crate::{DomainClass, Request, Verdict};

/// Postfix's `unknown_client_reject_code`.
pub const UNKNOWN_CLIENT_REJECT_CODE: u16 = 450;
/// Postfix's `invalid_hostname_reject_code`.
pub const INVALID_HOSTNAME_REJECT_CODE: u16 = 501;
/// Postfix's `non_fqdn_reject_code`.
pub const NON_FQDN_REJECT_CODE: u16 = 504;
/// Postfix's `unknown_hostname_reject_code`.
pub const UNKNOWN_HOSTNAME_REJECT_CODE: u16 = 450;
/// Postfix's `unknown_address_reject_code`.
pub const UNKNOWN_ADDRESS_REJECT_CODE: u16 = 450;

fn reject(code: u16, dsn: &str, text: String) -> Verdict {
    Verdict::Reject(fixed(code, dsn, &text))
}

/// `reject_unknown_client_hostname`: the client has no forward-confirmed
/// name. A temporary DNS failure is always 450. The [`NameStatus`] is
/// returned too, so that the plugin can log why (a forged name).
pub fn unknown_client_hostname(
    dns: &dyn Resolver,
    req: &Request,
    code: u16,
) -> (Verdict, NameStatus) {
    if req.client_address.is_empty() {
        return (Verdict::Dunno, NameStatus::Unknown);
    }
    let status = verified_name(dns, req);
    let code = match status {
        NameStatus::Ok(_) => return (Verdict::Dunno, status),
        NameStatus::Temporary => 450,
        NameStatus::Unknown | NameStatus::Forged(_) => code,
    };
    let text = format!(
        "Client host rejected: cannot find your hostname, [{}]",
        req.client_address
    );
    (reject(code, "4.7.25", text), status)
}

/// `reject_unknown_reverse_client_hostname`: the client's address has no
/// PTR name. A temporary DNS failure is always 450.
pub fn unknown_reverse_client_hostname(dns: &dyn Resolver, req: &Request, code: u16) -> Verdict {
    if req.client_address.is_empty() {
        return Verdict::Dunno;
    }
    let code = match reverse_name(dns, req) {
        NameStatus::Ok(_) => return Verdict::Dunno,
        NameStatus::Temporary => 450,
        NameStatus::Unknown | NameStatus::Forged(_) => code,
    };
    let text = format!(
        "Client host rejected: cannot find your reverse hostname, [{}]",
        req.client_address
    );
    reject(code, "4.7.1", text)
}

/// `reject_invalid_helo_hostname`: bad HELO syntax. An address literal
/// must hold a valid address; a name must be a valid host name (or, as
/// Postfix tolerates, a bare address).
pub fn invalid_helo_hostname(req: &Request, code: u16) -> Verdict {
    let helo = req.helo_name.as_str();
    if helo.is_empty() {
        return Verdict::Dunno;
    }
    if is_literal(helo) {
        if valid_mailhost_addr(&helo[1..helo.len() - 1]) {
            return Verdict::Dunno;
        }
        return reject(
            code,
            "5.5.2",
            format!("<{helo}>: Helo command rejected: invalid ip address"),
        );
    }
    let name = truncate_dot(helo);
    if valid_hostname(name) || valid_hostaddr(name) {
        return Verdict::Dunno;
    }
    reject(
        code,
        "5.5.2",
        format!("<{helo}>: Helo command rejected: Invalid name"),
    )
}

/// `reject_non_fqdn_helo_hostname`: the HELO name is not a fully-qualified
/// host name (address literals are left to `reject_invalid_helo_hostname`).
pub fn non_fqdn_helo_hostname(req: &Request, code: u16) -> Verdict {
    let helo = req.helo_name.as_str();
    if helo.is_empty() || is_literal(helo) || is_fqdn_hostname(helo) {
        return Verdict::Dunno;
    }
    reject(
        code,
        "5.5.2",
        format!("<{helo}>: Helo command rejected: need fully-qualified hostname"),
    )
}

/// `reject_unknown_helo_hostname`: the HELO name has no A, AAAA or MX
/// record. A temporary DNS failure defers if nothing else rejects
/// (`unknown_helo_hostname_tempfail_action = defer_if_permit`).
pub fn unknown_helo_hostname(dns: &dyn Resolver, req: &Request, code: u16) -> Verdict {
    let helo = req.helo_name.as_str();
    if helo.is_empty() || is_literal(helo) {
        return Verdict::Dunno;
    }
    let text = format!("<{helo}>: Helo command rejected: Host not found");
    match host_name(dns, truncate_dot(helo)) {
        Resolves::Yes | Resolves::NullMx => Verdict::Dunno,
        Resolves::No => reject(code, "4.7.1", text),
        Resolves::Temporary => Verdict::DeferIfPermit(fixed(450, "4.7.1", &text)),
    }
}

/// Which address a check looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The MAIL FROM address.
    Sender,
    /// The RCPT TO address.
    Recipient,
}

impl Party {
    fn address(self, req: &Request) -> &str {
        match self {
            Party::Sender => &req.sender,
            Party::Recipient => &req.recipient,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Party::Sender => "Sender address",
            Party::Recipient => "Recipient address",
        }
    }
}

/// `reject_unknown_sender_domain` / `reject_unknown_recipient_domain`: the
/// domain has no MX and no address, or a null MX (RFC 7505: 550 5.7.27 for
/// a sender, 556 5.1.10 for a recipient). A temporary DNS failure defers
/// if nothing else rejects (`unknown_address_tempfail_action`). Domains
/// delivered here (the request's `sender-class` or `recipient-class` is
/// local or virtual) are not looked up, as Postfix skips its own final
/// destinations.
pub fn unknown_domain(dns: &dyn Resolver, req: &Request, party: Party, code: u16) -> Verdict {
    let address = party.address(req);
    if address.is_empty() {
        return Verdict::Dunno;
    }
    let ours = match party {
        Party::Sender => req.sender_class,
        Party::Recipient => req.recipient_class,
    };
    if matches!(ours, Some(DomainClass::Local | DomainClass::Virtual)) {
        return Verdict::Dunno;
    }
    let Some(name) = domain(address) else {
        return Verdict::Dunno;
    };
    if is_literal(&name) {
        return Verdict::Dunno;
    }
    let class = party.class();
    let dsn = match party {
        Party::Sender => "4.1.8",
        Party::Recipient => "4.1.2",
    };
    let not_found = format!("<{address}>: {class} rejected: Domain not found");
    match mail_domain(dns, truncate_dot(&name)) {
        Resolves::Yes => Verdict::Dunno,
        Resolves::NullMx => {
            let (code, dsn) = match party {
                Party::Sender => (550, "5.7.27"),
                Party::Recipient => (556, "5.1.10"),
            };
            reject(
                code,
                dsn,
                format!(
                    "<{address}>: {class} rejected: Domain {name} does not accept mail (nullMX)"
                ),
            )
        }
        Resolves::No => reject(code, dsn, not_found),
        Resolves::Temporary => Verdict::DeferIfPermit(fixed(450, dsn, &not_found)),
    }
}

/// `reject_non_fqdn_sender` / `reject_non_fqdn_recipient`: the address has
/// no domain, or one that is not a fully-qualified host name (address
/// literals pass). The null sender passes.
pub fn non_fqdn_address(req: &Request, party: Party, code: u16) -> Verdict {
    let address = party.address(req);
    if address.is_empty() {
        return Verdict::Dunno;
    }
    let name = address.rsplit_once('@').map_or("", |(_, d)| d);
    if is_literal(name) || is_fqdn_hostname(name) {
        return Verdict::Dunno;
    }
    reject(
        code,
        "5.5.2",
        format!(
            "<{address}>: {} rejected: need fully-qualified address",
            party.class()
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::dns::DnsError;
    use crate::resolver::fake::{FakeDns, request};

    /// The verdict as "kind code enhanced text", or "dunno".
    fn show(v: &Verdict) -> String {
        let r = match v {
            Verdict::Dunno => return "dunno".to_owned(),
            Verdict::Reject(r) => ("reject", r),
            Verdict::DeferIfPermit(r) => ("defer_if_permit", r),
            other => return format!("{other:?}"),
        };
        format!("{} {} {} {}", r.0, r.1.code, r.1.enhanced, r.1.text)
    }

    fn helo(name: &str) -> Request {
        let mut r = request("192.0.2.1");
        r.helo_name = name.to_owned();
        r
    }

    #[test]
    fn client_names() {
        let dns = FakeDns::default()
            .with("ptr", "192.0.2.10", &["mail.test"])
            .with("a", "mail.test", &["192.0.2.10"])
            .with("ptr", "192.0.2.11", &["forged.test"])
            .with("a", "forged.test", &["192.0.2.99"])
            .failing("ptr", "192.0.2.12", DnsError::Timeout);
        let c = |a: &str| show(&unknown_client_hostname(&dns, &request(a), 550).0);
        assert_eq!(c("192.0.2.10"), "dunno");
        assert_eq!(
            c("192.0.2.11"),
            "reject 550 5.7.25 Client host rejected: cannot find your hostname, [192.0.2.11]"
        );
        assert_eq!(
            c("192.0.2.12"),
            "reject 450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.12]"
        );
        let r = |a: &str| show(&unknown_reverse_client_hostname(&dns, &request(a), 450));
        assert_eq!(r("192.0.2.11"), "dunno");
        assert_eq!(
            r("192.0.2.13"),
            "reject 450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.13]"
        );
    }

    #[test]
    fn helo_syntax() {
        let inv = |h: &str| show(&invalid_helo_hostname(&helo(h), 501));
        assert_eq!(inv("mail.example."), "dunno");
        assert_eq!(inv("[192.0.2.1]"), "dunno");
        assert_eq!(inv("[IPv6:2001:db8::1]"), "dunno");
        assert_eq!(inv("192.0.2.1"), "dunno");
        assert_eq!(inv(""), "dunno");
        assert_eq!(
            inv("bad_host!"),
            "reject 501 5.5.2 <bad_host!>: Helo command rejected: Invalid name"
        );
        assert_eq!(
            inv("[300.1.1.1]"),
            "reject 501 5.5.2 <[300.1.1.1]>: Helo command rejected: invalid ip address"
        );
        let fq = |h: &str| show(&non_fqdn_helo_hostname(&helo(h), 504));
        assert_eq!(fq("mail.example"), "dunno");
        assert_eq!(fq("[192.0.2.1]"), "dunno");
        assert_eq!(
            fq("localhost"),
            "reject 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname"
        );
    }

    #[test]
    fn helo_lookups() {
        let dns = FakeDns::default()
            .with("a", "mail.test", &["192.0.2.10"])
            .failing("a", "slow.test", DnsError::Timeout);
        let u = |h: &str| show(&unknown_helo_hostname(&dns, &helo(h), 450));
        assert_eq!(u("mail.test."), "dunno");
        assert_eq!(u("[192.0.2.1]"), "dunno");
        assert_eq!(
            u("nowhere.test"),
            "reject 450 4.7.1 <nowhere.test>: Helo command rejected: Host not found"
        );
        assert_eq!(
            u("slow.test"),
            "defer_if_permit 450 4.7.1 <slow.test>: Helo command rejected: Host not found"
        );
    }

    #[test]
    fn address_domains() {
        let dns = FakeDns::default()
            .with("mx", "mx.test", &["10 mx1.mx.test"])
            .with("mx", "null.test", &["0 "])
            .failing("mx", "slow.test", DnsError::Servfail);
        let mut r = request("192.0.2.1");
        let mut s = |a: &str, code| {
            r.sender = a.to_owned();
            show(&unknown_domain(&dns, &r, Party::Sender, code))
        };
        assert_eq!(s("", 450), "dunno");
        assert_eq!(s("a@mx.test", 450), "dunno");
        assert_eq!(s("a@[192.0.2.1]", 450), "dunno");
        assert_eq!(
            s("a@null.test", 450),
            "reject 550 5.7.27 <a@null.test>: Sender address rejected: Domain null.test does not accept mail (nullMX)"
        );
        assert_eq!(
            s("a@gone.test", 550),
            "reject 550 5.1.8 <a@gone.test>: Sender address rejected: Domain not found"
        );
        assert_eq!(
            s("a@slow.test", 450),
            "defer_if_permit 450 4.1.8 <a@slow.test>: Sender address rejected: Domain not found"
        );
        let mut r = request("192.0.2.1");
        r.recipient = "b@null.test".to_owned();
        assert_eq!(
            show(&unknown_domain(&dns, &r, Party::Recipient, 450)),
            "reject 556 5.1.10 <b@null.test>: Recipient address rejected: Domain null.test does not accept mail (nullMX)"
        );
        r.recipient = "b@gone.test".to_owned();
        assert_eq!(
            show(&unknown_domain(&dns, &r, Party::Recipient, 450)),
            "reject 450 4.1.2 <b@gone.test>: Recipient address rejected: Domain not found"
        );
        r.recipient_class = Some(DomainClass::Local);
        assert_eq!(
            show(&unknown_domain(&dns, &r, Party::Recipient, 450)),
            "dunno"
        );
        // A sender at a domain delivered here is not looked up either
        // (gone.test would be "Domain not found").
        r.sender = "a@gone.test".to_owned();
        for class in [DomainClass::Local, DomainClass::Virtual] {
            r.sender_class = Some(class);
            assert_eq!(show(&unknown_domain(&dns, &r, Party::Sender, 450)), "dunno");
        }
        r.sender_class = Some(DomainClass::Relay);
        assert!(show(&unknown_domain(&dns, &r, Party::Sender, 450)).starts_with("reject 450"));
    }

    #[test]
    fn non_fqdn_addresses() {
        let mut r = request("192.0.2.1");
        let mut f = |a: &str, party| {
            r.sender = a.to_owned();
            r.recipient = a.to_owned();
            show(&non_fqdn_address(&r, party, 504))
        };
        assert_eq!(f("", Party::Sender), "dunno");
        assert_eq!(f("a@example.org.", Party::Sender), "dunno");
        assert_eq!(f("a@[192.0.2.1]", Party::Recipient), "dunno");
        assert_eq!(
            f("a@localhost", Party::Sender),
            "reject 504 5.5.2 <a@localhost>: Sender address rejected: need fully-qualified address"
        );
        assert_eq!(
            f("postmaster", Party::Recipient),
            "reject 504 5.5.2 <postmaster>: Recipient address rejected: need fully-qualified address"
        );
    }
}
