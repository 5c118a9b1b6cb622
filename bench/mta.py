"""Whole-server mail benchmarks, Postern beside Postfix (issue 8, item 1):
the measurements `run-all.py` drives; run alone, a few SMTP variants side
by side (`python3 bench/mta.py --help`). The servers are in servers.py.

- accept -> Maildir: Postfix's `smtp-source` sends MESSAGES messages of
  4 KiB over SESSIONS parallel sessions (one message per connection) to a
  local user; the clock runs from the first connection until the last
  message is a file in the user's Maildir `new/`.
- relay: the same to a remote recipient, with `relayhost =
  [127.0.0.1]:PORT` pointing at Postfix's `smtp-sink`; the clock stops when
  the sink has received the last message.
- policy cost: Postern's accept -> Maildir with three recipient lists.
- hot reload under load: `postern reload` 50 times while `smtp-source`
  sends, each reload switching the recipient list; failed transactions
  counted.
- "no fsync": accept -> Maildir with Debian's libeatmydata preloaded
  into the server's processes, a diagnostic of the time spent waiting
  for the disk; "files": with syncshim.c preloaded instead, so that only
  the files' syncs reach the disk, not the directories' (see servers.py's
  preload_env), a diagnostic of what Postern's other syncs cost;
  "queue-nosync" and "mailbox-nosync" (and Postfix's "postfix-..."): the
  same shim skipping every sync under the queue directory, or under the
  mailboxes, and keeping the other stage's: what each stage's syncs cost;
  "lmtp": the same messages over Postern's LMTP service into the same
  Maildir (one file per message, no queue file, no policy chain), a
  diagnostic of what the queue file costs.

Both servers see the client (127.0.0.1) outside `mynetworks` for accept
-> Maildir (as mail from the internet), inside it for relay. Temporary
directories go where `tempfile` puts them (`scratch` points it at a
journaled scratch filesystem for --fs journaled).
"""

import os
import shutil
import subprocess
import tempfile
import threading
import time

from servers import (  # noqa: F401 (re-exported for run-all.py)
    EATMYDATA, HELO, POSTERN, POSTFIX_MASTER, REMOTE, ROOT, RUN_LIMIT, USER, NxDns, Postern,
    Postfix, Sink, cpu_seconds, filesystem, free_port, scratch,
)


# --- measurements ------------------------------------------------------------

