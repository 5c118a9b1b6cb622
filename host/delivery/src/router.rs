//! Which agent a recipient goes to (Postfix's trivial-rewrite resolve and
//! qmgr's transport choice): a message's content filter before anything
//! (every recipient goes there), then `transport_maps`, then the local
//! domains to local delivery, then `relayhost`, then the recipient
//! domain's MX hosts.

use std::collections::BTreeSet;
use std::sync::Arc;

use postern_mail::{
    Address, BoxFuture, Deliver, Delivered, DeliveryStatus, Domain, EnhancedCode, Envelope,
    QueueId, Recipient,
};
use postern_tables::Table;

use crate::local::LocalDelivery;
use crate::remote::{NextHop, RemoteDelivery, Transport};

/// Routes each recipient to local or remote delivery.
#[derive(Debug)]
pub struct Router {
    local: Arc<LocalDelivery>,
    remote: Arc<RemoteDelivery>,
    /// `mydestination`, `virtual_mailbox_domains` and the users file's
    /// domains: delivered here.
    local_domains: BTreeSet<Domain>,
    /// `transport_maps`, in order.
    transport_maps: Vec<Arc<Table>>,
    /// `relayhost`: where mail for other domains goes, if not to their MX.
    relayhost: Option<NextHop>,
}

impl Router {
    /// A router over the two agents.
    pub fn new(
        local: Arc<LocalDelivery>,
        remote: Arc<RemoteDelivery>,
        local_domains: BTreeSet<Domain>,
        transport_maps: Vec<Arc<Table>>,
        relayhost: Option<NextHop>,
    ) -> Router {
        Router {
            local,
            remote,
            local_domains,
            transport_maps,
            relayhost,
        }
    }

    /// The transport for `address`. A `transport_maps` entry is looked up
    /// as transport(5) does: the full address, the domain, each parent
    /// domain as `.parent`, then `*`. A malformed entry is an error that
    /// names it (the message is deferred until the table is fixed).
    pub fn route(&self, address: &Address) -> Result<Transport, String> {
        if !self.transport_maps.is_empty() {
            let domain = address.domain().as_str().to_ascii_lowercase();
            let mut keys = vec![address.to_string().to_ascii_lowercase(), domain.clone()];
            let mut rest = domain.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                keys.push(format!(".{parent}"));
                rest = parent;
            }
            keys.push("*".to_owned());
            for key in &keys {
                if let Some(value) = self.transport_maps.iter().find_map(|t| t.lookup(key)) {
                    return match Transport::parse(&value) {
                        Ok(Transport::Smtp(None)) => Ok(self.default_smtp(address)),
                        Ok(t) => Ok(t),
                        Err(e) => Err(format!("transport_maps entry for {key}: {e}")),
                    };
                }
            }
        }
        // The users file's domains as they are now: `postern reload`
        // may have added or removed some since this router was made.
        if self.local_domains.contains(address.domain())
            || self.local.has_users_at(address.domain())
        {
            return Ok(Transport::Local);
        }
        Ok(self.default_smtp(address))
    }

    /// The transport of a message's content filter (`transport:
    /// destination`, Postfix's `content_filter` and FILTER action): all
    /// its recipients go there, as qmgr sends them. A filter needs a
    /// destination; a malformed one is an error that names it (the message
    /// is deferred until the configuration or the queue file is fixed).
    pub fn filter_route(filter: &str) -> Result<Transport, String> {
        match Transport::parse(filter) {
            Ok(Transport::Smtp(None)) => Err(format!(
                "content filter {filter:?}: no destination (such as smtp:[127.0.0.1]:10025)"
            )),
            Ok(t) => Ok(t),
            Err(e) => Err(format!("content filter {e}")),
        }
    }

    fn default_smtp(&self, address: &Address) -> Transport {
        Transport::Smtp(Some(match &self.relayhost {
            Some(hop) => hop.clone(),
            None => NextHop::domain(address.domain().as_str()),
        }))
    }
}

