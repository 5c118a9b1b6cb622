//! The typed main.cf parameters the server runs on, read once at load.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use postern_mail::Domain;

use super::error::{ConfigError, Source};
use super::params::{self, Kind};
use super::toml_value::Raw;
use super::{expand, value};

/// The parameters in force, typed. Field names are Postfix's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Main {
    /// The host name in the banner, HELO to other servers, Received headers.
    pub myhostname: Domain,
    /// The parent domain of the host.
    pub mydomain: Domain,
    /// The domain locally-posted mail appears to come from.
    pub myorigin: Domain,
    /// Domains delivered here in one local namespace.
    pub mydestination: Vec<Domain>,
    /// Clients trusted to relay (permit_mynetworks).
    pub mynetworks: Vec<IpNet>,
    /// Domains accepted for relaying elsewhere.
    pub relay_domains: Vec<Domain>,
    /// Domains with per-domain mailboxes (besides those in the users file).
    pub virtual_mailbox_domains: Vec<Domain>,
    /// Addresses for services that give only a port.
    pub inet_interfaces: Vec<IpAddr>,
    /// Largest message accepted, in bytes (0 = no limit).
    pub message_size_limit: u64,
    /// Text after `220 ` in the greeting.
    pub smtpd_banner: String,
    /// Where data lives by default.
    pub data_directory: PathBuf,
    /// The queue's directory.
    pub queue_directory: PathBuf,
    /// `Maildir/` (a trailing slash means Maildir) or an mbox file name.
    pub home_mailbox: String,
    /// The base of mailboxes of users without a home.
    pub virtual_mailbox_base: PathBuf,
    /// `+` in `user+ext@domain`, if set.
    pub recipient_delimiter: Option<char>,
    /// Idle time allowed between commands.
    pub smtpd_timeout: Duration,
    /// Recipients allowed per message.
    pub smtpd_recipient_limit: u64,
    /// Whether HELO/EHLO must come before MAIL.
    pub smtpd_helo_required: bool,
    /// Whether client/helo/sender restrictions wait until RCPT.
    pub smtpd_delay_reject: bool,
    /// `normalize` or `reject` bare CR/LF in DATA.
    pub smtpd_forbid_bare_newline: String,
    /// Errors before a client is disconnected.
    pub smtpd_hard_error_limit: u64,
    /// Longest line accepted.
    pub line_length_limit: u64,
    /// Errors before every reply is slowed down.
    pub smtpd_soft_error_limit: u64,
    /// The slow-down after `smtpd_soft_error_limit` errors.
    pub smtpd_error_sleep_time: Duration,
    /// Bytes one message header (with continuations) keeps; the excess is
    /// discarded.
    pub header_size_limit: u64,
    /// Connections open at once from one client (0: no limit).
    pub smtpd_client_connection_count_limit: u64,
    /// Connections per `anvil_rate_time_unit` from one client (0: none).
    pub smtpd_client_connection_rate_limit: u64,
    /// MAIL commands per `anvil_rate_time_unit` from one client (0: none).
    pub smtpd_client_message_rate_limit: u64,
    /// Clients the three limits above do not apply to.
    pub smtpd_client_event_limit_exceptions: Vec<IpNet>,
    /// The window of the per-client rates.
    pub anvil_rate_time_unit: Duration,
    /// How long a POP3/IMAP login lets its address relay.
    pub pop_before_smtp_timeout: Duration,
    /// `none` (no STARTTLS), `may` (offered) or `encrypt` (required
    /// before MAIL).
    pub smtpd_tls_security_level: String,
    /// Sessions served at once per service; more wait in the listen
    /// backlog (Postfix's per-service process limit).
    pub default_process_limit: u64,
    /// Whether VRFY answers 502.
    pub disable_vrfy_command: bool,
    /// First retry delay of a deferred message.
    pub minimal_backoff_time: Duration,
    /// Longest retry delay.
    pub maximal_backoff_time: Duration,
    /// How often the deferred queue is scanned.
    pub queue_run_delay: Duration,
    /// `default_destination_concurrency_limit`: deliveries at once to one
    /// destination (the transports' own limits are in `smtp`).
    pub default_destination_concurrency_limit: u64,
    /// `qmgr_message_active_limit`: messages the scheduler holds in memory.
    pub qmgr_message_active_limit: u64,
    /// `qmgr_message_recipient_limit`: their recipients.
    pub qmgr_message_recipient_limit: u64,
    /// How long a message may stay queued before it bounces.
    pub maximal_queue_lifetime: Duration,
    /// The same for a bounce (null sender).
    pub bounce_queue_lifetime: Duration,
    /// When a still-deferred message's sender is warned (0: never).
    pub delay_warning_time: Duration,
    /// The server certificate chain (PEM); `None`: a self-signed one for
    /// `myhostname` kept under `data_directory/tls`.
    pub smtpd_tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub smtpd_tls_key_file: Option<PathBuf>,
    /// Whether the `smtp` service offers AUTH (submission and smtps always
    /// do, as Postfix's master.cf sets it for them).
    pub smtpd_sasl_auth_enable: bool,
    /// Whether the Received header names the AUTH user.
    pub smtpd_sasl_authenticated_header: bool,
    /// Whether AUTH needs TLS first (loopback clients excepted).
    pub smtpd_tls_auth_only: bool,
    /// Delay after a failed login, doubling with each further one (the
    /// Dovecot name).
    pub auth_failure_delay: Duration,
    /// Failed logins from one address before it is disconnected.
    pub auth_failure_limit: u64,
    /// Where operator plugins live (`*.wasm`), if anywhere.
    pub plugin_directory: Option<PathBuf>,
    /// Where compiled plugins are kept across restarts (wasmtime's cache,
    /// keyed by the component's bytes and the engine settings, so one
    /// directory may be shared by several servers).
    pub plugin_cache_directory: PathBuf,
    /// The software name (not shown in the default banner).
    pub mail_name: String,
    /// The aliases files (`hash:/etc/aliases` or a bare path), in order.
    pub alias_maps: Vec<PathBuf>,
    /// Where `/file` alias targets are honoured.
    pub allow_mail_to_files: postern_delivery::settings::Allow,
    /// Where `|command` alias targets are honoured.
    pub allow_mail_to_commands: postern_delivery::settings::Allow,
    /// Uid and gid for files and commands of root-owned aliases files.
    pub default_privs: (u32, u32),
    /// How long an alias command may run.
    pub command_time_limit: Duration,
    /// The outbound SMTP client: relayhost, transport_maps, TLS, SASL,
    /// timeouts.
    pub smtp: super::smtp_client::SmtpClient,
    /// Where mbox files of users live when `home_mailbox` is empty.
    pub mail_spool_directory: PathBuf,
    /// The MDA that local users' mail is piped to, if any (unexpanded:
    /// its shell sees `$SENDER`, `$RECIPIENT`, ... in the environment).
    pub mailbox_command: Option<String>,
    /// Where `.forward` files are looked for (unexpanded: `$home`, ...).
    pub forward_path: Vec<String>,
    /// Free bytes the queue file system must keep: below this (or below
    /// 1.5 times the announced size) MAIL FROM gets 452 4.3.1.
    pub queue_minfree: u64,
    /// Store mail for plain local mailboxes before answering its DATA,
    /// with no queue file for it (off by default).
    pub immediate_local_delivery: bool,
    /// `local_recipient_maps` names `unix:passwd.byname`: system accounts
    /// are local recipients beside the users file and the aliases.
    pub system_accounts: bool,
    /// `content_filter`: the `transport:destination` every message received
    /// (by this service, or through `postern sendmail`) is delivered to
    /// first, such as `smtp:[127.0.0.1]:10025`; `None` when empty.
    pub content_filter: Option<String>,
}

