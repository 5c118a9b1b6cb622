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
//! recovery must then not deliver it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// Kills the process that asks for an fsync of a `queue/active`
/// directory, before the fsync happens (std's `File::sync_all` and
/// `sync_data` go through libc's `fsync` and `fdatasync`).
const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int is_active(int fd)
{
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    const char *suffix = "/queue/active";
    size_t l = strlen(suffix);
    return (size_t)n >= l && strcmp(path + n - l, suffix) == 0;
}

int fsync(int fd)
{
    if (is_active(fd))
        kill(getpid(), SIGKILL);
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
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
    let mut c = Client::connect(server.smtp);
    let body = "Subject: unflushed\r\nMessage-ID: <unflushed@client.test.example>\r\n\r\n\
                the body of a message that never got its 250\r\n";
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
