#!/usr/bin/env python3
"""IMAP and POP3 load mixes against Postern and Dovecot side by side (issue
7's benchmark): the same data in both, the same clients, in the same run.

Writes USERS users with MESSAGES messages each (1 to 16 KiB, seeded) into
identical Maildir trees, one per server; starts the release `postern` on
one and Debian's Dovecot twice on the others (its own config in the
temporary directory; once with stock settings, once in its documented
high-performance mode), all on loopback ephemeral ports with one users
file; warms each (one login and SELECT per user); then runs each mix for
SECONDS against each server in turn, CLIENTS concurrent client processes:

- IMAP mix, one session per iteration: LOGIN, SELECT INBOX, FETCH of a
  random message (FLAGS BODY.PEEK[]), STORE +FLAGS (\\Seen), APPEND of a
  3 KiB message, STORE +FLAGS.SILENT (\\Deleted) on message 1, EXPUNGE,
  LOGOUT (8 commands; the mailbox keeps its size).
- POP3 mix, one session per iteration: USER, PASS, STAT, LIST, RETR of a
  random message, DELE of it, QUIT (7 commands); then the client delivers
  one message into the Maildir (tmp/ then new/, as an MDA does) so the
  mailbox keeps its size.

Each client owns its own users (no two clients on one mailbox at once:
POP3 locks a mailbox). The servers take turns, the order rotated from run
to run; medians of RUNS runs; ratio = Postern / Dovecot.

    python3 bench/imap-pop3-mix.py [--users 40] [--messages 100] \\
        [--clients 8] [--seconds 10] [--runs 3] [--no-build] \\
        [--postern BIN] [--baseline BIN] [--mixes imap,pop3] \\
        [--dovecot stock,tuned]

--baseline runs a second postern binary (say, a copy of the release
build from before a change) beside the first, in the same run, as
`postern-baseline`; --mixes and --dovecot narrow what is measured.

Needs Dovecot: apt-get install dovecot-imapd dovecot-pop3d (nothing is
installed here). As root, Dovecot's mail processes run as `nobody` (it
refuses root), so its tree is handed to `nobody`.
"""