/// Reads parameter values: expansion, then kind, collecting errors.
pub(super) struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    set: &'a BTreeMap<&'static str, Raw>,
    source: &'a Source,
    errors: &'a mut Vec<ConfigError>,
}

impl Reader<'_> {
    /// A value as written, not expanded: for [`params::DELIVERY_TIME`].
    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    pub(super) fn get<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let offset = self.set.get(name).map(|r| r.offset);
        let raw = (self.lookup)(name)?;
        let result = expand::expand(&raw, self.lookup)
            .map_err(|e| e.to_string())
            .and_then(|v| parse(&v));
        match result {
            Ok(v) => Some(v),
            Err(msg) => {
                let msg = if offset.is_none() {
                    format!("{msg} (in the default value {raw:?})")
                } else {
                    msg
                };
                self.errors.push(self.source.error(offset, name, msg));
                None
            }
        }
    }
}

fn text(v: &str) -> Result<String, String> {
    Ok(v.to_owned())
}

fn path(v: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(v.trim()))
}

fn choice(name: &str) -> impl Fn(&str) -> Result<String, String> + '_ {
    move |v: &str| {
        let Some(Kind::Choice(words)) = params::find(name).map(|p| p.kind) else {
            return Ok(v.to_owned());
        };
        let v = v.trim();
        if words.contains(&v) {
            Ok(v.to_owned())
        } else {
            Err(format!("expected one of {}, found {v:?}", words.join(", ")))
        }
    }
}

