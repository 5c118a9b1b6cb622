#!/usr/bin/env python3
"""Memory of the daemon with a large queue (issue 5: "bounded memory with
100,000 messages queued").

Starts the release `postern` on an ephemeral loopback port with a
relayhost that refuses connections (`[127.0.0.1]:1`) and an hour's
backoff, so every message for another domain is tried once and parked in
`deferred/`. Sends MESSAGES messages with Postfix's `smtp-source` over
SESSIONS sessions, waits until all of them are in `deferred/`, and reads
the server's VmRSS and VmHWM (peak) from /proc/PID/status:

1. idle, before any mail;
2. with every message queued and deferred;
3. after a restart, once the start-up scan has taken charge of them all;
4. after `postern flush`: every message back in `active/`, tried again
   (suspended at once: the destination is dead) and deferred again, read
   into the scheduler's memory at most `--active-limit` at a time
   (qmgr_message_active_limit); the log's "active queue:" lines say how
   many it held.

    python3 bench/queue-100k.py [--messages 100000] [--sessions 20] [--active-limit 20000] [--no-build]

Needs smtp-source (Debian's `postfix` package) and about 1 GB of disk
under $TMPDIR.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSTERN = os.path.join(ROOT, "target", "release", "postern")
CACHE = os.path.join(ROOT, "target", "bench-plugin-cache")


def status(pid):
    """VmRSS and VmHWM in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1])
    return out["VmRSS"], out["VmHWM"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count(path):
    try:
        return sum(1 for e in os.scandir(path) if e.is_file())
    except FileNotFoundError:
        return 0


class Daemon:
    def __init__(self, config, log_path):
        self.config = config
        self.log = open(log_path, "a+")
        self.proc = subprocess.Popen(
            [POSTERN, "start", "--foreground", "--config", config],
            stdout=self.log, stderr=self.log,
        )
        self.wait_log("daemon started", 120)

    def wait_log(self, needle, timeout):
        deadline = time.time() + timeout
        while True:
            self.log.seek(0)
            if needle in self.log.read():
                return
            if self.proc.poll() is not None or time.time() > deadline:
                self.log.seek(0)
                raise SystemExit(f"no {needle!r} in the log:\n" + self.log.read()[-4000:])
            time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_deferred(queue, n, timeout):
    """Until `n` messages are in deferred/ and none in active/."""
    deadline = time.time() + timeout
    while True:
        deferred, active = count(f"{queue}/deferred"), count(f"{queue}/active")
        if deferred >= n and active == 0:
            return
        if time.time() > deadline:
            raise SystemExit(f"after {timeout}s: {deferred} deferred, {active} active of {n}")
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--active-limit", type=int, default=20000,
                    help="qmgr_message_active_limit (Postfix's default 20000)")
    args = ap.parse_args()
    n = args.messages
    if shutil.which("smtp-source") is None and not os.path.exists("/usr/sbin/smtp-source"):
        raise SystemExit("smtp-source is missing: apt-get install postfix")
    source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "postern-server"], cwd=ROOT, check=True)

    tmp = tempfile.mkdtemp(prefix="postern-queue-")
    queue = f"{tmp}/queue"
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
            f'queue_directory = "{queue}"\n'
            f'virtual_mailbox_base = "{tmp}/mail"\n'
            f'plugin_cache_directory = "{CACHE}"\n'
            f'relayhost = "[127.0.0.1]:1"\n'
            f'minimal_backoff_time = "3600s"\n'
            f'maximal_backoff_time = "3600s"\n'
            f"smtpd_client_connection_count_limit = 0\n"
            f"qmgr_message_active_limit = {args.active_limit}\n"
            f'[[service]]\nname = "smtp"\nlisten = "127.0.0.1:{port}"\n'
        )
    log = os.path.join(tmp, "log")
    rows = []
    daemon = Daemon(config, log)
    try:
        time.sleep(0.5)
        rows.append(("idle, empty queue",) + status(daemon.proc.pid))
        start = time.monotonic()
        subprocess.run(
            [source, "-s", str(args.sessions), "-m", str(n), "-l", "1024",
             "-f", "bench@bench.test", "-t", "far@far.test", f"127.0.0.1:{port}"],
            check=True,
        )
        sent = time.monotonic() - start
        wait_deferred(queue, n, 3600)
        queued = time.monotonic() - start
        print(f"{n} messages sent in {sent:.0f} s ({n / sent:.0f}/s), all deferred after {queued:.0f} s")
        time.sleep(1)
        rows.append((f"{n:,} queued and deferred",) + status(daemon.proc.pid))
        daemon.stop()

        daemon = Daemon(config, log)
        # The start-up scan takes charge of every file in deferred/.
        time.sleep(5)
        rows.append((f"restarted with {n:,} deferred",) + status(daemon.proc.pid))

        start = time.monotonic()
        subprocess.run([POSTERN, "flush", "--config", config], check=True)
        time.sleep(2)
        wait_deferred(queue, n, 3600)
        flushed = time.monotonic() - start
        time.sleep(1)
        rows.append((f"after a flush of all {n:,} ({flushed:.0f} s)",) + status(daemon.proc.pid))
        du = subprocess.run(["du", "-sh", queue], capture_output=True, text=True).stdout.split()[0]
        print(f"queue directory: {du}")
        # The scheduler logs what it holds in memory each time that fills
        # up (qmgr_message_active_limit): the high-water marks.
        with open(log) as f:
            held = [int(l.split("active queue: ")[1].split()[0]) for l in f if "active queue: " in l]
        print(f"scheduler filled its memory {len(held)} times, at most {max(held, default=0):,} "
              f"messages in memory (qmgr_message_active_limit {args.active_limit:,})")
        print()
        print("| state | VmRSS | VmHWM (peak so far) |")
        print("|---|---|---|")
        for what, rss, hwm in rows:
            print(f"| {what} | {rss:,} KiB | {hwm:,} KiB |")
    finally:
        daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
