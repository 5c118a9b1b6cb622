//! One delivery of one message's entry (its recipients at one
//! destination, [`crate::active`]): the pending ones handed to the agent
//! in batches (one recipient each for local delivery, all those of one
//! next hop for SMTP), each batch's outcomes logged and recorded in the
//! queue file before the next; after the message's last entry, the file
//! removed or deferred. Also how the scheduler reads a message in, and
//! how its first delivery reuses that reading ([`Loaded`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::SystemTime;

use postern_mail::{Deliver, QueueId, Recipient, ReversePath};

use crate::active::Entries;
use crate::format::{
    QueuedMessage, deferral_record, notice_record, parse_named, remote_status_record,
};
use crate::maillog::{Delays, report};
use crate::queue::{Queue, blocking};
use crate::spool::{QueueName, Spool};
use crate::status::RecipientStatus;

/// How an attempt ended, for the scheduler.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// This entry is delivered and recorded; the message has others.
    Partial,
    /// Every recipient is done; the file is gone.
    Done,
    /// Moved to `deferred/`, next attempt at this time.
    Deferred(SystemTime),
    /// The file could not be read or updated; it stays in `active/` and is
    /// tried again at this time.
    Retry(SystemTime),
    /// The file vanished or was quarantined: nothing more to do.
    Dropped,
}

/// A queue file as the scheduler read it in: the parse, and the file's
/// length then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loaded {
    pub message: QueuedMessage,
    pub len: u64,
}

impl Loaded {
    /// What keeping it in memory costs, roughly.
    pub fn weight(&self) -> usize {
        self.message.content.len() + 512 * (1 + self.message.envelope.recipients.len())
    }
}

/// Delivers the recipients `only` (by index; those still pending) of
/// message `id` from `active/`; after the message's `last` entry,
/// finishes it. `loaded`: the file as the scheduler read it in, if kept.
pub(crate) async fn attempt(
    queue: Arc<Queue>,
    agent: Arc<dyn Deliver>,
    id: QueueId,
    only: Vec<usize>,
    last: bool,
    loaded: Option<Box<Loaded>>,
) -> Outcome {
    let active = SystemTime::now();
    let retry = active + queue.settings().minimal_backoff_time;
    let reopened = match loaded {
        Some(loaded) => reopen(&queue.spool, &id, *loaded),
        None => Reopened::Changed,
    };
    let opened = match reopened {
        Reopened::Same(file, message) => Ok(Some((file, *message))),
        Reopened::Gone => Ok(None),
        Reopened::Changed => {
            let spool = queue.spool.clone();
            let file_id = id.clone();
            blocking(move || load(&spool, &file_id)).await
        }
    };
    let (file, mut message) = match opened {
        Ok(Some(opened)) => opened,
        Ok(None) => return Outcome::Dropped,
        Err(e) => {
            tracing::warn!(target: "postern/qmgr", "{id}: cannot read queue file: {e}");
            return Outcome::Retry(retry);
        }
    };
    let file = Arc::new(file);
    // The status records of the last batch when the file is removed
    // after it: see below.
    let mut unrecorded = Vec::new();
    let groups = groups(agent.as_ref(), &message, &only);
    let count = groups.len();
    for (n, group) in groups.into_iter().enumerate() {
        let recipients: Vec<Recipient> = group
            .iter()
            .filter_map(|&i| message.envelope.recipients.get(i).cloned())
            .collect();
        let start = SystemTime::now();
        let answers = agent
            .deliver_batch(&id, &message.envelope, &recipients, &message.content)
            .await;
        let end = SystemTime::now();
        let delays = Delays {
            arrival: message.envelope.arrival,
            active,
            start,
            end,
        };
        // One record per recipient, written and synced together: a batch
        // is one SMTP transaction, answered at once.
        let mut records = Vec::new();
        let mut statuses = Vec::with_capacity(group.len());
        let mut handed_over = Vec::new();
        for ((&i, recipient), answer) in group.iter().zip(&recipients).zip(answers) {
            let status = RecipientStatus::from(answer.status);
            report(
                answer.agent,
                &id,
                recipient,
                &answer.relay,
                &delays,
                &status,
            );
            records.extend(remote_status_record(i, &status, answer.remote.as_ref()));
            // RFC 3461 §5.2.3: a next hop that took NOTIFY=SUCCESS with
            // the message reports the success; a second report from here
            // would be a duplicate. Recorded as a notice that names the
            // message itself: nothing sent.
            if answer.next_hop_notifies
                && matches!(status, RecipientStatus::Sent { .. })
                && recipient.notify_success()
            {
                handed_over.push(i);
            }
            statuses.push((i, status, answer.remote));
        }
        if !handed_over.is_empty() {
            records.extend(notice_record(&id, &handed_over));
        }
        // The in-memory message first (on an error below it is dropped
        // with the attempt): it tells whether the file is removed next.
        for (i, status, remote) in statuses {
            if let (Some(slot), Some(remote_slot)) =
                (message.statuses.get_mut(i), message.remote.get_mut(i))
            {
                *slot = status;
                *remote_slot = remote;
            }
        }
        for i in handed_over {
            if let Some(flag) = message.notified.get_mut(i) {
                *flag = true;
            }
        }
        // The records are fdatasynced before the next recipient, except
        // the last ones of a message that `finish` then removes: there the
        // unlink is the record, and they are not written at all (written
        // only if the unlink fails, so that the retry knows them). If a
        // crash comes before the unlink, those recipients, already
        // delivered, are delivered again (a duplicate, never a loss:
        // nothing is owed but the removal); Postfix's qmgr syncs neither.
        // One disk wait and one write less per message.
        if last && n + 1 == count && finished(&message) {
            unrecorded = records;
            continue;
        }
        if let Err(e) = append(&file, records).await {
            // Not recorded: after the retry these recipients may get a
            // second copy, which beats losing track of the others.
            tracing::warn!(target: "postern/qmgr", "{id}: cannot record delivery status: {e}");
            return Outcome::Retry(retry);
        }
    }
    if !last {
        return Outcome::Partial;
    }
    match finish(&queue, &id, &mut message, file, unrecorded).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!(target: "postern/qmgr", "{id}: cannot update queue file: {e}");
            Outcome::Retry(retry)
        }
    }
}

