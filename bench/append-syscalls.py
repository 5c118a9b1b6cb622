#!/usr/bin/env python3
"""What one IMAP APPEND costs Postern in system calls and time (issue 8):
one client (the IMAP mix's, bench/imap-pop3-mix.py) appends COUNT
messages of 3 KiB (the mix's APPEND) to one mailbox, with `strace -f -c` attached to the server for
the whole loop; prints the calls per APPEND that touch the disk (fsync,
fdatasync, openat, rename/renameat2, link, unlink, ftruncate, write) and
the mean APPEND round trip. With --baseline, an older binary is measured
the same way right after, for a before/after in one run.

    python3 bench/append-syscalls.py [--count 200] [--postern BIN]
        [--baseline BIN] [--no-strace] [--fs root|journaled]

--no-strace measures the round trip without strace's overhead. --fs
journaled puts the mail on a fresh ext4 with a journal on a loop device
(servers.py's scratch), where the one-commit APPEND applies; root, the
default, on the machine's /tmp. Needs
strace (apt-get install strace). Nothing outside a temporary directory is
touched.
"""

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import servers  # noqa: E402

spec = importlib.util.spec_from_file_location("mix", os.path.join(HERE, "imap-pop3-mix.py"))
mix = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mix)

CALLS = ["fsync", "fdatasync", "openat", "rename", "renameat2", "link", "linkat", "unlink", "ftruncate",
         "write", "pwrite64"]


def append(c):
    c.send(f"a2 APPEND INBOX (\\Seen) {{{len(mix.APPENDED)}}}\r\n".encode())
    if not c.line().startswith(b"+"):
        raise SystemExit("APPEND: no continuation")
    c.send(mix.APPENDED + b"\r\n")
    c.imap_wait("a2")


def measure(binary, count, trace):
    tmp = tempfile.mkdtemp(prefix="postern-append-")
    try:
        users = os.path.join(tmp, "users")
        with open(users, "w") as f:
            f.write(f"user0@{mix.DOMAIN}:{{PLAIN}}{mix.PASSWORD}::::\n")
        base = os.path.join(tmp, "mail")
        proc, imap, _ = mix.start_postern(tmp, base, users, binary, "postern")
        try:
            c = mix.Conn(imap)
            c.line()
            c.imap("a1", f"LOGIN user0@{mix.DOMAIN} {mix.PASSWORD}")
            append(c)  # the first makes the mailbox
            strace = None
            out = os.path.join(tmp, "strace")
            if trace:
                strace = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p", str(proc.pid)],
                                          stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            started = time.monotonic()
            for _ in range(count):
                append(c)
            took = time.monotonic() - started
            if strace:
                strace.send_signal(2)
                strace.wait()
            c.s.close()
        finally:
            proc.kill()
            proc.wait()
        calls = {}
        if trace:
            for line in open(out):
                f = line.split()
                if f and f[-1] in CALLS and len(f) >= 5:
                    calls[f[-1]] = int(f[3])
        return 1e3 * took / count, calls
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--postern", default=mix.POSTERN)
    ap.add_argument("--baseline")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--fs", default="root", choices=["root", "journaled"])
    args = ap.parse_args()
    builds = [("postern", args.postern)] + ([("baseline", args.baseline)] if args.baseline else [])
    with servers.scratch(args.fs) as where:
        print(f"mail on {servers.filesystem(where)}")
        for name, binary in builds:
            ms, calls = measure(binary, args.count, not args.no_strace)
            per = ", ".join(f"{k} {calls[k] / args.count:.2f}" for k in CALLS if k in calls)
            print(f"{name}: {ms:.2f} ms per APPEND ({args.count}, one client"
                  f"{', under strace' if not args.no_strace else ''}); per APPEND: {per}",
                  flush=True)


if __name__ == "__main__":
    main()
