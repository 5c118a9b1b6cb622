//! The server certificate, and what each SMTP service (master.cf line)
//! runs with.
//!
//! `smtpd_tls_cert_file` and `smtpd_tls_key_file` name PEM files. Without
//! them Postern makes a self-signed certificate for `$myhostname` at the
//! first start and keeps it in `$data_directory/tls/`, so that it stays the
//! same across restarts (clients that pin it keep working) and STARTTLS
//! works out of the box. `postern reload` re-reads the files, through
//! the root helper when they are root's only and the daemon has dropped
//! to `mail_owner` ([`crate::privilege_files`]).
//!
//! Services follow Postfix's master.cf conventions: `smtp` offers STARTTLS,
//! and AUTH only with `smtpd_sasl_auth_enable`; `submission` and `smtps`
//! always offer AUTH, require it before MAIL, and check that the sender is
//! the login's own address; `smtps` starts with the TLS handshake. A
//! service's own parameters (`-o` overrides) come with its [`Service`].

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use postern_auth::{Authenticator, FailurePolicy, UserDb};
use postern_smtp::{Anvil, ClientLimits, SessionSettings, Shutdown, TlsConfig};

use crate::config::{Config, Main, Service};

/// Where the self-signed certificate and key live.
fn self_signed_paths(m: &Main) -> (PathBuf, PathBuf) {
    let dir = m.data_directory.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// The certificate and key PEM the config names, or the self-signed pair
/// (made now if missing).
fn pem(m: &Main) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let (cert, key) = match (&m.smtpd_tls_cert_file, &m.smtpd_tls_key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (Some(_), None) | (None, Some(_)) => {
            anyhow::bail!("smtpd_tls_cert_file and smtpd_tls_key_file must be set together")
        }
        (None, None) => {
            let (c, k) = self_signed_paths(m);
            if !c.exists() || !k.exists() {
                make_self_signed(m.myhostname.as_str(), &c, &k)?;
            }
            (c, k)
        }
    };
    // A key only root may read is read by the root helper once the
    // daemon runs as mail_owner (a reload; host/privsep/src/files.rs).
    let read = |p: &Path| {
        postern_privsep::read_file_or_ask(p).with_context(|| format!("cannot read {}", p.display()))
    };
    Ok((read(&cert)?, read(&key)?))
}

