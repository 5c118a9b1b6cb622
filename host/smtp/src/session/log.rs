//! Maillog shapes (DESIGN §6): the per-command counters of the
//! `disconnect from ...` line and the `; from=<..> to=<..> proto=..
//! helo=<..>` tail of reject lines, as Postfix's smtpd writes them so that
//! pflogsumm and friends keep working.

use std::fmt::Write as _;

use crate::codec::Verb;

/// The `tracing` target of every smtpd log line.
pub(crate) const TARGET: &str = "postern/smtpd";

/// Commands seen and commands that succeeded, per verb, for the
/// `disconnect from host[ip] ehlo=1 mail=1 rcpt=0/1 ... commands=4/5` line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    /// `(succeeded, total)` per entry of [`Verb::ALL`], then unknown verbs.
    counts: [(u32, u32); Verb::ALL.len() + 1],
}

impl Counters {
    /// Counts one command; `None` is a verb we do not know.
    pub(crate) fn record(&mut self, verb: Option<Verb>, succeeded: bool) {
        let i = verb
            .and_then(|v| Verb::ALL.iter().position(|&w| w == v))
            .unwrap_or(Verb::ALL.len());
        let (ok, total) = &mut self.counts[i];
        *total = total.saturating_add(1);
        if succeeded {
            *ok = ok.saturating_add(1);
        }
    }

    /// The counters as Postfix prints them: `name=n` when all n succeeded,
    /// `name=ok/n` otherwise, verbs never used left out, then `commands`.
    pub(crate) fn summary(&self) -> String {
        let mut out = String::new();
        let (mut all_ok, mut all) = (0u32, 0u32);
        for (i, &(ok, total)) in self.counts.iter().enumerate() {
            if total == 0 {
                continue;
            }
            let name = Verb::ALL
                .get(i)
                .map_or("unknown".to_owned(), |v| v.keyword().to_ascii_lowercase());
            push_count(&mut out, &name, ok, total);
            out.push(' ');
            all_ok = all_ok.saturating_add(ok);
            all = all.saturating_add(total);
        }
        push_count(&mut out, "commands", all_ok, all);
        out
    }
}

fn push_count(out: &mut String, name: &str, ok: u32, total: u32) {
    // Writing to a String cannot fail.
    let _ = if ok == total {
        write!(out, "{name}={total}")
    } else {
        write!(out, "{name}={ok}/{total}")
    };
}

/// The tail of a reject, hold, discard or warn line: what is known of the
/// transaction, each part left out while unknown (Postfix `log_whatsup`).
pub(crate) fn whatsup(
    sender: Option<&str>,
    recipient: Option<&str>,
    proto: &str,
    helo: Option<&str>,
) -> String {
    let mut out = String::new();
    let mut sep = "";
    // Writing to a String cannot fail.
    if let Some(s) = sender {
        let _ = write!(out, "from=<{s}>");
        sep = " ";
    }
    if let Some(r) = recipient {
        let _ = write!(out, "{sep}to=<{r}>");
        sep = " ";
    }
    let _ = write!(out, "{sep}proto={proto}");
    if let Some(h) = helo {
        let _ = write!(out, " helo=<{h}>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_successful() {
        let mut c = Counters::default();
        for v in [Verb::Ehlo, Verb::Mail, Verb::Rcpt, Verb::Data, Verb::Quit] {
            c.record(Some(v), true);
        }
        assert_eq!(c.summary(), "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5");
    }

    #[test]
    fn failures_show_as_fractions() {
        let mut c = Counters::default();
        c.record(Some(Verb::Ehlo), true);
        c.record(Some(Verb::Rcpt), false);
        c.record(Some(Verb::Rcpt), true);
        c.record(None, false);
        c.record(Some(Verb::Quit), true);
        assert_eq!(
            c.summary(),
            "ehlo=1 rcpt=1/2 quit=1 unknown=0/1 commands=3/5"
        );
    }

    #[test]
    fn nothing_at_all() {
        assert_eq!(Counters::default().summary(), "commands=0");
    }

    #[test]
    fn whatsup_leaves_out_the_unknown() {
        assert_eq!(
            whatsup(Some("s@x.org"), Some("u@example.com"), "ESMTP", Some("h")),
            "from=<s@x.org> to=<u@example.com> proto=ESMTP helo=<h>"
        );
        assert_eq!(whatsup(Some(""), None, "SMTP", None), "from=<> proto=SMTP");
        assert_eq!(
            whatsup(None, None, "SMTP", Some("h")),
            "proto=SMTP helo=<h>"
        );
    }
}
