//! Unique Maildir file names, in Dovecot's style:
//! `<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>`.
//!
//! Uniqueness comes from three parts together: the time (seconds and
//! microseconds), the process id (two processes delivering at once), and a
//! per-process counter `Q<n>` (two threads of one process in the same
//! microsecond). The host name tells apart machines sharing the Maildir over
//! NFS. Delivery also creates the file with `O_EXCL`, so a clash could only
//! ever fail a delivery, never overwrite one.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Deliveries made by this process: the `Q<n>` part.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The host name, escaped once.
static HOSTNAME: OnceLock<String> = OnceLock::new();

/// A fresh unique name for a message of `size` bytes.
pub fn unique_name(size: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    format!(
        "{}.M{}P{}Q{}.{},S={}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        n,
        hostname(),
        size
    )
}

/// This machine's name, escaped for a Maildir file name.
pub fn hostname() -> &'static str {
    HOSTNAME.get_or_init(|| {
        let name = gethostname::gethostname();
        let name = name.to_string_lossy();
        let name = if name.is_empty() { "localhost" } else { &name };
        escape_hostname(name)
    })
}

/// Escapes what a host name must not bring into a file name. The Maildir
/// spec replaces `/` with `\057` and `:` with `\072` (`:` starts the info
/// part). We also replace `,` with `\054`, since Dovecot reads the `,S=`
/// field after the host name, and `.` is kept.
pub fn escape_hostname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '/' => out.push_str("\\057"),
            ':' => out.push_str("\\072"),
            ',' => out.push_str("\\054"),
            c if c.is_control() => out.push('_'),
            c => out.push(c),
        }
    }
    out
}

/// The `S=` size recorded in a name, if any: the file's size in bytes.
pub fn size_of_name(name: &str) -> Option<u64> {
    let base = name.split(':').next().unwrap_or(name);
    base.split(',')
        .skip(1)
        .find_map(|field| field.strip_prefix("S="))
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let name = unique_name(1234);
        let (stamp, rest) = name.split_once(".M").unwrap();
        assert!(stamp.bytes().all(|b| b.is_ascii_digit()));
        assert!(rest.contains(&format!("P{}Q", std::process::id())));
        assert!(name.ends_with(",S=1234"));
        assert!(!name.contains('/') && !name.contains(':'));
        assert_eq!(size_of_name(&name), Some(1234));
    }

    #[test]
    fn escapes() {
        assert_eq!(
            escape_hostname("a/b:c,d.e"),
            "a\\057b\\072c\\054d.e".to_owned()
        );
    }

    #[test]
    fn reads_size_with_flags() {
        assert_eq!(size_of_name("1.M2P3Q4.h,S=99,W=101:2,S"), Some(99));
        assert_eq!(size_of_name("1.M2P3.h"), None);
    }
}