fn delimiter(v: &str) -> Result<Option<char>, String> {
    let mut chars = v.trim().chars();
    match (chars.next(), chars.next()) {
        (None, _) => Ok(None),
        (Some(c), None) if !c.is_alphanumeric() && !c.is_whitespace() && c != '@' => Ok(Some(c)),
        _ => Err(format!(
            "expected one delimiter character such as + or -, found {v:?}"
        )),
    }
}

impl Main {
    /// Reads every parameter; `None` (with errors pushed) if any is bad.
    pub(super) fn read(
        lookup: &dyn Fn(&str) -> Option<String>,
        set: &BTreeMap<&'static str, Raw>,
        source: &Source,
        errors: &mut Vec<ConfigError>,
    ) -> Main {
        let mut r = Reader {
            lookup,
            set,
            source,
            errors,
        };
        // A bad domain was reported already and the config is refused;
        // "invalid" (RFC 2606) only fills the field until then.
        let mut domain = |name: &str| {
            r.get(name, value::domain)
                .or_else(|| Domain::parse("invalid").ok())
        };
        let (myhostname, mydomain, myorigin) =
            (domain("myhostname"), domain("mydomain"), domain("myorigin"));
        let (Some(myhostname), Some(mydomain), Some(myorigin)) = (myhostname, mydomain, myorigin)
        else {
            unreachable!("\"invalid\" always parses as a domain")
        };
        let mynetworks: Vec<IpNet> = r.get("mynetworks", value::networks).unwrap_or_default();
        // Read by the mailbox store (daemon.rs), not kept here: checked so
        // that `postern check` and start-up name a bad value and its line.
        let _ = r.get("mail_fsync", choice("mail_fsync"));
        // Read by log::init_configured before the log exists: checked here
        // so that a misspelt value is named with its line.
        let _ = r.get("log_output", choice("log_output"));
        let _ = r.get("syslog_facility", choice("syslog_facility"));
        Main {
            myhostname,
            mydomain,
            myorigin,
            mydestination: r.get("mydestination", value::domains).unwrap_or_default(),
            mynetworks: mynetworks.clone(),
            relay_domains: r.get("relay_domains", value::domains).unwrap_or_default(),
            virtual_mailbox_domains: r
                .get("virtual_mailbox_domains", value::domains)
                .unwrap_or_default(),
            inet_interfaces: r
                .get("inet_interfaces", value::interfaces)
                .unwrap_or_default(),
            message_size_limit: r.get("message_size_limit", size_limit).unwrap_or_default(),
            smtpd_banner: r.get("smtpd_banner", text).unwrap_or_default(),
            data_directory: r.get("data_directory", path).unwrap_or_default(),
            queue_directory: r.get("queue_directory", path).unwrap_or_default(),
            home_mailbox: r.get("home_mailbox", text).unwrap_or_default(),
            virtual_mailbox_base: r.get("virtual_mailbox_base", path).unwrap_or_default(),
            recipient_delimiter: r.get("recipient_delimiter", delimiter).flatten(),
            smtpd_timeout: r.get("smtpd_timeout", value::time).unwrap_or_default(),
            smtpd_recipient_limit: r
                .get("smtpd_recipient_limit", value::count)
                .unwrap_or_default(),
            smtpd_helo_required: r
                .get("smtpd_helo_required", value::boolean)
                .unwrap_or_default(),
            smtpd_delay_reject: r.get("smtpd_delay_reject", value::boolean).unwrap_or(true),
            smtpd_forbid_bare_newline: r
                .get(
                    "smtpd_forbid_bare_newline",
                    choice("smtpd_forbid_bare_newline"),
                )
                .unwrap_or_default(),
            smtpd_hard_error_limit: r
                .get("smtpd_hard_error_limit", value::count)
                .unwrap_or_default(),
            line_length_limit: r.get("line_length_limit", value::count).unwrap_or_default(),
            smtpd_soft_error_limit: r.get("smtpd_soft_error_limit", value::count).unwrap_or(10),
            smtpd_error_sleep_time: r
                .get("smtpd_error_sleep_time", value::time)
                .unwrap_or_default(),
            header_size_limit: r.get("header_size_limit", value::count).unwrap_or(102_400),
            smtpd_client_connection_count_limit: r
                .get("smtpd_client_connection_count_limit", value::count)
                .unwrap_or_default(),
            smtpd_client_connection_rate_limit: r
                .get("smtpd_client_connection_rate_limit", value::count)
                .unwrap_or_default(),
            smtpd_client_message_rate_limit: r
                .get("smtpd_client_message_rate_limit", value::count)
                .unwrap_or_default(),
            // Its default is `$mynetworks`: read only when set, so that a
            // mistake in mynetworks is reported once.
            smtpd_client_event_limit_exceptions: if set
                .contains_key("smtpd_client_event_limit_exceptions")
            {
                r.get("smtpd_client_event_limit_exceptions", value::networks)
                    .unwrap_or_default()
            } else {
                mynetworks
            },
            anvil_rate_time_unit: r
                .get("anvil_rate_time_unit", value::time)
                .unwrap_or_default(),
            pop_before_smtp_timeout: r
                .get("pop_before_smtp_timeout", value::time)
                .unwrap_or_default(),
            smtpd_tls_security_level: r
                .get(
                    "smtpd_tls_security_level",
                    choice("smtpd_tls_security_level"),
                )
                .unwrap_or_default(),
            default_process_limit: r.get("default_process_limit", value::count).unwrap_or(100),
            disable_vrfy_command: r
                .get("disable_vrfy_command", value::boolean)
                .unwrap_or(true),
            minimal_backoff_time: r
                .get("minimal_backoff_time", value::time)
                .unwrap_or_default(),
            maximal_backoff_time: r
                .get("maximal_backoff_time", value::time)
                .unwrap_or_default(),
            queue_run_delay: r.get("queue_run_delay", value::time).unwrap_or_default(),
            default_destination_concurrency_limit: r
                .get("default_destination_concurrency_limit", value::count)
                .unwrap_or(20),
            qmgr_message_active_limit: r
                .get("qmgr_message_active_limit", value::count)
                .unwrap_or(20_000),
            qmgr_message_recipient_limit: r
                .get("qmgr_message_recipient_limit", value::count)
                .unwrap_or(20_000),
            maximal_queue_lifetime: r
                .get("maximal_queue_lifetime", value::time)
                .unwrap_or_default(),
            bounce_queue_lifetime: r
                .get("bounce_queue_lifetime", value::time)
                .unwrap_or_default(),
            delay_warning_time: r.get("delay_warning_time", value::time).unwrap_or_default(),
            smtpd_tls_cert_file: r
                .get("smtpd_tls_cert_file", path)
                .filter(|p| !p.as_os_str().is_empty()),
            smtpd_tls_key_file: r
                .get("smtpd_tls_key_file", path)
                .filter(|p| !p.as_os_str().is_empty()),
            smtpd_sasl_auth_enable: r
                .get("smtpd_sasl_auth_enable", value::boolean)
                .unwrap_or_default(),
            smtpd_sasl_authenticated_header: r
                .get("smtpd_sasl_authenticated_header", value::boolean)
                .unwrap_or_default(),
            smtpd_tls_auth_only: r.get("smtpd_tls_auth_only", value::boolean).unwrap_or(true),
            auth_failure_delay: r.get("auth_failure_delay", value::time).unwrap_or_default(),
            auth_failure_limit: r.get("auth_failure_limit", value::count).unwrap_or(5),
            plugin_directory: r
                .get("plugin_directory", path)
                .filter(|p| !p.as_os_str().is_empty()),
            plugin_cache_directory: r.get("plugin_cache_directory", path).unwrap_or_default(),
            mail_name: r.get("mail_name", text).unwrap_or_default(),
            alias_maps: r
                .get("alias_maps", |v| {
                    Ok(value::list(v)
                        .map(postern_delivery::aliases::map_path)
                        .collect())
                })
                .unwrap_or_default(),
            allow_mail_to_files: r
                .get(
                    "allow_mail_to_files",
                    postern_delivery::settings::Allow::parse,
                )
                .unwrap_or_default(),
            allow_mail_to_commands: r
                .get(
                    "allow_mail_to_commands",
                    postern_delivery::settings::Allow::parse,
                )
                .unwrap_or_default(),
            default_privs: r.get("default_privs", privs).unwrap_or((65_534, 65_534)),
            command_time_limit: r.get("command_time_limit", value::time).unwrap_or_default(),
            smtp: super::smtp_client::SmtpClient::read(&mut r),
            mail_spool_directory: r.get("mail_spool_directory", path).unwrap_or_default(),
            mailbox_command: r
                .raw("mailbox_command")
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty()),
            forward_path: r
                .raw("forward_path")
                .map(|v| value::list(&v).map(str::to_owned).collect())
                .unwrap_or_default(),
            queue_minfree: r.get("queue_minfree", value::count).unwrap_or_default(),
            immediate_local_delivery: r
                .get("immediate_local_delivery", value::boolean)
                .unwrap_or_default(),
            system_accounts: r
                .get("local_recipient_maps", local_recipient_maps)
                .unwrap_or_default(),
            content_filter: r.get("content_filter", content_filter).flatten(),
        }
    }
}

