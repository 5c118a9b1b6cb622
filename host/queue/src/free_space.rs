//! The free space on the queue's file system, asked of the kernel at most
//! once a second while it is roomy (Postfix's smtpd asks for every MAIL).

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a roomy free-space figure is reused ([`crate::spool::Spool::free_space`]).
pub(crate) const FREE_SPACE_REUSE: Duration = Duration::from_secs(1);

/// How far above what a MAIL needs the last figure must be to be reused.
pub(crate) const FREE_SPACE_MARGIN: u64 = 1 << 30;

/// The last statfs(2) of the queue's file system and when it was made.
#[derive(Debug, Default)]
pub(crate) struct FreeSpace {
    last: Mutex<Option<(Instant, u64)>>,
}

impl FreeSpace {
    pub(crate) fn get(&self, root: &Path, need: u64) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, free)) = *last
            && at.elapsed() < FREE_SPACE_REUSE
            && free.saturating_sub(need) > FREE_SPACE_MARGIN
        {
            return Some(free);
        }
        let fs = rustix::fs::statvfs(root).ok()?;
        let free = fs.f_bavail.saturating_mul(fs.f_frsize);
        *last = Some((Instant::now(), free));
        Some(free)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_roomy_figure_is_reused_a_tight_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let free = FreeSpace::default();
        assert!(free.get(dir.path(), 0).is_some());
        // Pretend the last statfs said 1 PiB + 1 (no test disk has that
        // much): reused for a small need...
        let fake = (1u64 << 50) + 1;
        *free.last.lock().unwrap() = Some((Instant::now(), fake));
        assert_eq!(free.get(dir.path(), 1 << 20), Some(fake));
        // ...but not when the need comes within the margin of it,
        assert_ne!(free.get(dir.path(), fake - FREE_SPACE_MARGIN), Some(fake));
        // nor once it is old.
        *free.last.lock().unwrap() = Some((Instant::now() - 2 * FREE_SPACE_REUSE, fake));
        assert_ne!(free.get(dir.path(), 0), Some(fake));
        assert_eq!(free.get(&dir.path().join("missing"), u64::MAX), None);
    }
}
