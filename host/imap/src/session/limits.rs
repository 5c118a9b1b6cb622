//! Dovecot's `mail_max_userip_connections`: at most so many sessions of
//! one user from one address, so that a misconfigured client (or one
//! stolen password) cannot take every session slot of the server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Sessions per (user, client address), shared by imap and imaps.
#[derive(Debug, Default)]
pub struct UserIp {
    held: Mutex<HashMap<(String, IpAddr), usize>>,
}

/// One session's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    table: Arc<UserIp>,
    key: (String, IpAddr),
}

impl UserIp {
    /// An empty table.
    pub fn new() -> UserIp {
        UserIp::default()
    }

    /// A slot for `user` from `ip`, unless `max` are taken.
    pub fn enter(self: &Arc<UserIp>, user: &str, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (user.to_owned(), ip);
        let n = held.entry(key.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            table: Arc::clone(self),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self
            .table
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn capped_until_dropped() {
        let t = Arc::new(UserIp::new());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = t.enter("u", ip, 2).unwrap();
        let _b = t.enter("u", ip, 2).unwrap();
        assert!(t.enter("u", ip, 2).is_none());
        assert!(t.enter("v", ip, 2).is_some());
        drop(a);
        assert!(t.enter("u", ip, 2).is_some());
    }
}
