#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use super::*;

fn machine() -> Machine {
    Machine {
        hostname: "mx.example.com".into(),
        data_directory: PathBuf::from("/var/lib/postern"),
    }
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(Source::named("test.toml", text), machine(), false)
}

fn errors(text: &str) -> Vec<String> {
    parse(text)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn embedded_default_is_valid_and_safe() {
    let c = Config::parse(
        Source::named(EMBEDDED_NAME, EMBEDDED_DEFAULT),
        machine(),
        true,
    )
    .unwrap();
    let services: Vec<String> = c
        .services
        .iter()
        .map(|s| format!("{} {}", s.name, s.listen[0]))
        .collect();
    assert_eq!(
        services,
        [
            "smtp 127.0.0.1:2525",
            "submission 127.0.0.1:2587",
            "smtps 127.0.0.1:2465",
            "pop3 127.0.0.1:2110",
            "pop3s 127.0.0.1:2995",
            "imap 127.0.0.1:2143",
            "imaps 127.0.0.1:2993"
        ]
    );
    let names: Vec<&str> = c.main.mydestination.iter().map(|d| d.as_str()).collect();
    assert_eq!(
        names,
        ["mx.example.com", "localhost.example.com", "localhost"]
    );
    assert_eq!(c.main.mynetworks.len(), 2);
    assert_eq!(c.main.smtpd_banner, "mx.example.com ESMTP");
    assert_eq!(
        c.main.queue_directory,
        PathBuf::from("/var/lib/postern/queue")
    );
    assert_eq!(
        sections::describe(&c.restrictions[&Stage::Recipient]),
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
    );
}

#[test]
fn expansion_and_kinds() {
    let c = parse(
        "myhostname = \"mail.example.org\"\nmydomain = \"example.org\"\nmyorigin = \"$mydomain\"\n\
         message_size_limit = 1000\nsmtpd_timeout = \"5m\"\nsmtpd_helo_required = true\n\
         smtpd_banner = \"${myhostname} ready\"\n[[service]]\nname = \"smtp\"\nlisten = \"2525\"\n",
    )
    .unwrap();
    assert_eq!(c.main.myorigin.as_str(), "example.org");
    assert_eq!(c.main.message_size_limit, 1000);
    assert_eq!(c.main.smtpd_timeout.as_secs(), 300);
    assert!(c.main.smtpd_helo_required);
    assert_eq!(c.main.smtpd_banner, "mail.example.org ready");
    // A bare port listens on every inet_interfaces address (loopback-only).
    assert_eq!(c.services[0].listen.len(), 2);
    assert_eq!(c.value("myorigin").unwrap(), "example.org");
}

#[test]
fn errors_name_file_line_and_key() {
    assert_eq!(
        errors("\n\nmydestinatoin = \"x\"\n"),
        ["test.toml:3: mydestinatoin: unknown parameter"]
    );
    assert_eq!(
        errors("mynetworks = \"10.0.0.0/33\"\n"),
        ["test.toml:1: mynetworks: \"10.0.0.0/33\": prefix length must be 0..=32"]
    );
    assert_eq!(
        errors(
            "a=1\n"
                .replace("a=1", "smtpd_banner = \"$myhostnam ESMTP\"")
                .as_str()
        ),
        ["test.toml:1: smtpd_banner: unknown parameter $myhostnam in value"]
    );
    assert_eq!(
        errors("message_size_limit = \"big\"\n"),
        ["test.toml:1: message_size_limit: expected a non-negative integer, found \"big\""]
    );
    assert_eq!(
        errors("message_size_limit = 1.5\n"),
        [
            "test.toml:1: message_size_limit: expected a string, integer, boolean or list, found float"
        ]
    );
    let syntax = errors("mydomain = \n");
    assert!(
        syntax[0].starts_with("test.toml:1: TOML syntax"),
        "{syntax:?}"
    );
}

#[test]
fn all_errors_at_once() {
    let e = errors("bogus = 1\nmynetworks = \"x\"\n[auth]\nuser_file = \"/x\"\n");
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[2].starts_with("test.toml:4: auth.user_file: unknown key"));
}

