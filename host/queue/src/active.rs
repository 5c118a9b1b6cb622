//! Postfix's in-core active queue (qmgr_message.c, qmgr_queue.c,
//! qmgr_entry.c): the messages the scheduler has read into memory, their
//! pending recipients sorted into one queue per destination, and the
//! choice of what to deliver next.
//!
//! A message read in is split into *entries*, one per destination its
//! pending recipients go to (the delivery agent's
//! [`postern_mail::Deliver::destination`] key, or the recipient's domain
//! when the agent has none). Each destination has a queue of entries and
//! a count of deliveries in flight, capped by its concurrency limit
//! (`default_destination_concurrency_limit`, or the transport's own
//! `smtp_destination_concurrency_limit`...). [`Active::next_job`] walks
//! the destinations round robin and takes the first entry of the next
//! one with room, so a destination with a long backlog, or a slow one
//! that holds all of its slots, cannot delay mail to the others: the
//! total of deliveries (`default_process_limit`) is shared, and each
//! destination takes at most its own limit of it.
//!
//! The entries of one message are delivered one after another, never two
//! at once (they append to the same queue file); the last one finishes
//! the message (remove, bounce, or defer it). Postfix delivers them
//! concurrently; here a message to a slow and a fast destination waits
//! for the slow one before the fast one.
//!
//! What is in memory is bounded: at most `qmgr_message_active_limit`
//! messages and, give or take the recipients of the last message read,
//! `qmgr_message_recipient_limit` recipients. The rest of the queue stays
//! on disk, known by its queue id only ([`crate::queue::Schedule`]), and
//! is read in as messages leave.
//!
//! A message read in keeps its parsed file ([`Loaded`]) for its first
//! delivery, within [`PRELOAD_BUDGET`] bytes in all: that delivery then
//! opens the file without reading and parsing it a second time (Postfix's
//! qmgr reads a queue file, and its delivery agent reads it again).

use std::collections::{HashMap, VecDeque};

use postern_mail::QueueId;

use crate::attempt::Loaded;

/// The most bytes of message content kept parsed in memory for the
/// deliveries about to start; the others read their file again.
pub(crate) const PRELOAD_BUDGET: usize = 32 << 20;

/// A message's pending recipients (by index) grouped by destination, in
/// the order of their first appearance.
pub(crate) type Entries = Vec<(String, Vec<usize>)>;

/// The part of a message one delivery takes: its recipients (by index)
/// that go to one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    pub id: QueueId,
    pub destination: String,
    pub recipients: Vec<usize>,
    /// The message's last pending entry: the delivery finishes it.
    pub last: bool,
    /// The file as it was read in, for the message's first delivery.
    pub loaded: Option<Box<Loaded>>,
}

/// A message in memory.
#[derive(Debug)]
struct Resident {
    /// Its entries not yet delivered in this pass, by destination.
    entries: Entries,
    /// Recipients counted against `qmgr_message_recipient_limit`.
    recipients: usize,
    /// One of its entries is being delivered.
    busy: bool,
    /// Its file as read in, until its first delivery takes it.
    loaded: Option<Box<Loaded>>,
}

/// One destination's queue.
#[derive(Debug, Default)]
struct Destination {
    /// Messages with an entry here, in arrival order. A message that left
    /// memory meanwhile is dropped when met (lazy deletion).
    entries: VecDeque<QueueId>,
    /// Deliveries in flight.
    busy: usize,
}

/// The in-core active queue.
#[derive(Debug)]
pub(crate) struct Active {
    messages: HashMap<QueueId, Resident>,
    destinations: HashMap<String, Destination>,
    /// Destinations with entries, in round-robin order.
    rotation: VecDeque<String>,
    recipients: usize,
    busy: usize,
    /// Content bytes of the `loaded` files kept, within
    /// [`PRELOAD_BUDGET`].
    preloaded: usize,
    limits: Limits,
}

/// The limits the active queue works within.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// `default_process_limit`: deliveries in flight in all.
    pub process: usize,
    /// `qmgr_message_active_limit`.
    pub messages: usize,
    /// `qmgr_message_recipient_limit`.
    pub recipients: usize,
    /// `default_destination_concurrency_limit`; 0: none.
    pub destination: usize,
    /// `<transport>_destination_concurrency_limit`, by the transport
    /// prefix of the destination key (`smtp` of `smtp:[relay]:25`).
    pub transports: Vec<(String, usize)>,
}

impl Active {
    pub fn new(limits: Limits) -> Active {
        Active {
            messages: HashMap::new(),
            destinations: HashMap::new(),
            rotation: VecDeque::new(),
            recipients: 0,
            busy: 0,
            preloaded: 0,
            limits,
        }
    }

    /// Messages in memory.
    pub fn messages(&self) -> usize {
        self.messages.len()
    }

    /// Recipients in memory.
    pub fn recipients(&self) -> usize {
        self.recipients
    }

    /// Deliveries in flight.
    #[cfg(test)]
    pub fn busy(&self) -> usize {
        self.busy
    }

    /// How many more messages may be read in now (0 when either limit is
    /// reached).
    pub fn room(&self) -> usize {
        if self.recipients >= self.limits.recipients.max(1) {
            return 0;
        }
        self.limits
            .messages
            .max(1)
            .saturating_sub(self.messages.len())
    }