/// `local_recipient_maps`: whether it names `unix:passwd.byname`. The
/// users file and the aliases are local recipients whatever it says, so
/// an entry that names `alias_maps` (`$alias_maps`) adds nothing; any
/// other table type is refused rather than silently ignored.
fn local_recipient_maps(v: &str) -> Result<bool, String> {
    let mut unix = false;
    for entry in value::list(v) {
        match postern_tables::UnixTable::parse(entry) {
            Some(Ok(postern_tables::UnixTable::PasswdByName)) => unix = true,
            Some(Ok(other)) => return Err(format!("{other:?} is not supported here")),
            Some(Err(e)) => return Err(e.to_string()),
            None if postern_delivery::aliases::map_path(entry).is_absolute() => {}
            None => {
                return Err(format!(
                    "{entry:?}: expected unix:passwd.byname or $alias_maps \
                     (the users file always counts)"
                ));
            }
        }
    }
    Ok(unix)
}

/// `content_filter`: empty, or a `transport:destination` the delivery
/// agents can reach (smtp or lmtp with a destination, such as
/// `smtp:[127.0.0.1]:10025`).
fn content_filter(v: &str) -> Result<Option<String>, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if !v.contains(':') || v.contains(char::is_whitespace) {
        return Err(format!(
            "{v:?}: expected transport:destination, such as smtp:[127.0.0.1]:10025"
        ));
    }
    use postern_delivery::remote::Transport;
    match Transport::parse(v)? {
        Transport::Smtp(Some(_)) | Transport::Lmtp(_) => Ok(Some(v.to_owned())),
        Transport::Smtp(None) => Err(format!(
            "{v:?}: no destination (such as smtp:[127.0.0.1]:10025)"
        )),
        _ => Err(format!(
            "{v:?}: a content filter is an smtp: or lmtp: destination, such as smtp:[127.0.0.1]:10025"
        )),
    }
}

/// `default_privs`: a user name or uid that is not root's.
fn privs(v: &str) -> Result<(u32, u32), String> {
    match postern_delivery::settings::lookup_privs(v) {
        Some((0, _)) => Err(format!("{v:?} is root; default_privs must be unprivileged")),
        Some(ids) => Ok(ids),
        None => Err(format!("{v:?}: no such user in /etc/passwd")),
    }
}

/// Postfix reads 0 as "no limit"; Postern holds a message in memory while
/// it arrives, so a limit there must be.
fn size_limit(v: &str) -> Result<u64, String> {
    match value::count(v)? {
        0 => {
            Err("0 (no limit) is not supported: give a size in bytes, such as 10240000".to_owned())
        }
        n => Ok(n),
    }
}
