//! Reading main.cf and master.cf as Postfix does (postconf(5), master(5)):
//! a line that starts with white space continues the previous one, lines
//! whose first non-blank character is `#` are comments, and blank lines
//! are ignored. Each logical line keeps the number of its first physical
//! line, for the import report.

/// One `name = value` of main.cf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    /// As written, continuation lines joined with `\n` (a restriction
    /// list keeps its layout).
    pub value: String,
    pub line: usize,
}

/// One master.cf entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterEntry {
    /// The first field: a service name or `host:port`.
    pub service: String,
    /// `inet`, `unix`, `fifo`, `pass`, `unix-dgram`.
    pub kind: String,
    /// The command (`smtpd`, `pickup`, `pipe`, ...) without its options.
    pub command: String,
    /// `-o name=value` options, in order.
    pub options: Vec<(String, String)>,
    pub line: usize,
}

/// Logical lines of a Postfix file: (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if raw.starts_with([' ', '\t'])
            && let Some((_, last)) = out.last_mut()
        {
            last.push('\n');
            last.push_str(raw);
            continue;
        }
        out.push((i + 1, raw.to_owned()));
    }
    out
}

/// main.cf's parameters; lines without `=` are returned as errors with
/// their line number.
pub fn main_cf(text: &str) -> (Vec<Parameter>, Vec<(usize, String)>) {
    let mut params = Vec::new();
    let mut bad = Vec::new();
    for (line, text) in logical_lines(text) {
        match text.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() && !name.trim().contains(' ') => {
                params.push(Parameter {
                    name: name.trim().to_owned(),
                    value: value.trim().to_owned(),
                    line,
                });
            }
            _ => bad.push((
                line,
                format!("not a `name = value` line: {:?}", first_line(&text)),
            )),
        }
    }
    (params, bad)
}

/// master.cf's entries; malformed ones are returned as errors.
pub fn master_cf(text: &str) -> (Vec<MasterEntry>, Vec<(usize, String)>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (line, text) in logical_lines(text) {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() < 8 {
            bad.push((
                line,
                format!(
                    "a master.cf entry has 8 fields and a command: {:?}",
                    first_line(&text)
                ),
            ));
            continue;
        }
        let mut options = Vec::new();
        let mut rest = fields[8..].iter();
        while let Some(word) = rest.next() {
            let pair = if *word == "-o" {
                rest.next().copied()
            } else {
                word.strip_prefix("-o")
            };
            if let Some((k, v)) = pair.and_then(|p| p.split_once('=')) {
                options.push((k.to_owned(), v.to_owned()));
            }
        }
        entries.push(MasterEntry {
            service: fields[0].to_owned(),
            kind: fields[1].to_owned(),
            command: fields[7].to_owned(),
            options,
            line,
        });
    }
    (entries, bad)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_and_comment_lines_join_as_postfix_reads_them() {
        let (params, bad) = main_cf(
            "# a comment\nmyhostname = mx.example.com\n\nlist =\n    a,\n#   b,\n    c\n  junk without equals\nbroken line\n",
        );
        assert_eq!(params.len(), 2);
        assert_eq!(params[0].name, "myhostname");
        assert_eq!(params[0].value, "mx.example.com");
        assert_eq!(params[1].line, 4);
        assert_eq!(params[1].value, "a,\n    c\n  junk without equals");
        assert_eq!(
            bad,
            vec![(9, "not a `name = value` line: \"broken line\"".to_owned())]
        );
    }

    #[test]
    fn master_entries_keep_their_options() {
        let (entries, bad) = master_cf(
            "smtp      inet  n  -  y  -  -  smtpd\nsubmission inet n - y - - smtpd\n  -o syslog_name=postfix/submission\n  -o smtpd_tls_security_level=encrypt\nbad line\n",
        );
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].service, "submission");
        assert_eq!(entries[1].command, "smtpd");
        assert_eq!(
            entries[1].options[1],
            ("smtpd_tls_security_level".into(), "encrypt".into())
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 5);
    }
}
