//! ETRN (RFC 1985): a client asks for the mail queued for its domain to be
//! sent now. Postern has one queue and no per-site flush (Postfix's
//! `fast_flush_domains`), so for a domain in `relay_domains` it starts a
//! queue run, which tries every deferred message, that domain's included.

use postern_mail::{Domain, DomainClass, EnhancedCode, Reply};

use super::{Session, Transport};

impl<S: Transport> Session<S> {
    /// Answers `ETRN node`: `250` and a queue run for a domain we relay
    /// for, `459` for any other, `458` for a named queue (`#name`), which
    /// there is none of.
    pub(super) fn etrn(&mut self, arg: &str) -> Reply {
        if self.helo.is_none() {
            return Reply::new(
                503,
                EnhancedCode::new(5, 5, 1),
                "Error: send HELO/EHLO first",
            );
        }
        if self.txn.is_some() {
            return Reply::new(
                503,
                EnhancedCode::new(5, 5, 1),
                "Error: MAIL transaction in progress",
            );
        }
        let arg = arg.trim();
        if arg.starts_with('#') {
            return Reply::new(458, EnhancedCode::new(4, 3, 0), "Unable to queue messages");
        }
        // RFC 1985 §5.3: `@domain` asks for its subdomains too.
        let name = arg.strip_prefix('@').unwrap_or(arg);
        let Ok(domain) = Domain::parse(name) else {
            return Reply::new(
                501,
                EnhancedCode::new(5, 5, 4),
                "Error: invalid parameter syntax",
            );
        };
        if self.directory.domain_class(&domain) != DomainClass::Relay {
            return Reply::new(
                459,
                EnhancedCode::new(4, 3, 0),
                format!("<{domain}>: service unavailable"),
            );
        }
        self.queue.flush();
        tracing::info!(target: super::log::TARGET, "{}: ETRN {domain}: queue run requested", self.client);
        Reply::new(250, EnhancedCode::new(2, 0, 0), "Queuing started")
    }
}
