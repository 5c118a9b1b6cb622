//! The helper's side: read a request, check it against the [`Policy`],
//! run it on a thread of its own (a delivery command may take minutes and
//! must not hold the others), answer with its id.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::MAX_IN_FLIGHT;
use crate::fdpass::FdReader;
use crate::policy::Policy;
use crate::session::MailSession;
use crate::wire::{Request, Response, read_frame, write_frame};

/// What carries out requests that passed the policy.
pub trait Handler: Send + Sync + 'static {
    /// Does `request` (already checked) and says how it went.
    fn handle(&self, request: Request) -> Response;
    /// Told of each refused request, for the log.
    fn refused(&self, why: &str);
    /// Starts `session` (already checked) over `socket`, the descriptor
    /// that came with it; answers [`Response::Started`] without waiting
    /// for the session to end. A helper that serves none refuses.
    fn session(&self, session: MailSession, socket: OwnedFd) -> Response {
        let _ = (session, socket);
        Response::Refused("this helper starts no sessions".to_owned())
    }
    /// The policy re-read from the root-owned configuration
    /// ([`Request::Refresh`], see [`crate::files::refresh`]); every
    /// request after it is checked against it. A helper without a
    /// configuration keeps the one it started with.
    fn refresh(&self) -> Result<Policy, String> {
        Err("this helper has no configuration to refresh from".to_owned())
    }
}

/// A checked request with what came with it.
enum Job {
    Request(Request),
    Session(MailSession, OwnedFd),
}

/// The descriptor a session request must come with: a socket.
fn session_socket(reader: &mut FdReader) -> Result<OwnedFd, String> {
    let fd = reader
        .take_fd()
        .ok_or_else(|| "a session request without its socket".to_owned())?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| format!("the session's socket: {e}"))?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
        return Err("a session request with a descriptor that is not a socket".to_owned());
    }
    Ok(fd)
}

