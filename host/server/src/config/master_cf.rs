//! The services as `postconf -M` and `postconf -P` show master.cf:
//! `postern config -M` prints one line per `[[service]]` with its
//! per-service overrides as `-o` options, and `postern config -P` prints
//! each override as `service/type/parameter = value`.
//!
//! A service is named as Postfix names a master.cf entry: by its first
//! field, here the service name (`smtp`, `submission`, ...), or, where
//! several services share that name, by its listen address
//! (`127.0.0.1:2526`), which is what that first field holds in Postfix for
//! a listener bound to an address. A service listens on TCP, type
//! `inet`, or (lmtp) on a UNIX socket, type `unix`. Restriction lists a
//! service sets for itself are shown under their Postfix names
//! (`smtpd_recipient_restrictions`).
//! Values are `$name`-expanded, as `postern config` shows parameters.

use super::{Config, Service, sections};

/// master.cf's service type for a TCP listener.
const INET: &str = "inet";

/// A service's master.cf type: `unix` for an lmtp service on a UNIX
/// socket (`listen = "unix:/path"`), `inet` for the rest.
fn kind(service: &Service) -> &'static str {
    if service.unix.is_some() { "unix" } else { INET }
}

/// The Postfix parameter that holds each restriction list.
fn list_parameter(stage: postern_mail::Stage) -> String {
    format!("smtpd_{}_restrictions", stage.as_str())
}

impl Config {
    /// The name `-M` and `-P` give service `i`: its service name, or its
    /// listen address when another service has the same name.
    fn service_key(&self, i: usize) -> String {
        let service = &self.services[i];
        let shared = self
            .services
            .iter()
            .filter(|s| s.name == service.name)
            .count()
            > 1;
        match service.listen.first() {
            Some(addr) if shared => addr.to_string(),
            _ => service.name.clone(),
        }
    }

    /// What service `service` sets for itself, in file order of kinds:
    /// parameters, then restriction lists that differ from the file's.
    fn service_overrides(&self, service: &Service) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = service
            .override_values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        if let Some(lists) = &service.restrictions {
            for (stage, list) in lists {
                let own = sections::describe(list);
                let file = self
                    .restrictions
                    .get(stage)
                    .map(|l| sections::describe(l))
                    .unwrap_or_default();
                if own != file {
                    out.push((list_parameter(*stage), own));
                }
            }
        }
        out
    }

    /// `postern config -M [SERVICE[/TYPE]...]`: one master.cf-like line per
    /// service, `service type listen name [-o parameter=value ...]`, and
    /// the patterns that matched no service.
    pub fn master_lines(&self, patterns: &[String]) -> (Vec<String>, Vec<String>) {
        let mut lines = Vec::new();
        let mut matched = vec![false; patterns.len()];
        for (i, service) in self.services.iter().enumerate() {
            let key = self.service_key(i);
            if !select(&key, service, None, patterns, &mut matched) {
                continue;
            }
            let mut listen: Vec<String> = service.listen.iter().map(ToString::to_string).collect();
            listen.extend(service.unix.iter().map(|u| u.path.display().to_string()));
            let kind = kind(service);
            let mut line = format!(
                "{key:<10} {kind:<5} {:<15} {}",
                listen.join(","),
                service.name
            );
            for (name, value) in self.service_overrides(service) {
                line.push_str(" -o ");
                line.push_str(&option(&name, &value));
            }
            lines.push(line);
        }
        (lines, unmatched(patterns, &matched))
    }

    /// `postern config -P [SERVICE[/TYPE[/PARAMETER]]...]`: every
    /// per-service override as `service/type/parameter = value`, and the
    /// patterns that matched nothing.
    pub fn service_parameters(&self, patterns: &[String]) -> (Vec<String>, Vec<String>) {
        let mut lines = Vec::new();
        let mut matched = vec![false; patterns.len()];
        for (i, service) in self.services.iter().enumerate() {
            let key = self.service_key(i);
            // `SERVICE[/TYPE]` names the service even when it sets nothing.
            select(&key, service, None, patterns, &mut matched);
            for (name, value) in self.service_overrides(service) {
                if select(&key, service, Some(&name), patterns, &mut matched) {
                    lines.push(format!("{key}/{}/{name} = {value}", kind(service)));
                }
            }
        }
        (lines, unmatched(patterns, &matched))
    }
}

/// Whether a service (and parameter) is selected by `patterns` (all when
/// there are none), marking the patterns that select it. A pattern's
/// first part matches the service's key or its name.
fn select(
    key: &str,
    service: &Service,
    parameter: Option<&str>,
    patterns: &[String],
    matched: &mut [bool],
) -> bool {
    if patterns.is_empty() {
        return true;
    }
    let mut any = false;
    for (pattern, hit) in patterns.iter().zip(matched.iter_mut()) {
        let mut parts = pattern.splitn(3, '/');
        let who = parts.next().unwrap_or_default();
        let kind = parts.next();
        let param = parts.next();
        let ok = (who == key || who == service.name)
            && kind.is_none_or(|t| t == self::kind(service))
            && param.is_none_or(|p| Some(p) == parameter);
        if ok {
            *hit = true;
            any = true;
        }
    }
    any
}

