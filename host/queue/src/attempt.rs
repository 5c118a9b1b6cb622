//! One delivery of one message's entry (its recipients at one
//! destination, [`crate::active`]): the pending ones handed to the agent
//! in batches (one recipient each for local delivery, all those of one
//! next hop for SMTP), each batch's outcomes logged and recorded in the
//! queue file before the next; after the message's last entry, the file
//! removed or deferred. Also how the scheduler reads a message in.

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
use crate::maillog::{Delays, log_delivery, recipient_line};
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

/// Delivers the recipients `only` (by index; those still pending) of
/// message `id` from `active/`; after the message's `last` entry,
/// finishes it.
pub(crate) async fn attempt(
    queue: Arc<Queue>,
    agent: Arc<dyn Deliver>,
    id: QueueId,
    only: Vec<usize>,
    last: bool,
) -> Outcome {
    let active = SystemTime::now();
    let retry = active + queue.settings.minimal_backoff_time;
    let spool = queue.spool.clone();
    let file_id = id.clone();
    let (file, mut message) = match blocking(move || load(&spool, &file_id)).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return Outcome::Dropped,
        Err(e) => {
            tracing::warn!(target: "postern/qmgr", "{id}: cannot read queue file: {e}");
            return Outcome::Retry(retry);
        }
    };
    let file = Arc::new(file);
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
            metrics::counter!(
                "postern_deliveries_total",
                "transport" => answer.agent,
                "status" => status.word(),
            )
            .increment(1);
            log_delivery(
                answer.agent,
                &recipient_line(&id, recipient, &answer.relay, &delays, &status),
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
        // unlink is the record. If a crash comes between the two, the
        // unsynced records may be missing or torn, and those recipients,
        // already delivered, are delivered again (a duplicate, never a
        // loss: nothing is owed but the removal); Postfix's qmgr syncs
        // neither. One disk wait less per message.
        let removed_next = last && n + 1 == count && finished(&message);
        if let Err(e) = append_with(&file, records, !removed_next).await {
            // Not recorded: after the retry these recipients may get a
            // second copy, which beats losing track of the others.
            tracing::warn!(target: "postern/qmgr", "{id}: cannot record delivery status: {e}");
            return Outcome::Retry(retry);
        }
    }
    if !last {
        return Outcome::Partial;
    }
    match finish(&queue, &id, &mut message, &file).await {
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
async fn finish(
    queue: &Queue,
    id: &QueueId,
    message: &mut QueuedMessage,
    file: &Arc<File>,
) -> io::Result<Outcome> {
    let now = SystemTime::now();
    let age = now
        .duration_since(message.envelope.arrival)
        .unwrap_or_default();
    let lifetime = queue
        .settings
        .lifetime(message.envelope.sender == ReversePath::Null);
    if !message.is_done() && age >= lifetime {
        expire(id, message, file).await?;
    }
    queue.notify(message, file).await?;
    queue.warn(message, file, now).await?;
    let spool = queue.spool.clone();
    let file_id = id.clone();
    if message.is_done() {
        match blocking(move || spool.remove_finished(QueueName::Active, &file_id)).await {
            Ok(()) => tracing::info!(target: "postern/qmgr", "{id}: removed"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Outcome::Dropped),
            Err(e) => return Err(e),
        }
        return Ok(Outcome::Done);
    }
    let deferrals = message.deferrals.saturating_add(1);
    let next = now + queue.settings.backoff(deferrals);
    append(file, deferral_record(next)).await?;
    let file = Arc::clone(file);
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
            Ok(Some((file, parsed.message)))
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

/// Reads message `id` in for the scheduler: its pending recipients (by
/// index) sorted by destination, the agent's [`Deliver::destination`] or
/// else the recipient's domain. `None` when there is nothing to deliver
/// (the file vanished or was quarantined). Blocking.
pub(crate) fn read_in(
    spool: &Spool,
    agent: &dyn Deliver,
    id: &QueueId,
) -> io::Result<Option<Entries>> {
    let Some((_, message)) = load(spool, id)? else {
        return Ok(None);
    };
    let mut entries = Entries::new();
    for (i, recipient) in message.pending() {
        let key = crate::filter::destination(agent, &message.envelope, recipient)
            .unwrap_or_else(|| recipient.address.domain().as_str().to_ascii_lowercase());
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(i),
            None => entries.push((key, vec![i])),
        }
    }
    Ok(Some(entries))
}

/// Appends one record and makes it durable before the next recipient.
pub(crate) async fn append(file: &Arc<File>, record: Vec<u8>) -> io::Result<()> {
    append_with(file, record, true).await
}

/// Appends one record, made durable if `sync`.
async fn append_with(file: &Arc<File>, record: Vec<u8>, sync: bool) -> io::Result<()> {
    let file = Arc::clone(file);
    blocking(move || {
        // Opened with O_APPEND: the record lands at the end in one write.
        (&*file).write_all(&record)?;
        if sync { file.sync_data() } else { Ok(()) }
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