impl Deliver for Router {
    fn agent(&self) -> &'static str {
        "local"
    }

    fn deliver<'a>(
        &'a self,
        id: &'a QueueId,
        envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, DeliveryStatus> {
        Box::pin(async move {
            let batch = std::slice::from_ref(recipient);
            self.deliver_batch(id, envelope, batch, content)
                .await
                .into_iter()
                .next()
                .map_or_else(
                    || DeliveryStatus::Deferred {
                        dsn: EnhancedCode::new(4, 3, 0),
                        detail: "no delivery status".to_owned(),
                    },
                    |d| d.status,
                )
        })
    }

    /// Recipients of one SMTP or LMTP next hop share a transaction; local
    /// ones go one by one.
    fn destination(&self, recipient: &Recipient) -> Option<String> {
        match self.route(&recipient.address).ok()? {
            Transport::Smtp(Some(hop)) => Some(format!("smtp:{hop}")),
            Transport::Lmtp(target) => Some(format!("lmtp:{target}")),
            _ => None,
        }
    }

    /// Only a recipient routed to the local agent (no `transport_maps`
    /// entry sending it elsewhere, no content filter), and only what
    /// [`LocalDelivery::deliver_at_once`] takes.
    fn deliver_at_once<'a>(
        &'a self,
        envelope: &'a Envelope,
        recipient: &'a Recipient,
        content: &'a [u8],
    ) -> BoxFuture<'a, Option<Delivered>> {
        Box::pin(async move {
            if envelope.content_filter.is_some()
                || !matches!(self.route(&recipient.address), Ok(Transport::Local))
            {
                return None;
            }
            let status = self
                .local
                .deliver_at_once(envelope, recipient, content)
                .await?;
            Some(Delivered {
                agent: self.local.agent(),
                relay: self.local.agent().to_owned(),
                status,
                remote: None,
                next_hop_notifies: false,
            })
        })
    }

    fn deliver_batch<'a>(
        &'a self,
        id: &'a QueueId,
        envelope: &'a Envelope,
        recipients: &'a [Recipient],
        content: &'a [u8],
    ) -> BoxFuture<'a, Vec<Delivered>> {
        Box::pin(async move {
            let Some(first) = recipients.first() else {
                return Vec::new();
            };
            // Every recipient of a batch has the same destination key, so
            // the first one's route is theirs.
            let one = |agent: &'static str, status: DeliveryStatus| {
                recipients
                    .iter()
                    .map(|_| Delivered {
                        agent,
                        relay: "none".to_owned(),
                        status: status.clone(),
                        remote: None,
                        next_hop_notifies: false,
                    })
                    .collect()
            };
            let route = match &envelope.content_filter {
                Some(filter) => Router::filter_route(filter),
                None => self.route(&first.address),
            };
            match route {
                Err(e) => one(
                    "qmgr",
                    DeliveryStatus::Deferred {
                        dsn: EnhancedCode::new(4, 3, 5),
                        detail: e,
                    },
                ),
                Ok(Transport::Local) => {
                    self.local
                        .deliver_batch(id, envelope, recipients, content)
                        .await
                }
                Ok(Transport::Smtp(Some(hop))) => {
                    self.remote
                        .deliver_smtp(&hop, envelope, recipients, content)
                        .await
                }
                Ok(Transport::Smtp(None)) => {
                    let hop = NextHop::domain(first.address.domain().as_str());
                    self.remote
                        .deliver_smtp(&hop, envelope, recipients, content)
                        .await
                }
                Ok(Transport::Lmtp(target)) => {
                    self.remote
                        .deliver_lmtp(&target, envelope, recipients, content)
                        .await
                }
                Ok(Transport::Error(text)) => {
                    let (dsn, detail) = coded(&text, 5, "mail delivery refused");
                    one("error", DeliveryStatus::Bounced { dsn, detail })
                }
                Ok(Transport::Retry(text)) => {
                    let (dsn, detail) = coded(&text, 4, "delivery temporarily suspended");
                    one("retry", DeliveryStatus::Deferred { dsn, detail })
                }
            }
        })
    }
}