/// After the last recipient of this attempt: expire what outlived its
/// lifetime, queue the bounce notice owed for failed recipients and the
/// delay warning owed for deferred ones, then remove the file if all are
/// done, else defer it with the next backoff.
/// A file the operator deleted or moved meanwhile (`postern queue delete`,
/// `hold`) is left where it is: the message is no longer ours.
/// `unrecorded`: the last status records, not written because the file
/// was to go; written (and synced) if it cannot.
async fn finish(
    queue: &Queue,
    id: &QueueId,
    message: &mut QueuedMessage,
    file: Arc<File>,
    unrecorded: Vec<u8>,
) -> io::Result<Outcome> {
    let unrecorded = if !unrecorded.is_empty() && !finished(message) {
        // Not the case `attempt` skips the write for; never lose them.
        append(&file, unrecorded).await?;
        Vec::new()
    } else {
        unrecorded
    };
    let now = SystemTime::now();
    let age = now
        .duration_since(message.envelope.arrival)
        .unwrap_or_default();
    let lifetime = queue
        .settings()
        .lifetime(message.envelope.sender == ReversePath::Null);
    if !message.is_done() && age >= lifetime {
        expire(id, message, &file).await?;
    }
    queue.notify(message, &file).await?;
    queue.warn(message, &file, now).await?;
    let spool = queue.spool.clone();
    let file_id = id.clone();
    if message.is_done() {
        // Closed before the unlink: the unlink of a closed file frees its
        // inode at once, where the last close of an unlinked one does it,
        // after an orphan-list round trip in the journal (ext4). Both here
        // on the async thread, as `reopen` opens: metadata updates of a
        // name this daemon owns, with no disk wait (the unlink is not
        // synced), cheaper than a trip to a blocking thread and back.
        // Kept as a spare (written over by a new message) only if this was
        // the last handle to it: no write may land in it later.
        let spare = match Arc::try_unwrap(file) {
            Ok(file) => {
                drop(file);
                Some(message.content.len() as u64)
            }
            Err(_) => None,
        };
        let removed = match spool.remove_finished(QueueName::Active, &file_id, spare) {
            Err(e) if e.kind() != io::ErrorKind::NotFound && !unrecorded.is_empty() => {
                // Still there: the statuses must be on record for the
                // retry, or it would deliver these recipients again.
                blocking(move || {
                    let mut file = spool.open_for_update(QueueName::Active, &file_id)?;
                    file.write_all(&unrecorded)?;
                    file.sync_data()?;
                    Err(e)
                })
                .await
            }
            other => other,
        };
        match removed {
            Ok(()) => tracing::info!(target: "postern/qmgr", "{id}: removed"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Outcome::Dropped),
            Err(e) => return Err(e),
        }
        return Ok(Outcome::Done);
    }
    let deferrals = message.deferrals.saturating_add(1);
    let next = now + queue.settings().backoff(deferrals);
    append(&file, deferral_record(next)).await?;
    let moved = blocking(move || {
        // The file's mtime is the next attempt time, as in Postfix: a scan
        // of deferred/ needs no parsing.
        file.set_modified(next)?;
        file.sync_all()?;
        spool.move_to(&file_id, QueueName::Active, QueueName::Deferred)
    })
    .await;
    match moved {
        Ok(()) => Ok(Outcome::Deferred(next)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Outcome::Dropped),
        Err(e) => Err(e),
    }
}

