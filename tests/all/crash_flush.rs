//! A crash between a message's write and the flush that makes it durable
//! (issue 8): nothing was acknowledged, and what the crash leaves in the
//! queue is delivered whole or not at all.
//!
//! The crash is made exact by an `LD_PRELOAD` shim compiled here with
//! `cc`: the server is SIGKILLed at the moment it asks for the flush of
//! `queue/active/` (the group commit before a 250). Its queue file is then
//! linked in `active/` but was never flushed. A crash of the process alone
//! leaves that file whole (the page cache keeps it): it is delivered after
//! the restart, a duplicate at worst, as the client saw no 250 and sends
//! again. A power cut may leave it short (the directory entry reached the
//! disk, not all of the data): the test cuts it, as such a cut would, and
//! recovery must then not deliver it. The same crash when the new message
//! is written over a spare (the file of a delivered message, kept to be
//! reused: host/queue/src/spare.rs), at the spare's own sync, before it
//! took the queue id, must find the file holding the new message alone,
//! still under the spare's name, and recovery must put it back under its
//! id and deliver it once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// Kills the process that asks for the Nth fsync of a `queue/active`
/// directory (N from `KILL_AT_FLUSH`, 1 when unset), before the fsync
/// happens (std's `File::sync_all` and `sync_data` go through libc's
/// `fsync` and `fdatasync`); with `KILL_AT_SPARE_SYNC` set, the one that
/// asks for the fdatasync of a file in `queue/spare/` instead. With
/// `FLUSH_LOG` set, it also appends to that file every such fsync and
/// every fdatasync of a queue file, with the path it was made on.
const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int flushes;

/* The path of `fd` into `path`; its length, 0 if unknown. */
static size_t path_of(int fd, char *path, size_t size)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, size - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    return (size_t)n;
}

/* Appends "CALL PATH" to the file FLUSH_LOG names, if set. */
static void record(const char *call, const char *path)
{
    const char *log = getenv("FLUSH_LOG");
    if (!log)
        return;
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd < 0)
        return;
    dprintf(fd, "%s %s\n", call, path);
    close(fd);
}

