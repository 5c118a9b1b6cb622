#!/usr/bin/env python3
"""Every whole-server benchmark in one go, Postern beside Postfix and
Dovecot on the same machine in the same run (issue 8, item 1); prints
medians and ratios and writes docs/BENCHMARKS.md and docs/benchmarks.png.

    python3 bench/run-all.py [--messages 5000] [--sessions 20] [--runs 3]
                             [--reloads 50] [--idle 10000] [--no-build]
                             [--fs journaled,root] [--skip idle,mix,nosync,filesync]
                             [--out docs/BENCHMARKS.md] [--chart PNG]

What it runs (the pieces are in mta.py, idle-sessions.py and
imap-pop3-mix.py):

1. accept -> Maildir, Postfix and Postern (default chain), RUNS times each;
2. relay into smtp-sink, the same;
3. policy cost: Postern with the smallest chain, the default one and eight
   real plugins (access maps, an RBL over a local DNS server, HELO checks,
   greylisting with the client whitelisted); these and 1 and 2 are
   interleaved round by round, so a change in the machine's load hits
   every variant alike;
4. hot reload under load: RELOADS `postern reload`s while smtp-source
   sends; failed transactions counted (target: none);
5. idle-sessions.py: resident memory per idle SMTP session (median of RUNS);
6. imap-pop3-mix.py: the IMAP and POP3 mixes against Dovecot.

1 to 4 run once per filesystem of --fs: "journaled", a fresh ext4 with a
journal (what Debian installs) on a loop device, and "root", the
machine's /tmp (on the development VM an ext4 *without* a journal, where
file creation costs far more: see scratch()); 5 and 6 on the first.

Needs root (Postfix's master, smtp-sink dropping to nobody, the loop
mount of --fs journaled), Debian's postfix, dovecot-imapd, dovecot-pop3d
and eatmydata packages (installed with apt-get when missing), a C
compiler for syncshim.c, and matplotlib for the chart (`python3 -m pip
install matplotlib`; without it no chart).
Everything runs on loopback at ephemeral ports in temporary directories.
The notes after the marker line in the existing BENCHMARKS.md are kept.
"""

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mta  # noqa: E402

ROOT = mta.ROOT
BENCH = os.path.join(ROOT, "bench")
MARKER = "<!-- Notes below this line are kept by bench/run-all.py. -->"


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        ram = int(f.readline().split()[1]) / 1024 / 1024
    return {
        "nproc": sh("nproc"),
        "cpu": cpu,
        "ram": f"{ram:.1f} GiB",
        "kernel": platform.release(),
        "postern": sh(mta.POSTERN, "--version"),
        "postfix": sh("postconf", "-d", "-h", "mail_version"),
        "dovecot": sh("dovecot", "--version") if shutil.which("dovecot") else "not installed",
        "python": platform.python_version(),
    }


def ensure_tools(build):
    if os.geteuid() != 0:
        raise SystemExit("run as root: Postfix's master and smtp-sink need it")
    # The Debian packages the benchmarks run beside or with, as the issue
    # asks: installed when missing (the package's own files only; the
    # private instances never read /etc/postfix or /etc/dovecot).
    wanted = {"postfix": mta.POSTFIX_MASTER, "dovecot-imapd": "/usr/sbin/dovecot",
              "dovecot-pop3d": "/usr/lib/dovecot/pop3", "eatmydata": mta.EATMYDATA,
              "swaks": "/usr/bin/swaks"}
    missing = [pkg for pkg, path in wanted.items() if not os.path.exists(path)]
    if missing:
        print(f"installing {' '.join(missing)} ...", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq"] + missing, check=True, env=env)
    if build or not os.path.exists(mta.POSTERN):
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "postern-server"],
                       cwd=ROOT, check=True)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def runs(xs, fmt="{:.0f}"):
    return " ".join(fmt.format(x) for x in xs)


