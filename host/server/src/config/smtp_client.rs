//! The outbound SMTP client's parameters (Postfix's smtp(8) and
//! transport(5) names): next hops, tables, TLS, SASL, timeouts.

use std::path::PathBuf;
use std::time::Duration;

use postern_delivery::remote::{Concurrency, Feedback, NextHop};
use postern_smtp::client::{Timeouts, TlsLevel};

use super::main_cf::Reader;
use super::value;

/// A lookup table named in a parameter: `hash:/path` (the type may be
/// left out: `hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// The table type.
    pub kind: postern_tables::Kind,
    /// The source file.
    pub path: PathBuf,
}

/// The client's parameters, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpClient {
    /// `relayhost`: `[host]:port` (no MX lookup) or `host:port`; empty:
    /// deliver to each domain's MX hosts.
    pub relayhost: Option<NextHop>,
    /// `smtp_tcp_port` (25): the port of next hops that name none.
    pub smtp_tcp_port: u16,
    /// `transport_maps`: `domain transport:nexthop` tables, in order.
    pub transport_maps: Vec<TableRef>,
    /// `smtp_sasl_auth_enable` (no).
    pub smtp_sasl_auth_enable: bool,
    /// `smtp_sasl_password_maps`: `[host]:port user:password` tables.
    pub smtp_sasl_password_maps: Vec<TableRef>,
    /// `smtp_tls_security_level` (may).
    pub smtp_tls_security_level: TlsLevel,
    /// `smtp_tls_CAfile`: the roots for `verify`; empty: the webpki roots.
    pub smtp_tls_ca_file: Option<PathBuf>,
    /// `smtp_helo_name` ($myhostname).
    pub smtp_helo_name: String,
    /// The `smtp_*_timeout`s.
    pub timeouts: Timeouts,
    /// Slow start and feedback for SMTP:
    /// `smtp_initial_destination_concurrency`
    /// ($initial_destination_concurrency, 5),
    /// `smtp_destination_concurrency_limit`
    /// ($default_destination_concurrency_limit, 20), and
    /// `smtp_destination_concurrency_positive_feedback`,
    /// `_negative_feedback` (1) and `_failed_cohort_limit` (1), each
    /// defaulting to its `default_destination_concurrency_*`.
    pub smtp_concurrency: Concurrency,
    /// The same for LMTP (`lmtp_*`).
    pub lmtp_concurrency: Concurrency,
    /// `default_destination_recipient_limit` (50).
    pub default_destination_recipient_limit: u64,
    /// `smtp_connection_cache_time_limit` (2s).
    pub smtp_connection_cache_time_limit: Duration,
    /// `smtp_connection_reuse_time_limit` (300s).
    pub smtp_connection_reuse_time_limit: Duration,
    /// `smtp_connection_reuse_count_limit` (0: no limit).
    pub smtp_connection_reuse_count_limit: u64,
}

