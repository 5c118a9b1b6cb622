"""System calls per message, Postern beside Postfix (issue 8): runs
accept -> Maildir (or relay into smtp-sink) with `strace -f -c` attached
to the server, and prints the calls per message, the syncs (fsync,
fdatasync, syncfs) first.

    python3 bench/syscalls.py [--fs journaled|root] [--messages 1000]
        [--sessions 20] [--relay] postern postfix

strace slows every call down, so the rate it prints means nothing; the
counts are the measurement. With group commit the number of syncs per
message depends on how many sessions share one: compare runs with the
same --sessions.
"""

import argparse
import os
import signal
import subprocess
import tempfile
import time

from mta import DEFAULT, REMOTE, USER, NxDns, Postern, Postfix, Sink, in_tmp, scratch, \
    smtp_source
from servers import filesystem

SYNCS = ("fsync", "fdatasync", "syncfs", "sync_file_range", "msync")


def traced(server, arrived, messages, sessions, to):
    """The strace -c table of `server` while `messages` go through it."""
    out = tempfile.NamedTemporaryFile(prefix="postern-strace-", suffix=".txt", delete=False)
    out.close()
    try:
        tracer = subprocess.Popen(["strace", "-f", "-c", "-o", out.name, "-p", str(server.pid)],
                                  stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # strace attaches to every thread
        smtp_source(server.port, messages, sessions, to)
        deadline = time.monotonic() + 600
        while arrived() < messages and time.monotonic() < deadline:
            time.sleep(0.05)
        # Let the queue's removals after the last delivery happen too.
        time.sleep(1.0)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=60)
        return parse(open(out.name).read())
    finally:
        os.unlink(out.name)


def journal_commits(path):
    """The journal commits (jbd2 transactions) of the ext4 under `path` so
    far, or None without a journal: every fsync waits for one, and
    concurrent syncs that share one cost one, so commits per message
    measure what the syncs cost better than their number does."""
    dev = subprocess.run(["findmnt", "-n", "-o", "SOURCE", "--target", path],
                         capture_output=True, text=True).stdout.strip()
    try:
        with open(f"/proc/fs/jbd2/{os.path.basename(dev)}-8/info") as f:
            return int(f.readline().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def parse(table):
    """{syscall: calls} from strace -c's table."""
    counts = {}
    for line in table.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            try:
                counts[parts[-1]] = int(parts[3])
            except ValueError:
                continue
    return counts


def run(kind, relay, messages, sessions):
    def go(tmp):
        dns = NxDns()
        sink = Sink() if relay else None
        relayhost = f"[127.0.0.1]:{sink.port}" if sink else ""
        nets = "127.0.0.0/8" if relay else "192.0.2.0/24"
        try:
            if kind == "postern":
                server = Postern(tmp, DEFAULT, nets, relayhost=relayhost, dns=dns.addr)
            else:
                server = Postfix(tmp, "relay" if relay else "maildir", relayhost=relayhost)
            try:
                arrived = (lambda: sink.received) if sink else server.delivered
                return traced(server, arrived, messages, sessions, REMOTE if relay else USER)
            finally:
                server.stop()
        finally:
            dns.close()
            if sink:
                sink.close()
    return in_tmp(go)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fs", choices=("journaled", "root"), default="journaled")
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--relay", action="store_true", help="relay into smtp-sink")
    ap.add_argument("--top", type=int, default=12, help="other calls shown")
    ap.add_argument("servers", nargs="+", choices=("postern", "postfix"))
    args = ap.parse_args()
    with scratch(args.fs) as work:
        what = "relay" if args.relay else "accept -> Maildir"
        print(f"{what}, {args.messages} messages over {args.sessions} sessions, "
              f"files on {filesystem(work)}")
        for kind in args.servers:
            before = journal_commits(work)
            counts = run(kind, args.relay, args.messages, args.sessions)
            after = journal_commits(work)
            n = args.messages
            syncs = {k: counts.get(k, 0) for k in SYNCS if counts.get(k)}
            total = sum(counts.values())
            print(f"\n{kind}: {total / n:.1f} system calls per message; syncs per message: "
                  + (", ".join(f"{k} {v / n:.2f}" for k, v in syncs.items()) or "none")
                  + f" (all syncs: {sum(syncs.values()) / n:.2f})"
                  + (f"; journal commits per message: {(after - before) / n:.2f}"
                     if before is not None and after is not None else ""))
            top = sorted(((v, k) for k, v in counts.items() if k not in SYNCS), reverse=True)
            print("  " + ", ".join(f"{k} {v / n:.1f}" for v, k in top[:args.top]))


if __name__ == "__main__":
    main()
