#!/usr/bin/env python3
"""Whole-server cost of the restriction chain (issue 3's second target).

Runs the release `postern` three ways, each three times, on loopback, for
a client outside mynetworks (as mail from the internet is):

  minimal  reject_unauth_destination alone: the smallest list Postern
           accepts (a list that cannot refuse relaying is a config error,
           so a chain with no plugin at all cannot be configured)
  default  the embedded default chain: permit_mynetworks,
           permit_sasl_authenticated, reject_unauth_destination, every one
           of which runs for such a client
  chain8   eight plugin entries that all answer DUNNO, so every one runs
           for every recipient

For each run, Postfix's `smtp-source` (Debian package `postfix`, installed
when missing) sends MESSAGES messages of 4 KiB over SESSIONS sessions to a
local user, and the clock stops when the last one is in the Maildir. The
script prints the median rate of each and its ratio to `minimal`. The
target: `default` keeps >= 90% of the rate without a chain.

    python3 bench/chain-cost.py [--messages 5000] [--sessions 20] [--runs 3]

Nothing outside a temporary directory is touched; the server listens on an
ephemeral loopback port and is killed at the end of each run.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSTERN = os.path.join(ROOT, "target", "release", "postern")
CACHE = os.path.join(ROOT, "target", "bench-plugin-cache")

# Eight entries that each answer DUNNO for an unauthenticated client
# sending to a local user, so the whole list runs and its end permits.
EIGHT = [
    "permit_sasl_authenticated",
    "permit_pop_before_smtp",
    "reject_unauth_destination",
] * 3
CHAINS = {
    "minimal": '["reject_unauth_destination"]',
    "default": '["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"]',
    "chain8": "[" + ", ".join(f'"{p}"' for p in EIGHT[:8]) + "]",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_tools():
    if not shutil.which("smtp-source"):
        print("installing postfix for smtp-source ...", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "postfix"], check=True, env=env)
    if not os.path.exists(POSTERN) or "--no-build" not in sys.argv:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "postern-server"], cwd=ROOT, check=True)


def count_new(base):
    n = 0
    for dirpath, _dirs, files in os.walk(base):
        if os.path.basename(dirpath) == "new":
            n += len(files)
    return n


def run_once(chain, messages, sessions):
    tmp = tempfile.mkdtemp(prefix="postern-bench-")
    try:
        port = free_port()
        with open(os.path.join(tmp, "users"), "w") as f:
            f.write("bench@localhost:{PLAIN}x::::\n")
        config = os.path.join(tmp, "postern.toml")
        with open(config, "w") as f:
            f.write(
                f'myhostname = "bench.test"\n'
                f'mydestination = "localhost"\n'
                # Loopback is outside mynetworks: the whole chain runs.
                f'mynetworks = "192.0.2.0/24"\n'
                f'data_directory = "{tmp}"\n'
                # No system user is made for the benchmarks: Postern keeps root
                # (see servers.py); a missing `postern` user would stop start-up.
                f'mail_owner = "root"\n'
                f'queue_directory = "{tmp}/queue"\n'
                f'virtual_mailbox_base = "{tmp}/mail"\n'
                f'plugin_cache_directory = "{CACHE}"\n'
                f"[auth]\nusers_file = \"{tmp}/users\"\n"
                f"[smtpd.restrictions]\nrecipient = {chain}\n"
                f'[[service]]\nname = "smtp"\nlisten = "127.0.0.1:{port}"\n'
            )
        log = open(os.path.join(tmp, "log"), "w+")
        server = subprocess.Popen(
            [POSTERN, "start", "--foreground", "--config", config],
            stdout=log,
            stderr=log,
        )
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
            start = time.monotonic()
            subprocess.run(
                [
                    "smtp-source", "-s", str(sessions), "-l", "4096", "-m", str(messages),
                    "-f", "sender@bench.test", "-t", "bench@localhost",
                    f"127.0.0.1:{port}",
                ],
                check=True,
            )
            deadline = time.time() + 600
            while count_new(os.path.join(tmp, "mail")) < messages:
                if time.time() > deadline:
                    raise SystemExit("messages did not all arrive within 10 minutes")
                time.sleep(0.02)
            return messages / (time.monotonic() - start)
        finally:
            server.kill()
            server.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-build", action="store_true", help="use the existing release binary")
    args = ap.parse_args()
    ensure_tools()
    rates = {name: [] for name in CHAINS}
    # Interleaved, so a change in machine load hits every variant alike.
    for _ in range(args.runs):
        for name, chain in CHAINS.items():
            rates[name].append(run_once(chain, args.messages, args.sessions))
    base = statistics.median(rates["minimal"])
    print(f"{'chain':8} {'median msg/s':>13} {'ratio':>6}   runs")
    for name, rs in rates.items():
        med = statistics.median(rs)
        print(f"{name:8} {med:13.0f} {med / base:6.2f}   " + " ".join(f"{r:.0f}" for r in rs))


if __name__ == "__main__":
    main()