fn unmatched(patterns: &[String], matched: &[bool]) -> Vec<String> {
    patterns
        .iter()
        .zip(matched)
        .filter(|(_, hit)| !**hit)
        .map(|(p, _)| p.clone())
        .collect()
}

/// One `-o` option as Postfix writes it: `name=value`, or `{ name = value
/// }` when the value has white space or is empty (master.cf syntax since
/// Postfix 3.0).
fn option(name: &str, value: &str) -> String {
    if value.is_empty() || value.contains(char::is_whitespace) {
        format!("{{ {name} = {value} }}")
    } else {
        format!("{name}={value}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{Config, Machine, Source};
    use std::path::PathBuf;

    fn parse(text: &str) -> Config {
        let machine = Machine {
            hostname: "mx.example.com".into(),
            data_directory: PathBuf::from("/var/lib/postern"),
        };
        Config::parse(Source::named("test.toml", text), machine, false).unwrap()
    }

    const TEXT: &str = "message_size_limit = 9000\n\
        [[service]]\nname = \"smtp\"\nlisten = \"127.0.0.1:2525\"\n\
        [[service]]\nname = \"smtp\"\nlisten = \"127.0.0.1:2526\"\n\
        smtpd_tls_security_level = \"encrypt\"\n\
        [[service]]\nname = \"submission\"\nlisten = \"127.0.0.1:2587\"\n\
        message_size_limit = 5000\n\
        smtpd_banner = \"$myhostname ready\"\n\
        smtpd_sasl_auth_enable = true\n\
        [service.restrictions]\n\
        recipient = [\"permit_sasl_authenticated\", \"reject\"]\n\
        [[service]]\nname = \"imap\"\nlisten = \"127.0.0.1:2143\"\n";

    #[test]
    fn every_service_as_a_master_cf_line() {
        let c = parse(TEXT);
        let (lines, missing) = c.master_lines(&[]);
        assert!(missing.is_empty());
        assert_eq!(
            lines,
            [
                "127.0.0.1:2525 inet  127.0.0.1:2525  smtp",
                "127.0.0.1:2526 inet  127.0.0.1:2526  smtp -o smtpd_tls_security_level=encrypt",
                "submission inet  127.0.0.1:2587  submission -o message_size_limit=5000 \
                 -o { smtpd_banner = mx.example.com ready } -o smtpd_sasl_auth_enable=yes \
                 -o { smtpd_recipient_restrictions = permit_sasl_authenticated, reject }",
                "imap       inet  127.0.0.1:2143  imap",
            ]
        );
    }

    #[test]
    fn overrides_as_service_type_parameter() {
        let c = parse(TEXT);
        let (lines, _) = c.service_parameters(&[]);
        assert_eq!(
            lines,
            [
                "127.0.0.1:2526/inet/smtpd_tls_security_level = encrypt",
                "submission/inet/message_size_limit = 5000",
                "submission/inet/smtpd_banner = mx.example.com ready",
                "submission/inet/smtpd_sasl_auth_enable = yes",
                "submission/inet/smtpd_recipient_restrictions = permit_sasl_authenticated, reject",
            ]
        );
    }

    #[test]
    fn patterns_select_and_report_misses() {
        let c = parse(TEXT);
        let (lines, missing) = c.service_parameters(&[
            "submission/inet/message_size_limit".into(),
            "smtp/inet".into(),
            "pop3".into(),
            "submission/unix".into(),
            "imap".into(),
            "imap/inet/message_size_limit".into(),
        ]);
        assert_eq!(
            lines,
            [
                "127.0.0.1:2526/inet/smtpd_tls_security_level = encrypt",
                "submission/inet/message_size_limit = 5000",
            ]
        );
        assert_eq!(
            missing,
            ["pop3", "submission/unix", "imap/inet/message_size_limit"]
        );
        let (lines, missing) = c.master_lines(&["imap/inet".into(), "127.0.0.1:2525".into()]);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("127.0.0.1:2525 inet"));
        assert!(lines[1].starts_with("imap "));
        assert!(missing.is_empty());
    }

    #[test]
    fn lmtp_on_a_unix_socket_is_type_unix() {
        let c = parse(
            "[[service]]\nname = \"lmtp\"\nlisten = \"unix:/run/postern/lmtp\"\n\
             smtpd_timeout = \"60s\"\n",
        );
        let (lines, _) = c.master_lines(&["lmtp/unix".into()]);
        assert_eq!(
            lines,
            ["lmtp       unix  /run/postern/lmtp lmtp -o smtpd_timeout=60s"]
        );
        let (lines, _) = c.service_parameters(&[]);
        assert_eq!(lines, ["lmtp/unix/smtpd_timeout = 60s"]);
    }
}
