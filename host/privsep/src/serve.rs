//! The helper's side: read a request, check it against the [`Policy`],
//! run it on a thread of its own (a delivery command may take minutes and
//! must not hold the others), answer with its id.

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::MAX_IN_FLIGHT;
use crate::policy::Policy;
use crate::wire::{Request, Response, read_frame, write_frame};

/// What carries out requests that passed the policy.
pub trait Handler: Send + Sync + 'static {
    /// Does `request` (already checked) and says how it went.
    fn handle(&self, request: Request) -> Response;
    /// Told of each refused request, for the log.
    fn refused(&self, why: &str);
}

/// Serves `stream` until the daemon closes it (`Ok`) or sends a frame that
/// cannot be read at all (an error: the stream cannot be trusted to be in
/// step any more). Frames longer than `max_frame` are such an error.
pub fn serve(
    stream: UnixStream,
    policy: Policy,
    max_frame: usize,
    handler: Arc<dyn Handler>,
) -> io::Result<()> {
    let mut reader = stream.try_clone()?;
    let writer = Arc::new(Mutex::new(stream));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let answer = move |writer: &Mutex<UnixStream>, id: u64, response: &Response| {
        let mut w = writer.lock().unwrap_or_else(PoisonError::into_inner);
        // A daemon that is gone cannot be answered; its end of the
        // stream closing ends this loop.
        let _ = write_frame(&mut *w, &response.encode(id));
    };
    while let Some(body) = read_frame(&mut reader, max_frame)? {
        let (id, request) = Request::decode(&body);
        let Some(id) = id else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a frame without an id",
            ));
        };
        let request = request.and_then(|r| policy.check(&r).map(|()| r));
        let request = match request {
            Ok(r) => r,
            Err(why) => {
                handler.refused(&why);
                answer(&writer, id, &Response::Refused(why));
                continue;
            }
        };
        if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            answer(
                &writer,
                id,
                &Response::Failed("the privileged helper is busy".to_owned()),
            );
            continue;
        }
        let (w, n, h) = (writer.clone(), in_flight.clone(), handler.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("privsep-{id}"))
            .spawn(move || {
                let response = h.handle(request);
                answer(&w, id, &response);
                n.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            // Out of threads: this one is not done; the caller retries.
            in_flight.fetch_sub(1, Ordering::AcqRel);
            answer(
                &writer,
                id,
                &Response::Failed("the privileged helper cannot start a thread".to_owned()),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::wire::Ids;

    struct Echo;

    impl Handler for Echo {
        fn handle(&self, request: Request) -> Response {
            match request {
                Request::Password { login, .. } => Response::Password(0, login),
                _ => Response::Done,
            }
        }
        fn refused(&self, _why: &str) {}
    }

    #[test]
    fn a_client_and_a_helper_talk_and_refusals_come_back() {
        let (daemon, helper) = UnixStream::pair().unwrap();
        let server =
            std::thread::spawn(move || serve(helper, Policy::new(), 1 << 20, Arc::new(Echo)));
        let client = Client::new(daemon).unwrap();
        let check = Request::Password {
            login: "alice".into(),
            password: "x".into(),
        };
        assert_eq!(
            client.call(&check).unwrap(),
            Response::Password(0, "alice".into())
        );
        let root = Request::Command {
            ids: Ids { uid: 0, gid: 0 },
            args: vec!["/bin/sh".into()],
            env: vec![],
            dir: "/".into(),
            time_limit: 1,
            input: vec![],
        };
        assert!(
            matches!(client.call(&root).unwrap(), Response::Refused(why) if why.contains("root"))
        );
        // Many threads at once each get their own answer.
        let client = Arc::new(client);
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let client = client.clone();
                std::thread::spawn(move || {
                    let login = format!("user{i}");
                    let r = Request::Password {
                        login: login.clone(),
                        password: String::new(),
                    };
                    assert_eq!(client.call(&r).unwrap(), Response::Password(0, login));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(client);
        server.join().unwrap().unwrap();
    }

    #[test]
    fn an_oversized_frame_ends_the_helper_and_the_client_hears_it() {
        let (daemon, helper) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || serve(helper, Policy::new(), 16, Arc::new(Echo)));
        let client = Client::new(daemon).unwrap();
        let big = Request::Password {
            login: "alice".into(),
            password: "x".repeat(100),
        };
        assert!(client.call(&big).is_err());
        assert!(server.join().unwrap().is_err());
    }
}
