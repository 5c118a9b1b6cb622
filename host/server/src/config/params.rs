//! The main.cf parameters Postern knows: names, defaults and kinds.
//!
//! As in Postfix, every parameter is a string at heart: TOML arrays are
//! joined with `, `, booleans become `yes`/`no`, integers decimal. Values are
//! `$name`-expanded, then parsed into their kind. `postern config -d` prints
//! this table; `postern config -n` what a file changed in it.

/// How a parameter's expanded value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Text,
    /// A host name or domain.
    Domain,
    /// Domains separated by commas or white space.
    DomainList,
    /// CIDR networks: `127.0.0.0/8, [::1]/128, 192.0.2.7`.
    NetworkList,
    /// `yes` or `no`.
    Bool,
    /// A non-negative integer.
    Count,
    /// A size in bytes.
    Size,
    /// A duration: a number with an optional unit s, m, h, d, w (default s).
    Time,
    /// A file system path (may be empty for "none").
    Path,
    /// Where inet services listen when they give only a port:
    /// `all`, `loopback-only`, or addresses.
    Interfaces,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
}

/// A parameter: name, default (before expansion) and kind.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// The Postfix name.
    pub name: &'static str,
    /// The default value, unexpanded. `COMPUTED` defaults are filled in
    /// from the machine at load time (host name, data directory).
    pub default: &'static str,
    /// How the value is read.
    pub kind: Kind,
}

/// Marks a default that [`super::Config`] computes from the machine.
pub const COMPUTED: &str = "\0computed";

