//! `sendmail -bs`: an SMTP session on standard input and output, for
//! programs that speak SMTP to a local command rather than to a port
//! (Postfix's sendmail runs smtpd in this "stand-alone" mode).
//!
//! It is the SMTP server's own session code ([`postern_smtp::serve`]),
//! run in the caller's process, as the caller, without the network: the
//! transport is the pair stdin/stdout, and each accepted message is
//! handed to the running daemon (or the maildrop) exactly as `sendmail`
//! hands one over ([`crate::sendmail::hand_over`]), so `250` comes only
//! once the message is on disk, and the daemon records the caller's uid
//! from the kernel. As in Postfix, relaying and the other access
//! controls do not apply to the local user: the restriction lists are
//! not run here, and every recipient is accepted (an unknown local one
//! bounces at delivery). Limits, the SMTP grammar and smuggling rules are
//! the server's, and so are the DSN parameters (`RET`, `ENVID`, and
//! each recipient's `NOTIFY` and `ORCPT`). Not here: STARTTLS and AUTH
//! (there is nothing to protect or prove on a pipe).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use postern_mail::{
    Address, BoxFuture, Decision, Directory, Domain, DomainClass, Enqueue, EnqueueError, Envelope,
    Policy, PolicyRequest, QueueId,
};
use postern_queue::pickup::Submission;
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
    /// The session's id for its log lines and `Received:`; the daemon
    /// queues the message under an id of its own.
    fn new_id(&self) -> QueueId {
        postern_queue::id::next_id()
    }

    fn enqueue<'a>(
        &'a self,
        _id: QueueId,
        envelope: Envelope,
        content: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), EnqueueError>> {
        let submission = Submission {
            uid: self.uid,
            notify: None,
            sender: envelope.sender,
            full_name: None,
            recipients: envelope.recipients,
            content,
            ret: envelope.ret,
            envid: envelope.envid,
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
