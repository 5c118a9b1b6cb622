//! The listeners: master.cf's `smtpd` entries and Dovecot's protocols,
//! as `[[service]]` tables, and Dovecot's passwd-file as `[auth]`.

use std::fmt::Write as _;
use std::path::Path;

use super::{Note, cf, dovecot, note, service_key, toml_string};

/// master.cf's internal services: Postern does their work in-process.
const BUILT_IN: &[&str] = &[
    "pickup",
    "cleanup",
    "qmgr",
    "oqmgr",
    "tlsmgr",
    "rewrite",
    "bounce",
    "defer",
    "trace",
    "verify",
    "flush",
    "proxymap",
    "proxywrite",
    "smtp",
    "relay",
    "showq",
    "error",
    "retry",
    "discard",
    "local",
    "virtual",
    "lmtp",
    "anvil",
    "scache",
    "postlog",
    "postscreen",
    "smtpd",
    "dnsblog",
    "tlsproxy",
];

/// `[[service]]` tables for master.cf's `inet ... smtpd` entries.
pub(super) fn from_master(text: &str, file: &str, notes: &mut Vec<Note>) -> String {
    let (entries, bad) = cf::master_cf(text);
    for (line, why) in bad {
        notes.push(note(file, line, "master.cf", why));
    }
    let mut out = String::new();
    for e in entries {
        if e.kind != "inet" || e.command != "smtpd" {
            if !(BUILT_IN.contains(&e.service.as_str()) || BUILT_IN.contains(&e.command.as_str())) {
                notes.push(note(file, e.line, &e.service, format!("not carried over: a {} service running {} has no Postern counterpart (content filters and pipe transports are plugins or transport_maps here)", e.kind, e.command)));
            }
            continue;
        }
        let Some((name, listen)) = listener(&e.service) else {
            notes.push(note(
                file,
                e.line,
                &e.service,
                "not carried over: not a service name or host:port Postern knows".to_owned(),
            ));
            continue;
        };
        let _ = write!(
            out,
            "[[service]]\nname = \"{name}\"\nlisten = {}\n",
            toml_string(&listen)
        );
        for (key, value) in &e.options {
            match key.as_str() {
                // The service name says it: smtps is implicit TLS.
                "smtpd_tls_wrappermode" if name == "smtps" => {}
                "syslog_name" => notes.push(note(
                    file,
                    e.line,
                    &format!("{}/-o {key}", e.service),
                    "not carried over: Postern logs every service as postern/smtpd".to_owned(),
                )),
                k if service_key(k) => {
                    let _ = writeln!(out, "{k} = {}", toml_string(&value.replace(',', ", ")));
                }
                k => notes.push(note(
                    file,
                    e.line,
                    &format!("{}/-o {k}", e.service),
                    "not carried over: not a per-service parameter in Postern".to_owned(),
                )),
            }
        }
        out.push('\n');
    }
    out
}

/// A master.cf service field as a Postern service name and `listen`: a
/// bare port listens on inet_interfaces.
fn listener(field: &str) -> Option<(&'static str, String)> {
    let by_port = |port: &str| match port {
        "25" | "smtp" => "smtp",
        "587" | "submission" => "submission",
        "465" | "smtps" | "submissions" => "smtps",
        _ => "smtp",
    };
    match field.rsplit_once(':') {
        None => {
            let name = by_port(field);
            let port = match field {
                "smtp" => "25",
                "submission" => "587",
                "smtps" | "submissions" => "465",
                p if p.parse::<u16>().is_ok() => p,
                _ => return None,
            };
            Some((name, port.to_owned()))
        }
        Some((host, port)) => {
            let port_number = match port {
                "smtp" => "25",
                "submission" => "587",
                "smtps" | "submissions" => "465",
                p => p,
            };
            port_number.parse::<u16>().ok()?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let listen = if host.contains(':') {
                format!("[{host}]:{port_number}")
            } else {
                format!("{host}:{port_number}")
            };
            Some((by_port(port_number), listen))
        }
    }
}

/// Dovecot's mailbox location (top-level lines), IMAP/POP3 listeners
/// (`[[service]]` tables) and passwd-file (`[auth]`).
pub(super) fn from_dovecot(
    settings: &[dovecot::Setting],
    dir: &Path,
    file: &str,
    main_set: &[String],
    notes: &mut Vec<Note>,
) -> (String, String, Option<String>) {
    let mut top = String::new();
    let mut services = String::new();
    let value = |path: &str| settings.iter().find(|s| s.path == path);
    // Dovecot's defaults: imap and pop3 (when installed), TLS on.
    let protocols = value("protocols").map_or("imap pop3".to_owned(), |s| s.value.clone());
    let tls = value("ssl").is_none_or(|s| s.value != "no");
    for protocol in protocols.split_whitespace() {
        match protocol {
            "imap" => {
                services.push_str("[[service]]\nname = \"imap\"\nlisten = \"143\"\n\n");
                if tls {
                    services.push_str("[[service]]\nname = \"imaps\"\nlisten = \"993\"\n\n");
                }
            }
            "pop3" => {
                services.push_str("[[service]]\nname = \"pop3\"\nlisten = \"110\"\n\n");
                if tls {
                    services.push_str("[[service]]\nname = \"pop3s\"\nlisten = \"995\"\n\n");
                }
            }
            other => {
                let line = value("protocols").map_or(0, |s| s.line);
                notes.push(note(file, line, &format!("protocols/{other}"), "not carried over: Postern delivers into the mailboxes itself (add an lmtp [[service]] only for another MTA)".to_owned()));
            }
        }
    }
    if let Some(location) = value("mail_location") {
        match location.value.strip_prefix("maildir:~/") {
            Some(rel) if !main_set.iter().any(|n| n == "home_mailbox") => {
                let _ = writeln!(top, "home_mailbox = {}", toml_string(&format!("{}/", rel.trim_end_matches('/'))));
            }
            Some(_) => {}
            None => notes.push(note(file, location.line, "mail_location", format!("not carried over: {} (Postern serves the mailboxes it delivers to: home_mailbox or virtual_mailbox_base)", location.value))),
        }
    }
    if let Some(listen) = value("listen") {
        notes.push(note(
            file,
            listen.line,
            "listen",
            "IMAP and POP3 listen on main.cf's inet_interfaces".to_owned(),
        ));
    }
    let auth = dovecot::passwd_file(settings).map(|(path, scheme, line)| {
        let path = super::relocate(&path, dir, file, line, "passdb/args", notes);
        if let Some(scheme) = scheme {
            notes.push(note(file, line, "passdb/args scheme", format!("password hashes without a {{SCHEME}} prefix are {scheme} in Dovecot: give each one its prefix ({{{scheme}}}...) in {path}")));
        }
        format!("[auth]\nusers_file = {}\n\n", toml_string(&path))
    });
    if auth.is_none() && value("passdb/driver").is_some() {
        let d = value("passdb/driver").map_or(0, |s| s.line);
        notes.push(note(file, d, "passdb", "not carried over: only passwd-file users are imported (create the others with `postern user add`)".to_owned()));
    }
    (top, services, auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_by_name_port_and_address() {
        assert_eq!(listener("smtp"), Some(("smtp", "25".into())));
        assert_eq!(listener("submission"), Some(("submission", "587".into())));
        assert_eq!(
            listener("127.0.0.1:10025"),
            Some(("smtp", "127.0.0.1:10025".into()))
        );
        assert_eq!(listener("[::1]:465"), Some(("smtps", "[::1]:465".into())));
        assert_eq!(listener("postfix/submission"), None);
    }
}
