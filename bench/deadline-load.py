#!/usr/bin/env python3
"""The plugin deadline under CPU load (issue 8): does a machine that is
merely busy make well-behaved plugins miss their deadline, and tempfail
mail that a quiet machine accepts?

Runs the release `postern` with the 8-plugin chain of bench/mta.py
(`chain8`: two access maps, an RBL over a local DNS server, three HELO
checks, the relay check, greylisting with the client whitelisted; every
entry runs and passes for the bench mail) and sends MESSAGES messages over
SESSIONS concurrent sessions with Postfix's `smtp-source`, once on the
quiet machine and once while HOGS processes spin in busy loops (4 per
core by default: a load average around 10 on 2 cores, plus the sessions
themselves). Every plugin of the chain needs well under a millisecond of
CPU per call; what is counted is how many calls were cut off anyway
(`deadline: still running` in the log), how many messages were refused
for it (sent - delivered), and the server's CPU per message. For the
calls cut off, the plugins named and where their time went (the cause a
cut-off call logs: CPU, time holding a thread, its own waits, DNS, time
ready but waiting for a thread) are summed up; `--keep-logs DIR` keeps
each run's server log there.

    python3 bench/deadline-load.py [--messages 2000] [--sessions 50]
        [--hogs 8] [--runs 1] [--postern BIN] [--keep-logs DIR]

Nothing outside a temporary directory is touched; the hogs are this
script's children and are killed at the end of each run.
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import servers  # noqa: E402
from mta import USER, NxDns, Postern, chain8, cpu_seconds, in_tmp  # noqa: E402

HOG = "while True:\n    pass\n"

# Where a cut-off call's time went, as its cause says (host/policy
# deadline.rs, `Account`).
ACCOUNT = re.compile(
    r"(\d+) ms: ([\d.]+) ms of CPU in (\d+) ms holding a thread, (\d+) ms waiting on its "
    r"own host calls, (\d+) ms on DNS, (\d+) ms ready but waiting for a thread")
ACCOUNT_FIELDS = ("elapsed", "cpu", "held", "own waits", "dns", "ready waiting")


def where_time_went(cut):
    """The plugins cut off, and the largest of each part of their time."""
    plugins = collections.Counter()
    most = dict.fromkeys(ACCOUNT_FIELDS, 0.0)
    for line in cut:
        m = re.search(r": plugin (\S+) failed at ", line)
        if m:
            plugins[m.group(1)] += 1
        a = ACCOUNT.search(line)
        if a:
            for field, value in zip(ACCOUNT_FIELDS, a.groups()):
                most[field] = max(most[field], float(value))
    return plugins, most


def send(port, messages, sessions):
    """Runs smtp-source to the end, not stopping at temporary failures."""
    r = subprocess.run(
        ["smtp-source", "-A", "-s", str(sessions), "-l", "4096", "-m", str(messages),
         "-M", servers.HELO, "-f", "sender@client.test", "-t", USER, f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=servers.RUN_LIMIT)
    return r.stderr


def settle(server, limit=60):
    """The number delivered once it stops growing for a second."""
    last, since, start = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - start < limit:
        n = server.delivered()
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since > 1.0:
            break
        time.sleep(0.05)
    return last


def run(messages, sessions, hogs, keep_logs=None):
    def body(tmp):
        dns = NxDns()
        d = os.path.join(tmp, "postern")
        server = Postern(tmp, chain8(d), "192.0.2.0/24", dns=dns.addr)
        spinning = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
        try:
            time.sleep(1.0 if hogs else 0)
            load_before = os.getloadavg()[0]
            cpu = cpu_seconds(server.pid)
            started = time.monotonic()
            errors = send(server.port, messages, sessions)
            took = time.monotonic() - started
            cpu = cpu_seconds(server.pid) - cpu
            load_after = os.getloadavg()[0]
            delivered = settle(server)
            with open(os.path.join(d, "log")) as f:
                log = f.read()
            if keep_logs:
                os.makedirs(keep_logs, exist_ok=True)
                shutil.copy(os.path.join(d, "log"), os.path.join(
                    keep_logs, f"hogs{hogs}-{time.strftime('%H%M%S')}.log"))
        finally:
            for p in spinning:
                p.kill()
                p.wait()
            server.stop()
            dns.close()
        cut = [line for line in log.splitlines() if "deadline: still running" in line]
        failed = [line for line in log.splitlines() if " failed at " in line]
        plugins, most = where_time_went(cut)
        return {
            "cut_plugins": plugins,
            "cut_most": most,
            "hogs": hogs,
            "sent": messages,
            "delivered": delivered,
            "refused": messages - delivered,
            "deadline_cuts": len(cut),
            "plugin_failures": len(failed),
            "seconds": took,
            "cpu_ms_per_msg": 1e3 * cpu / messages,
            "load": (load_before, load_after),
            "example": (cut or failed or [""])[0][-300:],
            "client_errors": len([e for e in errors.splitlines() if e.strip()]),
        }
    return in_tmp(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--hogs", type=int, default=4 * (os.cpu_count() or 1))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--postern", default=servers.POSTERN)
    ap.add_argument("--keep-logs", metavar="DIR", help="copy each run's server log into DIR")
    args = ap.parse_args()
    servers.POSTERN = args.postern
    if not os.path.exists(args.postern):
        raise SystemExit(f"{args.postern}: build it first (cargo build --release -p postern-server)")
    print(f"postern: {args.postern}; {args.messages} messages over {args.sessions} sessions, "
          f"8-plugin chain, default 250 ms deadline")
    print("hogs  sent  delivered  refused  deadline cuts  plugin failures  s     CPU ms/msg  load")
    for _ in range(args.runs):
        for hogs in (0, args.hogs):
            r = run(args.messages, args.sessions, hogs, args.keep_logs)
            print(f"{r['hogs']:<5} {r['sent']:<5} {r['delivered']:<10} {r['refused']:<8} "
                  f"{r['deadline_cuts']:<14} {r['plugin_failures']:<16} {r['seconds']:<5.1f} "
                  f"{r['cpu_ms_per_msg']:<11.2f} {r['load'][0]:.1f} -> {r['load'][1]:.1f}",
                  flush=True)
            if r["example"]:
                print(f"      e.g. {r['example']}")
            if r["cut_plugins"]:
                print("      cut off: " + ", ".join(
                    f"{name} {n}" for name, n in r["cut_plugins"].most_common()))
                print("      their largest (ms): " + ", ".join(
                    f"{field} {value:.0f}" for field, value in r["cut_most"].items()))


if __name__ == "__main__":
    main()
