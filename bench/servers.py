"""The servers and helpers of the whole-server benchmarks (issue 8): a
private Postfix instance, the release `postern`, `smtp-sink` with its
counter followed, a standard-library DNS server, and the scratch
filesystems; bench/mta.py measures with them.

Postfix runs as a private instance (Debian's `master` with its own
main.cf/master.cf, queue and data directories in a temporary directory,
on an ephemeral loopback port; nothing system-wide touched; needs root).
Its local user is a virtual(8) mailbox, `bench@localhost` -> `bench/`
(a Maildir, as `home_mailbox = Maildir/` would give a system user), so no
system account is made. Postern is the release build with its own
temporary data directory.

The DNS server answers every query NXDOMAIN with a root SOA (negative TTL
300 s), as a DNS list does for an address it does not list: the RBL entry
of the 8-plugin chain asks it.
"""

import contextlib
import os
import pwd
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSTERN = os.path.join(ROOT, "target", "release", "postern")
CACHE = os.path.join(ROOT, "target", "bench-plugin-cache")
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
USER = "bench@localhost"
REMOTE = "bench@remote.test"
HELO = "mx.client.test"
# Debian's libeatmydata1: fsync and friends become no-ops in a process
# that preloads it; for the diagnostic "no fsync" variants only.
EATMYDATA = "/usr/lib/x86_64-linux-gnu/libeatmydata.so"
SHIM_SOURCE = os.path.join(ROOT, "bench", "syncshim.c")
SHIM = os.path.join(ROOT, "target", "bench-syncshim.so")


def preload_env(nosync, stages=None):
    """The environment of a server process for `nosync`: True
    (libeatmydata: no sync reaches the disk), "files" (syncshim.c: only
    the syncs of regular files do, Postfix's syncs), "queue" or "mailbox"
    (syncshim.c: every sync under the directory `stages[nosync]` returns
    at once, the other stage's syncs reach the disk), or None."""
    if not nosync:
        return None
    env = dict(os.environ, LD_PRELOAD=preload(nosync))
    if nosync in STAGES:
        env["SYNCSHIM_PATHS"] = stages[nosync]
    return env


# The values of `nosync` that skip one stage's syncs (preload_env).
STAGES = ("queue", "mailbox")


def preload(nosync):
    """The library for `nosync` (see preload_env)."""
    if nosync == "files" or nosync in STAGES:
        if not os.path.exists(SHIM) or os.path.getmtime(SHIM) < os.path.getmtime(SHIM_SOURCE):
            subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", SHIM, SHIM_SOURCE, "-ldl"],
                           check=True)
        return SHIM
    return EATMYDATA


# How long a run may take before it counts as hung.
RUN_LIMIT = 600

POSTFIX_QUEUE_DIRS = ["incoming", "active", "deferred", "defer", "bounce", "hold", "corrupt",
                      "flush", "saved", "trace", "private", "public", "maildrop", "pid"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User + system CPU of `pid` and every process under it, reaped ones
    included (their time is in the parent's cutime/cstime)."""
    tick = os.sysconf("SC_CLK_TCK")
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append((int(entry), fields))
    with open(f"/proc/{pid}/stat") as f:
        total = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15])
    todo = [pid]
    while todo:
        for child, fields in children.get(todo.pop(), []):
            total += sum(int(x) for x in fields[11:15])
            todo.append(child)
    return total / tick


def wait_greeting(port, proc, what, limit=60):
    end = time.time() + limit
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(5)
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not answer on port {port}")


def count_new(base):
    n = 0
    for dirpath, _dirs, files in os.walk(base):
        if os.path.basename(dirpath) == "new":
            n += len(files)
    return n


# --- the local DNS server ----------------------------------------------------

def _name(s):
    return b"".join(bytes([len(p)]) + p.encode() for p in s.split(".") if p) + b"\0"


