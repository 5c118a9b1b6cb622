//! `reject_unlisted_recipient` and `reject_unlisted_sender` (Postfix's
//! `smtpd_check.c` `check_rcpt_maps`): an address at a domain delivered
//! here that has no mailbox is refused, `550 5.1.1 <ADDR>: Recipient
//! address rejected: User unknown in local recipient table` (the sender's
//! enhanced code is 5.1.0), the code `unknown_local_recipient_reject_code`
//! (`code = "..."`). One rule for both, so each plugin crate is one call;
//! what differs is the address, its reply, and who names the local
//! domains.
//!
//! Where it looks: by default, at the server. The request's class of the
//! address says whether its domain is delivered here (local or virtual),
//! and `recipient-known` / `sender-known` whether the address has a
//! mailbox, as the server's own recipient check answers it (the users
//! file, aliases, `local_recipient_maps`, virtual mailbox maps). An
//! operator may name the answer instead: `maps` (space or comma
//! separated tables of existing users, Postfix's `local_recipient_maps` /
//! `virtual_mailbox_maps`), each asked for `user+ext@domain`,
//! `user@domain` (without the extension after any `delimiter` character)
//! and then `user` at a local domain (as the passwd and aliases maps are
//! keyed) or `@domain` at a virtual one (a catch-all). For a recipient the
//! server still says which domains are local or virtual; for a sender,
//! whose class the operator replaces too, `domains` (the local domains)
//! goes with `maps`. `postmaster` at a local domain always exists (RFC
//! 5321 §4.5.1); the null sender passes.

use crate::address::{domain, local_part, without_extension};
use crate::checks::Party;
use crate::{Args, Attribute, DomainClass, Request, Verdict, reject, tables};

/// Postfix's `unknown_local_recipient_reject_code` (and
/// `unknown_virtual_mailbox_reject_code`).
pub const UNKNOWN_RECIPIENT_REJECT_CODE: u16 = 550;

/// The check of one entry, as `init` read it.
#[derive(Debug)]
pub struct Unlisted {
    /// The address looked at.
    party: Party,
    /// The local domains, lower-cased (a sender's only); with `maps`.
    domains: Vec<String>,
    /// The tables of existing users; none: the server's view.
    maps: Vec<String>,
    /// `recipient_delimiter`: where an address extension starts.
    delimiter: String,
    /// The reply code.
    code: u16,
}

