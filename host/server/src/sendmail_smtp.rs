//! `sendmail -bs`: an SMTP session on standard input and output, for
//! programs that speak SMTP to a local command rather than to a port
//! (Postfix's sendmail runs smtpd in this "stand-alone" mode).
//!
//! It is the SMTP server's own session code ([`postern_smtp::serve`]),
//! run in the caller's process, as the caller, without the network: the
//! transport is the pair stdin/stdout, and each accepted message is
//! handed to the running daemon (or the maildrop) exactly as `sendmail`
//! hands one over (`crate::sendmail::hand_over`), so `250` comes only
//! once the message is on disk, and the daemon records the caller's uid
//! from the kernel. As in Postfix, relaying and the other access
//! controls do not apply to the local user: the restriction lists are
//! not run here, and every recipient is accepted (an unknown local one
//! bounces at delivery). Limits, the SMTP grammar and smuggling rules are
//! the server's, and so are the DSN parameters (`RET`, `ENVID`, and
//! each recipient's `NOTIFY` and `ORCPT`). Not here: STARTTLS and AUTH
//! (there is nothing to protect or prove on a pipe).
//!
//! The message is queued once and traced once, by the daemon: the
//! session's own `Received:` line is dropped before the handover, and
//! the daemon writes Postfix's `Received: from HELO (localhost) by HOST
//! (Postern, from userid N) with ESMTP id ID` from the HELO name, the
//! protocol and the uid the kernel reports. The session's queue id is
//! reserved from the daemon ([`pickup::reserve_id`]) at the first RCPT,
//! so that `250 2.0.0 Ok: queued as ID` names the id the message is
//! queued under. With the daemon down the message goes to the maildrop
//! under a name that begins with the session's id; the daemon queues it
//! under a new id when it starts, and logs both.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use postern_mail::{
    Address, BoxFuture, Decision, Directory, Domain, DomainClass, Enqueue, EnqueueError, Envelope,
    Policy, PolicyRequest, QueueId,
};
use postern_queue::pickup::{self, Submission};
use postern_smtp::Connection;

use crate::config::Config;
use crate::sendmail::{EX_SOFTWARE, Failure, fail, hand_over};

/// Runs one SMTP session over standard input and output until QUIT or
/// the end of input.
pub fn run(config: &Config) -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(EX_SOFTWARE, format!("cannot start the async runtime: {e}")))?;
    let main = &config.main;
    let mut settings = crate::tls::smtpd_settings(main);
    // Nothing travels over a network to encrypt.
    settings.tls_required = false;
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let conn = Connection {
        peer: loopback,
        local: loopback,
        client_name: "localhost".to_owned(),
        trusted: true,
        service: "sendmail".to_owned(),
        limits_exempt: true,
    };
    let directory = LocalDirectory {
        local: main.mydestination.clone(),
        virtual_domains: main.virtual_mailbox_domains.clone(),
    };
    let queue = Handover {
        queue_directory: main.queue_directory.clone(),
        uid: rustix::process::getuid().as_raw(),
    };
    let stream = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    runtime.block_on(postern_smtp::serve(
        stream,
        conn,
        Arc::new(settings),
        Arc::new(LocalUser),
        Arc::new(directory),
        Arc::new(queue),
    ));
    Ok(ExitCode::SUCCESS)
}

/// The local user's policy: access controls off (Postfix's `-bs`).
#[derive(Debug)]
struct LocalUser;

impl Policy for LocalUser {
    fn check<'a>(&'a self, _request: &'a PolicyRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async { Decision::permit() })
    }
}

/// Domain classes from the config alone; recipients are the daemon's to
/// judge at delivery (the users file may not be readable by the caller).
#[derive(Debug)]
struct LocalDirectory {
    local: Vec<Domain>,
    virtual_domains: Vec<Domain>,
}

impl Directory for LocalDirectory {
    fn domain_class(&self, domain: &Domain) -> DomainClass {
        if self.local.contains(domain) {
            DomainClass::Local
        } else if self.virtual_domains.contains(domain) {
            DomainClass::Virtual
        } else {
            DomainClass::Other
        }
    }

    fn recipient_exists(&self, _recipient: &Address) -> bool {
        true
    }
}

/// The "queue" of a `-bs` session: each message goes to the daemon as a
/// local submission.
#[derive(Debug)]
struct Handover {
    queue_directory: PathBuf,
    uid: u32,
}

impl Enqueue for Handover {
    /// An id the daemon reserved for this caller, so that the `250`
    /// names the id the message is queued under; without a daemon, one
    /// of this process's (the maildrop file is named after it). Blocks
    /// the session a moment: it is this process's only task.
    fn new_id(&self) -> QueueId {
        pickup::reserve_id(&self.queue_directory)
            .ok()
            .flatten()
            .and_then(|id| QueueId::parse(&id))
            .unwrap_or_else(postern_queue::id::next_id)
    }

    fn enqueue<'a>(
        &'a self,
        id: QueueId,
        envelope: Envelope,
        content: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), EnqueueError>> {
        let submission = Submission {
            uid: self.uid,
            notify: None,
            sender: envelope.sender,
            full_name: None,
            recipients: envelope.recipients,
            content: without_first_received(content),
            ret: envelope.ret,
            envid: envelope.envid,
            queue_id: Some(id.to_string()),
            helo: envelope.helo.map(|h| (h, envelope.protocol)),
        };
        let dir = self.queue_directory.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || hand_over(&dir, &submission))
                .await
                .map_err(|e| EnqueueError::Unavailable(e.to_string()))?
                .map_err(|f: Failure| EnqueueError::Unavailable(f.message))
        })
    }
}

/// `content` without the `Received:` field the session put first: the
/// daemon writes the message's one trace line (the module documentation
/// says why). Anything else is left as it is.
fn without_first_received(mut content: Vec<u8>) -> Vec<u8> {
    if !content.starts_with(b"Received: ") {
        return content;
    }
    let mut end = 0;
    loop {
        let Some(at) = content[end..].windows(2).position(|w| w == b"\r\n") else {
            return content;
        };
        end += at + 2;
        // A field goes on over lines that begin with white space
        // (RFC 5322 §2.2.3).
        if !matches!(content.get(end), Some(b' ' | b'\t')) {
            break;
        }
    }
    content.drain(..end);
    content
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_sessions_received_line_is_dropped() {
        let got = without_first_received(
            b"Received: from a (localhost [127.0.0.1])\r\n\tby h (Postern) with ESMTP id X;\r\n\tdate\r\nReceived: older\r\nSubject: s\r\n\r\nbody\r\n".to_vec(),
        );
        assert_eq!(got, b"Received: older\r\nSubject: s\r\n\r\nbody\r\n");
        let plain = b"Subject: s\r\n\r\nReceived: x\r\n".to_vec();
        assert_eq!(without_first_received(plain.clone()), plain);
        let cut = b"Received: no end".to_vec();
        assert_eq!(without_first_received(cut.clone()), cut);
    }
}