/// Gives up on the deferred recipients of a message older than its
/// lifetime (`maximal_queue_lifetime`, or `bounce_queue_lifetime` for the
/// null sender). Logged as Postfix's qmgr does, once per message and
/// naming the sender: `ID: from=<a@b>, status=expired, returned to
/// sender`; the recipients and their last deferral reasons are in the
/// bounce notice that follows (`status=expired` in the queue file, 5.4.7
/// in the report).
async fn expire(id: &QueueId, message: &mut QueuedMessage, file: &Arc<File>) -> io::Result<()> {
    for (i, slot) in message.statuses.iter_mut().enumerate() {
        if slot.is_final() {
            continue;
        }
        let (dsn, detail) = slot
            .dsn_detail()
            .map(|(d, t)| (d, t.to_owned()))
            .unwrap_or((postern_mail::EnhancedCode::new(4, 0, 0), String::new()));
        let expired = RecipientStatus::Expired { dsn, detail };
        let remote = message.remote.get(i).and_then(Option::as_ref);
        append(file, remote_status_record(i, &expired, remote)).await?;
        *slot = expired;
    }
    tracing::info!(
        target: "postern/qmgr",
        "{id}: from=<{}>, status=expired, returned to sender",
        message.envelope.sender
    );
    Ok(())
}

/// Opens and parses `active/ID`; quarantines it if it does not parse.
/// `None` when there is nothing to deliver.
fn load(spool: &Spool, id: &QueueId) -> io::Result<Option<(File, QueuedMessage)>> {
    Ok(load_sized(spool, id)?.map(|(file, message, _)| (file, message)))
}

/// [`load`], with the file's length after it (a torn record cut off).
fn load_sized(spool: &Spool, id: &QueueId) -> io::Result<Option<(File, QueuedMessage, u64)>> {
    let mut file = match spool.open_for_update(QueueName::Active, id) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    match parse_named(id, &bytes) {
        Ok(parsed) => {
            if parsed.valid_len < bytes.len() {
                // A torn record (a crash mid-append): cut it off, or the
                // next record would land after garbage.
                file.set_len(parsed.valid_len as u64)?;
                file.sync_all()?;
            }
            Ok(Some((file, parsed.message, parsed.valid_len as u64)))
        }
        Err(e) => {
            drop(file);
            let path = spool.path(QueueName::Active, id);
            let dest = spool.quarantine(&path)?;
            tracing::warn!(
                target: "postern/qmgr",
                "{id}: corrupt queue file {}: {e}; moved to {}, not delivered", path.display(), dest.display()
            );
            Ok(None)
        }
    }
}