#[test]
fn never_an_open_relay() {
    let e = errors("[smtpd.restrictions]\nrecipient = [\"permit\"]\n");
    assert!(e[0].contains("reject_unauth_destination"), "{e:?}");
    // Postfix names work and the relay list counts.
    let c = parse("smtpd_relay_restrictions = \"permit_mynetworks, reject_unauth_destination\"\n[smtpd.restrictions]\nrecipient = []\n").unwrap();
    assert_eq!(c.restrictions[&Stage::Relay].len(), 2);
    // Shadow mode does not protect.
    let e = errors(
        "[smtpd.restrictions]\nrecipient = [{ plugin = \"reject_unauth_destination\", mode = \"shadow\" }]\n",
    );
    assert!(e[0].contains("open relay"), "{e:?}");
}

#[test]
fn services_and_sections() {
    let e = errors("[[service]]\nname = \"mystery\"\nlisten = \"2024\"\n");
    assert!(
        e[0].starts_with("test.toml:2: service: unknown service \"mystery\""),
        "{e:?}"
    );
    let e = errors("[[service]]\nname = \"smtp\"\nlisten = \"nowhere\"\n");
    assert!(
        e[0].starts_with("test.toml:3: service: listen: \"nowhere\""),
        "{e:?}"
    );
    let c = parse("[auth]\nusers_file = \"$data_directory/users\"\n").unwrap();
    assert_eq!(
        c.users_file.unwrap(),
        PathBuf::from("/var/lib/postern/users")
    );
}

#[test]
fn non_default_and_defaults() {
    let c = parse("myhostname = \"mail.example.org\"\nmydomain = \"example.org\"\nmessage_size_limit = 10240000\n").unwrap();
    let n = c.non_default();
    assert_eq!(
        n,
        vec![
            ("mydomain".into(), "example.org".into()),
            ("myhostname".into(), "mail.example.org".into())
        ]
    );
    let d = c.defaults();
    assert!(d.contains(&("myhostname".into(), "mx.example.com".into())));
    assert!(d.contains(&(
        "mydestination".into(),
        "mx.example.com, localhost.example.com, localhost".into()
    )));
}

#[test]
fn service_overrides_apply_to_that_service_only() {
    let c = parse(
        "smtpd_banner = \"$myhostname ESMTP\"\n\
         [[service]]\nname = \"smtp\"\nlisten = \"2525\"\n\
         [[service]]\nname = \"submission\"\nlisten = \"2587\"\n\
         message_size_limit = 5000\n\
         myorigin_is_not_here = 1\n",
    );
    let e = c.unwrap_err().0;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, 9);
    assert_eq!(e[0].key, "service.myorigin_is_not_here");
    let c = parse(
        "message_size_limit = 9000\n\
         [[service]]\nname = \"smtp\"\nlisten = \"2525\"\n\
         [[service]]\nname = \"submission\"\nlisten = \"2587\"\n\
         message_size_limit = 5000\n\
         smtpd_banner = \"$myhostname ready, limit $message_size_limit\"\n\
         smtpd_tls_security_level = \"encrypt\"\n\
         smtpd_delay_reject = \"no\"\n\
         [service.restrictions]\n\
         recipient = [\"permit_sasl_authenticated\", \"reject\"]\n",
    )
    .unwrap();
    assert_eq!(c.main.message_size_limit, 9000);
    let (smtp, sub) = (&c.services[0], &c.services[1]);
    assert_eq!(smtp.main.message_size_limit, 9000);
    assert!(smtp.overrides.is_empty() && smtp.restrictions.is_none());
    assert_eq!(sub.main.message_size_limit, 5000);
    // `$name` in an override sees the service's own values.
    assert_eq!(sub.main.smtpd_banner, "mx.example.com ready, limit 5000");
    assert_eq!(sub.main.smtpd_tls_security_level, "encrypt");
    // master.cf's `-o smtpd_delay_reject=no`, for that service only.
    assert!(!sub.main.smtpd_delay_reject && smtp.main.smtpd_delay_reject);
    let lists = sub.restrictions.as_ref().unwrap();
    assert_eq!(lists[&Stage::Recipient].len(), 2);
    assert_eq!(lists[&Stage::Recipient][0].line, 13);
    // The lists it does not set are the file's.
    assert_eq!(lists[&Stage::Client], c.restrictions[&Stage::Client]);
    let e = errors(
        "[[service]]\nname = \"smtp\"\nlisten = \"2525\"\nsmtpd_tls_security_level = \"always\"\n",
    );
    assert_eq!(
        e,
        [
            "test.toml:4: service.smtpd_tls_security_level: expected one of none, may, encrypt, found \"always\""
        ]
    );
}