/// Writes a self-signed certificate for `hostname`: key first (mode
/// 0600), each through a temporary file, fsync and rename, so that a crash
/// never leaves half a file.
fn make_self_signed(hostname: &str, cert: &Path, key: &Path) -> anyhow::Result<()> {
    let (signing_key, made) = self_signed(hostname, std::time::SystemTime::now())
        .context("cannot generate a self-signed certificate")?;
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_atomic(key, signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(cert, made.pem().as_bytes(), 0o644)?;
    tracing::info!(target: "postern/master", "made a self-signed certificate for {hostname} in {}", cert.display());
    Ok(())
}

/// A key and a certificate for `hostname` as Debian's `make-ssl-cert`
/// makes one (its snakeoil certificate, what Postfix and Dovecot start
/// with there): the host name as subject CN and as the DNS name, valid
/// from the start of this year for ten years. (rcgen's own defaults name
/// the subject "rcgen self signed cert" and run to the year 4096.)
fn self_signed(
    hostname: &str,
    now: std::time::SystemTime,
) -> Result<(rcgen::KeyPair, rcgen::Certificate), rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(vec![hostname.to_owned()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let from = time::OffsetDateTime::from(now).date();
    params.not_before = rcgen::date_time_ymd(from.year(), 1, 1);
    params.not_after = rcgen::date_time_ymd(from.year() + 10, 1, 1);
    let key = rcgen::KeyPair::generate()?;
    let made = params.self_signed(&key)?;
    Ok((key, made))
}

/// Writes `bytes` to `path` atomically with `mode`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The TLS config for `config`, one for every service (SMTP, POP3);
/// errors name the files.
pub fn load(config: &Config) -> anyhow::Result<TlsConfig> {
    let (cert, key) = pem(&config.main)?;
    TlsConfig::from_pem(&cert, &key).with_context(|| {
        format!(
            "{}: smtpd_tls_cert_file/smtpd_tls_key_file",
            config.source.file
        )
    })
}

/// `postern check`: the configured certificate and key load (the
/// self-signed default is left alone: it is made at start).
pub fn check(config: &Config) -> anyhow::Result<()> {
    let m = &config.main;
    if m.smtpd_tls_cert_file.is_some() || m.smtpd_tls_key_file.is_some() {
        load(config)?;
    }
    Ok(())
}

/// Re-reads the certificate of `config` into `tls` (`postern reload`); on
/// error the running certificate stays and the log says why.
pub fn reload(tls: &TlsConfig, config: &Config) {
    let result = pem(&config.main)
        .and_then(|(cert, key)| tls.reload(&cert, &key).map_err(|e| anyhow::anyhow!("{e}")));
    if let Err(e) = result {
        tracing::warn!(target: "postern/master", "TLS reload failed, keeping the running certificate: {e:#}");
    }
}

/// The password database every service authenticates against: the users
/// file, and with `system_accounts` (`[auth] system_accounts`) the
/// system's accounts behind it.
pub fn authenticator(m: &Main, users: Arc<UserDb>, system_accounts: bool) -> Arc<Authenticator> {
    let ledger = Arc::new(postern_auth::Ledger::new(m.pop_before_smtp_timeout));
    let auth = Authenticator::new(users, failure_policy(m)).with_ledger(ledger);
    if !system_accounts {
        return Arc::new(auth);
    }
    let system = postern_auth::SystemAccounts::new(m.mydestination.clone());
    // Every system login would fail: say why once, at start-up.
    if let Err(e) = std::fs::File::open(&system.shadow) {
        tracing::warn!(target: "postern/master", "[auth] system_accounts: cannot read {}: {e}; system accounts cannot log in", system.shadow.display());
    }
    Arc::new(auth.with_system_accounts(system))
}

/// How failed logins are answered: `auth_failure_delay` and
/// `auth_failure_limit`, at start and at each reload.
pub fn failure_policy(m: &Main) -> FailurePolicy {
    FailurePolicy {
        delay: m.auth_failure_delay,
        limit: u32::try_from(m.auth_failure_limit.max(1)).unwrap_or(u32::MAX),
    }
}

/// The smtpd parameters of `m` as session settings (without TLS, AUTH,
/// counters or the stop signal, which [`service_settings`] adds).
pub fn smtpd_settings(m: &Main) -> SessionSettings {
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    SessionSettings {
        hostname: m.myhostname.to_string(),
        banner: m.smtpd_banner.clone(),
        message_size_limit: m.message_size_limit,
        command_timeout: m.smtpd_timeout,
        data_timeout: m.smtpd_timeout,
        // Postfix reads commands up to line_length_limit too; RFC 5321
        // §4.5.3.1.4's 512 is the floor.
        max_command_line: usize::try_from(m.line_length_limit.max(512)).unwrap_or(usize::MAX),
        recipient_limit: usize::try_from(m.smtpd_recipient_limit).unwrap_or(usize::MAX),
        helo_required: m.smtpd_helo_required,
        delay_reject: m.smtpd_delay_reject,
        sasl_authenticated_header: m.smtpd_sasl_authenticated_header,
        hard_error_limit: count(m.smtpd_hard_error_limit),
        soft_error_limit: count(m.smtpd_soft_error_limit),
        error_sleep_time: m.smtpd_error_sleep_time,
        header_size_limit: usize::try_from(m.header_size_limit).unwrap_or(usize::MAX),
        disable_vrfy_command: m.disable_vrfy_command,
        bare_newline: if m.smtpd_forbid_bare_newline == "reject" {
            postern_smtp::BareNewline::Reject
        } else {
            postern_smtp::BareNewline::Normalize
        },
        tls_required: m.smtpd_tls_security_level == "encrypt",
        client_limits: ClientLimits {
            connection_count: count(m.smtpd_client_connection_count_limit),
            connection_rate: count(m.smtpd_client_connection_rate_limit),
            message_rate: count(m.smtpd_client_message_rate_limit),
        },
        ..SessionSettings::default()
    }
}

/// What the SMTP services share at run time: the certificate, the password
/// database, and the stop signal.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The certificate.
    pub tls: Arc<TlsConfig>,
    /// The users, and the failed-login ledger.
    pub auth: Arc<Authenticator>,
    /// Set when the server stops.
    pub shutdown: Shutdown,
}

/// The settings of the SMTP service `service` (its own parameters, its
/// overrides applied), counting its clients in `anvil`.
pub fn service_settings(service: &Service, shared: &Shared, anvil: Arc<Anvil>) -> SessionSettings {
    let m = &service.main;
    // Postfix's master.cf: submission and smtps get
    // `-o smtpd_sasl_auth_enable=yes` and only authenticated clients.
    let submission = matches!(service.name.as_str(), "submission" | "smtps");
    let smtps = service.name == "smtps";
    // `none`: no STARTTLS (smtps's handshake is not STARTTLS and stays).
    let tls = (smtps || m.smtpd_tls_security_level != "none").then(|| Arc::clone(&shared.tls));
    let sasl = if service.overrides.contains(&"smtpd_sasl_auth_enable") {
        m.smtpd_sasl_auth_enable
    } else {
        submission || m.smtpd_sasl_auth_enable
    };
    SessionSettings {
        tls,
        implicit_tls: smtps,
        auth: sasl.then(|| Arc::clone(&shared.auth)),
        // Postfix: with `encrypt`, AUTH waits for TLS too.
        tls_auth_only: m.smtpd_tls_auth_only || m.smtpd_tls_security_level == "encrypt",
        tls_required: !smtps && m.smtpd_tls_security_level == "encrypt",
        auth_required: submission,
        sender_login_check: submission,
        anvil: Some(anvil),
        shutdown: shared.shutdown.clone(),
        pop_before_smtp: Some(Arc::clone(shared.auth.ledger())),
        ..smtpd_settings(m)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("tls/cert.pem");
        let key = dir.path().join("tls/key.pem");
        make_self_signed("mx.example.org", &cert, &key).unwrap();
        let first = std::fs::read(&cert).unwrap();
        // Subject, name and validity as make-ssl-cert's: checked by
        // openssl where it is installed.
        if let Ok(out) = std::process::Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-subject",
                "-ext",
                "subjectAltName",
                "-dates",
                "-in",
            ])
            .arg(&cert)
            .output()
        {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("subject=CN = mx.example.org")
                    || text.contains("subject=CN=mx.example.org"),
                "{text}"
            );
            assert!(text.contains("DNS:mx.example.org"), "{text}");
            assert!(!text.contains("4096"), "{text}");
        }
        TlsConfig::from_pem(&first, &std::fs::read(&key).unwrap()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.path().join("tls/cert.tmp").exists());
    }
}