int fsync(int fd)
{
    char path[4096];
    size_t n = path_of(fd, path, sizeof path);
    const char *suffix = "/queue/active";
    size_t l = strlen(suffix);
    if (n >= l && strcmp(path + n - l, suffix) == 0) {
        record("fsync", path);
        const char *at = getenv("KILL_AT_FLUSH");
        if (!getenv("KILL_AT_SPARE_SYNC") && ++flushes >= (at ? atoi(at) : 1))
            kill(getpid(), SIGKILL);
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd)
{
    char path[4096];
    if (path_of(fd, path, sizeof path) && strstr(path, "/queue/")) {
        record("fdatasync", path);
        if (getenv("KILL_AT_SPARE_SYNC") && strstr(path, "/queue/spare/"))
            kill(getpid(), SIGKILL);
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
"#;

/// Compiles the shim into `dir`.
fn shim(dir: &Path) -> PathBuf {
    let src = dir.join("kill-at-flush.c");
    let so = dir.join("kill-at-flush.so");
    std::fs::write(&src, SHIM).unwrap();
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&so)
        .arg(&src)
        .arg("-ldl")
        .output()
        .expect("cc must be installed");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

/// Sends one message to a server that dies at its flush: no 250 may come.
/// Returns the one file left in `queue/active/`.
fn crash_at_flush(tmp: &Path) -> PathBuf {
    let mut command = foreground(&test_config(tmp, ""));
    command.env("LD_PRELOAD", shim(tmp));
    let mut server = Server::spawn(tmp, command);
    let body = "Subject: unflushed\r\nMessage-ID: <unflushed@client.test.example>\r\n\r\n\
                the body of a message that never got its 250\r\n";
    killed_sending(&mut server, tmp, body)
}

/// Sends `body` to `server`, which must die at the flush before its 250
/// (the shim): no answer may come. Returns the one file left in
/// `queue/active/`.
fn killed_sending(server: &mut Server, tmp: &Path, body: &str) -> PathBuf {
    let mut c = Client::connect(server.smtp);
    let r = send_message(
        &mut c,
        "s@client.test.example",
        &["alice@example.org"],
        body,
    );
    assert_eq!(r, "", "an answer to DATA before the flush: {r}");
    let status = server.wait();
    assert!(!status.success(), "the server should have been killed");
    let active: Vec<PathBuf> = std::fs::read_dir(tmp.join("queue/active"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(active.len(), 1, "{active:?}");
    active.into_iter().next().unwrap()
}

#[test]
fn a_crash_at_the_sync_of_a_spare_leaves_the_new_message_whole_under_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let mut command = foreground(&test_config(tmp.path(), ""));
    let flush_log = tmp.path().join("flushes.log");
    command
        .env("LD_PRELOAD", shim(tmp.path()))
        .env("KILL_AT_SPARE_SYNC", "1")
        .env("FLUSH_LOG", &flush_log);
    let mut server = Server::spawn(tmp.path(), command);
    // The first message is delivered, and its queue file kept as a spare.
    let mut c = Client::connect(server.smtp);
    let old = "Subject: old\r\n\r\nthe first message, delivered, then a spare\r\n".repeat(20);
    let r = send_message(
        &mut c,
        "s@client.test.example",
        &["alice@example.org"],
        &old,
    );
    assert!(
        r.starts_with("250"),
        "{r}; flushes:\n{}\nlog:\n{}",
        std::fs::read_to_string(&flush_log).unwrap_or_default(),
        server.log()
    );
    wait_messages(&server.new_dir("alice"), 1);
    let spares = tmp.path().join("queue/spare");
    let start = Instant::now();
    let spare = loop {
        if let Some(entry) = std::fs::read_dir(&spares).unwrap().next() {
            break entry.unwrap().path();
        }
        assert!(
            start.elapsed() < WAIT,
            "no spare kept; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // The second, shorter, is written over it; the server dies at the
    // spare's sync, before the 250 and before the move into active/.
    let new = "Subject: new\r\n\r\nthe second message, never acknowledged\r\n";
    let mut c = Client::connect(server.smtp);
    let r = send_message(&mut c, "s@client.test.example", &["alice@example.org"], new);
    assert_eq!(r, "", "an answer to DATA before the sync: {r}");
    assert!(
        !server.wait().success(),
        "the server should have been killed"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path().join("queue/active"))
            .unwrap()
            .count(),
        0
    );
    // Nothing of the first message is left in it, and it is the spare's
    // own sync that was asked for last.
    let file = String::from_utf8(std::fs::read(&spare).unwrap()).unwrap();
    assert!(file.contains("never acknowledged"), "{file}");
    assert!(!file.contains("then a spare"), "{file}");
    assert!(file.ends_with("POSTERN-END\n"), "{file}");
    let flushes = std::fs::read_to_string(&flush_log).unwrap();
    let last = flushes.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("fdatasync ") && last.contains("/queue/spare/"),
        "{flushes}"
    );
    // After the restart: the second message is put back under its id and
    // delivered once, the first is not delivered again, and no word of a
    // lost message.
    let server = Server::start_in(tmp.path());
    let msgs = wait_messages(&server.new_dir("alice"), 2);
    assert!(String::from_utf8_lossy(&msgs.concat()).contains("never acknowledged"));
    wait_queue_empty(tmp.path());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(messages(&server.new_dir("alice")).len(), 2);
    let log = server.log();
    assert!(log.contains("(written over a spare"), "{log}");
    assert!(!log.contains("removed from incoming"), "{log}");
    assert!(!log.contains("corrupt"), "{log}");
}

/// Waits until the queue has nothing left in `active/`.
fn wait_queue_empty(tmp: &Path) {
    let start = Instant::now();
    while std::fs::read_dir(tmp.join("queue/active")).unwrap().count() > 0 {
        assert!(start.elapsed() < WAIT, "the queue never emptied");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_crash_before_the_flush_then_a_power_cut_delivers_nothing_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let file = crash_at_flush(tmp.path());
    let id = file.file_name().unwrap().to_string_lossy().into_owned();
    let whole = std::fs::read(&file).unwrap();
    // What a power cut may leave of a file whose directory entry reached
    // the disk before its data: nothing of it, or a part.
    for cut in [0, whole.len() / 2, whole.len() - 1] {
        std::fs::write(&file, &whole[..cut]).unwrap();
        let _ = std::fs::remove_dir_all(tmp.path().join("queue/corrupt"));
        let server = Server::start_in(tmp.path());
        server.wait_log(&format!("{id}: incomplete queue file"));
        wait_queue_empty(tmp.path());
        let corrupt = tmp.path().join("queue/corrupt").join(&id);
        assert_eq!(std::fs::read(&corrupt).unwrap(), &whole[..cut], "cut {cut}");
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            messages(&server.new_dir("alice")).is_empty(),
            "cut {cut}: a truncated message was delivered; log:\n{}",
            server.log()
        );
        server.kill();
        // The next round puts the same file back in active/.
        std::fs::rename(&corrupt, &file).unwrap();
    }
}

/// A power cut may also lose a block in the middle of the file and keep
/// the one with the end marker (writeback follows no order): the block
/// then reads back as zeros, the length and end marker all in place. The
/// file's checksum tells; without it the message would be delivered with
/// a hole in it.
#[test]
fn a_power_cut_that_loses_a_middle_block_delivers_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let file = crash_at_flush(tmp.path());
    let id = file.file_name().unwrap().to_string_lossy().into_owned();
    let mut holed = std::fs::read(&file).unwrap();
    let body = holed
        .windows(11)
        .position(|w| w == b"the body of")
        .expect("the body in the queue file");
    holed[body..body + 11].fill(0);
    std::fs::write(&file, &holed).unwrap();
    let server = Server::start_in(tmp.path());
    server.wait_log(&format!("{id}: corrupt queue file"));
    wait_queue_empty(tmp.path());
    assert!(
        server.log().contains("checksum mismatch"),
        "{}",
        server.log()
    );
    let corrupt = tmp.path().join("queue/corrupt").join(&id);
    assert_eq!(std::fs::read(&corrupt).unwrap(), holed);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        messages(&server.new_dir("alice")).is_empty(),
        "a message with a hole was delivered; log:\n{}",
        server.log()
    );
}

#[test]
fn a_crash_before_the_flush_leaves_a_whole_file_delivered_once() {
    let tmp = tempfile::tempdir().unwrap();
    crash_at_flush(tmp.path());
    // The process died, the machine did not: the page cache has the file.
    let server = Server::start_in(tmp.path());
    let msgs = wait_messages(&server.new_dir("alice"), 1);
    assert!(String::from_utf8_lossy(&msgs[0]).contains("never got its 250"));
    wait_queue_empty(tmp.path());
}