def idle_sessions(n, runs_):
    """Resident KiB per idle session: the median of `runs_` runs of
    idle-sessions.py (its output kept from the median run)."""
    done = []
    for _ in range(runs_):
        r = subprocess.run([sys.executable, os.path.join(BENCH, "idle-sessions.py"), "--no-build",
                            "--sessions", str(n)], capture_output=True, text=True, timeout=900)
        m = re.search(r"per session: ([\d.]+) KiB", r.stdout)
        if not m:
            # A failed measurement is a row that says so, not a missing row.
            print(r.stdout + r.stderr, file=sys.stderr)
            lines = (r.stderr or r.stdout).strip().splitlines() or ["no output"]
            return {"error": lines[-1][:200], "sessions": n, "output": (r.stdout + r.stderr).strip()}
        done.append((float(m.group(1)), r.stdout.strip()))
    kib, output = sorted(done)[len(done) // 2]
    return {"kib": kib, "runs": [k for k, _ in done], "sessions": n, "output": output}


def mail_mix(runs_):
    if not shutil.which("dovecot"):
        print("no dovecot: apt-get install dovecot-imapd dovecot-pop3d; mix skipped",
              file=sys.stderr)
        return None
    r = subprocess.run([sys.executable, os.path.join(BENCH, "imap-pop3-mix.py"), "--no-build",
                        "--runs", str(runs_)], capture_output=True, text=True, timeout=3600)
    rows = re.findall(r"^\| (imap|pop3) \| ([\w-]+) \| (\d+) \(([\d ]+)\) \| (\d+) \| ([\d.]+) \|$",
                      r.stdout, re.M)
    if not rows:
        print(r.stdout + r.stderr, file=sys.stderr)
        return None
    return {(kind, name): (float(m), [float(x) for x in rs.split()]) for kind, name, m, rs, _, _
            in rows}


def bars_for(fig_axes, res, mix, label):
    """Panels of one filesystem's run: SMTP rates, chain rates, [mixes]."""
    panels = [
        (f"SMTP msg/s (accept = accept → Maildir), files on {label}", [
            ("accept\nPostfix", res["accept_postfix"], "#888"),
            ("accept\nPostern", res["accept_default"], "#2a6"),
            ("accept\nPostern\nimmediate", res["accept_immediate"], "#1a5"),
            ("relay\nPostfix", res["relay_postfix"], "#888"),
            ("relay\nPostern", res["relay_postern"], "#2a6"),
        ] + ([
            ("no fsync\nPostfix", res["accept_postfix_nosync"], "#ccc"),
            ("no fsync\nPostern", res["accept_default_nosync"], "#9d9"),
        ] if "accept_postfix_nosync" in res else []) + ([
            ("file fsyncs\nonly Postern", res["accept_default_filesync"], "#6b6"),
        ] if "accept_default_filesync" in res else [])),
        (f"Postern chains, msg/s, files on {label}", [
            ("smallest", res["accept_empty"], "#8c8"),
            ("default (3)", res["accept_default"], "#2a6"),
            ("8 plugins", res["accept_chain8"], "#174"),
        ]),
    ]
    if mix:
        bars = []
        for kind in ("imap", "pop3"):
            for name, text, colour in (("dovecot", "Dovecot", "#aaa"),
                                       ("dovecot-tuned", "Dovecot tuned", "#666"),
                                       ("postern", "Postern", "#2a6")):
                if (kind, name) in mix:
                    bars.append((f"{kind.upper()}\n{text}", mix[(kind, name)][1], colour))
        panels.append((f"IMAP / POP3 sessions/s, files on {label}", bars))
    for ax, (title, bars) in zip(fig_axes, panels):
        for i, (text, xs, colour) in enumerate(bars):
            ax.bar(i, med(xs), color=colour)
            ax.plot([i] * len(xs), xs, "k.", markersize=5)
            ax.text(i, med(xs), f"{med(xs):.0f}", ha="center", va="bottom", fontsize=9)
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels([b[0] for b in bars], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    for ax in fig_axes[len(panels):]:
        ax.axis("off")


def chart(path, results, mix):
    """One row of panels per filesystem; the mixes in the first row."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no matplotlib (python3 -m pip install matplotlib): no chart", file=sys.stderr)
        return False
    fig, axes = plt.subplots(len(results), 3, figsize=(18, 4.6 * len(results)), squeeze=False)
    for row, (kind, res) in enumerate(results.items()):
        bars_for(axes[row], res, mix if row == 0 else None, FS_LABEL[kind])
    fig.suptitle(f"Postern vs Postfix/Dovecot, {time.strftime('%Y-%m-%d')} "
                 "(bars: medians, dots: runs)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


FS_LABEL = {"journaled": "ext4 + journal", "root": "ext4, no journal"}


def ok(b):
    return "**met**" if b else "**not met**"


def smtp_section(res, fs):
    """Targets, runs and the reload test of one filesystem's run."""
    ap, ad = med(res["accept_postfix"]), med(res["accept_default"])
    rp, rn = med(res["relay_postfix"]), med(res["relay_postern"])
    e, c8 = med(res["accept_empty"]), med(res["accept_chain8"])
    ai = med(res["accept_immediate"])
    rl = res["reload"]
    out = [
        f"## SMTP, files on {fs}",
        "",
        "| benchmark | Postern | other | ratio | target | |",
        "|---|---|---|---|---|---|",
        f"| accept → Maildir, msg/s | {ad:.0f} | Postfix {ap:.0f} | {ad / ap:.2f}× | ≥ 3× | "
        f"{ok(ad / ap >= 3)} |",
        f"| accept → Maildir, `immediate_local_delivery = true`, msg/s | {ai:.0f} | "
        f"Postfix {ap:.0f} | {ai / ap:.2f}× | ≥ 3× | {ok(ai / ap >= 3)} |",
        f"| relay to smtp-sink, msg/s | {rn:.0f} | Postfix {rp:.0f} | {rn / rp:.2f}× | ≥ 3× | "
        f"{ok(rn / rp >= 3)} |",
        f"| chain cost: default chain / smallest, msg/s | {ad:.0f} | {e:.0f} | "
        f"{ad / e:.2f} | ≥ 0.90 | {ok(ad / e >= 0.9)} |",
        f"| chain cost: 8 plugins / smallest, msg/s | {c8:.0f} | {e:.0f} | {c8 / e:.2f} | "
        f"(≥ 0.90) | {ok(c8 / e >= 0.9)} |",
        f"| hot reload: failed transactions in {rl['reloads']} reloads | {rl['failed']} | | | 0 "
        f"| {ok(rl['failed'] == 0 and rl['reload_failures'] == 0)} |",
        "",
        "| variant | msg/s, median | runs | server CPU ms/msg, median | runs |",
        "|---|---|---|---|---|",
    ]
    for key, label in (("accept_postfix", "accept → Maildir, Postfix"),
                       ("accept_default", "accept → Maildir, Postern, default chain"),
                       ("accept_immediate",
                        "accept → Maildir, Postern, default chain, immediate_local_delivery"),
                       ("accept_empty", "accept → Maildir, Postern, smallest chain"),
                       ("accept_chain8", "accept → Maildir, Postern, 8 plugins"),
                       ("relay_postfix", "relay, Postfix"),
                       ("relay_postern", "relay, Postern"),
                       ("accept_postfix_nosync", "accept → Maildir, Postfix, no fsync"),
                       ("accept_default_nosync", "accept → Maildir, Postern, no fsync"),
                       ("accept_default_filesync",
                        "accept → Maildir, Postern, file syncs only")):
        if key in res:
            cpu = res[key + "_cpu"]
            out.append(f"| {label} | {med(res[key]):.0f} | {runs(res[key])} | "
                       f"{med(cpu):.2f} | {runs(cpu, '{:.2f}')} |")
    out += [
        "",
        f"Hot reload: {rl['reloads']} `postern reload`s, each after rewriting the config to "
        "switch the recipient list between the default chain and the 8-plugin one, while "
        f"`smtp-source` sent batches of 1,000 messages back to back: {rl['sent']:,} sent, "
        f"{rl['delivered']:,} delivered, {rl['smtp_errors']} batches with an error, "
        f"{rl['reload_failures']} reloads refused; a reload took {rl['reload_ms_median']:.0f} ms "
        f"(median; {rl['reload_ms_max']:.0f} ms at most), {rl['seconds']:.1f} s in all.",
    ]
    if rl["first_errors"]:
        out += ["", "First errors: `" + "`, `".join(e[:200] for e in rl["first_errors"]) + "`"]
    return out


def report(args, m, results, idle, mix, load, started, chart_made):
    out = [
        "# Benchmarks: Postern beside Postfix and Dovecot",
        "",
        f"Written by `bench/run-all.py`, run started {started} UTC (issue 8, item 1). Every "
        "figure below was measured in this one run, Postern and the others on the same "
        "machine, on loopback, at ephemeral ports, in temporary directories.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPUs (`nproc`) | {m['nproc']} |",
        f"| CPU | {m['cpu']} |",
        f"| RAM | {m['ram']} |",
        f"| kernel | {m['kernel']} |",
        f"| Postern | {m['postern']}, release build (`target/release/postern`) |",
        f"| Postfix | {m['postfix']} (Debian) |",
        f"| Dovecot | {m['dovecot']} (Debian) |",
    ] + [f"| files ({kind}) | {where} |" for kind, where in m["fs"].items()] + [
        f"| load average | {load[0]} at the start, {load[1]} at the end |",
        "",
        "The machine is a 2-core VM whose host, disk included, is shared with others (and "
        "the load average counts the benchmark's own processes waiting for the disk), so "
        "rates move from run to run; compare figures of one run with each other (variants "
        "are interleaved round by round), and trust the CPU per message, which moves much "
        "less with the other load, more than the rates.",
        "",
        "## Commands",
        "",
        "```sh",
        "apt-get install -y postfix dovecot-imapd dovecot-pop3d eatmydata swaks",
        "python3 -m pip install matplotlib",
        "cargo build --release -p postern-server",
        f"python3 bench/run-all.py --no-build --messages {args.messages} --sessions "
        f"{args.sessions} --runs {args.runs} --reloads {args.reloads} --idle {args.idle} "
        f"--fs {args.fs}" + (f" --skip {args.skip}" if args.skip else ""),
        "```",
        "",
        f"SMTP load: `smtp-source -A -s {args.sessions} -l 4096 -m {args.messages} -M "
        f"{mta.HELO} -f sender@client.test -t RCPT 127.0.0.1:PORT` ({args.sessions} sessions "
        "in parallel, one message per connection, 4 KiB of body); the clock runs from its "
        "start until the last message is a file in the user's Maildir `new/` (accept → "
        "Maildir) or has been counted by `smtp-sink -c` (relay, `relayhost = "
        "[127.0.0.1]:PORT` on both). Postfix: a private instance (own main.cf/master.cf/"
        "queue) with stock settings; its local user is a virtual(8) Maildir "
        "(`virtual_mailbox_maps = inline:{ bench@localhost=bench/ }`). Postern: the default "
        "chain (`permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination`). "
        "For accept → Maildir the client is outside `mynetworks` on both (as mail from the "
        "internet), for relay inside. Both servers fsync a message before its 250 and the "
        "delivered file before removing it from the queue.",
        "",
        "The smallest chain is `[\"reject_unauth_destination\"]`: Postern refuses a recipient "
        "list that cannot refuse relaying, so a list with no plugin at all cannot be "
        "configured. The 8-plugin chain, every entry of which runs and passes for this mail: "
        "`check_client_access hash:access`, `reject_rbl_client rbl.bench.test` (asking a DNS "
        "server in the script that answers NXDOMAIN with a 300 s negative TTL), "
        "`check_helo_access hash:helo_access`, `reject_invalid_helo_hostname`, "
        "`reject_non_fqdn_helo_hostname`, `check_sender_access hash:access`, "
        "`reject_unauth_destination`, `{ plugin = \"greylist\", whitelist_clients = "
        "\"127.0.0.0/8\" }`. \"No fsync\": accept → Maildir with Debian's libeatmydata "
        "preloaded into every process of the server (fsync and fdatasync do nothing): a "
        "diagnostic of how much time goes to waiting for the disk, not a configuration to "
        "run. \"File syncs only\": Postern with `bench/syncshim.c` preloaded, which lets "
        "the fsyncs and fdatasyncs of regular files through but makes those of directories "
        "return at once: Postern then syncs per message what Postfix does (the queue file, "
        "the delivered file), so the gap to the plain run is what its directory fsyncs (the "
        "files' names, shared by concurrent messages) cost.",
        "",
        "Server CPU per message: user + system time from /proc, Postern's process; "
        "Postfix's master and every process under it, reaped ones included.",
        "",
    ]
    for kind, res in results.items():
        out += smtp_section(res, m["fs"][kind]) + [""]
    first = m["fs"][next(iter(results))]
    if idle or mix:
        out += [f"## Idle sessions and IMAP/POP3, files on {first}", "",
                "| benchmark | Postern | other | ratio | target | |",
                "|---|---|---|---|---|---|"]
    if idle and "error" in idle:
        out.append(f"| idle SMTP session, resident KiB each ({idle['sessions']:,} sessions) | "
                   f"failed: {idle['error']} | | | ≤ 20 | **not measured** |")
    elif idle:
        runs_ = " ".join(f"{k:.1f}" for k in idle.get("runs", []))
        out.append(f"| idle SMTP session, resident KiB each ({idle['sessions']:,} sessions; "
                   f"median of {runs_}) | {idle['kib']:.1f} | | | ≤ 20 | {ok(idle['kib'] <= 20)} |")
    if mix:
        for kind in ("imap", "pop3"):
            ours = mix[(kind, "postern")][0]
            for name in ("dovecot", "dovecot-tuned"):
                if (kind, name) in mix:
                    theirs = mix[(kind, name)][0]
                    label = "Dovecot stock" if name == "dovecot" else "Dovecot tuned"
                    target = "≥ 1×" if kind == "imap" else "(≥ 1×)"
                    out.append(f"| {kind.upper()} mix, sessions/s | {ours:.0f} | {label} "
                               f"{theirs:.0f} | {ours / theirs:.2f}× | {target} | "
                               f"{ok(ours >= theirs)} |")
    if idle:
        out += ["", "`bench/idle-sessions.py` (the median run):", "", "```", idle["output"], "```"]
    if mix:
        out += ["", f"`bench/imap-pop3-mix.py --runs {args.runs}` (40 users × 100 messages, "
                "8 clients, 10 s a run; the mixes and the two Dovecot set-ups are described "
                "in bench/README.md), sessions/s:", "", "| mix | server | median | runs |",
                "|---|---|---|---|"]
        for (kind, name), (m_, rs) in mix.items():
            out.append(f"| {kind.upper()} | {name} | {m_:.0f} | {runs(rs)} |")
    if chart_made:
        out += ["", f"![medians and runs]({chart_made})"]
    return "\n".join(out) + "\n"


def smtp_benchmarks(args):
    """Every SMTP variant, RUNS interleaved rounds, then the reload test."""
    n, s = args.messages, args.sessions
    steps = {
        "accept_postfix": lambda: mta.accept_postfix(n, s),
        "accept_empty": lambda: mta.accept_postern(mta.EMPTY, n, s),
        "accept_default": lambda: mta.accept_postern(mta.DEFAULT, n, s),
        "accept_immediate": lambda: mta.accept_postern(mta.DEFAULT, n, s, extra=mta.IMMEDIATE),
        "accept_chain8": lambda: mta.accept_postern("chain8", n, s),
        "relay_postfix": lambda: mta.relay("postfix", n, s),
        "relay_postern": lambda: mta.relay("postern", n, s),
    }
    if "nosync" not in args.skip:
        steps["accept_postfix_nosync"] = lambda: mta.accept_postfix(n, s, nosync=True)
        steps["accept_default_nosync"] = lambda: mta.accept_postern(mta.DEFAULT, n, s,
                                                                    nosync=True)
    if "filesync" not in args.skip:
        steps["accept_default_filesync"] = lambda: mta.accept_postern(mta.DEFAULT, n, s,
                                                                      nosync="files")
    res = {k: [] for k in steps}
    res.update({k + "_cpu": [] for k in steps})
    for r in range(args.runs):
        for key, step in steps.items():
            rate, cpu = step()
            res[key].append(rate)
            res[key + "_cpu"].append(cpu)
            print(f"run {r + 1}: {key:22} {rate:6.0f} msg/s, {cpu:5.2f} ms CPU/msg "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    res["reload"] = mta.reload_under_load(args.reloads, s)
    print(f"reload under load: {res['reload']}", flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reloads", type=int, default=50)
    ap.add_argument("--idle", type=int, default=10000, help="idle sessions to open")
    ap.add_argument("--skip", default="", help="comma list of: idle, mix, nosync, filesync")
    ap.add_argument("--fs", default="journaled,root",
                    help="where the SMTP benchmarks run, in order (the first also gets the "
                    "idle and mix ones): journaled (a fresh ext4 with a journal on a loop "
                    "device), root (the machine's /tmp)")
    ap.add_argument("--no-build", action="store_true", help="use the existing release binary")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    ap.add_argument("--chart", default=None, help="default: benchmarks.png beside --out")
    args = ap.parse_args()
    kinds = [k for k in args.fs.split(",") if k]
    if not kinds or any(k not in FS_LABEL for k in kinds):
        raise SystemExit(f"--fs: a comma list of {', '.join(FS_LABEL)}")
    skip = set(filter(None, args.skip.split(",")))
    if not os.path.exists(mta.EATMYDATA) and "nosync" not in skip:
        print("no libeatmydata (apt-get install eatmydata): no 'no fsync' variants",
              file=sys.stderr)
        skip.add("nosync")
    if not shutil.which("cc") and "filesync" not in skip:
        print("no C compiler for syncshim.c: no 'file syncs only' variant", file=sys.stderr)
        skip.add("filesync")
    args.skip = ",".join(sorted(skip))
    ensure_tools(not args.no_build)
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    load0 = f"{os.getloadavg()[0]:.1f}"
    results, where, idle, mix = {}, {}, None, None
    for i, kind in enumerate(kinds):
        with mta.scratch(kind) as work:
            where[kind] = mta.filesystem(work)
            print(f"working in {work}: {where[kind]}", flush=True)
            print(f"preflight: {mta.preflight()}", flush=True)
            results[kind] = smtp_benchmarks(args)
            if i == 0 and "idle" not in skip:
                idle = idle_sessions(args.idle, args.runs)
                print(f"idle sessions: {idle.get('kib', idle.get('error')) if idle else None} KiB each", flush=True)
            if i == 0 and "mix" not in skip:
                mix = mail_mix(args.runs)
                print(f"mail mix: {mix}", flush=True)
    load = (load0, f"{os.getloadavg()[0]:.1f}")

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    png = args.chart or os.path.join(out_dir, "benchmarks.png")
    made = chart(png, results, mix)
    m = machine()
    m["fs"] = where
    text = report(args, m, results, idle, mix, load, started,
                  made and os.path.relpath(png, out_dir))
    notes = ""
    if os.path.exists(args.out):
        with open(args.out) as f:
            old = f.read()
        if MARKER in old:
            notes = old[old.index(MARKER) + len(MARKER):]
    with open(args.out, "w") as f:
        f.write(text + "\n" + MARKER + (notes or "\n"))
    print("\n" + text)
    print(f"written: {args.out}" + (f", {png}" if made else ""))


if __name__ == "__main__":
    main()
