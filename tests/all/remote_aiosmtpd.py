# A test SMTP/LMTP server on aiosmtpd for tests/all/remote_*.rs.
# argv: MODE OUTDIR [--tls CERT KEY] [--auth USER:PASS] [--lmtp SOCKET|tcp]
# MODE: ok | tempfail (451 on the first DATA, then 250) | reject (550 at
# RCPT for nobody@..., 554 at DATA for reject@...) | lmtp (per-recipient
# replies: 550 for nobody@...) | slow (250 after 0.4 s in DATA; each DATA
# appends "+N" as it begins, N the DATAs in progress with itself, and "-"
# as it ends, to OUTDIR/concurrency.log).
# Each accepted message is written to OUTDIR/msgN.txt as header lines
# (peer, from, to, tls, auth, options), a blank line, then the data. Prints the
# TCP port (or "unix") on stdout once listening.
import asyncio, os, ssl, sys

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult

mode, outdir = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
tls = auth = lmtp_path = None
while args:
    flag = args.pop(0)
    if flag == "--tls":
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.pop(0), args.pop(0))
    elif flag == "--auth":
        auth = args.pop(0)
    elif flag == "--lmtp":
        lmtp_path = args.pop(0)
count = {"data": 0, "saved": 0, "now": 0}


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, options):
        if mode == "reject" and address.startswith("nobody@"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        count["data"] += 1
        if mode == "slow":
            count["now"] += 1
            with open(os.path.join(outdir, "concurrency.log"), "a") as f:
                f.write("+%d\n" % count["now"])
            try:
                await asyncio.sleep(0.4)
            finally:
                count["now"] -= 1
                with open(os.path.join(outdir, "concurrency.log"), "a") as f:
                    f.write("-\n")
        if mode == "tempfail" and count["data"] == 1:
            return "451 4.3.0 Try again later"
        if mode == "reject" and any(r.startswith("reject@") for r in envelope.rcpt_tos):
            return "554 5.7.1 Message content rejected"
        count["saved"] += 1
        n = count["saved"]
        login = getattr(session.auth_data, "login", None)
        auth_login = login.decode() if session.authenticated and login else ""
        head = "peer: %s\nfrom: %s\nto: %s\ntls: %s\nauth: %s\noptions: %s\n\n" % (
            session.peer,
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
            session.ssl is not None,
            auth_login,
            " ".join(envelope.mail_options),
        )
        tmp = os.path.join(outdir, ".msg%d" % n)
        with open(tmp, "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(tmp, os.path.join(outdir, "msg%d.txt" % n))
        if mode == "lmtp":
            return "\r\n".join(
                "550 5.1.1 <%s>: no such mailbox" % r if r.startswith("nobody@")
                else "250 2.0.0 <%s> delivered %d" % (r, n)
                for r in envelope.rcpt_tos
            )
        return "250 2.0.0 Ok: queued as AIO%d" % n


def authenticator(server, session, envelope, mechanism, data):
    user, password = auth.split(":", 1)
    ok = data.login.decode() == user and data.password.decode() == password
    return AuthResult(success=ok, auth_data=data)


def factory():
    if lmtp_path:
        return LMTP(Handler(), hostname="lmtp.aiosmtpd.test")
    kw = {}
    if tls:
        kw["tls_context"] = tls
    if auth:
        kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    return SMTP(Handler(), hostname="aiosmtpd.test", **kw)


async def main():
    loop = asyncio.get_running_loop()
    if lmtp_path and lmtp_path != "tcp":
        server = await loop.create_unix_server(factory, lmtp_path)
        print("unix", flush=True)
    else:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