class NxDns:
    """NXDOMAIN for every question, with a root SOA so that resolvers cache
    the answer (RFC 2308 section 5), on a UDP port of 127.0.0.1."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.queries = 0
        rdata = _name("ns.bench.test") + _name("hostmaster.bench.test") + struct.pack(
            "!5I", 1, 3600, 600, 86400, 300)
        self.soa = b"\0" + struct.pack("!HHIH", 6, 1, 300, len(rdata)) + rdata
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                q, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if len(q) < 12:
                continue
            end = 12
            while end < len(q) and q[end] != 0:
                end += q[end] + 1
            end += 5  # the root label, QTYPE, QCLASS
            if end > len(q):
                continue
            self.queries += 1
            qid, flags = struct.unpack("!HH", q[:4])
            flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | 3
            reply = struct.pack("!HHHHHH", qid, flags, 1, 0, 1, 0) + q[12:end] + self.soa
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                pass

    def close(self):
        self.sock.close()


# --- smtp-sink, counting what it received -----------------------------------

class Sink:
    """`smtp-sink -c` on an ephemeral port; `received` follows its counter."""

    def __init__(self):
        self.port = free_port()
        self.received = 0
        self.proc = subprocess.Popen(
            ["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{self.port}", "256"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        threading.Thread(target=self._read, daemon=True).start()
        wait_greeting(self.port, self.proc, "smtp-sink")

    def _read(self):
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                return
            buf = (buf + chunk)[-256:]
            found = re.findall(rb"mesg=(\d+)", buf)
            if found:
                self.received = int(found[-1])

    def close(self):
        self.proc.kill()
        self.proc.wait()


# --- the servers ------------------------------------------------------------

class Postern:
    """The release `postern` in its own temporary directory."""

    def __init__(self, tmp, recipient, mynetworks, relayhost="", dns=None, extra="",
                 nosync=False, services=""):
        """`extra` goes into the main section, `services` (more
        `[[service]]` tables) after the smtp service."""
        self.dir = os.path.join(tmp, "postern")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.mail = os.path.join(self.dir, "mail")
        with open(os.path.join(self.dir, "users"), "w") as f:
            f.write(f"{USER}:{{PLAIN}}x::::\n")
        with open(os.path.join(self.dir, "access"), "w") as f:
            f.write("192.0.2.66 REJECT\nspammer.example REJECT\nspam@example.com REJECT\n")
        with open(os.path.join(self.dir, "helo_access"), "w") as f:
            f.write("bad.example REJECT\nlocalhost REJECT you are not me\n")
        self.config = os.path.join(self.dir, "postern.toml")
        self.base = (
            f'myhostname = "bench.test"\n'
            f'mydestination = "localhost"\n'
            f'mynetworks = "{mynetworks}"\n'
            f'relayhost = "{relayhost}"\n'
            f'data_directory = "{self.dir}"\n'
            f'queue_directory = "{self.dir}/queue"\n'
            f'virtual_mailbox_base = "{self.mail}"\n'
            f'plugin_cache_directory = "{CACHE}"\n'
            f"smtpd_client_connection_count_limit = 0\n"
            # No system user is made for the benchmarks: Postern keeps
            # root (the one-time switch at start-up costs nothing per
            # message; Postfix runs its usual way).
            f'mail_owner = "root"\n'
            f"{extra}"
            f'[auth]\nusers_file = "{self.dir}/users"\n'
            + (f'[dns]\nnameservers = ["{dns}"]\n' if dns else "")
            + f'[[service]]\nname = "smtp"\nlisten = "127.0.0.1:{self.port}"\n'
            + services
        )
        self.write(recipient)
        self.log = open(os.path.join(self.dir, "log"), "w+")
        env = preload_env(nosync, {"queue": f"{self.dir}/queue", "mailbox": self.mail})
        self.proc = subprocess.Popen(
            [POSTERN, "start", "--foreground", "--config", self.config],
            stdout=self.log, stderr=self.log, env=env)
        wait_greeting(self.port, self.proc, "postern")
        self.pid = self.proc.pid

    def write(self, recipient):
        """The config with this recipient list (a TOML array)."""
        with open(self.config, "w") as f:
            f.write(self.base.replace("[auth]", f"[smtpd.restrictions]\nrecipient = "
                                      f"{recipient}\n[auth]", 1))

    def reload(self):
        r = subprocess.run([POSTERN, "reload", "--config", self.config],
                           capture_output=True, text=True)
        return r.returncode, r.stderr.strip()

    def delivered(self):
        return count_new(self.mail)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


class Postfix:
    """A private Postfix instance; `mode` is "maildir" (virtual(8) mailbox
    for bench@localhost) or "relay" (everything to relayhost)."""

    def __init__(self, tmp, mode, relayhost="", nosync=False):
        d = os.path.join(tmp, "postfix")
        # The master passes its children only the variables named here.
        etc, spool, data = (os.path.join(d, x) for x in ("etc", "spool", "data"))
        self.mail = os.path.join(d, "vmail")
        stages = {"queue": spool, "mailbox": self.mail}
        env = preload_env(nosync, stages)
        extra = (f"import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C "
                 f"POSTLOG_SERVICE POSTLOG_HOSTNAME LD_PRELOAD={env['LD_PRELOAD']}"
                 + (f" SYNCSHIM_PATHS={env['SYNCSHIM_PATHS']}" if nosync in STAGES else "")
                 + "\n" if nosync else "")
        for x in [etc, data, self.mail] + [os.path.join(spool, q) for q in POSTFIX_QUEUE_DIRS]:
            os.makedirs(x)
        pf = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        for q in POSTFIX_QUEUE_DIRS:
            if q != "pid":
                os.chown(os.path.join(spool, q), pf.pw_uid, -1)
        os.chown(data, pf.pw_uid, -1)
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        os.chmod(os.path.join(spool, "private"), 0o700)
        # Everything must be reachable by the postfix and nobody users
        # (tempfile makes directories 0700).
        os.chmod(tmp, 0o755)
        os.chmod(d, 0o755)
        self.port = free_port()
        mynetworks = "127.0.0.0/8" if mode == "relay" else "192.0.2.0/24"
        with open(os.path.join(etc, "main.cf"), "w") as f:
            f.write(
                f"compatibility_level = 3.6\n"
                f"queue_directory = {spool}\n"
                f"data_directory = {data}\n"
                f"mail_owner = postfix\n"
                f"setgid_group = postdrop\n"
                f"inet_interfaces = 127.0.0.1\n"
                f"inet_protocols = ipv4\n"
                f"myhostname = bench.test\n"
                f"mydestination =\n"
                f"mynetworks = {mynetworks}\n"
                f"relayhost = {relayhost}\n"
                f"alias_maps =\n"
                f"alias_database =\n"
                f"virtual_mailbox_domains = localhost\n"
                f"virtual_mailbox_base = {self.mail}\n"
                f"virtual_mailbox_maps = inline:{{ {USER}=bench/ }}\n"
                f"virtual_uid_maps = static:{nobody.pw_uid}\n"
                f"virtual_gid_maps = static:{nobody.pw_gid}\n"
                f"maillog_file = /dev/stdout\n"
                f"smtpd_banner = $myhostname ESMTP\n"
                f"smtpd_client_connection_count_limit = 0\n"
                f"{extra}"
            )
        with open(os.path.join(etc, "master.cf"), "w") as f:
            f.write(
                f"127.0.0.1:{self.port} inet n - n - - smtpd\n"
                "postlog unix-dgram n - n - 1 postlogd\n"
                "pickup unix n - n 60 1 pickup\n"
                "cleanup unix n - n - 0 cleanup\n"
                "qmgr unix n - n 300 1 qmgr\n"
                "tlsmgr unix - - n 1000? 1 tlsmgr\n"
                "rewrite unix - - n - - trivial-rewrite\n"
                "bounce unix - - n - 0 bounce\n"
                "defer unix - - n - 0 bounce\n"
                "trace unix - - n - 0 bounce\n"
                "verify unix - - n - 1 verify\n"
                "flush unix n - n 1000? 0 flush\n"
                "proxymap unix - - n - - proxymap\n"
                "smtp unix - - n - - smtp\n"
                "relay unix - - n - - smtp\n"
                "showq unix n - n - - showq\n"
                "error unix - - n - - error\n"
                "retry unix - - n - - error\n"
                "discard unix - - n - - discard\n"
                "local unix - n n - - local\n"
                "virtual unix - n n - - virtual\n"
                "anvil unix - - n - 1 anvil\n"
                "scache unix - - n - 1 scache\n"
            )
        self.log = open(os.path.join(d, "master.log"), "w")
        self.proc = subprocess.Popen([POSTFIX_MASTER, "-c", etc, "-d"], stdout=self.log,
                                     stderr=self.log, start_new_session=True, env=env)
        self.pid = self.proc.pid
        try:
            wait_greeting(self.port, self.proc, "postfix master")
        except SystemExit:
            self.stop()
            raise

    def delivered(self):
        return count_new(self.mail)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


# --- where the files go -----------------------------------------------------

def filesystem(path):
    """What the benchmarks write on: type, device and, for ext4, whether
    it has a journal (fsync waits for a journal commit; without one the
    inode allocator scans recently deleted inodes on every create)."""
    src = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "--target", path],
                         capture_output=True, text=True).stdout.split()
    if len(src) < 2:
        return "?"
    kind, dev = src[0], src[1]
    if kind == "ext4":
        try:
            with open(f"/sys/fs/ext4/{os.path.basename(dev)}/journal_task") as f:
                journal = "without a journal" if "none" in f.read() else "with a journal"
        except OSError:
            journal = "?"
        kind = f"ext4 {journal}"
    return f"{kind} ({dev})"


@contextlib.contextmanager
def scratch(kind):
    """Where the temporary directories go: the machine's /tmp ("root"), or
    a fresh ext4 with a journal (mkfs defaults, as Debian's installer
    makes) in a sparse 2 GiB image on a loop device ("journaled"),
    unmounted and deleted at the end."""
    if kind == "root":
        yield tempfile.gettempdir()
        return
    img = os.path.join(tempfile.gettempdir(), f"postern-bench-{os.getpid()}.img")
    mnt = img[:-4]
    subprocess.run(["truncate", "-s", "2G", img], check=True)
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
        os.makedirs(mnt)
        subprocess.run(["mount", "-o", "loop,discard", img, mnt], check=True)
        os.chmod(mnt, 0o755)
        old = tempfile.tempdir, os.environ.get("TMPDIR")
        tempfile.tempdir = mnt
        os.environ["TMPDIR"] = mnt  # for idle-sessions.py and imap-pop3-mix.py
        try:
            yield mnt
        finally:
            tempfile.tempdir = old[0]
            if old[1] is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = old[1]
            for _ in range(10):
                if subprocess.run(["umount", mnt]).returncode == 0:
                    break
                time.sleep(1)
            os.rmdir(mnt)
    finally:
        os.remove(img)
