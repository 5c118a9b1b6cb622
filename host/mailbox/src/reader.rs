//! The read side of a Maildir, as a POP3 session needs it: the messages
//! of `new/` and `cur/` in delivery order, each with a unique id that stays
//! the same across sessions, its size, and deleting.
//!
//! Scanning moves what is in `new/` to `cur/` (adding the empty info
//! `:2,`), as Dovecot does when a client first sees a message: `new/` is
//! for mail nobody has looked at yet.
//!
//! The unique id is the file's base name (the part before `:2,`), which
//! flags never change. Sizes come from the name: Dovecot's `W=` (the size
//! with CRLF line ends, what POP3 counts) if present, else `S=` (Postern
//! stores CRLF, so its `S=` is the wire size), else the file's length.

use std::cmp::Ordering;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::Maildir;
use crate::unique::size_of_name;

/// One message of a Maildir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The base name: unique in the Maildir and stable as flags change.
    pub id: String,
    /// The file, in `cur/`.
    pub path: PathBuf,
    /// Its size in octets with CRLF line ends (RFC 1939 §5 "exact size").
    pub size: u64,
}

impl Maildir {
    /// Every message in `new/` and `cur/`, oldest delivery first; messages
    /// of `new/` are moved to `cur/` on the way. A message that vanishes
    /// while this runs (another reader deleted it) is left out.
    pub fn scan(&self) -> io::Result<Vec<Entry>> {
        let new = self.path().join("new");
        let cur = self.path().join("cur");
        for name in names(&new)? {
            if name.starts_with('.') {
                continue;
            }
            let target = if name.contains(':') {
                cur.join(&name)
            } else {
                cur.join(format!("{name}:2,"))
            };
            match fs::rename(new.join(&name), &target) {
                Ok(()) => {}
                // Another session moved it first: it is in cur/ now.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let mut entries = Vec::new();
        for name in names(&cur)? {
            if name.starts_with('.') {
                continue;
            }
            let path = cur.join(&name);
            let id = base_name(&name).to_owned();
            let size = match virtual_size(&name).or_else(|| size_of_name(&name)) {
                Some(size) => size,
                None => match fs::metadata(&path) {
                    Ok(m) => m.len(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                },
            };
            entries.push(Entry { id, path, size });
        }
        entries.sort_by(|a, b| delivery_order(&a.id, &b.id));
        Ok(entries)
    }

    /// Sets \Seen on `entry` (POP3 RETR, as Dovecot with
    /// `pop3_no_flag_updates = no`): the file is renamed to carry `S` in
    /// its info part, found again by its base name if another session
    /// renamed it meanwhile. Returns `false` if it is gone.
    pub fn mark_seen(&self, entry: &Entry) -> io::Result<bool> {
        let cur = self.path().join("cur");
        let mut name = entry
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned);
        for _ in 0..10 {
            let current = match name.take() {
                Some(n) => n,
                None => match names(&cur)?.into_iter().find(|n| base_name(n) == entry.id) {
                    Some(n) => n,
                    None => return Ok(false),
                },
            };
            let (base, letters) = match current.split_once(":2,") {
                Some((b, l)) => (b, l),
                None => (base_name(&current), ""),
            };
            if letters.contains('S') {
                return Ok(true);
            }
            // System letters (upper case) sort before Dovecot's keyword
            // letters (lower case), as the Maildir spec's ASCII order has it.
            let mut chars: Vec<char> = letters.chars().chain(['S']).collect();
            chars.sort_unstable();
            let target: String = format!("{base}:2,{}", chars.into_iter().collect::<String>());
            match fs::rename(cur.join(&current), cur.join(&target)) {
                Ok(()) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("the message's flags kept changing"))
    }

    /// Deletes `entry`. Already gone counts as done.
    pub fn remove(&self, entry: &Entry) -> io::Result<()> {
        match fs::remove_file(&entry.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The file names in `dir` (not UTF-8 names are skipped: Postern and
/// Dovecot never make them).
fn names(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            out.push(name);
        }
    }
    Ok(out)
}

/// The name without its info part (`:2,FLAGS`).
pub fn base_name(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

/// Dovecot's `W=` field: the size with CRLF line ends.
fn virtual_size(name: &str) -> Option<u64> {
    base_name(name)
        .split(',')
        .skip(1)
        .find_map(|field| field.strip_prefix("W="))
        .and_then(|s| s.parse().ok())
}

/// `<secs>.M<usecs>...`: seconds and microseconds, where the name has them.
fn time_of(name: &str) -> (u64, u64, u64) {
    let mut parts = name.splitn(2, '.');
    let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let usecs = parts
        .next()
        .and_then(|rest| rest.strip_prefix('M'))
        .map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or("")
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Dovecot's and Postern's `Q<n>` delivery counter, numerically, so
    // that Q10 comes after Q9 within one microsecond.
    let counter = name
        .split('.')
        .nth(1)
        .and_then(|unique| unique.split_once('Q'))
        .map(|(_, rest)| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or("")
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (secs, usecs, counter)
}

/// Delivery time first (numerically: `999.` is older than `1000.`), then
/// the name, so that the order is total and the same in every session.
/// Public for the fuzzer (`fuzz/`), which checks that it is total.
pub fn delivery_order(a: &str, b: &str) -> Ordering {
    time_of(a).cmp(&time_of(b)).then_with(|| a.cmp(b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scan_moves_new_to_cur_and_keeps_ids() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path().join("Maildir")).unwrap();
        let first = md.deliver(b"a\r\n").unwrap();
        let second = md.deliver(b"bb\r\n").unwrap();
        let entries = md.scan().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, first.file_name().unwrap().to_str().unwrap());
        assert_eq!(entries[1].size, 4);
        assert!(entries[0].path.to_str().unwrap().ends_with(":2,"));
        assert_eq!(fs::read_dir(md.path().join("new")).unwrap().count(), 0);
        let again = md.scan().unwrap();
        assert_eq!(entries, again);
        md.remove(&again[0]).unwrap();
        md.remove(&again[0]).unwrap();
        let left = md.scan().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, second.file_name().unwrap().to_str().unwrap());
        // \Seen by name, even after another session renamed the file.
        let id = &left[0].id;
        fs::rename(&left[0].path, md.path().join(format!("cur/{id}:2,Fa"))).unwrap();
        assert!(md.mark_seen(&left[0]).unwrap());
        assert!(md.path().join(format!("cur/{id}:2,FSa")).exists());
        assert!(md.mark_seen(&md.scan().unwrap()[0]).unwrap());
        md.remove(&md.scan().unwrap()[0]).unwrap();
        assert!(!md.mark_seen(&left[0]).unwrap());
    }

    #[test]
    fn dovecot_names_sizes_and_order() {
        assert_eq!(virtual_size("1.M2P3.h,S=1000,W=1030:2,S"), Some(1030));
        assert_eq!(
            base_name("1.M2P3.h,S=1000,W=1030:2,S"),
            "1.M2P3.h,S=1000,W=1030"
        );
        assert_eq!(time_of("1035478339.M123P4.host"), (1035478339, 123, 0));
        assert_eq!(time_of("1035478339.27041_118.foo.org"), (1035478339, 0, 0));
        assert_eq!(
            delivery_order("5.M1P2Q10.h,S=1", "5.M1P2Q9.h,S=1"),
            Ordering::Greater
        );
        assert_eq!(delivery_order("999.M1P1.h", "1000.M0P1.h"), Ordering::Less);
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        fs::write(md.path().join("cur/5.M1P1.h:2,S"), b"abc").unwrap();
        let e = md.scan().unwrap();
        assert_eq!((e[0].id.as_str(), e[0].size), ("5.M1P1.h", 3));
    }
}
