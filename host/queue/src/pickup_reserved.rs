//! Queue ids reserved for `sendmail -bs` sessions: the pickup hands one
//! out when the session starts, so that its `250` can name the id the
//! message will be queued under, and takes it back when the message comes
//! over the socket from the same uid. Bounded in number and time, since
//! any local user may ask.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use postern_mail::QueueId;

/// How many queue ids may be reserved (`sendmail -bs`) and not yet
/// used; the oldest is forgotten first (its session then gets a fresh
/// id, and its `250` names the one it reserved, as with the maildrop).
const MAX_RESERVED: usize = 1024;

/// How long a reserved id waits for its message.
const RESERVED_FOR: Duration = Duration::from_secs(3600);

/// Queue ids handed to `sendmail -bs` sessions, each for one uid.
#[derive(Debug, Default)]
pub(crate) struct Reserved(Mutex<VecDeque<(QueueId, u32, Instant)>>);

impl Reserved {
    /// Reserves `id` for `uid`, forgetting expired ids and, when full,
    /// the oldest.
    pub(crate) fn add(&self, id: QueueId, uid: u32) {
        let mut ids = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        ids.retain(|(_, _, at)| at.elapsed() < RESERVED_FOR);
        if ids.len() >= MAX_RESERVED {
            ids.pop_front();
        }
        ids.push_back((id, uid, Instant::now()));
    }

    /// `id` if it was reserved for `uid`, now used.
    pub(crate) fn take(&self, id: &str, uid: u32) -> Option<QueueId> {
        let mut ids = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let at = ids
            .iter()
            .position(|(i, u, at)| i.as_str() == id && *u == uid && at.elapsed() < RESERVED_FOR)?;
        ids.remove(at).map(|(i, _, _)| i)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_reserved_id_is_its_callers_once() {
        let reserved = Reserved::default();
        let id = crate::id::next_id();
        reserved.add(id.clone(), 1000);
        assert_eq!(reserved.take(id.as_str(), 1001), None);
        assert_eq!(reserved.take(id.as_str(), 1000), Some(id.clone()));
        assert_eq!(reserved.take(id.as_str(), 1000), None);
        // Bounded: the oldest goes first.
        let ids: Vec<QueueId> = (0..=MAX_RESERVED).map(|_| crate::id::next_id()).collect();
        for id in &ids {
            reserved.add(id.clone(), 7);
        }
        assert_eq!(reserved.take(ids[0].as_str(), 7), None);
        assert!(reserved.take(ids[MAX_RESERVED].as_str(), 7).is_some());
    }
}
