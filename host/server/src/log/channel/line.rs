//! One line from a session process, as the daemon takes it: parsed from
//! the child's formatted line, but with the kernel's pid, a program from
//! the session programs' list and only printable text; logged through the
//! daemon's own subscriber.

use super::PROGRAMS;

/// One line from a session process, checked, to log as the daemon logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    /// The program, one a session process logs as (else `mail-session`).
    pub program: &'static str,
    /// The sender's pid, as the kernel told it.
    pub pid: u32,
    /// `warning: `, `fatal: ` and `panic: ` lines keep their level
    /// (a panic's is `ERROR`).
    pub level: tracing::Level,
    /// A `panic: ` line ([`crate::log::panic`]), logged as one.
    pub panic: bool,
    /// The text after the tag and level, printable.
    pub text: String,
}

impl Relayed {
    /// Parses a line in the shape the child's formatter writes
    /// (`postern/pop3[123]: warning: text`); anything else (a panic's
    /// message) is a `mail-session` warning. `root`: the sender is the
    /// helper, which may also log as `privsep`.
    pub(super) fn parse(line: &[u8], pid: u32, root: bool) -> Relayed {
        let line = printable(line);
        let tagged = line.split_once(": ").and_then(|(tag, rest)| {
            let (name, _claimed) = tag.strip_suffix(']')?.split_once('[')?;
            let program = name.split_once('/').map_or(name, |(_, p)| p);
            let program = PROGRAMS
                .iter()
                .chain(root.then_some(&"privsep"))
                .find(|p| **p == program)
                .unwrap_or(&"mail-session");
            Some((*program, rest))
        });
        let Some((program, rest)) = tagged else {
            return Relayed {
                program: "mail-session",
                pid,
                level: tracing::Level::WARN,
                panic: false,
                text: line,
            };
        };
        let (level, panic, text) = if let Some(t) = rest.strip_prefix("warning: ") {
            (tracing::Level::WARN, false, t)
        } else if let Some(t) = rest.strip_prefix("fatal: ") {
            (tracing::Level::ERROR, false, t)
        } else if let Some(t) = rest.strip_prefix("panic: ") {
            (tracing::Level::ERROR, true, t)
        } else {
            (tracing::Level::INFO, false, rest)
        };
        Relayed {
            program,
            pid,
            level,
            panic,
            text: text.to_owned(),
        }
    }

    /// Logs the line through the daemon's subscriber, with the child's
    /// program and pid in its tag ([`super::Maillog`] reads the fields).
    pub(super) fn emit(&self) {
        let (program, pid, text) = (self.program, self.pid, &self.text);
        match self.level {
            tracing::Level::ERROR if self.panic => {
                tracing::error!(target: "postern/session", relayed_program = program, relayed_pid = pid, severity = "panic", "{text}");
            }
            tracing::Level::ERROR => {
                tracing::error!(target: "postern/session", relayed_program = program, relayed_pid = pid, "{text}");
            }
            tracing::Level::WARN => {
                tracing::warn!(target: "postern/session", relayed_program = program, relayed_pid = pid, "{text}");
            }
            _ => {
                tracing::info!(target: "postern/session", relayed_program = program, relayed_pid = pid, "{text}");
            }
        }
    }
}

/// `line` as text on one line: invalid UTF-8 replaced, control
/// characters (a forged line break among them) escaped.
pub(crate) fn printable(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_parsed_and_never_trusted() {
        let parse = |line: &str| Relayed::parse(line.as_bytes(), 77, false);
        assert_eq!(
            parse("postern/pop3[12]: Login: user=<a>, method=PLAIN"),
            Relayed {
                program: "pop3",
                pid: 77,
                level: tracing::Level::INFO,
                panic: false,
                text: "Login: user=<a>, method=PLAIN".into(),
            }
        );
        let w = parse("postern/imap[77]: warning: imap(a): gone");
        assert_eq!((w.program, w.level), ("imap", tracing::Level::WARN));
        assert_eq!(w.text, "imap(a): gone");
        assert_eq!(
            parse("postern/mailbox[1]: fatal: x").level,
            tracing::Level::ERROR
        );
        // Not a session program: shown as the session process; only the
        // helper (root) logs as privsep.
        let forged = parse("postern/smtpd[1]: 3F2A1B: client=x");
        assert_eq!(forged.program, "mail-session");
        assert_eq!(forged.pid, 77);
        assert_eq!(
            parse("postern/privsep[1]: warning: x").program,
            "mail-session"
        );
        let helper = Relayed::parse(b"postern/privsep[1]: warning: refused", 5, true);
        assert_eq!((helper.program, helper.pid), ("privsep", 5));
        // A panic line (log/panic.rs) stays a panic, of the helper or a
        // session process; only `panic: ` says so, not the text.
        let panic = Relayed::parse(
            b"postern/privsep[1]: panic: thread 'main' panicked",
            5,
            true,
        );
        assert_eq!(
            (panic.program, panic.level, panic.panic),
            ("privsep", tracing::Level::ERROR, true)
        );
        assert_eq!(panic.text, "thread 'main' panicked");
        let child = parse("postern/master[1]: panic: x");
        assert_eq!((child.program, child.panic), ("mail-session", true));
        assert!(!parse("postern/imap[1]: warning: panic: x").panic);
        // Not a line of the formatter at all (a panic).
        let raw = parse("thread 'main' panicked at x.rs:1:2:\u{1b}[31m");
        assert_eq!(
            (raw.program, raw.level),
            ("mail-session", tracing::Level::WARN)
        );
        assert_eq!(raw.text, "thread 'main' panicked at x.rs:1:2:\\u{1b}[31m");
    }

    /// A relayed line is formatted as the daemon's own, with the child's
    /// program and pid in the tag and the daemon's `syslog_name`.
    #[test]
    fn a_relayed_line_carries_the_childs_tag() {
        let (buf, subscriber) = crate::log::captured("mx");
        tracing::subscriber::with_default(subscriber, || {
            Relayed::parse(b"postern/pop3[1]: warning: pop3(a): x", 4242, false).emit();
            tracing::info!(target: "postern/smtpd", "own");
            Relayed::parse(b"postern/privsep[1]: panic: thread 'x' panicked", 7, true).emit();
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let me = std::process::id();
        assert_eq!(
            text,
            format!(
                "mx/pop3[4242]: warning: pop3(a): x\nmx/smtpd[{me}]: own\n\
                 mx/privsep[7]: panic: thread 'x' panicked\n"
            )
        );
    }
}
