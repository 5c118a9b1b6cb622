//! VRFY (RFC 5321 §4.1.1.6, §3.5.3): disabled by default, since it tells a
//! harvester which addresses exist.

use postern_mail::{Address, EnhancedCode, Reply};

use super::{Session, Transport};
use crate::codec::ParseError;

impl<S: Transport> Session<S> {
    /// Answers VRFY: `502 5.5.1` while `disable_vrfy_command`; otherwise
    /// `550 5.1.1` for an unknown user at one of our domains and `252 2.0.0`
    /// (cannot verify, will accept) for everything else, as Postfix does
    /// without a verify database.
    pub(super) fn vrfy(&mut self, arg: &str) -> Reply {
        if self.settings.disable_vrfy_command {
            return Reply::new(502, EnhancedCode::new(5, 5, 1), "VRFY command is disabled");
        }
        if self.settings.helo_required && self.helo.is_none() {
            return Reply::new(
                503,
                EnhancedCode::new(5, 5, 1),
                "Error: send HELO/EHLO first",
            );
        }
        let bare = arg.trim();
        let bare = bare
            .strip_prefix('<')
            .and_then(|a| a.strip_suffix('>'))
            .unwrap_or(bare);
        let Ok(address) = Address::parse(bare) else {
            return ParseError::BadRecipient.reply();
        };
        let class = self.directory.domain_class(address.domain());
        if let Some(reply) = self.unknown_user(&address, class) {
            return reply;
        }
        Reply::new(252, EnhancedCode::new(2, 0, 0), format!("<{address}>"))
    }
}
