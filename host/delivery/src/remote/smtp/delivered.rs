//! What each recipient's [`Delivered`] says after a batch: the server's
//! reply to it (2xx sent, 4xx deferred, 5xx bounced), or the one status
//! all of them get when the session failed or no server was found, with
//! the server's name and words for a bounce notice. Apart because it
//! only turns outcomes into statuses: nothing here touches the network.

use postern_mail::{Delivered, DeliveryStatus, EnhancedCode, Recipient, RemoteReply, Reply};
use postern_smtp::client::ClientError;

use crate::remote::status::Slot;

/// The same status for every recipient.
pub(super) fn all(
    agent: &'static str,
    relay: &str,
    recipients: &[Recipient],
    status: DeliveryStatus,
    remote: Option<RemoteReply>,
) -> Vec<Delivered> {
    recipients
        .iter()
        .map(|_| Delivered {
            agent,
            relay: relay.to_owned(),
            status: status.clone(),
            remote: remote.clone(),
            next_hop_notifies: false,
        })
        .collect()
}

/// Every recipient of a next hop whose servers could not be found; a
/// temporary DNS failure is negative feedback (Postfix suspends a
/// destination whose name does not resolve for now, too).
pub(super) fn unresolved(
    slot: &mut Slot,
    agent: &'static str,
    recipients: &[Recipient],
    status: DeliveryStatus,
) -> Vec<Delivered> {
    if matches!(status, DeliveryStatus::Deferred { .. }) {
        slot.failed(&status);
    }
    all(agent, "none", recipients, status, None)
}

/// Every recipient deferred by a session that failed as a whole; with
/// the server's reply when it refused a step (its greeting, say).
pub(super) fn failed(
    agent: &'static str,
    relay: &str,
    recipients: &[Recipient],
    e: &ClientError,
) -> Vec<Delivered> {
    let remote = match e {
        ClientError::Refused { relay, reply, .. } => Some(remote_reply(relay, reply)),
        _ => None,
    };
    all(agent, relay, recipients, session_failure(e), remote)
}

/// The server's name and its reply as a bounce notice shows them:
/// `mx.example.net` out of `mx.example.net[192.0.2.1]:25`, and the reply
/// without the `(in reply to RCPT TO command)` the log line carries
/// (Postfix's `Diagnostic-Code: smtp; 550 5.1.1 ...`).
fn remote_reply(relay: &str, reply: &Reply) -> RemoteReply {
    let mta = relay.split_once('[').map_or(relay, |(host, _)| host);
    let text = reply.to_string();
    let text = match text.rfind(" (in reply to ") {
        Some(at) if text.ends_with(" command)") => text[..at].to_owned(),
        _ => text,
    };
    RemoteReply {
        mta: mta.to_owned(),
        reply: text,
    }
}

/// Each recipient's status from its final reply; `dsn`: the server
/// announced DSN and so was given the DSN parameters.
pub(super) fn statuses(
    agent: &'static str,
    relay: &str,
    recipients: &[Recipient],
    replies: Vec<Reply>,
    dsn: bool,
) -> Vec<Delivered> {
    let mut replies = replies.into_iter();
    recipients
        .iter()
        .map(|_| {
            let (status, remote) = match replies.next() {
                Some(reply) => {
                    let remote = remote_reply(relay, &reply);
                    (reply_status(relay, reply), Some(remote))
                }
                None => (
                    DeliveryStatus::Deferred {
                        dsn: EnhancedCode::new(4, 4, 2),
                        detail: format!("no reply from {relay} for this recipient"),
                    },
                    None,
                ),
            };
            Delivered {
                agent,
                relay: relay.to_owned(),
                status,
                remote,
                next_hop_notifies: dsn,
            }
        })
        .collect()
}

/// 2xx sent, 4xx deferred, 5xx bounced, with the server's words.
fn reply_status(relay: &str, reply: Reply) -> DeliveryStatus {
    let host = relay.rsplit_once(':').map_or(relay, |(h, _)| h);
    let dsn = reply.enhanced.unwrap_or(EnhancedCode::new(
        u8::try_from(reply.code / 100).unwrap_or(4),
        0,
        0,
    ));
    if reply.code < 400 {
        DeliveryStatus::Sent {
            dsn,
            detail: reply.to_string(),
        }
    } else if reply.code < 500 {
        DeliveryStatus::Deferred {
            dsn,
            detail: format!("host {host} said: {reply}"),
        }
    } else {
        DeliveryStatus::Bounced {
            dsn,
            detail: format!("host {host} said: {reply}"),
        }
    }
}

/// A session that failed as a whole defers its recipients (RFC 5321
/// §4.5.4.1: try again later), with a code for the kind of failure.
pub(super) fn session_failure(e: &ClientError) -> DeliveryStatus {
    let dsn = match e {
        ClientError::Connect { .. } => EnhancedCode::new(4, 4, 1),
        ClientError::TlsRequired { .. } => EnhancedCode::new(4, 7, 4),
        ClientError::Tls { .. } => EnhancedCode::new(4, 7, 5),
        ClientError::Refused { reply, .. } => match reply.enhanced {
            Some(e) if e.class == 4 => e,
            _ => EnhancedCode::new(4, 4, 2),
        },
        _ => EnhancedCode::new(4, 4, 2),
    };
    DeliveryStatus::Deferred {
        dsn,
        detail: e.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn remote_reply_names_the_host_and_drops_the_command() {
        let reply = Reply::new(
            550,
            EnhancedCode::new(5, 1, 1),
            "<bob@example.net>: unknown (in reply to RCPT TO command)",
        );
        let r = remote_reply("mx.example.net[192.0.2.1]:25", &reply);
        assert_eq!(r.mta, "mx.example.net");
        assert_eq!(r.reply, "550 5.1.1 <bob@example.net>: unknown");
        let ok = Reply::new(250, EnhancedCode::new(2, 0, 0), "Ok: queued as X");
        let r = remote_reply("/run/lmtp.sock", &ok);
        assert_eq!(r.mta, "/run/lmtp.sock");
        assert_eq!(r.reply, "250 2.0.0 Ok: queued as X");
    }
}
