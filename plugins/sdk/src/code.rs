//! [`Code`]: the one setting of the restrictions whose only argument is
//! their reply code (`reject_unknown_*`, `reject_non_fqdn_*`,
//! `reject_invalid_helo_hostname`, `reject_multi_recipient_bounce`): the
//! Postfix parameter `*_reject_code`, written `code = "NNN"` in the entry,
//! kept from `init` for every `check`. Such a plugin is then a `static`,
//! `init` and one call:
//!
//! ```ignore
//! static CODE: Code = Code::new(checks::NON_FQDN_REJECT_CODE);
//!
//! impl Guest for RejectNonFqdnSender {
//!     fn init(args: Vec<(String, String)>) -> Result<(), String> {
//!         CODE.init(args)
//!     }
//!
//!     fn check(req: Request) -> Verdict {
//!         checks::non_fqdn_address(&req, Party::Sender, CODE.get())
//!     }
//! }
//! ```

use std::sync::atomic::{AtomicU16, Ordering};

use crate::Args;

/// A reply code: Postfix's default until `init` reads the entry's `code`.
#[derive(Debug)]
pub struct Code {
    /// Postfix's default, for an entry without `code`.
    default: u16,
    /// What `init` read. An atomic rather than a lock: a `u16` needs no
    /// more, and an instance runs one call at a time anyway.
    code: AtomicU16,
}

impl Code {
    /// Postfix's `default`; `const`, for a `static`.
    pub const fn new(default: u16) -> Code {
        Code {
            default,
            code: AtomicU16::new(default),
        }
    }

    /// `init`: the arguments are none, or `code = "NNN"` (4xx or 5xx);
    /// anything else refuses the entry at load time, and leaves the code
    /// as it was.
    pub fn init(&self, args: Vec<(String, String)>) -> Result<(), String> {
        let mut args = Args::new(args);
        let code = args.code(self.default)?;
        args.done()?;
        self.code.store(code, Ordering::Relaxed);
        Ok(())
    }

    /// The code to reply with.
    pub fn get(&self) -> u16 {
        self.code.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::pairs;

    #[test]
    fn the_default_until_init_sets_a_4xx_or_5xx_code() {
        let code = Code::new(450);
        assert_eq!(code.get(), 450);
        assert_eq!(code.init(pairs(&[])), Ok(()));
        assert_eq!(code.get(), 450);
        assert_eq!(code.init(pairs(&[("code", "550")])), Ok(()));
        assert_eq!(code.get(), 550);
        let code = Code::new(450);
        assert!(code.init(pairs(&[("code", "250")])).is_err());
        assert_eq!(
            code.init(pairs(&[("1", "x")])),
            Err("unexpected argument \"x\"".to_owned())
        );
        assert_eq!(
            code.init(pairs(&[("cod", "550")])),
            Err("cod: unknown argument".to_owned())
        );
        assert_eq!(code.get(), 450);
    }
}
