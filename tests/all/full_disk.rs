//! A full disk under the queue: a small tmpfs mounted as
//! queue_directory. MAIL FROM gets `452 4.3.1 Insufficient system
//! storage` when the free space is under `queue_minfree` or the announced
//! SIZE is over half of what is left (Postfix's smtpd_check_queue); a
//! message that does not fit gets the same 452 after DATA instead of a
//! 250; nothing half-written or corrupt stays in the queue; and mail flows
//! again when space returns. Under load: four sessions fill the queue's
//! file system with mail for a relay that is down; once it is up, every
//! acknowledged message arrives once and no refused one does.
//!
//! Mounting needs root (CI runs the tests as root): elsewhere the test
//! says it is skipped and passes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sendmail_modes::sendmail;
use crate::support::*;

/// A tmpfs, unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`4m`) at `at`, or says why the test is
    /// skipped and answers `None`.
    pub fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .ok()?;
        if out.status.success() {
            Some(Tmpfs(at.to_owned()))
        } else {
            eprintln!(
                "full_disk: skipped: cannot mount a tmpfs (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Free bytes for unprivileged use on the file system of `path`.
pub fn avail(path: &Path) -> u64 {
    python(
        "import os,sys\ns=os.statvfs(sys.argv[1])\nprint(s.f_bavail*s.f_frsize)",
        &[path.to_str().unwrap()],
    )
    .trim()
    .parse()
    .unwrap()
}

/// Grows or shrinks `filler` (real data: tmpfs has no holes to fill)
/// until about `leave` bytes are free beside it.
pub fn leave_free(fs: &Path, filler: &Path, leave: u64) {
    let free = avail(fs);
    let len = std::fs::metadata(filler).map(|m| m.len()).unwrap_or(0);
    if free > leave {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(filler)
            .unwrap();
        let chunk = vec![0u8; 64 * 1024];
        let mut left = free - leave;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if f.write_all(&chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
    } else {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(filler)
            .unwrap();
        f.set_len(len.saturating_sub(leave - free)).unwrap();
    }
}

/// The file names in `dir`.
fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn mail_from(c: &mut Client, size: Option<u64>) -> String {
    let r = c.cmd(&match size {
        Some(n) => format!("MAIL FROM:<carol@client.test.example> SIZE={n}"),
        None => "MAIL FROM:<carol@client.test.example>".to_owned(),
    });
    if r.starts_with("250") {
        assert!(c.cmd("RSET").starts_with("250"));
    }
    r
}

#[test]
fn a_full_queue_file_system_refuses_then_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let queue = dir.join("queue");
    let Some(_fs) = Tmpfs::mount(&queue, "4m") else {
        return;
    };
    let filler = queue.join("filler");
    std::fs::write(dir.join("users"), USERS).unwrap();
    let config = |minfree: u64| config_text(dir, &format!("queue_minfree = {minfree}\n"));
    std::fs::write(dir.join("postern.toml"), config(1_000_000)).unwrap();
    let server = Server::start_in(dir);
    let mut c = Client::connect(server.smtp);
    send_accepted(
        &mut c,
        "carol@client.test.example",
        &["alice@example.org"],
        "Subject: before\r\n\r\nx\r\n",
    );
    wait_messages(&server.new_dir("alice"), 1);

    // queue_minfree plus 150 KB free: a 90 KB message is over half of
    // what is left, a small one is not.
    leave_free(&queue, &filler, 1_150_000);
    let r = mail_from(&mut c, Some(90_000));
    assert_eq!(r, "452 4.3.1 Insufficient system storage\r\n");
    assert!(mail_from(&mut c, Some(1_000)).starts_with("250 "));
    // Under queue_minfree: nothing is taken.
    leave_free(&queue, &filler, 500_000);
    assert_eq!(
        mail_from(&mut c, None),
        "452 4.3.1 Insufficient system storage\r\n"
    );
    let log = server.wait_log("NOQUEUE: reject: MAIL from ");
    assert!(
        log.contains(": 452 4.3.1 Insufficient system storage; from=<carol@client.test.example>"),
        "{log}"
    );
    drop(c);
    server.kill();

    // Without queue_minfree, 32 KB free: MAIL is accepted, but the
    // message does not fit: 452 after DATA, not 250.
    std::fs::write(dir.join("postern.toml"), config(0)).unwrap();
    let server = Server::start_in(dir);
    leave_free(&queue, &filler, 32 * 1024);
    let mut c = Client::connect(server.smtp);
    let big = format!(
        "Subject: big\r\n\r\n{}",
        "0123456789abcdef0123456789abcdef012345678\r\n".repeat(2000)
    );
    let r = c.cmd("EHLO client.test.example");
    assert!(r.starts_with("250"), "{r}");
    assert!(
        c.cmd("MAIL FROM:<carol@client.test.example>")
            .starts_with("250")
    );
    assert!(c.cmd("RCPT TO:<bob@example.org>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(big.as_bytes());
    let r = c.cmd(".");
    assert_eq!(r, "452 4.3.1 Insufficient system storage\r\n");
    // Nothing half-written, nothing corrupt, nothing queued.
    assert!(names(&queue.join("incoming")).is_empty());
    assert!(names(&queue.join("corrupt")).is_empty());
    assert!(names(&queue.join("active")).is_empty());
    assert!(names(&queue.join("deferred")).is_empty());
    // A completely full disk: refused at MAIL.
    leave_free(&queue, &filler, 0);
    assert_eq!(
        mail_from(&mut c, None),
        "452 4.3.1 Insufficient system storage\r\n"
    );
    // sendmail cannot write its maildrop file: EX_TEMPFAIL, nothing left.
    let config = dir.join("postern.toml");
    let out = sendmail(&config, &["bob@example.org"], &big, false);
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    assert!(names(&queue.join("maildrop")).is_empty());

    // Space returns: the same message goes through and is delivered.
    std::fs::remove_file(&filler).unwrap();
    send_accepted(
        &mut c,
        "carol@client.test.example",
        &["bob@example.org"],
        &big,
    );
    let got = wait_messages(&server.new_dir("bob"), 1);
    assert!(got[0].ends_with(big.split_once("\r\n\r\n").unwrap().1.as_bytes()));
    let list = Command::new(POSTERN)
        .args(["queue", "list", "--config"])
        .arg(dir.join("postern.toml"))
        .output()
        .unwrap();
    assert!(list.status.success(), "{list:?}");
    assert!(names(&queue.join("corrupt")).is_empty());
}

/// Sessions sending at once while the queue's file system fills.
const SENDERS: usize = 4;

/// Four sessions send 16 KB messages for a relay that is down, so that
/// every message stays queued, until the tmpfs under the queue is full
/// and each session has been refused (452 at MAIL FROM or after the
/// dot) three times running. Then the relay comes up: every message that
/// got a 250 arrives, none that got a 452 does, nothing was quarantined,
/// and mail is taken again. Prints the tally.
#[test]
fn a_queue_that_fills_under_load_loses_nothing_acknowledged() {
    use crate::fault_remote::{Dest, Mode, copies, numbered, queued};
    use crate::remote_smtp::FAST_RETRY;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let queue = dir.join("queue");
    let Some(_fs) = Tmpfs::mount(&queue, "4m") else {
        return;
    };
    let dest = Dest::start(Mode::Down);
    std::fs::write(dir.join("users"), USERS).unwrap();
    std::fs::write(
        dir.join("postern.toml"),
        config_text(
            dir,
            &format!(
                "relayhost = \"[127.0.0.1]:{}\"\nsmtp_connect_timeout = \"1s\"\n{FAST_RETRY}",
                dest.port
            ),
        ),
    )
    .unwrap();
    let server = Server::start_in(dir);
    let began = std::time::Instant::now();
    let next = AtomicUsize::new(0);
    // (acknowledged, refused after the dot, refused at MAIL FROM)
    let tally = Mutex::new((Vec::new(), Vec::new(), 0usize));
    std::thread::scope(|scope| {
        for _ in 0..SENDERS {
            scope.spawn(|| {
                let mut c = Client::connect(server.smtp);
                assert!(c.cmd("EHLO client.test.example").starts_with("250"));
                let mut refused_in_a_row = 0;
                while refused_in_a_row < 3 {
                    let r = c.cmd("MAIL FROM:<carol@client.test.example>");
                    if r.starts_with("452 4.3.1") {
                        refused_in_a_row += 1;
                        tally.lock().unwrap().2 += 1;
                        continue;
                    }
                    assert!(r.starts_with("250"), "{r}");
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    assert!(
                        c.cmd(&format!("RCPT TO:<r{i}@far.test>"))
                            .starts_with("250")
                    );
                    assert!(c.cmd("DATA").starts_with("354"));
                    let mut body = numbered("fill", i);
                    body.push_str(&"0123456789abcdef0123456789abcdef01234567\r\n".repeat(400));
                    c.send(body.as_bytes());
                    let r = c.cmd(".");
                    let mut t = tally.lock().unwrap();
                    if r.starts_with("250 ") {
                        refused_in_a_row = 0;
                        t.0.push(i);
                    } else {
                        assert!(r.starts_with("452 4.3.1"), "{r}");
                        refused_in_a_row += 1;
                        t.1.push(i);
                    }
                }
                c.cmd("QUIT");
            });
        }
    });
    let (acked, refused_after_dot, refused_at_mail) = tally.into_inner().unwrap();
    let sent = next.load(Ordering::SeqCst);
    assert!(!acked.is_empty(), "nothing was taken");
    assert!(
        avail(&queue) < 1_000_000,
        "the queue's file system never filled"
    );
    // Refused ones left nothing half-written or quarantined behind.
    assert!(names(&queue.join("incoming")).is_empty());
    assert!(names(&queue.join("corrupt")).is_empty());
    let filled = began.elapsed();

    dest.set_mode(Mode::Ok);
    dest.wait(acked.len());
    let start = std::time::Instant::now();
    while queued(&queue) > 0 {
        assert!(start.elapsed() < WAIT, "the queue never emptied");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let received = dest.received();
    let counts = copies(&received, "fill", sent);
    let lost: Vec<usize> = acked.iter().copied().filter(|&i| counts[i] == 0).collect();
    let ghosts: Vec<usize> = refused_after_dot
        .iter()
        .copied()
        .filter(|&i| counts[i] > 0)
        .collect();
    let duplicated = counts.iter().filter(|&&c| c > 1).count();
    eprintln!(
        "full_disk: {SENDERS} sessions filled the queue in {:.1}s: {} acknowledged, {} refused \
         after the dot, {refused_at_mail} refused at MAIL FROM; after the relay came up {} \
         delivered in {:.1}s: lost {}, delivered though refused {}, duplicated {duplicated}",
        filled.as_secs_f64(),
        acked.len(),
        refused_after_dot.len(),
        received.len(),
        start.elapsed().as_secs_f64(),
        lost.len(),
        ghosts.len(),
    );
    assert!(lost.is_empty(), "lost {lost:?}");
    assert!(ghosts.is_empty(), "delivered though refused: {ghosts:?}");
    assert_eq!(duplicated, 0);
    assert!(names(&queue.join("corrupt")).is_empty());
    // And mail is taken again.
    let mut c = Client::connect(server.smtp);
    send_accepted(
        &mut c,
        "carol@client.test.example",
        &["again@far.test"],
        "Subject: again\r\n\r\nx\r\n",
    );
}