import argparse
import multiprocessing
import os
import pwd
import random
import re
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
DOVECOT = "/usr/sbin/dovecot"
DOMAIN = "example.org"
PASSWORD = "secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(rng, i, size):
    head = (
        f"From: Sender {i} <sender{i}@example.net>\r\n"
        f"To: user@{DOMAIN}\r\n"
        f"Subject: benchmark message {i}\r\n"
        f"Date: Mon, 6 May 2024 07:08:09 +0000\r\n"
        f"Message-ID: <{i}.{rng.randrange(1 << 30)}@example.net>\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    words = ["mail", "server", "postern", "dovecot", "imap", "queue", "lorem", "ipsum"]
    body = []
    n = len(head)
    while n < size:
        line = " ".join(rng.choice(words) for _ in range(10)) + "\r\n"
        body.append(line)
        n += len(line)
    return (head + "".join(body)).encode()


def deliver(maildir, data, owner=None):
    """Writes one message the Maildir way: tmp/, then a rename into new/."""
    name = f"{time.time_ns()}.M{random.randrange(1 << 20)}P{os.getpid()}.bench,S={len(data)}"
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    if owner:
        os.chown(tmp, *owner)
    os.rename(tmp, os.path.join(maildir, "new", name))


def load(base, users, messages, owner=None):
    for u in range(users):
        rng = random.Random(u)
        md = os.path.join(base, DOMAIN, f"user{u}", "Maildir")
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        for i in range(messages):
            deliver(md, message(rng, i, rng.randrange(1024, 16384)))
    if owner:
        for d, dirs, files in os.walk(base):
            os.chown(d, *owner)
            for f in files:
                os.chown(os.path.join(d, f), *owner)


class Conn:
    """A line reader over a socket, with IMAP literals."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.s.recv(65536)
            if not data:
                raise EOFError("server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            data = self.s.recv(65536)
            if not data:
                raise EOFError("server closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        self.s.sendall(data)

    def imap(self, tag, command):
        """Sends a command, returns its untagged lines and the tagged one."""
        self.send(f"{tag} {command}\r\n".encode())
        return self.imap_wait(tag)

    def imap_wait(self, tag):
        lines = []
        t = tag.encode() + b" "
        while True:
            line = self.line()
            m = re.search(rb"\{(\d+)\}$", line)
            if m:
                self.exact(int(m.group(1)))
            if line.startswith(t):
                if not line[len(t):].startswith(b"OK"):
                    raise RuntimeError(f"{tag}: {line!r}")
                return lines
            lines.append(line)

    def pop(self, command, multi=False):
        self.send(command.encode() + b"\r\n")
        line = self.line()
        if not line.startswith(b"+OK"):
            raise RuntimeError(f"{command}: {line!r}")
        out = [line]
        if multi:
            while True:
                line = self.line()
                if line == b".":
                    break
                out.append(line)
        return out


APPENDED = message(random.Random(0), 999999, 3072)


def imap_mix(port, user, rng):
    c = Conn(port)
    c.line()
    c.imap("a1", f"LOGIN {user} {PASSWORD}")
    exists = 0
    for line in c.imap("a2", "SELECT INBOX"):
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            exists = int(m.group(1))
    k = rng.randrange(1, exists + 1)
    c.imap("a3", f"FETCH {k} (FLAGS BODY.PEEK[])")
    c.imap("a4", f"STORE {k} +FLAGS (\\Seen)")
    c.send(f"a5 APPEND INBOX (\\Seen) {{{len(APPENDED)}}}\r\n".encode())
    if not c.line().startswith(b"+"):
        raise RuntimeError("APPEND: no continuation")
    c.send(APPENDED + b"\r\n")
    c.imap_wait("a5")
    c.imap("a6", "STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.imap("a7", "EXPUNGE")
    c.send(b"a8 LOGOUT\r\n")
    c.imap_wait("a8")
    c.s.close()


def pop3_mix(port, user, rng, maildir, owner):
    c = Conn(port)
    c.line()
    c.pop(f"USER {user}")
    c.pop(f"PASS {PASSWORD}")
    n = int(c.pop("STAT")[0].split()[1])
    c.pop("LIST", multi=True)
    k = rng.randrange(1, n + 1)
    c.pop(f"RETR {k}", multi=True)
    c.pop(f"DELE {k}")
    c.pop("QUIT")
    c.s.close()
    deliver(maildir, APPENDED, owner)


def worker(kind, port, base, owner, users, seconds, start_at, out):
    rng = random.Random(os.getpid())
    done = errors = 0
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + seconds
    i = 0
    while time.time() < deadline:
        u = users[i % len(users)]
        i += 1
        user = f"user{u}@{DOMAIN}"
        try:
            if kind == "imap":
                imap_mix(port, user, rng)
            else:
                md = os.path.join(base, DOMAIN, f"user{u}", "Maildir")
                pop3_mix(port, user, rng, md, owner)
            done += 1
        except (OSError, RuntimeError, EOFError) as e:
            errors += 1
            if errors <= 3:
                print(f"  {kind} error: {e}", file=sys.stderr)
    out.put((done, errors))


def measure(kind, port, base, owner, args):
    out = multiprocessing.Queue()
    start_at = time.time() + 0.5
    procs = []
    for w in range(args.clients):
        users = [u for u in range(args.users) if u % args.clients == w]
        p = multiprocessing.Process(
            target=worker, args=(kind, port, base, owner, users, args.seconds, start_at, out)
        )
        p.start()
        procs.append(p)
    results = [out.get(timeout=args.seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    done = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    return done / args.seconds, errors


def wait_port(port, proc, log):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited; log:\n{open(log).read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                if s.recv(100):
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answered on {port}; log:\n{open(log).read()}")


def start_postern(tmp, base, users_file, binary=POSTERN, name="postern"):
    imap, pop3 = free_port(), free_port()
    config = os.path.join(tmp, f"{name}.toml")
    with open(config, "w") as f:
        f.write(
            f'myhostname = "bench.test"\n'
            f'mydestination = "{DOMAIN}"\n'
            f'data_directory = "{tmp}/{name}"\n'
            f'queue_directory = "{tmp}/{name}/queue"\n'
            f'virtual_mailbox_base = "{base}"\n'
            f'plugin_cache_directory = "{CACHE}"\n'
            # The trees belong to root, as the server; privilege separation
            # (a `postern` system user) is not what is measured here.
            f'mail_owner = "root"\n'
            f'[auth]\nusers_file = "{users_file}"\n'
            f'[[service]]\nname = "smtp"\nlisten = "127.0.0.1:{free_port()}"\n'
            f'[[service]]\nname = "imap"\nlisten = "127.0.0.1:{imap}"\n'
            f'[[service]]\nname = "pop3"\nlisten = "127.0.0.1:{pop3}"\n'
        )
    log = os.path.join(tmp, f"{name}.log")
    proc = subprocess.Popen(
        [binary, "start", "--foreground", "--config", config],
        stdout=open(log, "w"), stderr=subprocess.STDOUT,
    )
    wait_port(imap, proc, log)
    wait_port(pop3, proc, log)
    return proc, imap, pop3


def dovecot_owner():
    """Who Dovecot's mail processes run as: itself, or `nobody` under root."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        return ("dovecot", "dovenull", pw.pw_uid, pw.pw_gid)
    pw = pwd.getpwuid(os.geteuid())
    return (pw.pw_name, pw.pw_name, pw.pw_uid, pw.pw_gid)


# Dovecot's "high-performance mode": login processes that serve many
# connections, and imap/pop3 processes reused from session to session (all
# users here share one uid, which reuse needs), a few kept ready.
TUNED = """service imap-login {
  service_count = 0
  process_min_avail = 2
}
service pop3-login {
  service_count = 0
  process_min_avail = 2
}
service imap {
  service_count = 1000
  process_min_avail = 2
}
service pop3 {
  service_count = 1000
  process_min_avail = 2
}
service auth {
  client_limit = 3000
}
"""


def start_dovecot(tmp, name, base, users_file, tuned):
    internal, login, uid, gid = dovecot_owner()
    imap, pop3 = free_port(), free_port()
    run = os.path.join(tmp, name)
    os.makedirs(run)
    log = os.path.join(tmp, f"{name}.log")
    conf = os.path.join(tmp, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(
            f"base_dir = {run}\nstate_dir = {run}/state\ninstance_name = bench-{imap}\n"
            f"protocols = imap pop3\nlisten = 127.0.0.1\nlog_path = {log}\nssl = no\n"
            f"disable_plaintext_auth = no\nauth_mechanisms = plain login\n"
            f"default_internal_user = {internal}\ndefault_login_user = {login}\n"
            f"mail_uid = {uid}\nmail_gid = {gid}\nfirst_valid_uid = 1\n"
            f"mail_location = maildir:{base}/%d/%n/Maildir\n"
            f"passdb {{\n  driver = passwd-file\n  args = username_format=%u {users_file}\n}}\n"
            f"userdb {{\n  driver = passwd-file\n  args = username_format=%u {users_file}\n"
            f"  default_fields = home={base}/%d/%n\n}}\n"
            f"service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {imap}\n  }}\n"
            f"  inet_listener imaps {{\n    port = 0\n  }}\n}}\n"
            f"service pop3-login {{\n  chroot =\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n"
            f"  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n"
            f"service anvil {{\n  chroot =\n}}\n"
            + (TUNED if tuned else "")
        )
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_port(imap, proc, log)
    wait_port(pop3, proc, log)
    return proc, imap, pop3


def warm(port, users):
    for u in range(users):
        c = Conn(port)
        c.line()
        c.imap("w1", f"LOGIN user{u}@{DOMAIN} {PASSWORD}")
        c.imap("w2", "SELECT INBOX")
        c.imap("w3", "LOGOUT")
        c.s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--postern", default=POSTERN, help="the postern binary to measure")
    ap.add_argument("--baseline", help="a second postern binary (say, before a change), "
                    "measured in the same run as `postern-baseline`")
    ap.add_argument("--mixes", default="imap,pop3", help="which mixes: imap,pop3")
    ap.add_argument("--dovecot", default="stock,tuned", help="which Dovecot set-ups: stock,tuned")
    args = ap.parse_args()
    mixes = [m for m in args.mixes.split(",") if m]
    if not set(mixes) <= {"imap", "pop3"}:
        raise SystemExit("--mixes: imap, pop3")
    if args.users < args.clients:
        raise SystemExit("--users must be at least --clients (a client owns its users)")
    if not os.path.exists(DOVECOT):
        raise SystemExit("Dovecot is not installed: apt-get install dovecot-imapd dovecot-pop3d")
    if not args.no_build:
        subprocess.run(
            ["cargo", "build", "--release", "--locked", "-p", "postern-server"], cwd=ROOT, check=True
        )

    tmp = tempfile.mkdtemp(prefix="postern-mix-")
    procs = []
    try:
        os.chmod(tmp, 0o711)  # Dovecot's processes walk down to their tree
        users_file = os.path.join(tmp, "users")
        with open(users_file, "w") as f:
            for u in range(args.users):
                f.write(f"user{u}@{DOMAIN}:{{PLAIN}}{PASSWORD}::::\n")
        _, _, uid, gid = dovecot_owner()
        owner = (uid, gid) if os.geteuid() == 0 else None
        names = ["postern"] + (["postern-baseline"] if args.baseline else [])
        setups = {"stock": "dovecot", "tuned": "dovecot-tuned"}
        names += [setups[d] for d in args.dovecot.split(",") if d]
        trees = {n: os.path.join(tmp, f"mail-{n}") for n in names}
        t0 = time.time()
        for n in names:
            load(trees[n], args.users, args.messages, None if n.startswith("postern") else owner)
        print(f"loaded {args.users} users x {args.messages} messages, one tree per server, in {time.time() - t0:.1f} s")
        servers = {}
        for n, binary in (("postern", args.postern), ("postern-baseline", args.baseline)):
            if n in names:
                p, pi, pp = start_postern(tmp, trees[n], users_file, binary, n)
                procs.append(p)
                servers[n] = (pi, pp, None)
        for n in names:
            if not n.startswith("dovecot"):
                continue
            d, di, dp = start_dovecot(tmp, n, trees[n], users_file, n == "dovecot-tuned")
            procs.append(d)
            servers[n] = (di, dp, owner)
        for name, (imap, _, _) in servers.items():
            warm(imap, args.users)
        rates = {(s, k): [] for s in servers for k in mixes}
        for run in range(args.runs):
            # Rotated, so that no server always goes first.
            k = run % len(names)
            order = names[k:] + names[:k]
            for kind in mixes:
                for name in order:
                    imap, pop3, own = servers[name]
                    port = imap if kind == "imap" else pop3
                    rate, errors = measure(kind, port, trees[name], own, args)
                    rates[(name, kind)].append(rate)
                    print(f"run {run + 1}: {kind} {name}: {rate:.0f} sessions/s, {errors} errors", flush=True)
        print()
        print(f"{args.users} users x {args.messages} messages, {args.clients} clients, "
              f"{args.seconds:g} s x {args.runs} runs, load {os.getloadavg()[0]:.1f}")
        print("| mix | server | sessions/s, median (runs) | commands/s | Postern / this |")
        print("|---|---|---|---|---|")
        runs = lambda r: " ".join(f"{x:.0f}" for x in r)
        for kind in mixes:
            ours = statistics.median(rates[("postern", kind)])
            for name in names:
                r = rates[(name, kind)]
                m = statistics.median(r)
                commands = m * (8 if kind == "imap" else 7)
                print(f"| {kind} | {name} | {m:.0f} ({runs(r)}) | {commands:.0f} | {ours / m:.2f} |")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
