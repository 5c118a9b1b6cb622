//! One mail transaction (RFC 5321 §3.3): from an accepted MAIL to the end
//! of DATA, RSET, HELO/EHLO or the end of the session.

use std::net::SocketAddr;
use std::time::SystemTime;

use postern_mail::{
    Address, Envelope, Notify, Orcpt, QueueId, Recipient, Reply, Ret, ReversePath, Verdict,
};

use crate::codec::{Body, MailFrom};

/// The transaction's state, and what the policy asked to be done with it.
#[derive(Debug, Clone)]
pub(crate) struct Transaction {
    /// Taken from the queue at the first accepted RCPT, as Postfix does
    /// with `smtpd_delay_open_until_valid_rcpt = yes`: a session that only
    /// collects rejections never spends a queue id, and its rejections log
    /// as `NOQUEUE`.
    pub(crate) id: Option<QueueId>,
    /// The policy `instance` attribute: the same for every request of this
    /// transaction, different for the next one.
    pub(crate) instance: String,
    pub(crate) sender: ReversePath,
    /// `SIZE=` from MAIL, handed to the policy until the real size is known.
    pub(crate) size: Option<u64>,
    /// Accepted recipients as the client gave them, without duplicates.
    pub(crate) recipients: Vec<Recipient>,
    /// Policy HOLD: the message goes to the hold queue.
    pub(crate) hold: bool,
    /// Policy DISCARD: the message is acknowledged and dropped.
    pub(crate) discard: bool,
    /// Policy PREPEND: header lines to put above our Received header.
    pub(crate) prepend: Vec<String>,
    /// Policy REDIRECT: the one address that replaces every recipient (the
    /// last one given wins).
    pub(crate) redirect: Option<Address>,
    /// Policy BCC: addresses that get a copy too.
    pub(crate) bcc: Vec<Address>,
    /// Policy FILTER: the content filter (`transport:destination`) the
    /// queue delivers the message to (the last one given wins).
    pub(crate) filter: Option<String>,
    /// RFC 6531 `SMTPUTF8` was given with MAIL.
    pub(crate) smtputf8: bool,
    /// RFC 6152 `BODY=8BITMIME` was given with MAIL.
    pub(crate) eight_bit_mime: bool,
    /// RFC 3461 `RET=` and `ENVID=` from MAIL.
    pub(crate) ret: Option<Ret>,
    pub(crate) envid: Option<String>,
    /// The message so far when it comes in BDAT chunks (RFC 3030); `None`
    /// until the first BDAT. Once set, DATA, MAIL and RCPT are refused
    /// until the last chunk or RSET.
    pub(crate) chunks: Option<Chunks>,
}

/// The BDAT chunks of one message received so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chunks {
    /// The content: chunks are raw bytes, with no dot-stuffing or line-end
    /// handling (RFC 3030 §2), kept while within `message_size_limit`.
    pub(crate) content: Vec<u8>,
    /// Bytes received, kept or not.
    pub(crate) size: u64,
    /// Why the message is refused, once an earlier chunk failed: later
    /// chunks are read and dropped with the same reply, up to LAST.
    pub(crate) failed: Option<Reply>,
    /// The refusal was logged when it was made (a policy refusal at the
    /// first chunk); one over the size limit is logged at the last chunk,
    /// as DATA logs it after the final dot.
    pub(crate) logged: bool,
}
impl Transaction {
    pub(crate) fn new(instance: String, mail: MailFrom) -> Transaction {
        Transaction {
            id: None,
            instance,
            sender: mail.sender,
            size: mail.size,
            recipients: Vec::new(),
            hold: false,
            discard: false,
            prepend: Vec::new(),
            redirect: None,
            bcc: Vec::new(),
            filter: None,
            smtputf8: mail.smtputf8,
            eight_bit_mime: mail.body == Some(Body::EightBitMime),
            ret: mail.ret,
            envid: mail.envid,
            chunks: None,
        }
    }

    /// Adds an accepted recipient with its DSN parameters; a second RCPT
    /// for the same address is acknowledged but not added twice.
    pub(crate) fn add_recipient(
        &mut self,
        address: Address,
        notify: Option<Notify>,
        orcpt: Option<Orcpt>,
    ) {
        if !self.recipients.iter().any(|r| r.original == address) {
            self.recipients.push(Recipient {
                notify,
                orcpt,
                ..Recipient::new(address)
            });
        }
    }