    /// Takes message `id` into memory with its pending recipients sorted
    /// by destination. A message with none still gets one (empty) entry:
    /// its delivery only finishes it.
    #[cfg(test)]
    pub fn insert(&mut self, id: QueueId, entries: Entries) {
        self.admit(id, entries, None);
    }

    /// [`Active::insert`], keeping the parsed file for the first delivery
    /// while the budget allows.
    pub fn admit(&mut self, id: QueueId, mut entries: Entries, loaded: Option<Loaded>) {
        if self.messages.contains_key(&id) {
            return;
        }
        let loaded = loaded
            .filter(|l| self.preloaded + l.weight() <= PRELOAD_BUDGET)
            .map(Box::new);
        if let Some(l) = &loaded {
            self.preloaded += l.weight();
        }
        if entries.is_empty() {
            entries.push((String::new(), Vec::new()));
        }
        let recipients = entries.iter().map(|(_, r)| r.len()).sum();
        for (destination, _) in &entries {
            let d = self.destinations.entry(destination.clone()).or_default();
            // In the rotation exactly while it has entries.
            if d.entries.is_empty() {
                self.rotation.push_back(destination.clone());
            }
            d.entries.push_back(id.clone());
        }
        self.recipients += recipients;
        self.messages.insert(
            id,
            Resident {
                entries,
                recipients,
                busy: false,
                loaded,
            },
        );
    }

    /// The next delivery to start, if the process limit and some
    /// destination's limit allow one: the first free entry of the next
    /// destination in the rotation that has room.
    pub fn next_job(&mut self) -> Option<Job> {
        if self.busy >= self.limits.process.max(1) {
            return None;
        }
        for _ in 0..self.rotation.len() {
            let destination = self.rotation.pop_front()?;
            let limit = self.limit(&destination);
            let Some(d) = self.destinations.get_mut(&destination) else {
                continue;
            };
            let found = if limit == 0 || d.busy < limit {
                take_entry(&mut self.messages, d, &destination)
            } else {
                None
            };
            let loaded = found.as_ref().and_then(|(id, _, _)| {
                let loaded = self.messages.get_mut(id)?.loaded.take()?;
                self.preloaded = self.preloaded.saturating_sub(loaded.weight());
                Some(loaded)
            });
            if found.is_some() {
                d.busy += 1;
            }
            // In the rotation exactly while it has entries.
            if !d.entries.is_empty() {
                self.rotation.push_back(destination.clone());
            } else if d.busy == 0 {
                self.destinations.remove(&destination);
            }
            if let Some((id, recipients, last)) = found {
                self.busy += 1;
                return Some(Job {
                    id,
                    destination,
                    recipients,
                    last,
                    loaded,
                });
            }
        }
        None
    }

    /// A delivery of `job` ended. `keep`: the message stays in memory
    /// for its other entries; otherwise it leaves memory (done, deferred,
    /// or given up for now).
    pub fn release(&mut self, job: &Job, keep: bool) {
        self.busy = self.busy.saturating_sub(1);
        if let Some(d) = self.destinations.get_mut(&job.destination) {
            d.busy = d.busy.saturating_sub(1);
            if d.busy == 0 && d.entries.is_empty() {
                self.destinations.remove(&job.destination);
            }
        }
        let has_entries = self
            .messages
            .get(&job.id)
            .is_some_and(|m| !m.entries.is_empty());
        if keep && has_entries {
            if let Some(m) = self.messages.get_mut(&job.id) {
                m.busy = false;
            }
        } else {
            self.remove(&job.id);
        }
    }

    /// Drops message `id` from memory; its entries in the destination
    /// queues are skipped when met.
    fn remove(&mut self, id: &QueueId) {
        if let Some(m) = self.messages.remove(id) {
            self.recipients = self.recipients.saturating_sub(m.recipients);
            if let Some(l) = m.loaded {
                self.preloaded = self.preloaded.saturating_sub(l.weight());
            }
        }
    }

    /// The concurrency limit of `destination`; 0: none.
    fn limit(&self, destination: &str) -> usize {
        let transport = destination.split_once(':').map_or("", |(t, _)| t);
        self.limits
            .transports
            .iter()
            .find(|(t, _)| t == transport)
            .map_or(self.limits.destination, |(_, l)| *l)
    }
}

/// Takes the first entry of `d` whose message is in memory and not busy:
/// the message id, the recipients, and whether it was the message's
/// last entry. Entries of messages that left memory are dropped on the
/// way; those of busy messages keep their place.
fn take_entry(
    messages: &mut HashMap<QueueId, Resident>,
    d: &mut Destination,
    destination: &str,
) -> Option<(QueueId, Vec<usize>, bool)> {
    let mut i = 0;
    while let Some(id) = d.entries.get(i) {
        let Some(m) = messages.get_mut(id) else {
            d.entries.remove(i);
            continue;
        };
        let Some(at) = m.entries.iter().position(|(k, _)| k == destination) else {
            // Already delivered in this pass (a stale entry).
            d.entries.remove(i);
            continue;
        };
        if m.busy {
            i += 1;
            continue;
        }
        let (_, recipients) = m.entries.remove(at);
        m.busy = true;
        let last = m.entries.is_empty();
        let id = d.entries.remove(i)?;
        return Some((id, recipients, last));
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
