"""The clients of privileges_mail.rs, one function a test, run as
`python3 -c THIS NAME POP IMAP POP3S IMAPS USER PASSWORD HELPER`: each
prints `key value` lines that the test compares. HELPER is the root
helper's pid, whose children are the session processes."""

import imaplib, os, poplib, signal, socket, ssl, sys, time

name = sys.argv[1]
pop, imap, pop3s, imaps = (int(a) for a in sys.argv[2:6])
user, pw, helper = sys.argv[6], sys.argv[7], int(sys.argv[8])


def children():
    """The helper's children: pid, /proc status lines, whether a session."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
            if int(stat.rsplit(")", 1)[1].split()[1]) != helper:
                continue
            status = open(f"/proc/{pid}/status").read().splitlines()
            cmd = open(f"/proc/{pid}/cmdline").read()
        except OSError:
            continue
        out.append((int(pid), status, "mail-session" in cmd))
    return out


def ids():
    """What each of the helper's children runs as."""
    def field(status, key):
        return " ".join([l for l in status if l.startswith(key)][0].split()[1:])
    return [
        f"uid={field(s, 'Uid:')} gid={field(s, 'Gid:')} groups={field(s, 'Groups:')} session={session}"
        for _, s, session in children()
    ]


def gone():
    for _ in range(100):
        if not children():
            return "gone"
        time.sleep(0.05)
    return f"still there: {ids()}"


def session():
    """The pid of the one session process."""
    return next(pid for pid, _, session in children() if session)


def pop_login(timeout=10):
    p = poplib.POP3("127.0.0.1", pop, timeout=timeout)
    p.user(user)
    p.pass_(pw)
    return p


def imap_login(timeout=10):
    m = imaplib.IMAP4("127.0.0.1", imap, timeout=timeout)
    m.login(user, pw)
    return m


def clients():
    """The whole conversation, with a look at the helper's children while
    each session is open and after it ended."""
    p = pop_login()
    print("pop-stat", p.stat()[0])
    print("pop-children", ids())
    q = poplib.POP3("127.0.0.1", pop, timeout=10)
    q.user(user)
    try:
        q.pass_(pw)
        print("second login accepted")
    except poplib.error_proto as e:
        print("second", e.args[0].decode())
    _, lines, _ = p.retr(1)
    print("pop-retr", [l.decode() for l in lines if l.startswith(b"Subject:")][0])
    p.dele(1)
    print("pop-quit", p.quit().decode())
    print("pop-after", gone())
    p = pop_login()
    print("pop-stat-again", p.stat()[0])
    p.quit()

    m = imaplib.IMAP4("127.0.0.1", imap, timeout=10)
    typ, data = m.login(user, pw)
    print("imap-login", typ, b"CAPABILITY" in data[0] or "CAPABILITY" in m.capabilities)
    print("imap-children", ids())
    _, data = m.select("INBOX")
    print("imap-exists", data[0].decode())
    _, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    print("imap-fetch", data[0][1].decode().strip())
    m.store("1", "+FLAGS", "\\Deleted")
    _, data = m.expunge()
    print("imap-expunge", data)
    typ, data = m.append("INBOX", None, None, b"Subject: appended\r\n\r\nby imap\r\n")
    print("imap-append", typ)
    _, data = m.select("INBOX")
    print("imap-exists-after", data[0].decode())
    print("imap-logout", m.logout()[0])
    print("imap-after", gone())


def killed():
    """Kills the session process of an open POP3 session, then of an open
    IMAP session, and logs in again."""
    p = pop_login()
    os.kill(session(), signal.SIGKILL)
    try:
        p.stat()
        print("pop-after-kill answered")
    except poplib.error_proto as e:
        print("pop-after-kill", e.args[0].decode())
    p = pop_login()
    print("pop-again", p.stat()[0])
    p.quit()

    m = imap_login()
    os.kill(session(), signal.SIGKILL)
    try:
        m.noop()
        print("imap-after-kill answered")
    except imaplib.IMAP4.abort as e:
        print("imap-after-kill", "Internal error occurred" in str(e))
    m = imap_login()
    print("imap-again", m.select("INBOX")[1][0].decode())
    m.logout()


def tls():
    """pop3s and imaps, the TLS kept by the daemon."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    p = poplib.POP3_SSL("127.0.0.1", pop3s, context=ctx, timeout=10)
    p.user(user)
    p.pass_(pw)
    print("pop3s", p.stat()[0], p.quit().decode())
    m = imaplib.IMAP4_SSL("127.0.0.1", imaps, ssl_context=ctx, timeout=10)
    m.login(user, pw)
    print("imaps", m.select("INBOX")[1][0].decode(), m.logout()[0])


def at_stop():
    """Open sessions, then `ready`; the test stops the server, and what
    each client reads then is printed."""
    m = imap_login(timeout=30)
    print("select", m.select("INBOX")[0])
    p = pop_login(timeout=30)
    print("dele", p.dele(1).decode())
    print("ready", flush=True)
    print("imap", m.readline().decode().strip())
    print("imap-closed", m.readline() == b"")
    print("pop3", p.file.readline().decode().strip())
    print("pop3-closed", p.file.readline() == b"")


def limit():
    """With one session slot, a second client waits unserved while the
    first session is open, and is greeted once it ends."""
    p = pop_login()
    waiting = socket.create_connection(("127.0.0.1", pop), timeout=1)
    try:
        print("second greeted", waiting.recv(100))
    except socket.timeout:
        print("second waits")
    print("processes", len(children()))
    p.quit()
    waiting.settimeout(10)
    print("second then", waiting.recv(100).decode().strip())


def logins():
    """A POP3 session, then an IMAP session: each one's process pid,
    printed while it is open."""
    p = pop_login()
    print("pop-pid", session())
    p.quit()
    print("pop-after", gone())
    m = imap_login()
    print("imap-pid", session())
    m.logout()
    print("imap-after", gone())


{"clients": clients, "killed": killed, "tls": tls, "at_stop": at_stop, "limit": limit,
 "logins": logins}[name]()
