//! The daemon's side: requests go out on one socket from any thread, and
//! a reader thread hands each answer to the request with its id.
//!
//! Once the daemon has dropped to `mail_owner` it [`install`]s its client
//! for the whole process; the delivery and auth crates ask
//! [`installed`] whether to send a step to the helper instead of doing it
//! themselves.

use std::collections::HashMap;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::wire::{Request, Response, read_frame, write_frame};

/// Answers are short (a status and at most a command's first kilobyte of
/// output) but for a file read for a reload, which is capped at
/// [`crate::files::MAX_FILE`]: a longer frame means the helper is not
/// what we think.
const MAX_ANSWER: usize = crate::files::MAX_FILE + 64 * 1024;

/// Requests waiting for their answer, by id; `None` once the helper is
/// gone, so that no request waits for an answer that cannot come.
type Pending = Arc<Mutex<Option<HashMap<u64, mpsc::Sender<Response>>>>>;

/// A connection to the helper, shared by every thread.
#[derive(Debug)]
pub struct Client {
    writer: Mutex<UnixStream>,
    pending: Pending,
    next: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves the map or socket
    // usable: take it anyway.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Client {
    /// Talks to the helper over `stream` (one end of a socket pair).
    pub fn new(stream: UnixStream) -> io::Result<Client> {
        let mut reader = stream.try_clone()?;
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let answers = pending.clone();
        std::thread::Builder::new()
            .name("privsep-client".to_owned())
            .spawn(move || {
                while let Ok(Some(body)) = read_frame(&mut reader, MAX_ANSWER) {
                    let Ok((id, answer)) = Response::decode(&body) else {
                        break;
                    };
                    let waiter = lock(&answers).as_mut().and_then(|m| m.remove(&id));
                    if let Some(tx) = waiter {
                        let _ = tx.send(answer);
                    }
                }
                // The helper is gone (or spoke nonsense): fail every
                // request now and later.
                lock(&answers).take();
            })?;
        Ok(Client {
            writer: Mutex::new(stream),
            pending,
            next: AtomicU64::new(1),
        })
    }

    /// Sends `request` and waits for its answer. Blocking: call it off
    /// the async workers. An error means the helper is gone.
    pub fn call(&self, request: &Request) -> io::Result<Response> {
        self.send(request, None)
    }

    /// [`Client::call`] with `fd` passed along (SCM_RIGHTS): the socket
    /// of a [`Request::Session`].
    pub fn call_with_fd(&self, request: &Request, fd: BorrowedFd<'_>) -> io::Result<Response> {
        self.send(request, Some(fd))
    }

    fn send(&self, request: &Request, fd: Option<BorrowedFd<'_>>) -> io::Result<Response> {
        let gone = || io::Error::other("the privileged helper is gone");
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        lock(&self.pending)
            .as_mut()
            .ok_or_else(gone)?
            .insert(id, tx);
        let sent = match fd {
            None => write_frame(&mut *lock(&self.writer), &request.encode(id)),
            Some(fd) => {
                let mut frame = Vec::new();
                write_frame(&mut frame, &request.encode(id))
                    .and_then(|()| crate::fdpass::send_with_fd(&mut lock(&self.writer), &frame, fd))
            }
        };
        if let Err(e) = sent {
            if let Some(m) = lock(&self.pending).as_mut() {
                m.remove(&id);
            }
            return Err(e);
        }
        rx.recv().map_err(|_| gone())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // The reader thread holds a clone of the socket: shut it down so
        // that both it and the helper see the end.
        let _ = lock(&self.writer).shutdown(std::net::Shutdown::Both);
    }
}

static INSTALLED: OnceLock<Client> = OnceLock::new();

/// Makes `client` the one this process sends privileged steps through;
/// gives it back if one is installed already.
pub fn install(client: Client) -> Result<(), Client> {
    INSTALLED.set(client)
}

/// The installed client: `Some` once the daemon has dropped its
/// privileges and a helper does what needs another identity.
pub fn installed() -> Option<&'static Client> {
    INSTALLED.get()
}
