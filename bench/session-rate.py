#!/usr/bin/env python3
"""New SMTP sessions per second, with and without TLS (issue 4's
benchmark), for Postern and, side by side, Postfix's smtpd.

Each session is what a sending MTA does before its first MAIL: connect,
read the 220 greeting, EHLO, [STARTTLS, TLS handshake, EHLO again,] QUIT,
close. CLIENTS client processes run sessions back to back for SECONDS
seconds; the rate is completed sessions per second. Beside it, the CPU time
the server used per session (user + system, from /proc: Postern's process;
Postfix's master with every process under it, smtpd, tlsmgr and the
others), which does not depend on how fast the clients are. Every (server,
mode) is run RUNS times, interleaved so that a change in the machine's load
hits every variant alike, and the medians are reported with Postern's
ratio to Postfix.

    python3 bench/session-rate.py [--clients 8] [--seconds 10] [--runs 3]
                                  [--no-build] [--no-postfix]

Both servers get the same ECDSA P-256 certificate (made with openssl in
the temporary directory) and listen on ephemeral loopback ports. Postern is
the release build, its logging at the default level. Postfix (Debian's
`postfix` package, installed when missing; needs root to run its master)
runs as a private instance from a temporary config directory: its own
main.cf and master.cf, queue and data directories, log to a file, nothing
system-wide touched, stopped at the end. Its smtpd runs as master.cf's
default (a process per session, reused up to max_use times), with a
process limit above CLIENTS.
"""

import argparse
import multiprocessing
import os
import pwd
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

# The paths and helpers every whole-server benchmark shares.
from servers import (CACHE, POSTERN, POSTFIX_MASTER, POSTFIX_QUEUE_DIRS, ROOT, cpu_seconds,
                     free_port, wait_greeting)


def certificate(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=bench.test"],
        check=True, capture_output=True,
    )
    os.chmod(key, 0o644)  # Postfix's smtpd reads it after dropping privileges
    return cert, key


# --- the servers -------------------------------------------------------------

def start_postern(tmp, cert, key, clients):
    port = free_port()
    d = os.path.join(tmp, "postern")
    os.makedirs(d)
    config = os.path.join(d, "postern.toml")
    with open(config, "w") as f:
        f.write(
            f'myhostname = "bench.test"\n'
            f'mynetworks = "127.0.0.0/8"\n'
            f'data_directory = "{d}"\n'
            # No system user is made for the benchmarks: Postern keeps root
            # (see servers.py); a missing `postern` user would stop start-up.
            f'mail_owner = "root"\n'
            f'queue_directory = "{d}/queue"\n'
            f'virtual_mailbox_base = "{d}/mail"\n'
            f'plugin_cache_directory = "{CACHE}"\n'
            f'smtpd_tls_cert_file = "{cert}"\n'
            f'smtpd_tls_key_file = "{key}"\n'
            f"default_process_limit = {clients * 4 + 100}\n"
            f"smtpd_client_connection_count_limit = 0\n"
            f"smtpd_client_connection_rate_limit = 0\n"
            f'[[service]]\nname = "smtp"\nlisten = "127.0.0.1:{port}"\n'
        )
    log = open(os.path.join(d, "log"), "w")
    proc = subprocess.Popen([POSTERN, "start", "--foreground", "--config", config],
                            stdout=log, stderr=log)
    wait_greeting(port, proc, "postern")
    return port, proc.pid, lambda: (proc.kill(), proc.wait())



def start_postfix(tmp, cert, key, clients):
    port = free_port()
    d = os.path.join(tmp, "postfix")
    etc, spool, data = (os.path.join(d, x) for x in ("etc", "spool", "data"))
    for x in [etc, data] + [os.path.join(spool, q) for q in POSTFIX_QUEUE_DIRS]:
        os.makedirs(x)
    pf = pwd.getpwnam("postfix")
    for q in POSTFIX_QUEUE_DIRS:
        if q != "pid":
            os.chown(os.path.join(spool, q), pf.pw_uid, -1)
    os.chown(data, pf.pw_uid, -1)
    os.chmod(os.path.join(spool, "private"), 0o700)
    # Everything under the temporary directory must be reachable by the
    # postfix user (tempfile makes it 0700).
    os.chmod(tmp, 0o755)
    os.chmod(d, 0o755)
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
            f"mynetworks = 127.0.0.0/8\n"
            f"alias_maps =\n"
            f"alias_database =\n"
            # Logging to a file without postlogd: the master writes it.
            f"maillog_file = /dev/stdout\n"
            f"smtpd_banner = $myhostname ESMTP\n"
            f"smtpd_tls_security_level = may\n"
            f"smtpd_tls_cert_file = {cert}\n"
            f"smtpd_tls_key_file = {key}\n"
            # As Postern: no TLS session cache to resume from.
            f"smtpd_tls_session_cache_database =\n"
            f"smtpd_client_connection_count_limit = 0\n"
        )
    with open(os.path.join(etc, "master.cf"), "w") as f:
        f.write(
            f"127.0.0.1:{port} inet n - n - {clients * 4 + 10} smtpd\n"
            "tlsmgr unix - - n 1000? 1 tlsmgr\n"
            "anvil unix - - n - 1 anvil\n"
            "cleanup unix n - n - 0 cleanup\n"
            "qmgr unix n - n 300 1 qmgr\n"
            "rewrite unix - - n - - trivial-rewrite\n"
            "bounce unix - - n - 0 bounce\n"
            "defer unix - - n - 0 bounce\n"
            "trace unix - - n - 0 bounce\n"
            "verify unix - - n - 1 verify\n"
            "proxymap unix - - n - - proxymap\n"
            "scache unix - - n - 1 scache\n"
            "discard unix - - n - - discard\n"
            "error unix - - n - - error\n"
        )
    log = open(os.path.join(d, "maillog"), "w")
    proc = subprocess.Popen([POSTFIX_MASTER, "-c", etc, "-d"], stdout=log, stderr=log,
                            start_new_session=True)

    def stop():
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    try:
        wait_greeting(port, proc, "postfix master")
    except SystemExit:
        stop()
        raise
    return port, proc.pid, stop


