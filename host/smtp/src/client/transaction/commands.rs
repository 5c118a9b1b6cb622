//! The texts of MAIL FROM and RCPT TO with the ESMTP parameters the server
//! offered: apart from the transaction's flow, as the one place that
//! knows each extension's keywords.

use postern_mail::{Envelope, Recipient};

use crate::client::session::Session;
use crate::client::stuff::is_8bit;
use crate::codec::xtext;

impl Session {
    /// MAIL FROM with the parameters the server understands: SIZE (RFC
    /// 1870), BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), and the DSN
    /// parameters RET and ENVID passed on (RFC 3461 §5.2).
    pub(super) fn mail_command(
        &self,
        envelope: &Envelope,
        size: u64,
        utf8: bool,
        content: &[u8],
    ) -> String {
        let ext = &self.extensions;
        let mut mail = format!("MAIL FROM:<{}>", envelope.sender);
        if ext.size.is_some() {
            mail.push_str(&format!(" SIZE={size}"));
        }
        if ext.eight_bit_mime && (envelope.eight_bit_mime || is_8bit(content)) {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        if ext.dsn {
            if let Some(ret) = envelope.ret {
                mail.push_str(&format!(" RET={}", ret.keyword()));
            }
            if let Some(envid) = &envelope.envid {
                mail.push_str(&format!(" ENVID={}", xtext::encode(envid)));
            }
        }
        mail
    }

    /// RCPT TO, with NOTIFY and ORCPT passed on to a DSN server.
    pub(super) fn rcpt_command(&self, recipient: &Recipient) -> String {
        let mut rcpt = format!("RCPT TO:<{}>", recipient.address);
        if self.extensions.dsn {
            if let Some(notify) = recipient.notify {
                rcpt.push_str(&format!(" NOTIFY={}", notify.keywords()));
            }
            if let Some(orcpt) = &recipient.orcpt {
                rcpt.push_str(&format!(
                    " ORCPT={};{}",
                    orcpt.addr_type,
                    xtext::encode(&orcpt.address)
                ));
            }
        }
        rcpt
    }
}

/// Whether the envelope holds a non-ASCII address: what SMTPUTF8 is
/// needed for at the next hop.
pub(super) fn needs_utf8(envelope: &Envelope, recipients: &[Recipient]) -> bool {
    !envelope.sender.to_string().is_ascii()
        || recipients.iter().any(|r| !r.address.to_string().is_ascii())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use postern_mail::envelope::{Notify, Orcpt, Ret};
    use postern_mail::{Address, ReversePath};

    use super::*;

    #[tokio::test]
    async fn dsn_parameters_and_smtputf8() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The server closes after EHLO: only the command texts matter.
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"220 x\r\n").await.unwrap();
            let mut buf = [0u8; 100];
            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
            s.write_all(b"250-x\r\n250-DSN\r\n250 SMTPUTF8\r\n")
                .await
                .unwrap();
            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
        });
        let settings = crate::client::ClientSettings {
            helo_name: "c.test".to_owned(),
            lmtp: false,
            tls_level: crate::client::TlsLevel::None,
            tls: None,
            timeouts: crate::client::Timeouts::default(),
        };
        let s = Session::connect(addr, "x", &settings).await.unwrap();
        let mut envelope = Envelope::new(ReversePath::Address(Address::parse("s@c.test").unwrap()));
        envelope.ret = Some(Ret::Headers);
        envelope.envid = Some("id 1+2".to_owned());
        assert_eq!(
            s.mail_command(&envelope, 5, false, b"x"),
            "MAIL FROM:<s@c.test> RET=HDRS ENVID=id+201+2B2"
        );
        let mut r = Recipient::new(Address::parse("u@d.test").unwrap());
        r.notify = Some(Notify {
            success: true,
            failure: true,
            delay: false,
        });
        r.orcpt = Some(Orcpt {
            addr_type: "rfc822".to_owned(),
            address: "u+x@d.test".to_owned(),
        });
        assert_eq!(
            s.rcpt_command(&r),
            "RCPT TO:<u@d.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u+2Bx@d.test"
        );
        envelope.smtputf8 = true;
        assert!(!needs_utf8(&envelope, std::slice::from_ref(&r)));
        let u = Recipient::new(Address::parse("j\u{f6}rg@d.test").unwrap());
        assert!(needs_utf8(&envelope, &[u]));
    }
}