/// Every parameter this version understands, sorted by name. A key that is
/// not here (nor a section) is a config error.
pub const PARAMS: &[Param] = &[
    // access(5) maps: the reply codes of REJECT and DEFER (the
    // check_*_access plugins get them as arguments).
    p("access_map_defer_code", "450", Kind::Count),
    p("access_map_reject_code", "554", Kind::Count),
    p("alias_maps", "", Kind::Text),
    p("allow_mail_to_commands", "alias, forward", Kind::Text),
    p("allow_mail_to_files", "alias, forward", Kind::Text),
    p("anvil_rate_time_unit", "60s", Kind::Time),
    p("auth_failure_delay", "1s", Kind::Time),
    p("auth_failure_limit", "5", Kind::Count),
    p("bounce_queue_lifetime", "5d", Kind::Time),
    p("command_time_limit", "1000s", Kind::Time),
    // `transport:destination` of an after-queue content filter (empty:
    // none); per service, master.cf's `-o content_filter=`.
    p("content_filter", "", Kind::Text),
    p("data_directory", COMPUTED, Kind::Path),
    p(
        "default_destination_concurrency_failed_cohort_limit",
        "1",
        Kind::Count,
    ),
    p("default_destination_concurrency_limit", "20", Kind::Count),
    p(
        "default_destination_concurrency_negative_feedback",
        "1",
        Kind::Text,
    ),
    p(
        "default_destination_concurrency_positive_feedback",
        "1",
        Kind::Text,
    ),
    p("default_destination_recipient_limit", "50", Kind::Count),
    p("default_privs", "nobody", Kind::Text),
    p("default_process_limit", "100", Kind::Count),
    p("delay_warning_time", "0h", Kind::Time),
    p("disable_vrfy_command", "yes", Kind::Bool),
    p(
        "forward_path",
        "$home/.forward${recipient_delimiter}${extension}, $home/.forward",
        Kind::Text,
    ),
    p("header_size_limit", "102400", Kind::Size),
    p("home_mailbox", "Maildir/", Kind::Text),
    // Postern's own: local mail stored in its mailboxes before the 250,
    // without a queue file (host/queue/src/at_once.rs).
    p("immediate_local_delivery", "no", Kind::Bool),
    p("inet_interfaces", "loopback-only", Kind::Interfaces),
    p("initial_destination_concurrency", "5", Kind::Count),
    p("line_length_limit", "2048", Kind::Count),
    p(
        "lmtp_destination_concurrency_failed_cohort_limit",
        "$default_destination_concurrency_failed_cohort_limit",
        Kind::Count,
    ),
    p(
        "lmtp_destination_concurrency_limit",
        "$default_destination_concurrency_limit",
        Kind::Count,
    ),
    p(
        "lmtp_destination_concurrency_negative_feedback",
        "$default_destination_concurrency_negative_feedback",
        Kind::Text,
    ),
    p(
        "lmtp_destination_concurrency_positive_feedback",
        "$default_destination_concurrency_positive_feedback",
        Kind::Text,
    ),
    p(
        "lmtp_initial_destination_concurrency",
        "$initial_destination_concurrency",
        Kind::Count,
    ),
    p("local_recipient_maps", "", Kind::Text),
    // Postern's: where the log goes when maillog_file is empty. stderr (the
    // journal, a terminal) or the local syslog daemon, Postfix's default
    // (syslog_facility, syslog_name, syslog_socket). A set maillog_file
    // wins, as it turns syslog off in Postfix.
    p("log_output", "stderr", Kind::Choice(&["stderr", "syslog"])),
    // Dovecot's name: what the mailbox store fsyncs (messages and UIDs
    // always, flags and MODSEQs only with `always`; see
    // postern_mailbox::fsync).
    p(
        "mail_fsync",
        "optimized",
        Kind::Choice(&["optimized", "always", "never"]),
    ),
    p("mail_name", "Postern", Kind::Text),
    // Who the daemon runs as after a root start binds its ports
    // (host/server/src/privilege.rs); "root" keeps root, warned about.
    p("mail_owner", "postern", Kind::Text),
    p("mail_spool_directory", "/var/mail", Kind::Path),
    p("mailbox_command", "", Kind::Text),
    // Postfix 3.4's: where the log goes instead of syslog. Here: instead
    // of stderr (foreground) or $data_directory/postern.log (detached).
    p("maillog_file", "", Kind::Path),
    p("maximal_backoff_time", "4000s", Kind::Time),
    p("maximal_queue_lifetime", "5d", Kind::Time),
    p("message_size_limit", "10240000", Kind::Size),
    p("minimal_backoff_time", "300s", Kind::Time),
    p(
        "mydestination",
        "$myhostname, localhost.$mydomain, localhost",
        Kind::DomainList,
    ),
    p("mydomain", COMPUTED, Kind::Domain),
    p("myhostname", COMPUTED, Kind::Domain),
    p("mynetworks", "127.0.0.0/8, [::1]/128", Kind::NetworkList),
    p("myorigin", "$myhostname", Kind::Domain),
    // Which maps let `example.com` match its subdomains; the access maps
    // read `smtpd_access_maps` in it.
    p(
        "parent_domain_matches_subdomains",
        "debug_peer_list, fast_flush_domains, mynetworks, permit_mx_backup_networks, qmqpd_authorized_clients, relay_domains, smtpd_access_maps",
        Kind::Text,
    ),
    p(
        "plugin_cache_directory",
        "$data_directory/cache",
        Kind::Path,
    ),
    p("plugin_directory", "", Kind::Path),
    p("pop_before_smtp_timeout", "600s", Kind::Time),
    // qmgr's memory: messages and recipients read into the scheduler;
    // the rest of the queue waits on disk.
    p("qmgr_message_active_limit", "20000", Kind::Count),
    p("qmgr_message_recipient_limit", "20000", Kind::Count),
    p("queue_directory", "$data_directory/queue", Kind::Path),
    p("queue_minfree", "0", Kind::Size),
    p("queue_run_delay", "300s", Kind::Time),
    p("recipient_delimiter", "", Kind::Text),
    p("relay_domains", "", Kind::DomainList),
    p("relayhost", "", Kind::Text),
    p("smtp_connect_timeout", "30s", Kind::Time),
    p("smtp_connection_cache_time_limit", "2s", Kind::Time),
    p("smtp_connection_reuse_count_limit", "0", Kind::Count),
    p("smtp_connection_reuse_time_limit", "300s", Kind::Time),
    p("smtp_data_done_timeout", "600s", Kind::Time),
    p("smtp_data_init_timeout", "120s", Kind::Time),
    p("smtp_data_xfer_timeout", "180s", Kind::Time),
    p(
        "smtp_destination_concurrency_failed_cohort_limit",
        "$default_destination_concurrency_failed_cohort_limit",
        Kind::Count,
    ),
    p(
        "smtp_destination_concurrency_limit",
        "$default_destination_concurrency_limit",
        Kind::Count,
    ),
    p(
        "smtp_destination_concurrency_negative_feedback",
        "$default_destination_concurrency_negative_feedback",
        Kind::Text,
    ),
    p(
        "smtp_destination_concurrency_positive_feedback",
        "$default_destination_concurrency_positive_feedback",
        Kind::Text,
    ),
    p("smtp_helo_name", "$myhostname", Kind::Text),
    p("smtp_helo_timeout", "300s", Kind::Time),
    p(
        "smtp_initial_destination_concurrency",
        "$initial_destination_concurrency",
        Kind::Count,
    ),
    p("smtp_mail_timeout", "300s", Kind::Time),
    p("smtp_quit_timeout", "300s", Kind::Time),
    p("smtp_rcpt_timeout", "300s", Kind::Time),
    p("smtp_rset_timeout", "20s", Kind::Time),
    p("smtp_sasl_auth_enable", "no", Kind::Bool),
    p("smtp_sasl_password_maps", "", Kind::Text),
    p("smtp_starttls_timeout", "300s", Kind::Time),
    p("smtp_tcp_port", "25", Kind::Count),
    p("smtp_tls_CAfile", "", Kind::Path),
    p(
        "smtp_tls_security_level",
        "may",
        Kind::Choice(&["none", "may", "encrypt", "verify"]),
    ),
    p("smtpd_banner", "$myhostname ESMTP", Kind::Text),
    p("smtpd_client_connection_count_limit", "50", Kind::Count),
    p("smtpd_client_connection_rate_limit", "0", Kind::Count),
    p(
        "smtpd_client_event_limit_exceptions",
        "$mynetworks",
        Kind::NetworkList,
    ),
    p("smtpd_client_message_rate_limit", "0", Kind::Count),
    p("smtpd_delay_reject", "yes", Kind::Bool),
    p("smtpd_error_sleep_time", "1s", Kind::Time),
    p(
        "smtpd_forbid_bare_newline",
        "normalize",
        Kind::Choice(&["normalize", "reject"]),
    ),
    p("smtpd_hard_error_limit", "20", Kind::Count),
    p("smtpd_helo_required", "no", Kind::Bool),
    p("smtpd_null_access_lookup_key", "<>", Kind::Text),
    p("smtpd_recipient_limit", "1000", Kind::Count),
    // Names of restriction classes defined as top-level keys (Postfix's
    // spelling); `[smtpd.restriction_classes]` defines them too.
    p("smtpd_restriction_classes", "", Kind::Text),
    p("smtpd_sasl_auth_enable", "no", Kind::Bool),
    p("smtpd_sasl_authenticated_header", "no", Kind::Bool),
    p("smtpd_soft_error_limit", "10", Kind::Count),
    p("smtpd_timeout", "300s", Kind::Time),
    p("smtpd_tls_auth_only", "yes", Kind::Bool),
    p("smtpd_tls_cert_file", "", Kind::Path),
    p("smtpd_tls_key_file", "", Kind::Path),
    p(
        "smtpd_tls_security_level",
        "may",
        Kind::Choice(&["none", "may", "encrypt"]),
    ),
    // With log_output = "syslog": the facility of every line (syslog(3)
    // names), the tag before `/smtpd` (also on stderr and maillog_file
    // lines), and Postern's own: the syslog daemon's datagram socket.
    p(
        "syslog_facility",
        "mail",
        Kind::Choice(&[
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
            "authpriv", "ftp", "local0", "local1", "local2", "local3", "local4", "local5",
            "local6", "local7",
        ]),
    ),
    p("syslog_name", "postern", Kind::Text),
    p("syslog_socket", "/dev/log", Kind::Path),
    p("transport_maps", "", Kind::Text),
    p("virtual_mailbox_base", "$data_directory/mail", Kind::Path),
    p("virtual_mailbox_domains", "", Kind::DomainList),
];

const fn p(name: &'static str, default: &'static str, kind: Kind) -> Param {
    Param {
        name,
        default,
        kind,
    }
}

/// The parameter called `name`.
pub fn find(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name == name)
}

/// Parameters whose `$name`s are the recipient's attributes (`$home`,
/// `$user`, `$extension`, ...), expanded at delivery, not at load: Postfix's
/// local(8) parameters of that kind.
pub const DELIVERY_TIME: &[&str] = &["forward_path", "mailbox_command"];

/// Postfix names this version does not implement yet but an operator may
/// carry over from main.cf: named in the error so that it says "not yet"
/// rather than "unknown".
pub const LATER: &[&str] = &["alias_database"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in PARAMS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }
}