def smtp_source(port, messages, sessions, to, check=True, lmtp=False):
    """Runs smtp-source to the end (speaking LMTP with `lmtp`); its exit
    code and stderr."""
    r = subprocess.run(
        ["smtp-source"] + (["-L"] if lmtp else []) + ["-A", "-s", str(sessions), "-l", "4096", "-m", str(messages),
         "-M", HELO, "-f", "sender@client.test", "-t", to, f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=RUN_LIMIT)
    if check and (r.returncode != 0 or r.stderr.strip()):
        raise SystemExit(f"smtp-source failed ({r.returncode}): {r.stderr[-2000:]}")
    return r.returncode, r.stderr


def timed_send(server, arrived, messages, sessions, to, lmtp_port=None):
    """Messages per second from the first connection until `arrived()`
    reaches `messages`, and the server's CPU milliseconds per message.
    With `lmtp_port`, the messages go over LMTP to that port."""
    cpu = cpu_seconds(server.pid)
    start = time.monotonic()
    smtp_source(lmtp_port or server.port, messages, sessions, to, lmtp=lmtp_port is not None)
    deadline = start + RUN_LIMIT
    while arrived() < messages:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {arrived()} of {messages} arrived within {RUN_LIMIT} s")
        time.sleep(0.01)
    elapsed = time.monotonic() - start
    return messages / elapsed, 1e3 * (cpu_seconds(server.pid) - cpu) / messages


def preflight():
    """Before anything is timed: one message from swaks, a client that is
    neither server's own, to the local user of Postfix and of Postern
    (default chain, client outside mynetworks, as in accept -> Maildir),
    each checked to arrive in the Maildir. A setup that does not deliver
    stops the run here, with swaks's transcript, instead of timing out
    5,000 messages later."""
    def one(tmp, kind):
        if kind == "postern":
            server = Postern(tmp, DEFAULT, "192.0.2.0/24")
        else:
            server = Postfix(tmp, "maildir")
        try:
            r = subprocess.run(
                ["swaks", "--server", f"127.0.0.1:{server.port}", "--helo", HELO,
                 "--from", "sender@client.test", "--to", USER, "--timeout", "30"],
                capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise SystemExit(f"preflight: swaks to {kind} failed:\n{r.stdout[-3000:]}")
            deadline = time.monotonic() + 30
            while server.delivered() < 1:
                if time.monotonic() > deadline:
                    raise SystemExit(f"preflight: {kind} answered 250 but delivered nothing in 30 s")
                time.sleep(0.05)
        finally:
            server.stop()
    for kind in ("postfix", "postern"):
        in_tmp(lambda tmp: one(tmp, kind))
    return "swaks delivered one message to Postfix's and to Postern's local user"


def in_tmp(fn):
    tmp = tempfile.mkdtemp(prefix="postern-mta-")
    try:
        return fn(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


DEFAULT = '["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"]'
# The smallest list Postern accepts: a list that cannot refuse relaying is
# a configuration error (no open relay by mistake), so this stands for
# "no chain".
EMPTY = '["reject_unauth_destination"]'


# Local mail stored in the mailbox before the 250, with no queue file
# (host/queue/src/at_once.rs): off by default.
IMMEDIATE = "immediate_local_delivery = true\n"


def chain8(d):
    """Eight entries that all run, and all pass, for bench mail from
    127.0.0.1 (outside mynetworks) with HELO mx.client.test: two access
    maps, an RBL asked over DNS, three HELO checks, the relay check and
    greylisting with the client whitelisted."""
    return ("[" + ", ".join([
        f'"check_client_access hash:{d}/access"',
        '"reject_rbl_client rbl.bench.test"',
        f'"check_helo_access hash:{d}/helo_access"',
        '"reject_invalid_helo_hostname"',
        '"reject_non_fqdn_helo_hostname"',
        f'"check_sender_access hash:{d}/access"',
        '"reject_unauth_destination"',
        '{ plugin = "greylist", whitelist_clients = "127.0.0.0/8" }',
    ]) + "]")


def accept_postern(chain, messages, sessions, nosync=False, extra=""):
    def run(tmp):
        dns = NxDns()
        d = os.path.join(tmp, "postern")
        server = Postern(tmp, chain8(d) if chain == "chain8" else chain, "192.0.2.0/24",
                         dns=dns.addr, nosync=nosync, extra=extra)
        try:
            return timed_send(server, server.delivered, messages, sessions, USER)
        finally:
            server.stop()
            dns.close()
    return in_tmp(run)


def lmtp_postern(messages, sessions):
    """The same messages to the same Maildir over Postern's LMTP service,
    which stores each in the mailbox before its reply, as Dovecot's LMTP
    does: one file per message where accept -> Maildir writes two (the
    queue file, then the mailbox's), and no policy chain. A diagnostic
    of what the queue file costs, not a like-for-like rival of Postfix."""
    def run(tmp):
        port = free_port()
        server = Postern(tmp, DEFAULT, "192.0.2.0/24",
                         services=f'[[service]]\nname = "lmtp"\nlisten = "127.0.0.1:{port}"\n')
        try:
            return timed_send(server, server.delivered, messages, sessions, USER, lmtp_port=port)
        finally:
            server.stop()
    return in_tmp(run)


def accept_postfix(messages, sessions, nosync=False):
    def run(tmp):
        server = Postfix(tmp, "maildir", nosync=nosync)
        try:
            return timed_send(server, server.delivered, messages, sessions, USER)
        finally:
            server.stop()
    return in_tmp(run)


def relay(kind, messages, sessions):
    def run(tmp):
        sink = Sink()
        relayhost = f"[127.0.0.1]:{sink.port}"
        try:
            if kind == "postern":
                server = Postern(tmp, DEFAULT, "127.0.0.0/8", relayhost=relayhost)
            else:
                server = Postfix(tmp, "relay", relayhost=relayhost)
            try:
                return timed_send(server, lambda: sink.received, messages, sessions, REMOTE)
            finally:
                server.stop()
        finally:
            sink.close()
    return in_tmp(run)


def reload_under_load(reloads, sessions, batch=1000):
    """`reloads` reloads, each switching the recipient list between the
    default chain and the 8-plugin one, while smtp-source sends batches of
    `batch` messages back to back. Returns a dict of what happened."""
    def run(tmp):
        dns = NxDns()
        server = Postern(tmp, DEFAULT, "192.0.2.0/24", dns=dns.addr)
        lists = [chain8(server.dir), DEFAULT]
        done = threading.Event()
        failures, times = [], []

        def reloader():
            time.sleep(0.5)  # let the first sessions start
            for i in range(reloads):
                server.write(lists[i % 2])
                t = time.monotonic()
                rc, err = server.reload()
                times.append(time.monotonic() - t)
                if rc != 0:
                    failures.append(err)
                time.sleep(0.1)
            done.set()

        try:
            th = threading.Thread(target=reloader)
            th.start()
            sent, errors, start = 0, [], time.monotonic()
            while not done.is_set() or sent == 0:
                rc, err = smtp_source(server.port, batch, sessions, USER, check=False)
                sent += batch
                if rc != 0 or err.strip():
                    errors.append(err.strip() or f"exit {rc}")
            th.join()
            deadline = time.monotonic() + RUN_LIMIT
            while server.delivered() < sent and time.monotonic() < deadline:
                time.sleep(0.05)
            delivered = server.delivered()
            log = open(server.log.name).read()
            return {
                "reloads": reloads, "reload_failures": len(failures), "sent": sent,
                "delivered": delivered, "smtp_errors": len(errors),
                # A refused transaction is one smtp-source warning line
                # and one message short; a lost one only the latter.
                "failed": max(sent - delivered, sum(e.count("\n") + 1 for e in errors)),
                "seconds": time.monotonic() - start,
                "reload_ms_median": 1e3 * sorted(times)[len(times) // 2] if times else 0,
                "reload_ms_max": 1e3 * max(times) if times else 0,
                "first_errors": (errors + failures)[:3],
                "reloads_logged": log.count("reload"),
            }
        finally:
            server.stop()
            dns.close()
    return in_tmp(run)


VARIANTS = {
    "postfix": lambda n, s: accept_postfix(n, s),
    "postfix-nosync": lambda n, s: accept_postfix(n, s, nosync=True),
    "empty": lambda n, s: accept_postern(EMPTY, n, s),
    "default": lambda n, s: accept_postern(DEFAULT, n, s),
    "immediate": lambda n, s: accept_postern(DEFAULT, n, s, extra=IMMEDIATE),
    "chain8": lambda n, s: accept_postern("chain8", n, s),
    "nosync": lambda n, s: accept_postern(DEFAULT, n, s, nosync=True),
    "files": lambda n, s: accept_postern(DEFAULT, n, s, nosync="files"),
    "queue-nosync": lambda n, s: accept_postern(DEFAULT, n, s, nosync="queue"),
    "mailbox-nosync": lambda n, s: accept_postern(DEFAULT, n, s, nosync="mailbox"),
    "postfix-queue-nosync": lambda n, s: accept_postfix(n, s, nosync="queue"),
    "postfix-mailbox-nosync": lambda n, s: accept_postfix(n, s, nosync="mailbox"),
    "lmtp": lmtp_postern,
    "relay-postfix": lambda n, s: relay("postfix", n, s),
    "relay-postern": lambda n, s: relay("postern", n, s),
}


def main():
    """A few variants alone, for a closer look than run-all.py's:
    python3 bench/mta.py [--fs journaled] [--messages 5000] [--runs 3] [--against BINARY]
    VARIANT... (postfix, default, files, ...: VARIANTS)."""
    import argparse
    import statistics
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--fs", choices=("journaled", "root"), default="journaled")
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--against", metavar="BINARY",
                    help="also run every Postern variant with this other postern binary, "
                         "interleaved, as VARIANT@against (an A/B of two builds in one run)")
    ap.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    args = ap.parse_args()
    import servers
    ours = servers.POSTERN
    labels = []
    for v in args.variants:
        labels.append(v)
        if args.against and "postfix" not in v:
            labels.append(f"{v}@against")
    rates = {v: [] for v in labels}
    cpus = {v: [] for v in labels}
    with scratch(args.fs) as work:
        print(f"files on {filesystem(work)}", flush=True)
        for r in range(args.runs):
            for v in labels:
                # Postern's class starts servers.POSTERN: swapped per run.
                servers.POSTERN = args.against if v.endswith("@against") else ours
                rate, cpu = VARIANTS[v.removesuffix("@against")](args.messages, args.sessions)
                rates[v].append(rate)
                cpus[v].append(cpu)
                print(f"run {r + 1}: {v:14} {rate:6.0f} msg/s, {cpu:5.2f} ms CPU/msg "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
    print("| variant | msg/s, median | runs | CPU ms/msg, median |\n|---|---|---|---|")
    for v in labels:
        print(f"| {v} | {statistics.median(rates[v]):.0f} | "
              + " ".join(f"{x:.0f}" for x in rates[v])
              + f" | {statistics.median(cpus[v]):.2f} |")


if __name__ == "__main__":
    main()