/// Serves `stream` until the daemon closes it (`Ok`) or sends a frame that
/// cannot be read at all (an error: the stream cannot be trusted to be in
/// step any more). Frames longer than the policy's `max_frame` (as it is
/// when the frame arrives: a refresh changes it) are such an error.
pub fn serve(stream: UnixStream, mut policy: Policy, handler: Arc<dyn Handler>) -> io::Result<()> {
    let mut reader = FdReader::new(stream.try_clone()?);
    let writer = Arc::new(Mutex::new(stream));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let answer = move |writer: &Mutex<UnixStream>, id: u64, response: &Response| {
        let mut w = writer.lock().unwrap_or_else(PoisonError::into_inner);
        // A daemon that is gone cannot be answered; its end of the
        // stream closing ends this loop.
        let _ = write_frame(&mut *w, &response.encode(id));
    };
    loop {
        // Descriptors are only those sent with this frame.
        reader.clear();
        let Some(body) = read_frame(&mut reader, policy.max_frame)? else {
            break;
        };
        let (id, request) = Request::decode(&body);
        let Some(id) = id else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a frame without an id",
            ));
        };
        let request = request.and_then(|r| policy.check(&r).map(|()| r));
        // Here, in the order the requests came, so that each later one
        // is checked against the policy it asked for.
        if matches!(request, Ok(Request::Refresh)) {
            let response = match handler.refresh() {
                Ok(fresh) => {
                    policy = fresh;
                    Response::Done
                }
                Err(why) => {
                    handler.refused(&why);
                    Response::Failed(why)
                }
            };
            answer(&writer, id, &response);
            continue;
        }
        let request = request.and_then(|r| match r {
            Request::Session(s) => session_socket(&mut reader).map(|fd| Job::Session(s, fd)),
            other => Ok(Job::Request(other)),
        });
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
                let response = match request {
                    Job::Request(r) => h.handle(r),
                    Job::Session(s, fd) => h.session(s, fd),
                };
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
        fn session(&self, _session: MailSession, socket: OwnedFd) -> Response {
            let mut socket = UnixStream::from(socket);
            io::Write::write_all(&mut socket, b"hello").unwrap();
            Response::Started(42)
        }
    }

    #[test]
    fn a_session_comes_with_its_socket_and_only_a_socket() {
        use std::io::Read;
        use std::os::fd::AsFd;
        let (daemon, helper) = UnixStream::pair().unwrap();
        let policy = Policy {
            roots: vec!["/srv/mail".into()],
            ..Policy::new()
        };
        let server = std::thread::spawn(move || serve(helper, policy, Arc::new(Echo)));
        let client = Client::new(daemon).unwrap();
        let request = |uid: u32, maildir: &str| {
            Request::Session(MailSession {
                ids: Ids { uid, gid: uid },
                protocol: "imap".into(),
                login: "a@example.org".into(),
                maildir: maildir.into(),
                peer: "127.0.0.1:1".into(),
                local: "127.0.0.1:143".into(),
                tls: false,
                tag: "a1".into(),
                mechanism: "PLAIN".into(),
                timeout: 60,
                max_line: 1024,
                max_literal: 1024,
                log_filter: String::new(),
            })
        };
        let good = request(1000, "/srv/mail/a/Maildir");
        let answer = client.call(&good).unwrap();
        assert!(
            matches!(&answer, Response::Refused(why) if why.contains("without its socket")),
            "{answer:?}"
        );
        let file = std::fs::File::open("/dev/null").unwrap();
        let answer = client.call_with_fd(&good, file.as_fd()).unwrap();
        assert!(
            matches!(&answer, Response::Refused(why) if why.contains("not a socket")),
            "{answer:?}"
        );
        // Refused before the descriptor is looked at: root, elsewhere.
        let (ours, theirs) = UnixStream::pair().unwrap();
        for forged in [request(0, "/srv/mail/a/Maildir"), request(1000, "/etc/x")] {
            let answer = client.call_with_fd(&forged, theirs.as_fd()).unwrap();
            assert!(matches!(answer, Response::Refused(_)), "{answer:?}");
        }
        assert_eq!(
            client.call_with_fd(&good, theirs.as_fd()).unwrap(),
            Response::Started(42)
        );
        let mut got = [0u8; 5];
        (&ours).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        drop(client);
        server.join().unwrap().unwrap();
    }

    #[test]
    fn a_client_and_a_helper_talk_and_refusals_come_back() {
        let (daemon, helper) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || serve(helper, Policy::new(), Arc::new(Echo)));
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

    /// A refresh that raises the frame limit (a reload that raised
    /// `message_size_limit`) lets the longer frames through from then on.
    #[test]
    fn a_refresh_changes_the_longest_frame() {
        struct Raises;
        impl Handler for Raises {
            fn handle(&self, request: Request) -> Response {
                Echo.handle(request)
            }
            fn refused(&self, _why: &str) {}
            fn refresh(&self) -> Result<Policy, String> {
                Ok(Policy {
                    max_frame: 1 << 20,
                    ..Policy::new()
                })
            }
        }
        let (daemon, helper) = UnixStream::pair().unwrap();
        let policy = Policy {
            max_frame: 64,
            ..Policy::new()
        };
        let server = std::thread::spawn(move || serve(helper, policy, Arc::new(Raises)));
        let client = Client::new(daemon).unwrap();
        assert_eq!(client.call(&Request::Refresh).unwrap(), Response::Done);
        let big = Request::Password {
            login: "alice".into(),
            password: "x".repeat(1000),
        };
        assert_eq!(
            client.call(&big).unwrap(),
            Response::Password(0, "alice".into())
        );
        drop(client);
        server.join().unwrap().unwrap();
    }

    #[test]
    fn an_oversized_frame_ends_the_helper_and_the_client_hears_it() {
        let (daemon, helper) = UnixStream::pair().unwrap();
        let policy = Policy {
            max_frame: 16,
            ..Policy::new()
        };
        let server = std::thread::spawn(move || serve(helper, policy, Arc::new(Echo)));
        let client = Client::new(daemon).unwrap();
        let big = Request::Password {
            login: "alice".into(),
            password: "x".repeat(100),
        };
        assert!(client.call(&big).is_err());
        assert!(server.join().unwrap().is_err());
    }
}