# --- the clients -------------------------------------------------------------

def read_reply(f):
    while True:
        line = f.readline()
        if len(line) < 4:
            raise ConnectionError(f"short reply {line!r}")
        if line[3:4] != b"-":
            return line


def client(port, tls, stop_at, out):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    done = failed = 0
    while time.monotonic() < stop_at:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                f = s.makefile("rb")
                if not read_reply(f).startswith(b"220"):
                    raise ConnectionError("no 220")
                s.sendall(b"EHLO client.bench.test\r\n")
                read_reply(f)
                conn = s
                if tls:
                    s.sendall(b"STARTTLS\r\n")
                    if not read_reply(f).startswith(b"220"):
                        raise ConnectionError("STARTTLS refused")
                    conn = ctx.wrap_socket(s, server_hostname="bench.test")
                    f = conn.makefile("rb")
                    conn.sendall(b"EHLO client.bench.test\r\n")
                    read_reply(f)
                conn.sendall(b"QUIT\r\n")
                if not read_reply(f).startswith(b"221"):
                    raise ConnectionError("no 221")
                if tls:
                    conn.close()
            done += 1
        except (OSError, ConnectionError):
            failed += 1
    out.put((done, failed))


def measure(port, pid, tls, clients, seconds):
    """Sessions per second, failed sessions, server CPU µs per session."""
    q = multiprocessing.Queue()
    cpu = cpu_seconds(pid)
    start = time.monotonic()
    stop_at = start + seconds
    procs = [multiprocessing.Process(target=client, args=(port, tls, stop_at, q))
             for _ in range(clients)]
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - start
    cpu = cpu_seconds(pid) - cpu
    done = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    return done / elapsed, failed, 1e6 * cpu / max(done, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-build", action="store_true", help="use the existing release binary")
    ap.add_argument("--no-postfix", action="store_true", help="measure Postern only")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "postern-server"],
                       cwd=ROOT, check=True)
    with_postfix = not args.no_postfix
    if with_postfix and os.geteuid() != 0:
        print("not root: Postfix's master cannot run, measuring Postern only", file=sys.stderr)
        with_postfix = False
    if with_postfix and not os.path.exists(POSTFIX_MASTER):
        print("installing postfix ...", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "postfix"], check=True, env=env)

    tmp = tempfile.mkdtemp(prefix="postern-rate-")
    stops = []
    try:
        cert, key = certificate(tmp)
        servers = {}
        port, pid, stop = start_postern(tmp, cert, key, args.clients)
        servers["postern"] = (port, pid)
        stops.append(stop)
        if with_postfix:
            port, pid, stop = start_postfix(tmp, cert, key, args.clients)
            servers["postfix"] = (port, pid)
            stops.append(stop)
        rates = {(server, tls): [] for server in servers for tls in (False, True)}
        cpus = {key: [] for key in rates}
        for run in range(args.runs):
            for (server, tls), rs in rates.items():
                port, pid = servers[server]
                rate, failed, cpu = measure(port, pid, tls, args.clients, args.seconds)
                rs.append(rate)
                cpus[(server, tls)].append(cpu)
                note = f", {failed} failed" if failed else ""
                print(f"run {run + 1}: {server:8} {'TLS' if tls else 'plain':5} "
                      f"{rate:8.0f} sessions/s, {cpu:6.0f} us CPU/session{note}", file=sys.stderr)
        load = os.getloadavg()
        print(f"\n{args.clients} clients, {args.seconds:g} s per run, {args.runs} runs, "
              f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
        print(f"{'server':8} {'mode':5} {'median/s':>9} {'CPU us/session':>15}   runs (/s)")
        for (server, tls), rs in rates.items():
            print(f"{server:8} {'TLS' if tls else 'plain':5} {statistics.median(rs):9.0f} "
                  f"{statistics.median(cpus[(server, tls)]):15.0f}   "
                  + " ".join(f"{r:.0f}" for r in rs))
        if with_postfix:
            for tls in (False, True):
                mode = "TLS" if tls else "plain"
                rate = statistics.median(rates[("postern", tls)]) / statistics.median(
                    rates[("postfix", tls)])
                cpu = statistics.median(cpus[("postfix", tls)]) / statistics.median(
                    cpus[("postern", tls)])
                print(f"postern/postfix {mode}: {rate:.2f}x the sessions/s, "
                      f"{cpu:.2f}x less CPU per session")
    finally:
        for stop in stops:
            stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
