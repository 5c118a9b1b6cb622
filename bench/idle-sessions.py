#!/usr/bin/env python3
"""Resident memory per idle SMTP session (issue 4's benchmark; target
<= 20 KiB per session).

Starts the release `postern` on an ephemeral loopback port, opens SESSIONS
connections (spread over source addresses 127.0.0.1-127.0.0.254), waits
until every one has read its 220 greeting (so each session task exists and
sits waiting for a command), and reads the server's VmRSS from
/proc/PID/status before and after, and prints KiB per session and how
fast the sessions were accepted and greeted.

    python3 bench/idle-sessions.py [--sessions 10000] [--no-build]

Needs a file-descriptor limit above SESSIONS (raised here up to the hard
limit; run as root or raise `ulimit -Hn` first).
"""

import argparse
import os
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSTERN = os.path.join(ROOT, "target", "release", "postern")
CACHE = os.path.join(ROOT, "target", "bench-plugin-cache")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    n = args.sessions
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 1000
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, PermissionError):
            raise SystemExit(f"need {want} file descriptors, hard limit is {hard}")
    else:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "postern-server"], cwd=ROOT, check=True)

    tmp = tempfile.mkdtemp(prefix="postern-idle-")
    port = free_port()
    config = os.path.join(tmp, "postern.toml")
    with open(config, "w") as f:
        f.write(
            f'myhostname = "bench.test"\n'
            f'mynetworks = "127.0.0.0/8"\n'
            f'data_directory = "{tmp}"\n'
            # No system user is made for the benchmarks: Postern keeps root
            # (see servers.py); a missing `postern` user would stop start-up.
            f'mail_owner = "root"\n'
            f'queue_directory = "{tmp}/queue"\n'
            f'virtual_mailbox_base = "{tmp}/mail"\n'
            f'plugin_cache_directory = "{CACHE}"\n'
            f"default_process_limit = {n + 100}\n"
            f"smtpd_client_connection_count_limit = 0\n"
            f'[[service]]\nname = "smtp"\nlisten = "127.0.0.1:{port}"\n'
        )
    log = open(os.path.join(tmp, "log"), "w+")
    server = subprocess.Popen(
        [POSTERN, "start", "--foreground", "--config", config],
        stdout=log, stderr=log,  # inherits the raised descriptor limit
    )
    conns = []
    try:
        deadline = time.time() + 60
        while True:
            log.seek(0)
            if "daemon started" in log.read():
                break
            if server.poll() is not None or time.time() > deadline:
                log.seek(0)
                raise SystemExit("postern did not start:\n" + log.read())
            time.sleep(0.05)
        time.sleep(0.5)
        before = rss_kib(server.pid)
        sel = selectors.DefaultSelector()
        start = time.monotonic()
        for i in range(n):
            s = socket.socket()
            s.bind((f"127.0.0.{1 + i % 254}", 0))
            s.connect(("127.0.0.1", port))
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            conns.append(s)
        greeted = 0
        deadline = time.time() + 120
        while greeted < n:
            if time.time() > deadline:
                raise SystemExit(f"only {greeted} of {n} sessions were greeted")
            for key, _ in sel.select(timeout=1):
                data = key.fileobj.recv(512)
                if not data.startswith(b"220"):
                    raise SystemExit(f"unexpected greeting {data!r}")
                sel.unregister(key.fileobj)
                greeted += 1
        elapsed = time.monotonic() - start
        time.sleep(1)
        after = rss_kib(server.pid)
        print(f"sessions: {n}, greeted in {elapsed:.1f} s ({n / elapsed:.0f} sessions/s)")
        print(f"postern RSS: {before} KiB idle, {after} KiB with {n} sessions")
        print(f"per session: {(after - before) / n:.1f} KiB (target <= 20 KiB)")
    finally:
        for s in conns:
            s.close()
        server.kill()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
