//! The parts of dovecot.conf that a Postern config carries: which
//! protocols are served (and whether with TLS ports), where the mail is,
//! and the passwd-file the users come from. Sections nest in braces
//! (`passdb { driver = passwd-file ... }`); each setting is kept with
//! its section path (`passdb/args`) and line.

/// One `key = value` of dovecot.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Section names and the key, joined with `/`: `protocols`,
    /// `passdb/driver`, `service auth/unix_listener .../mode`.
    pub path: String,
    pub value: String,
    pub line: usize,
}

/// Every setting of `text`, and the `!include` lines (not followed: the
/// report names them).
pub fn settings(text: &str) -> (Vec<Setting>, Vec<(usize, String)>) {
    let mut out = Vec::new();
    let mut includes = Vec::new();
    let mut sections: Vec<String> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('!') {
            includes.push((i + 1, rest.to_owned()));
        } else if line == "}" {
            sections.pop();
        } else if let Some(head) = line.strip_suffix('{') {
            sections.push(head.trim().to_owned());
        } else if let Some((key, value)) = line.split_once('=') {
            let mut path = sections.join("/");
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(key.trim());
            out.push(Setting {
                path,
                value: value.trim().to_owned(),
                line: i + 1,
            });
        }
    }
    (out, includes)
}

/// The path of a `passwd-file` passdb's file: the last word of its
/// `args` (`scheme=SHA512-CRYPT username_format=%u /etc/dovecot/users`),
/// and the default scheme it names, if any.
pub fn passwd_file(settings: &[Setting]) -> Option<(String, Option<String>, usize)> {
    let driver = settings.iter().find(|s| s.path == "passdb/driver")?;
    if driver.value != "passwd-file" {
        return None;
    }
    let args = settings.iter().find(|s| s.path == "passdb/args")?;
    let path = args.value.split_whitespace().last()?.to_owned();
    let scheme = args
        .value
        .split_whitespace()
        .find_map(|w| w.strip_prefix("scheme="))
        .map(str::to_owned);
    Some((path, scheme, args.line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sections_and_the_passwd_file() {
        let (s, includes) = settings(
            "protocols = imap pop3\n!include conf.d/*.conf\npassdb {\n  driver = passwd-file\n  args = scheme=SHA512-CRYPT /etc/dovecot/users # users\n}\nservice auth {\n  unix_listener x {\n    mode = 0660\n  }\n}\n",
        );
        assert_eq!(s[0].path, "protocols");
        assert_eq!(s[0].value, "imap pop3");
        assert_eq!(includes, vec![(2, "include conf.d/*.conf".to_owned())]);
        assert!(
            s.iter()
                .any(|x| x.path == "service auth/unix_listener x/mode")
        );
        assert_eq!(
            passwd_file(&s),
            Some(("/etc/dovecot/users".into(), Some("SHA512-CRYPT".into()), 5))
        );
    }
}
