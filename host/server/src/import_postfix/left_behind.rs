//! What main.cf says that Postern leaves behind or carries over changed,
//! with the reason an operator needs to read in the import's notes.

use super::cf;

/// main.cf parameters Postern has no use for, with the reason an operator
/// needs to read.
pub(super) const LEFT_BEHIND: &[(&str, &str)] = &[
    (
        "compatibility_level",
        "Postern has one behaviour, Postfix 3.x's defaults",
    ),
    (
        "queue_directory",
        "Postern keeps its own queue under data_directory; flush the Postfix queue before switching",
    ),
    ("command_directory", "one binary: postern"),
    ("daemon_directory", "one binary: postern"),
    (
        "data_directory",
        "Postfix's data_directory holds its caches; Postern's default /var/lib/postern is kept",
    ),
    (
        "mail_owner",
        "privilege separation by mail_owner is not carried over yet",
    ),
    ("setgid_group", "`postern sendmail` needs no setgid group"),
    (
        "alias_database",
        "Postern reads alias_maps as text: nothing to compile",
    ),
    (
        "smtpd_sasl_type",
        "Postern checks SMTP AUTH itself against [auth] users_file (import Dovecot's passwd-file with --dovecot)",
    ),
    (
        "smtpd_sasl_path",
        "Postern checks SMTP AUTH itself against [auth] users_file",
    ),
    (
        "smtpd_sasl_local_domain",
        "users are full addresses in the users file",
    ),
    ("biff", "no comsat notifications"),
    (
        "append_dot_mydomain",
        "Postern does not rewrite unqualified domains",
    ),
    ("readme_directory", "documentation path"),
    ("html_directory", "documentation path"),
    ("manpage_directory", "documentation path"),
    ("sample_directory", "documentation path"),
    (
        "sendmail_path",
        "install postern as /usr/sbin/sendmail (a link)",
    ),
    ("newaliases_path", "`postern aliases`"),
    ("mailq_path", "`postern queue list`"),
    (
        "inet_protocols",
        "Postern listens on the inet_interfaces addresses, IPv4 and IPv6 alike",
    ),
];

/// Why a main.cf without compatibility_level and without a list that
/// guards relaying behaves as Postern's default: Postfix 3 would not run
/// it, Postfix 2 refused relaying with 554 as Postern does.
pub(super) const LEVEL_0: &str = "0 (or not set), and neither smtpd_relay_restrictions nor smtpd_recipient_restrictions has reject_unauth_destination: Postfix 3.x refuses to start smtpd with this main.cf (\"specify at least one working instance of: reject_unauth_destination, ...\"); Postern keeps its default recipient list (permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination), which refuses relaying with 554 as Postfix 2 did. A Postfix 3 install sets compatibility_level (Debian: 3.6); set it before importing to have Postfix's relay list written out";

/// Whether main.cf's relay or recipient list has an entry that refuses
/// relaying (what Postfix's smtpd demands before it starts).
pub(super) fn guards_relaying(parameters: &[cf::Parameter]) -> bool {
    parameters
        .iter()
        .filter(|p| {
            p.name == "smtpd_relay_restrictions" || p.name == "smtpd_recipient_restrictions"
        })
        .flat_map(|p| p.value.split([',', ' ', '\t', '\n']))
        .any(|word| {
            matches!(
                word,
                "reject_unauth_destination"
                    | "defer_unauth_destination"
                    | "reject"
                    | "defer"
                    | "defer_if_permit"
                    | "check_relay_domains"
            )
        })
}

/// Postfix accepts mail for root (local(8) delivers it with default_privs);
/// Postern never delivers to root.
pub(super) const ROOT: &str = "not set: Postfix's default (proxy:unix:passwd.byname $alias_maps) is written out, so system accounts receive mail as before, except root: Postern refuses root@ (550 5.1.1) where Postfix accepts it; alias root to a person in the aliases file";