/// The text of `error:` and `retry:` (transport(5)): a leading enhanced
/// status code of the right class is the DSN code, as in Postfix's
/// error(8); otherwise `class.0.0`.
fn coded(text: &str, class: u8, default: &str) -> (EnhancedCode, String) {
    let text = text.trim();
    let (first, rest) = text.split_once(' ').unwrap_or((text, ""));
    match EnhancedCode::parse(first) {
        Some(code) if code.class == class => (code, rest.trim().to_owned()),
        _ if text.is_empty() => (EnhancedCode::new(class, 0, 0), default.to_owned()),
        _ => (EnhancedCode::new(class, 0, 0), text.to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use postern_auth::UserDb;
    use postern_tables::HashTable;

    use super::*;
    use crate::remote::{Dns, LmtpTarget, RemoteSettings};
    use crate::settings::LocalSettings;

    fn router(transport: &str, relayhost: Option<&str>) -> Router {
        let host = Domain::parse("mx.example.com").unwrap();
        let local = LocalDelivery::new(LocalSettings::new(
            "/nonexistent",
            host.clone(),
            Arc::new(UserDb::new()),
        ));
        let remote = RemoteDelivery::new(
            RemoteSettings::new("mx.example.com"),
            Dns::new(&[], Duration::from_secs(1)),
        );
        let table = HashTable::parse(Path::new("transport"), transport).unwrap();
        Router::new(
            Arc::new(local),
            Arc::new(remote),
            [host].into_iter().collect(),
            vec![Arc::new(Table::Hash(table))],
            relayhost.map(|r| NextHop::parse(r).unwrap()),
        )
    }

    fn route(r: &Router, address: &str) -> Result<Transport, String> {
        r.route(&Address::parse(address).unwrap())
    }

    fn smtp(hop: &str) -> Transport {
        Transport::Smtp(Some(NextHop::parse(hop).unwrap()))
    }

    #[tokio::test]
    async fn lookup_order_of_transport_maps() {
        let r = router(
            "special@example.net error:5.1.1 gone\n\
             example.net smtp:[10.0.0.1]:2525\n\
             .sub.example.org lmtp:unix:/run/lmtp\n\
             broken.example uucp:x\n",
            None,
        );
        assert_eq!(
            route(&r, "Special@Example.net").unwrap(),
            Transport::Error("5.1.1 gone".to_owned())
        );
        assert_eq!(route(&r, "x@example.net").unwrap(), smtp("[10.0.0.1]:2525"));
        assert_eq!(
            route(&r, "x@a.b.sub.example.org").unwrap(),
            Transport::Lmtp(LmtpTarget::Unix("/run/lmtp".into()))
        );
        // `.sub.example.org` is for subdomains, not the domain itself.
        assert_eq!(
            route(&r, "x@sub.example.org").unwrap(),
            smtp("sub.example.org")
        );
        let err = route(&r, "x@broken.example").unwrap_err();
        assert!(
            err.contains("broken.example") && err.contains("uucp"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn local_domains_then_relayhost_then_mx() {
        let r = router("elsewhere.example smtp:\n", Some("[relay.example]:587"));
        assert_eq!(route(&r, "u@mx.example.com").unwrap(), Transport::Local);
        assert_eq!(
            route(&r, "u@far.example").unwrap(),
            smtp("[relay.example]:587")
        );
        // An empty next hop in transport_maps means the default route.
        assert_eq!(
            route(&r, "u@elsewhere.example").unwrap(),
            smtp("[relay.example]:587")
        );
        let r = router("x.example local:\n", None);
        assert_eq!(route(&r, "u@far.example").unwrap(), smtp("far.example"));
        assert_eq!(route(&r, "u@x.example").unwrap(), Transport::Local);
        assert_eq!(
            r.destination(&Recipient::new(Address::parse("u@far.example").unwrap())),
            Some("smtp:far.example".to_owned())
        );
        assert_eq!(
            r.destination(&Recipient::new(Address::parse("u@mx.example.com").unwrap())),
            None
        );
    }

    #[test]
    fn content_filters() {
        assert_eq!(
            Router::filter_route("smtp:[127.0.0.1]:10025").unwrap(),
            smtp("[127.0.0.1]:10025")
        );
        assert!(matches!(
            Router::filter_route("lmtp:unix:/run/filter").unwrap(),
            Transport::Lmtp(_)
        ));
        for bad in ["smtp:", "uucp:x", "smtp:[x"] {
            let e = Router::filter_route(bad).unwrap_err();
            assert!(e.starts_with("content filter"), "{e}");
        }
    }

    #[test]
    fn error_text_codes() {
        assert_eq!(
            coded("5.7.1 no", 5, "d"),
            (EnhancedCode::new(5, 7, 1), "no".to_owned())
        );
        assert_eq!(
            coded("4.7.1 no", 5, "d"),
            (EnhancedCode::new(5, 0, 0), "4.7.1 no".to_owned())
        );
        assert_eq!(
            coded("", 4, "d"),
            (EnhancedCode::new(4, 0, 0), "d".to_owned())
        );
    }
}