impl SmtpClient {
    /// Reads every parameter of the client.
    pub(super) fn read(r: &mut Reader<'_>) -> SmtpClient {
        let defaults = Timeouts::default();
        let mut time = |name: &str, default: Duration| r.get(name, value::time).unwrap_or(default);
        let timeouts = Timeouts {
            connect: time("smtp_connect_timeout", defaults.connect),
            helo: time("smtp_helo_timeout", defaults.helo),
            starttls: time("smtp_starttls_timeout", defaults.starttls),
            mail: time("smtp_mail_timeout", defaults.mail),
            rcpt: time("smtp_rcpt_timeout", defaults.rcpt),
            data_init: time("smtp_data_init_timeout", defaults.data_init),
            data_xfer: time("smtp_data_xfer_timeout", defaults.data_xfer),
            data_done: time("smtp_data_done_timeout", defaults.data_done),
            rset: time("smtp_rset_timeout", defaults.rset),
            quit: time("smtp_quit_timeout", defaults.quit),
        };
        // The general parameters first, so that a bad value is reported
        // at its own line; each transport's own parameters default to
        // them (`smtp_destination_concurrency_limit =
        // $default_destination_concurrency_limit`, ...), as in Postfix.
        let mut count = |name: &str, default: u32| {
            r.get(name, value::count)
                .map_or(default, |v| u32::try_from(v).unwrap_or(u32::MAX))
        };
        let general = Concurrency {
            initial: count("initial_destination_concurrency", 5),
            limit: count("default_destination_concurrency_limit", 20),
            failed_cohort_limit: count("default_destination_concurrency_failed_cohort_limit", 1),
            ..Concurrency::default()
        };
        let mut feedback = |name: &str| r.get(name, Feedback::parse);
        let general = Concurrency {
            positive: feedback("default_destination_concurrency_positive_feedback")
                .unwrap_or(Feedback::ONE),
            negative: feedback("default_destination_concurrency_negative_feedback")
                .unwrap_or(Feedback::ONE),
            ..general
        };
        let mut concurrency = |transport: &str| {
            let mut count = |name: &str, default: u32| {
                r.get(&format!("{transport}_{name}"), value::count)
                    .map_or(default, |v| u32::try_from(v).unwrap_or(u32::MAX))
            };
            let initial = count("initial_destination_concurrency", general.initial);
            let limit = count("destination_concurrency_limit", general.limit);
            let failed_cohort_limit = count(
                "destination_concurrency_failed_cohort_limit",
                general.failed_cohort_limit,
            );
            let mut feedback = |name: &str, default: Feedback| {
                r.get(&format!("{transport}_{name}"), Feedback::parse)
                    .unwrap_or(default)
            };
            Concurrency {
                initial,
                limit,
                positive: feedback(
                    "destination_concurrency_positive_feedback",
                    general.positive,
                ),
                negative: feedback(
                    "destination_concurrency_negative_feedback",
                    general.negative,
                ),
                failed_cohort_limit,
            }
        };
        let smtp_concurrency = concurrency("smtp");
        let lmtp_concurrency = concurrency("lmtp");
        SmtpClient {
            smtp_concurrency,
            lmtp_concurrency,
            relayhost: r.get("relayhost", relayhost).flatten(),
            smtp_tcp_port: r.get("smtp_tcp_port", port).unwrap_or(25),
            transport_maps: r.get("transport_maps", tables).unwrap_or_default(),
            smtp_sasl_auth_enable: r
                .get("smtp_sasl_auth_enable", value::boolean)
                .unwrap_or_default(),
            smtp_sasl_password_maps: r.get("smtp_sasl_password_maps", tables).unwrap_or_default(),
            smtp_tls_security_level: r
                .get("smtp_tls_security_level", |v| {
                    TlsLevel::parse(v).ok_or_else(|| {
                        format!("expected none, may, encrypt or verify, found {v:?}")
                    })
                })
                .unwrap_or_default(),
            smtp_tls_ca_file: r
                .get("smtp_tls_CAfile", |v| Ok(PathBuf::from(v.trim())))
                .filter(|p| !p.as_os_str().is_empty()),
            smtp_helo_name: r
                .get("smtp_helo_name", |v| Ok(v.trim().to_owned()))
                .unwrap_or_default(),
            timeouts,
            default_destination_recipient_limit: r
                .get("default_destination_recipient_limit", value::count)
                .unwrap_or(50),
            smtp_connection_cache_time_limit: r
                .get("smtp_connection_cache_time_limit", value::time)
                .unwrap_or(Duration::from_secs(2)),
            smtp_connection_reuse_time_limit: r
                .get("smtp_connection_reuse_time_limit", value::time)
                .unwrap_or(Duration::from_secs(300)),
            smtp_connection_reuse_count_limit: r
                .get("smtp_connection_reuse_count_limit", value::count)
                .unwrap_or(0),
        }
    }
}

fn relayhost(v: &str) -> Result<Option<NextHop>, String> {
    if v.trim().is_empty() {
        return Ok(None);
    }
    NextHop::parse(v).map(Some)
}

fn port(v: &str) -> Result<u16, String> {
    match v.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("expected a TCP port (1-65535), found {v:?}")),
    }
}

/// `hash:/etc/postern/transport, regexp:/etc/x`: each item a table.
fn tables(v: &str) -> Result<Vec<TableRef>, String> {
    value::list(v)
        .map(|item| {
            let (kind, path) = match item.split_once(':') {
                Some((kind, path)) => (
                    kind.parse::<postern_tables::Kind>()
                        .map_err(|e| format!("{item:?}: {e}"))?,
                    path,
                ),
                None => (postern_tables::Kind::Hash, item),
            };
            if path.is_empty() {
                return Err(format!("{item:?}: a table needs a file path"));
            }
            Ok(TableRef {
                kind,
                path: PathBuf::from(path),
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_lists() {
        let t = tables("hash:/etc/transport, /etc/more regexp:/etc/re").unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[1].kind, postern_tables::Kind::Hash);
        assert_eq!(t[2].kind, postern_tables::Kind::Regexp);
        assert!(tables("mysql:/etc/x").is_err());
        assert!(tables("hash:").is_err());
    }

    #[test]
    fn relayhosts_and_ports() {
        assert_eq!(relayhost("").unwrap(), None);
        assert!(!relayhost("[relay.example]:587").unwrap().unwrap().mx);
        assert!(relayhost("[relay").is_err());
        assert!(port("0").is_err() && port("70000").is_err());
        assert_eq!(port("2525").unwrap(), 2525);
    }
}
