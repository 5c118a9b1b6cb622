//! Per-client counters: the job of Postfix's `anvil(8)`. One [`Anvil`]
//! per service counts, for each client address, the connections open now,
//! the connections made and the MAIL commands given in the current
//! `anvil_rate_time_unit`. The session compares them with
//! `smtpd_client_connection_count_limit`,
//! `smtpd_client_connection_rate_limit` and
//! `smtpd_client_message_rate_limit`.
//!
//! As in anvil, a rate is counted over a window of one time unit that
//! starts at the client's first event and restarts once it has passed; it
//! is not a sliding average.
//!
//! Memory is bounded whatever clients do: an address is forgotten once it
//! has no connection open and its windows have passed (a sweep runs at most
//! once per time unit, and whenever the table is full), and past
//! [`MAX_CLIENTS`] addresses with only rates to count are not counted at
//! all (the limits fail open rather than grow the table). Open connections
//! are always counted; their number is bounded by the listener's process
//! limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Addresses remembered at most for their rates alone (Postfix's anvil has
/// no such cap; it relies on its process being restarted).
pub const MAX_CLIENTS: usize = 100_000;

/// A count of events within one time unit.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            start: now,
            count: 0,
        }
    }

    /// Counts one event and returns the count in the current window.
    fn hit(&mut self, now: Instant, unit: Duration) -> u32 {
        if now.duration_since(self.start) >= unit {
            *self = Window::new(now);
        }
        self.count = self.count.saturating_add(1);
        self.count
    }

    fn expired(&self, now: Instant, unit: Duration) -> bool {
        now.duration_since(self.start) >= unit
    }
}

/// What is known of one address.
#[derive(Debug, Clone, Copy)]
struct Client {
    /// Connections open now.
    connections: u32,
    connection_rate: Window,
    message_rate: Window,
}

impl Client {
    fn new(now: Instant) -> Client {
        Client {
            connections: 0,
            connection_rate: Window::new(now),
            message_rate: Window::new(now),
        }
    }

    fn idle(&self, now: Instant, unit: Duration) -> bool {
        self.connections == 0
            && self.connection_rate.expired(now, unit)
            && self.message_rate.expired(now, unit)
    }
}

#[derive(Debug)]
struct Table {
    clients: HashMap<IpAddr, Client>,
    last_sweep: Instant,
}

/// The counters of one service.
#[derive(Debug)]
pub struct Anvil {
    /// `anvil_rate_time_unit` (60s): the window of every rate.
    time_unit: Duration,
    table: Mutex<Table>,
}

/// What [`Anvil::connect`] counted for a new connection.
#[derive(Debug)]
pub struct Admission {
    /// Connections from this address open now, this one included.
    pub count: u32,
    /// Connections from this address in the current time unit, this one
    /// included.
    pub rate: u32,
    /// Holds this connection in the count until dropped.
    pub guard: ConnectionGuard,
}

/// One open connection; dropping it ends it in the count.
#[derive(Debug)]
pub struct ConnectionGuard {
    anvil: Arc<Anvil>,
    client: IpAddr,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut table = self.anvil.lock();
        if let Some(c) = table.clients.get_mut(&self.client) {
            c.connections = c.connections.saturating_sub(1);
        }
    }
}

impl Anvil {
    /// Counters whose rates are counted per `time_unit`.
    pub fn new(time_unit: Duration) -> Anvil {
        Anvil {
            time_unit: time_unit.max(Duration::from_secs(1)),
            table: Mutex::new(Table {
                clients: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic elsewhere while holding the lock leaves counts that are
        // still counts: keep using them.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a new connection from `client`.
    pub fn connect(self: &Arc<Anvil>, client: IpAddr) -> Admission {
        let now = Instant::now();
        let unit = self.time_unit;
        let mut table = self.lock();
        sweep(&mut table, now, unit);
        let c = table
            .clients
            .entry(client)
            .or_insert_with(|| Client::new(now));
        c.connections = c.connections.saturating_add(1);
        let rate = c.connection_rate.hit(now, unit);
        let count = c.connections;
        drop(table);
        Admission {
            count,
            rate,
            guard: ConnectionGuard {
                anvil: Arc::clone(self),
                client,
            },
        }
    }

    /// Counts a MAIL command from `client`; returns the count in the
    /// current time unit (0 when the table is full and the address is not
    /// in it: not counted).
    pub fn message(&self, client: IpAddr) -> u32 {
        let now = Instant::now();
        let unit = self.time_unit;
        let mut table = self.lock();
        sweep(&mut table, now, unit);
        if table.clients.len() >= MAX_CLIENTS && !table.clients.contains_key(&client) {
            return 0;
        }
        table
            .clients
            .entry(client)
            .or_insert_with(|| Client::new(now))
            .message_rate
            .hit(now, unit)
    }

    /// How many addresses are remembered now.
    pub fn len(&self) -> usize {
        self.lock().clients.len()
    }

    /// Whether no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Forgets idle addresses, once per time unit or when the table is full.
fn sweep(table: &mut Table, now: Instant, unit: Duration) {
    let full = table.clients.len() >= MAX_CLIENTS;
    if !full && now.duration_since(table.last_sweep) < unit {
        return;
    }
    table.clients.retain(|_, c| !c.idle(now, unit));
    table.last_sweep = now;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn counts_open_connections_and_rates() {
        let anvil = Arc::new(Anvil::new(Duration::from_secs(60)));
        let a = anvil.connect(ip(1));
        assert_eq!((a.count, a.rate), (1, 1));
        let b = anvil.connect(ip(1));
        assert_eq!((b.count, b.rate), (2, 2));
        let other = anvil.connect(ip(2));
        assert_eq!((other.count, other.rate), (1, 1));
        drop(a);
        let c = anvil.connect(ip(1));
        // One closed: two open, but three made in this minute.
        assert_eq!((c.count, c.rate), (2, 3));
        assert_eq!(anvil.message(ip(1)), 1);
        assert_eq!(anvil.message(ip(1)), 2);
        assert_eq!(anvil.message(ip(3)), 1);
    }

    #[test]
    fn windows_restart_and_idle_clients_are_forgotten() {
        let unit = Duration::from_secs(1);
        let anvil = Arc::new(Anvil::new(unit));
        drop(anvil.connect(ip(1)));
        assert_eq!(anvil.message(ip(2)), 1);
        let held = anvil.connect(ip(3));
        assert_eq!(anvil.len(), 3);
        std::thread::sleep(unit + Duration::from_millis(50));
        // The sweep on this event forgets 1 and 2; 3 is still connected.
        assert_eq!(anvil.message(ip(4)), 1);
        assert_eq!(anvil.len(), 2);
        let again = anvil.connect(ip(3));
        assert_eq!((again.count, again.rate), (2, 1));
        drop((held, again));
    }

    #[test]
    fn a_full_table_stops_counting_rates_of_newcomers() {
        let anvil = Arc::new(Anvil::new(Duration::from_secs(60)));
        {
            let mut t = anvil.lock();
            for i in 0..MAX_CLIENTS {
                let n = u32::try_from(i).unwrap();
                t.clients
                    .insert(IpAddr::from(n.to_be_bytes()), Client::new(Instant::now()));
            }
            for c in t.clients.values_mut() {
                c.message_rate.count = 1;
            }
        }
        assert_eq!(anvil.message(ip(200)), 0);
        assert_eq!(anvil.len(), MAX_CLIENTS);
        // A connection is always counted.
        let a = anvil.connect(ip(200));
        assert_eq!(a.count, 1);
    }
}