/// A space- or comma-separated list.
fn list(text: Option<String>) -> Vec<String> {
    text.map(|t| {
        t.split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

impl Unlisted {
    /// Reads the arguments: `maps`, `delimiter`, `code`, and for a sender
    /// `domains`, which goes with `maps`.
    pub fn from_args(party: Party, args: Vec<(String, String)>) -> Result<Unlisted, String> {
        let mut args = Args::new(args);
        let mut domains = Vec::new();
        let maps = list(args.take("maps"));
        if party == Party::Sender {
            domains = list(args.take("domains"));
            domains.iter_mut().for_each(|d| d.make_ascii_lowercase());
            if domains.is_empty() != maps.is_empty() {
                return Err("domains and maps go together: the local domains, \
                     and the tables of their users"
                    .to_owned());
            }
        }
        let delimiter = args.take("delimiter").unwrap_or_default();
        let code = args.code(UNKNOWN_RECIPIENT_REJECT_CODE)?;
        args.done()?;
        Ok(Unlisted {
            party,
            domains,
            maps,
            delimiter,
            code,
        })
    }

    /// The attributes of a request the verdict depends on, for
    /// `host.cache-verdicts`: the address, its class and whether the
    /// server knows it (the `maps` and `domains` are the entry's own).
    pub fn attributes(&self) -> [Attribute; 3] {
        match self.party {
            Party::Sender => [
                Attribute::Sender,
                Attribute::SenderClass,
                Attribute::SenderKnown,
            ],
            Party::Recipient => [
                Attribute::Recipient,
                Attribute::RecipientClass,
                Attribute::RecipientKnown,
            ],
        }
    }

    /// The verdict on the request's address.
    pub fn check(&self, req: &Request) -> Verdict {
        let (address, class, known) = match self.party {
            Party::Sender => (&req.sender, req.sender_class, req.sender_known),
            Party::Recipient => (&req.recipient, req.recipient_class, req.recipient_known),
        };
        if address.is_empty() {
            return Verdict::Dunno;
        }
        let Some(class) = self.class(address, class) else {
            return Verdict::Dunno;
        };
        let listed = if self.maps.is_empty() {
            known
        } else {
            self.listed(address, class)
        };
        if listed {
            Verdict::Dunno
        } else {
            self.unknown(address, class)
        }
    }

    /// The class of the address's domain when it is delivered here: the
    /// server's, or for a sender with `domains` those.
    fn class(&self, address: &str, class: Option<DomainClass>) -> Option<DomainClass> {
        if self.domains.is_empty() {
            return class.filter(|c| matches!(c, DomainClass::Local | DomainClass::Virtual));
        }
        let dom = domain(address)?;
        self.domains.contains(&dom).then_some(DomainClass::Local)
    }

    /// Whether one of `maps` has the address (or it is `postmaster`).
    fn listed(&self, address: &str, class: DomainClass) -> bool {
        let Some(dom) = domain(address) else {
            return true;
        };
        let local = local_part(address).to_ascii_lowercase();
        let bare = without_extension(&local, &self.delimiter);
        let local_domain = class == DomainClass::Local;
        if local_domain && bare == "postmaster" {
            return true;
        }
        let mut keys = vec![format!("{local}@{dom}"), format!("{bare}@{dom}")];
        keys.push(if local_domain {
            bare.to_owned()
        } else {
            format!("@{dom}")
        });
        keys.dedup();
        self.maps
            .iter()
            .any(|map| keys.iter().any(|k| tables::lookup(map, k).is_some()))
    }

    /// Postfix's reply: `550 5.1.1 <ADDR>: Recipient address rejected:
    /// User unknown in local recipient table` (the sender's 5.1.0).
    fn unknown(&self, address: &str, class: DomainClass) -> Verdict {
        let table = match class {
            DomainClass::Virtual => "virtual mailbox table",
            _ => "local recipient table",
        };
        let (who, enhanced) = match (self.party, self.code >= 500) {
            (Party::Sender, true) => ("Sender", "5.1.0"),
            (Party::Sender, false) => ("Sender", "4.1.0"),
            (Party::Recipient, true) => ("Recipient", "5.1.1"),
            (Party::Recipient, false) => ("Recipient", "4.1.1"),
        };
        reject(
            self.code,
            enhanced,
            format!("<{address}>: {who} address rejected: User unknown in {table}"),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::args::pairs;
    use crate::{Reply, Stage};

    fn server_view(party: Party) -> Unlisted {
        Unlisted::from_args(party, Vec::new()).unwrap()
    }

    fn rcpt(class: DomainClass, known: bool) -> Verdict {
        let req = Request {
            recipient: "nobody@example.test".to_owned(),
            recipient_class: Some(class),
            recipient_known: known,
            ..Request::empty(Stage::Recipient)
        };
        server_view(Party::Recipient).check(&req)
    }

    fn sender(address: &str, class: Option<DomainClass>, known: bool) -> Verdict {
        let req = Request {
            sender: address.to_owned(),
            sender_class: class,
            sender_known: known,
            ..Request::empty(Stage::Sender)
        };
        server_view(Party::Sender).check(&req)
    }

    #[test]
    fn recipients_on_the_servers_view() {
        assert_eq!(
            rcpt(DomainClass::Local, false),
            Verdict::Reject(Reply {
                code: 550,
                enhanced: "5.1.1".to_owned(),
                text: "<nobody@example.test>: Recipient address rejected: User unknown in local recipient table".to_owned(),
            })
        );
        assert_eq!(
            rcpt(DomainClass::Virtual, false),
            Verdict::Reject(Reply {
                code: 550,
                enhanced: "5.1.1".to_owned(),
                text: "<nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table".to_owned(),
            })
        );
        assert_eq!(rcpt(DomainClass::Local, true), Verdict::Dunno);
        assert_eq!(rcpt(DomainClass::Relay, false), Verdict::Dunno);
        assert_eq!(rcpt(DomainClass::Other, false), Verdict::Dunno);
    }

    #[test]
    fn senders_on_the_servers_view() {
        assert_eq!(
            sender("ghost@example.test", Some(DomainClass::Local), false),
            Verdict::Reject(Reply {
                code: 550,
                enhanced: "5.1.0".to_owned(),
                text: "<ghost@example.test>: Sender address rejected: User unknown in local recipient table".to_owned(),
            })
        );
        assert!(matches!(
            sender("ghost@example.test", Some(DomainClass::Virtual), false),
            Verdict::Reject(Reply { code: 550, .. })
        ));
        assert_eq!(
            sender("alice@example.test", Some(DomainClass::Local), true),
            Verdict::Dunno
        );
        assert_eq!(
            sender("x@elsewhere.test", Some(DomainClass::Other), false),
            Verdict::Dunno
        );
        assert_eq!(sender("", None, true), Verdict::Dunno);
        assert_eq!(sender("", Some(DomainClass::Local), false), Verdict::Dunno);
    }

    #[test]
    fn a_4xx_code_gets_a_4xx_enhanced_code() {
        let check = Unlisted::from_args(Party::Sender, pairs(&[("code", "450")])).unwrap();
        let req = Request {
            sender: "ghost@example.test".to_owned(),
            sender_class: Some(DomainClass::Local),
            sender_known: false,
            ..Request::empty(Stage::Sender)
        };
        assert!(matches!(
            check.check(&req),
            Verdict::Reject(Reply { code: 450, enhanced, .. }) if enhanced == "4.1.0"
        ));
    }

    #[test]
    fn arguments() {
        let r = |a: &[(&str, &str)]| Unlisted::from_args(Party::Recipient, pairs(a));
        let s = |a: &[(&str, &str)]| Unlisted::from_args(Party::Sender, pairs(a));
        let ok = r(&[("maps", "known, more"), ("delimiter", "+")]).unwrap();
        assert_eq!(ok.maps, ["known", "more"]);
        assert_eq!(
            r(&[("domains", "example.test")]).unwrap_err(),
            "domains: unknown argument"
        );
        assert!(r(&[("code", "250")]).unwrap_err().contains("4xx or 5xx"));
        let ok = s(&[("domains", "Example.TEST"), ("maps", "Users")]).unwrap();
        assert_eq!(
            (ok.domains, ok.maps),
            (vec!["example.test".to_owned()], vec!["Users".to_owned()])
        );
        assert!(s(&[("maps", "users")]).unwrap_err().contains("go together"));
        assert!(
            s(&[("domains", "example.test")])
                .unwrap_err()
                .contains("go together")
        );
    }
}
