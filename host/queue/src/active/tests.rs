//! The active queue's tests: round robin and the concurrency limits, the
//! entries of one message in turn, and the memory bounds (messages,
//! recipients, preloaded files). Apart to keep active.rs to the queue.

use super::*;

fn id(n: usize) -> QueueId {
    QueueId::parse(&format!("ABCDEF{n:06}")).unwrap()
}

fn limits(process: usize, destination: usize) -> Limits {
    Limits {
        process,
        messages: 100,
        recipients: 1000,
        destination,
        transports: vec![("lmtp".to_owned(), 1)],
    }
}

#[test]
fn a_backlog_does_not_delay_other_destinations() {
    let mut a = Active::new(limits(10, 3));
    for n in 0..50 {
        a.insert(id(n), vec![("smtp:slow".to_owned(), vec![0])]);
    }
    a.insert(id(50), vec![("smtp:fast".to_owned(), vec![0])]);
    let jobs: Vec<Job> = std::iter::from_fn(|| a.next_job()).collect();
    // The slow destination takes its 3 slots, no more; the fast one's
    // message goes at once though it arrived last.
    let slow = jobs.iter().filter(|j| j.destination == "smtp:slow").count();
    assert_eq!(slow, 3);
    assert!(jobs.iter().any(|j| j.id == id(50)));
    assert_eq!(jobs.len(), 4);
    assert!(jobs.iter().all(|j| j.last));
}

#[test]
fn the_process_limit_is_shared_round_robin() {
    let mut a = Active::new(limits(4, 0));
    for n in 0..20 {
        a.insert(id(n), vec![("smtp:a".to_owned(), vec![0])]);
        a.insert(id(100 + n), vec![("smtp:b".to_owned(), vec![0])]);
    }
    let jobs: Vec<Job> = std::iter::from_fn(|| a.next_job()).collect();
    assert_eq!(jobs.len(), 4);
    let b = jobs.iter().filter(|j| j.destination == "smtp:b").count();
    assert_eq!(b, 2);
    assert_eq!(a.busy(), 4);
    a.release(&jobs[0], false);
    assert!(a.next_job().is_some());
    assert!(a.next_job().is_none());
}

#[test]
fn a_transport_limit_overrides_the_default() {
    let mut a = Active::new(limits(10, 5));
    for n in 0..5 {
        a.insert(id(n), vec![("lmtp:unix:/s".to_owned(), vec![0])]);
    }
    assert!(a.next_job().is_some());
    assert!(a.next_job().is_none());
}

#[test]
fn entries_of_one_message_go_one_after_another() {
    let mut a = Active::new(limits(10, 5));
    a.insert(
        id(1),
        vec![
            ("smtp:a".to_owned(), vec![0, 2]),
            ("smtp:b".to_owned(), vec![1]),
        ],
    );
    assert_eq!(a.recipients(), 3);
    let first = a.next_job().unwrap();
    assert_eq!((first.recipients.clone(), first.last), (vec![0, 2], false));
    assert!(a.next_job().is_none(), "the message is busy");
    a.release(&first, true);
    let second = a.next_job().unwrap();
    assert_eq!((second.recipients.clone(), second.last), (vec![1], true));
    a.release(&second, true);
    assert_eq!((a.messages(), a.recipients(), a.busy()), (0, 0, 0));
    assert!(a.next_job().is_none());
    assert!(a.destinations.is_empty() && a.rotation.is_empty());
}

#[test]
fn a_message_that_leaves_early_drops_its_other_entries() {
    let mut a = Active::new(limits(10, 5));
    a.insert(
        id(1),
        vec![
            ("smtp:a".to_owned(), vec![0]),
            ("smtp:b".to_owned(), vec![1]),
        ],
    );
    let first = a.next_job().unwrap();
    a.release(&first, false);
    assert_eq!(a.messages(), 0);
    assert!(a.next_job().is_none());
    // Read in again later (after a deferral): delivered afresh.
    a.insert(id(1), vec![("smtp:a".to_owned(), vec![0])]);
    assert_eq!(a.next_job().unwrap().recipients, vec![0]);
    assert!(a.next_job().is_none());
}

fn loaded(id: &QueueId, content: usize) -> Loaded {
    let body = vec![b'x'; content];
    let bytes = crate::format::new_file(id, &crate::testing::envelope(&["a@x.org"]), &body);
    let len = bytes.len() as u64;
    let message = crate::format::parse(&bytes).unwrap().message;
    Loaded { message, len }
}

#[test]
fn the_first_delivery_takes_the_file_as_read_in() {
    let mut a = Active::new(limits(10, 5));
    a.admit(
        id(1),
        vec![
            ("smtp:a".to_owned(), vec![0]),
            ("smtp:b".to_owned(), vec![1]),
        ],
        Some(loaded(&id(1), 10)),
    );
    let first = a.next_job().unwrap();
    assert_eq!(first.loaded.as_ref().unwrap().message.id, id(1));
    assert_eq!(a.preloaded, 0);
    a.release(&first, true);
    // The second entry reads the file again: the first delivery
    // changed it.
    assert!(a.next_job().unwrap().loaded.is_none());
}

#[test]
fn what_is_kept_read_in_is_bounded() {
    let mut a = Active::new(limits(10, 0));
    let big = PRELOAD_BUDGET / 3;
    for n in 0..5 {
        a.admit(
            id(n),
            vec![("d".to_owned(), vec![0])],
            Some(loaded(&id(n), big)),
        );
    }
    assert!(a.preloaded <= PRELOAD_BUDGET);
    let jobs: Vec<Job> = std::iter::from_fn(|| a.next_job()).collect();
    let kept = jobs.iter().filter(|j| j.loaded.is_some()).count();
    assert_eq!((jobs.len(), kept), (5, 2));
    // A message that leaves memory gives its share back.
    let mut b = Active::new(limits(10, 1));
    b.admit(id(1), vec![("d".to_owned(), vec![0])], None);
    b.admit(
        id(2),
        vec![("d".to_owned(), vec![0])],
        Some(loaded(&id(2), 5)),
    );
    assert!(b.preloaded > 0);
    b.remove(&id(2));
    assert_eq!(b.preloaded, 0);
}

#[test]
fn room_respects_both_memory_limits() {
    let mut a = Active::new(Limits {
        messages: 3,
        recipients: 4,
        ..limits(10, 5)
    });
    assert_eq!(a.room(), 3);
    a.insert(id(1), vec![("d".to_owned(), vec![0])]);
    assert_eq!(a.room(), 2);
    a.insert(id(2), vec![("d".to_owned(), vec![0, 1, 2])]);
    assert_eq!(a.room(), 0, "4 recipients in memory");
    // A message with no pending recipient still takes a place.
    let mut b = Active::new(limits(10, 5));
    b.insert(id(1), Vec::new());
    let job = b.next_job().unwrap();
    assert!(job.last && job.recipients.is_empty());
}