    /// The only recipient, when there is exactly one: for the Received
    /// header's `for <...>` and the policy at DATA and END-OF-MESSAGE.
    pub(crate) fn single_recipient(&self) -> Option<&Address> {
        match self.recipients.as_slice() {
            [only] => Some(&only.original),
            _ => None,
        }
    }

    /// Applies one non-final policy action. Warn is only logged, by the
    /// caller; final verdicts are not actions and are ignored here.
    pub(crate) fn apply(&mut self, action: &Verdict) {
        match action {
            Verdict::Hold(_) => self.hold = true,
            Verdict::Discard(_) => self.discard = true,
            Verdict::Prepend(header) => {
                // One header line: a plugin cannot inject a line break.
                let header: String = header
                    .trim_end()
                    .chars()
                    .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                    .collect();
                if !header.is_empty() && !self.prepend.contains(&header) {
                    self.prepend.push(header);
                }
            }
            Verdict::Redirect(a) => self.redirect = Some(a.clone()),
            Verdict::Bcc(a) if !self.bcc.contains(a) => self.bcc.push(a.clone()),
            Verdict::Filter(next_hop) => self.filter = Some(next_hop.clone()),
            _ => {}
        }
    }

    /// The envelope the queue gets: REDIRECT replaces the recipients by one,
    /// BCC adds its addresses.
    pub(crate) fn envelope(
        &self,
        client: SocketAddr,
        client_name: &str,
        helo: Option<&str>,
        protocol: &str,
    ) -> Envelope {
        let mut recipients = match (&self.redirect, self.recipients.first()) {
            (Some(to), Some(first)) => vec![Recipient {
                address: to.clone(),
                ..first.clone()
            }],
            _ => self.recipients.clone(),
        };
        for bcc in &self.bcc {
            if !recipients.iter().any(|r| &r.address == bcc) {
                recipients.push(Recipient::new(bcc.clone()));
            }
        }
        Envelope {
            sender: self.sender.clone(),
            recipients,
            client: Some(client),
            client_name: client_name.to_owned(),
            helo: helo.map(str::to_owned),
            protocol: protocol.to_owned(),
            arrival: SystemTime::now(),
            hold: self.hold,
            ret: self.ret,
            envid: self.envid.clone(),
            smtputf8: self.smtputf8,
            eight_bit_mime: self.eight_bit_mime,
            content_filter: self.filter.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    fn txn() -> Transaction {
        Transaction::new(
            "1.1".into(),
            MailFrom {
                sender: ReversePath::Null,
                size: None,
                body: None,
                smtputf8: false,
                ret: None,
                envid: None,
            },
        )
    }

    #[test]
    fn duplicate_recipients_are_kept_once() {
        let mut t = txn();
        t.add_recipient(addr("a@x.org"), None, None);
        t.add_recipient(addr("b@x.org"), None, None);
        t.add_recipient(addr("a@x.org"), None, None);
        assert_eq!(t.recipients.len(), 2);
        assert_eq!(t.single_recipient(), None);
    }

    #[test]
    fn actions_shape_the_envelope() {
        let mut t = txn();
        t.add_recipient(addr("a@x.org"), None, None);
        t.add_recipient(addr("b@x.org"), None, None);
        t.apply(&Verdict::Hold("held".into()));
        t.apply(&Verdict::Redirect(addr("r@y.org")));
        t.apply(&Verdict::Bcc(addr("c@y.org")));
        t.apply(&Verdict::Bcc(addr("c@y.org")));
        t.apply(&Verdict::Prepend("X-A: 1\r\nBcc: evil@z.org".into()));
        t.apply(&Verdict::Prepend("X-A: 1\r\nBcc: evil@z.org".into()));
        t.apply(&Verdict::Filter("smtp:[127.0.0.1]:10024".into()));
        t.apply(&Verdict::Filter("smtp:[127.0.0.1]:10025".into()));
        let addr0: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let e = t.envelope(addr0, "unknown", Some("h"), "ESMTP");
        assert!(e.hold);
        // The last FILTER wins, as in Postfix.
        assert_eq!(e.content_filter.as_deref(), Some("smtp:[127.0.0.1]:10025"));
        let to: Vec<String> = e.recipients.iter().map(|r| r.address.to_string()).collect();
        assert_eq!(to, ["r@y.org", "c@y.org"]);
        assert_eq!(e.recipients[0].original, addr("a@x.org"));
        assert_eq!(t.prepend, ["X-A: 1  Bcc: evil@z.org"]);
    }
}