/// The pending recipients of `message` among `only` (by index) in the
/// batches the agent wants: recipients with the same
/// [`Deliver::destination`] (or all, with a content filter) go together, in the order of their first
/// appearance; the others alone.
fn groups(agent: &dyn Deliver, message: &QueuedMessage, only: &[usize]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for (i, _) in message
        .pending()
        .filter(|(i, _)| only.binary_search(i).is_ok())
    {
        let Some(recipient) = message.envelope.recipients.get(i) else {
            continue;
        };
        match crate::filter::destination(agent, &message.envelope, recipient) {
            Some(key) => match by_key.get(&key) {
                Some(&g) => {
                    if let Some(group) = out.get_mut(g) {
                        group.push(i);
                    }
                }
                None => {
                    by_key.insert(key, out.len());
                    out.push(vec![i]);
                }
            },
            None => out.push(vec![i]),
        }
    }
    out
}

/// What [`reopen`] found.
enum Reopened {
    /// The file as it was read in, opened for the attempt.
    Same(File, Box<QueuedMessage>),
    /// Deleted or moved (`postern queue delete`, `hold`): not ours now.
    Gone,
    /// Changed since, or not checkable: read it again.
    Changed,
}

/// Opens `active/ID` for the attempt of a message the scheduler has read
/// in, reusing that parse when the file is as long as it was then: only
/// this daemon appends to a file in `active/`, one delivery of a message
/// at a time, so the same length is the same file. Opening it still
/// tells a message the operator deleted or held meanwhile, as the
/// reading did. One open and one fstat, on a name just looked up: done
/// here rather than on a blocking thread.
fn reopen(spool: &Spool, id: &QueueId, loaded: Loaded) -> Reopened {
    let file = match spool.open_for_update(QueueName::Active, id) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Reopened::Gone,
        Err(_) => return Reopened::Changed,
    };
    match file.metadata() {
        Ok(meta) if meta.len() == loaded.len => Reopened::Same(file, Box::new(loaded.message)),
        _ => Reopened::Changed,
    }
}

/// Reads message `id` in for the scheduler: its pending recipients (by
/// index) sorted by destination, the agent's [`Deliver::destination`] or
/// else the recipient's domain, and the parsed file for its first
/// delivery. `None` when there is nothing to deliver (the file vanished
/// or was quarantined). Blocking.
pub(crate) fn read_in(
    spool: &Spool,
    agent: &dyn Deliver,
    id: &QueueId,
) -> io::Result<Option<(Entries, Loaded)>> {
    let Some((_, message, len)) = load_sized(spool, id)? else {
        return Ok(None);
    };
    Ok(Some((entries(agent, &message), Loaded { message, len })))
}

/// `message`'s pending recipients (by index) sorted by destination, the
/// agent's [`Deliver::destination`] or else the recipient's domain. No
/// I/O: the agent's routing tables are in memory.
pub(crate) fn entries(agent: &dyn Deliver, message: &QueuedMessage) -> Entries {
    let mut entries = Entries::new();
    for (i, recipient) in message.pending() {
        let key = crate::filter::destination(agent, &message.envelope, recipient)
            .unwrap_or_else(|| recipient.address.domain().as_str().to_ascii_lowercase());
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(i),
            None => entries.push((key, vec![i])),
        }
    }
    entries
}

/// Appends one record and makes it durable before the next recipient.
pub(crate) async fn append(file: &Arc<File>, record: Vec<u8>) -> io::Result<()> {
    let file = Arc::clone(file);
    blocking(move || {
        // Opened with O_APPEND: the record lands at the end in one write.
        (&*file).write_all(&record)?;
        file.sync_data()
    })
    .await
}

/// Whether `finish` removes `message` with nothing more to do: every
/// recipient done and no notice owed (start-up recovery's test too).
fn finished(message: &QueuedMessage) -> bool {
    message.is_done()
        && message.unnotified_failures().is_empty()
        && message.unnotified_successes().is_empty()
}