#[test]
fn lmtp_on_tcp_and_on_a_unix_socket() {
    let c = parse("[[service]]\nname = \"lmtp\"\nlisten = \"127.0.0.1:2024\"\n").unwrap();
    assert_eq!(c.services[0].listen[0].to_string(), "127.0.0.1:2024");
    assert_eq!(c.services[0].unix, None);
    let c =
        parse("[[service]]\nname = \"lmtp\"\nlisten = \"unix:$data_directory/lmtp\"\n").unwrap();
    assert!(c.services[0].listen.is_empty());
    let unix = c.services[0].unix.clone().unwrap();
    assert_eq!(unix.path, PathBuf::from("/var/lib/postern/lmtp"));
    assert_eq!(unix.mode, 0o660);
    let c =
        parse("[[service]]\nname = \"lmtp\"\nlisten = \"unix:/run/l\"\nmode = \"0600\"\n").unwrap();
    assert_eq!(c.services[0].unix.as_ref().unwrap().mode, 0o600);
    let c = parse(
        "[[service]]\nname = \"lmtp\"\nlisten = \"unix:/run/l\"\nuser = \"root\"\ngroup = \"4242\"\n",
    )
    .unwrap();
    let unix = c.services[0].unix.clone().unwrap();
    assert_eq!((unix.uid, unix.gid), (Some(0), Some(4242)));
    for (text, want) in [
        (
            "name = \"smtp\"\nlisten = \"unix:/run/s\"\n",
            "test.toml:3: service.listen: service \"smtp\" listens on TCP only",
        ),
        (
            "name = \"lmtp\"\nlisten = \"unix:run/l\"\n",
            "test.toml:3: service.listen: \"run/l\" is not an absolute path",
        ),
        (
            "name = \"lmtp\"\nlisten = \"unix:/l\"\nmode = \"0999\"\n",
            "test.toml:4: service.mode: \"0999\" is not a permission mode",
        ),
        (
            "name = \"lmtp\"\nlisten = \"unix:/l\"\nmode = \"+660\"\n",
            "test.toml:4: service.mode: \"+660\"",
        ),
        (
            "name = \"lmtp\"\nlisten = \"2024\"\nmode = \"0660\"\n",
            "test.toml:4: service.mode: mode is for a UNIX socket",
        ),
        (
            "name = \"lmtp\"\nlisten = \"unix:/l\"\nuser = \"no-such-user-4711\"\n",
            "test.toml:4: service.user: \"no-such-user-4711\": no such user",
        ),
        (
            "name = \"lmtp\"\nlisten = \"unix:/l\"\ngroup = \"no-such-group-4711\"\n",
            "test.toml:4: service.group: \"no-such-group-4711\": no such group",
        ),
        (
            "name = \"lmtp\"\nlisten = \"2024\"\n[service.restrictions]\nrecipient = [\"reject\"]\n",
            "service.lmtp.restrictions: the lmtp service has no restriction lists",
        ),
    ] {
        let e = errors(&format!("[[service]]\n{text}"));
        assert!(
            e[0].starts_with(want) || e[0].contains(want),
            "{text}: {e:?}"
        );
    }
}

#[test]
fn mail_fsync_is_checked() {
    assert_eq!(
        errors("mail_fsync = \"sometimes\"\n"),
        ["test.toml:1: mail_fsync: expected one of optimized, always, never, found \"sometimes\""]
    );
    assert!(parse("mail_fsync = \"never\"\n").is_ok());
}

/// As Postfix's: `mydomain` defaults to `$myhostname` minus its first
/// label, the configured name's, not the machine's (an operator who sets
/// `myhostname` on a host named otherwise gets their own domain in
/// `$mydomain` and the default `mydestination`).
#[test]
fn mydomain_follows_the_configured_myhostname() {
    let c = parse("myhostname = \"mail.example.org\"\n").unwrap();
    assert_eq!(c.value("mydomain").as_deref(), Some("example.org"));
    assert_eq!(
        c.value("mydestination").as_deref(),
        Some("mail.example.org, localhost.example.org, localhost")
    );
    let c = parse("").unwrap();
    assert_eq!(c.value("mydomain").as_deref(), Some("example.com"));
    let c = parse("myhostname = \"mailhost\"\n").unwrap();
    assert_eq!(c.value("mydomain").as_deref(), Some("localdomain"));
}
