#!/usr/bin/env python3
"""exofront.py: an IMAP front that checks OAuth logins the way Exchange Online does (python3 stdlib).

Exchange Online lets an application that holds IMAP.AccessAsApp open a mailbox when the tenant
granted it that mailbox (Add-MailboxPermission for its service principal): the XOAUTH2 login names
the mailbox (user=) and carries the application's token, which names the application and no user.
Dovecot's passdb oauth2 checks a user name in the token instead, so the tests put this front
before the lab's dst Dovecot:

  client --TLS--> exofront: greeting, CAPABILITY (AUTH=XOAUTH2 SASL-IR, no LOGIN: basic auth is
                  off), AUTHENTICATE XOAUTH2. The token is introspected at the tests' token service:
                  it must be active; an application token must hold the IMAP.AccessAsApp role and
                  the mailbox must be one of its tenant's granted mailboxes; a user's token must
                  name that user. Refused: "NO AUTHENTICATE failed." as Exchange answers (expired,
                  unknown or not granted alike).
  accepted:       exofront logs in to the backend Dovecot as that mailbox (its lab password),
                  answers "OK [CAPABILITY ...] AUTHENTICATE completed." with the backend's
                  capabilities, and from then on relays bytes both ways unchanged.

  exofront.py --cert PEM --key PEM --backend-port N --backend-ca CA --secrets DIR
              --introspect URL [--port N] [--log FILE]

DIR/USER holds the backend password of USER (the lab's secrets/dst). The first line on stdout is
"ready PORT". --log gets one line per login: "accepted USER app:TENANT/CLIENT" or
"refused USER WHY" (never a token).
"""
import argparse
import asyncio
import base64
import json
import re
import ssl
import sys
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import toolserver  # noqa: E402

# what a session ends on when either end goes away
CLOSED = (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError)


def close_quietly(w):
    """Closes the stream writer W, whatever state it is in."""
    try:
        w.close()
    except Exception:
        pass

PRE_AUTH_CAPS = "IMAP4 IMAP4rev1 AUTH=XOAUTH2 SASL-IR ID UIDPLUS MOVE IDLE NAMESPACE CHILDREN"


class Front:
    def __init__(self, a):
        self.a = a
        self.logf = open(a.log, "a") if a.log else None
        self.ca_ctx = ssl.create_default_context(cafile=a.backend_ca)

    def log(self, line):
        if self.logf:
            self.logf.write(line + "\n")
            self.logf.flush()

    def introspect(self, token):
        data = urllib.parse.urlencode({"token": token}).encode()
        with urllib.request.urlopen(urllib.request.Request(self.a.introspect, data=data), context=self.ca_ctx,
                                    timeout=10) as r:
            return json.loads(r.read().decode())

    def check(self, user, token):
        """None when Exchange would let this token open user's mailbox, else why not."""
        try:
            info = self.introspect(token)
        except Exception as e:  # the token service is part of the test: say so in the log
            return "introspection failed: %s" % e.__class__.__name__
        if not info.get("active"):
            return "token not active (expired or unknown)"
        if "username" in info:
            return None if info["username"] == user else "a user's token for another user"
        if "IMAP.AccessAsApp" not in info.get("roles", []):
            return "application without IMAP.AccessAsApp"
        if user not in info.get("mailboxes", []):
            return "mailbox not granted to application %s" % info.get("client_id")
        return None

    async def backend_login(self, user):
        """(reader, writer, capability text) of a backend session logged in as user, or None."""
        try:
            with open("%s/%s" % (self.a.secrets, user)) as f:
                password = f.read().strip()
        except OSError:
            return None
        r, w = await asyncio.open_connection("localhost", self.a.backend_port, ssl=self.ca_ctx,
                                             server_hostname="localhost")
        await r.readline()  # greeting
        quoted = '"%s"' % password.replace("\\", "\\\\").replace('"', '\\"')
        w.write(('x0 LOGIN "%s" %s\r\n' % (user, quoted)).encode())
        await w.drain()
        while True:
            line = (await r.readline()).decode("utf-8", "replace")
            if not line:
                return None
            if line.startswith("x0 "):
                break
        if not line.startswith("x0 OK"):
            w.close()
            return None
        m = re.search(r"\[CAPABILITY ([^\]]*)\]", line)
        return r, w, m.group(1) if m else None

    async def relay(self, src, dst):
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                dst.write(data)
                await dst.drain()
        except CLOSED:
            pass
        finally:
            close_quietly(dst)

    async def authenticate(self, tag, args, r, w):
        """True when the session goes on relayed to the backend."""
        if len(args) < 1 or args[0].upper() != "XOAUTH2":
            w.write(("%s NO AUTHENTICATE failed.\r\n" % tag).encode())
            return False
        if len(args) >= 2:
            ir = args[1]
        else:
            w.write(b"+ \r\n")
            await w.drain()
            ir = (await r.readline()).decode().strip()
        try:
            parts = base64.b64decode(ir).decode().split("\x01")
            user = next(p[5:] for p in parts if p.startswith("user="))
            token = next(p[12:] for p in parts if p.startswith("auth=Bearer "))
        except Exception:
            w.write(("%s BAD Invalid XOAUTH2 response\r\n" % tag).encode())
            return False
        why = await asyncio.get_running_loop().run_in_executor(None, self.check, user, token)
        if why is None:
            b = await self.backend_login(user)
            if b is None:
                why = "backend login failed"
        if why is not None:
            self.log("refused %s %s" % (user, why))
            w.write(("%s NO AUTHENTICATE failed.\r\n" % tag).encode())
            return False
        br, bw, caps = b
        self.log("accepted %s" % user)
        w.write(("%s OK %sAUTHENTICATE completed.\r\n" % (tag, "[CAPABILITY %s] " % caps if caps else "")).encode())
        await w.drain()
        await asyncio.gather(self.relay(r, bw), self.relay(br, w))
        return True

    async def session(self, r, w):
        try:
            w.write(b"* OK The Microsoft Exchange IMAP4 service is ready. [ZXhvZnJvbnQ=]\r\n")
            await w.drain()
            while True:
                raw = await r.readline()
                if not raw:
                    return
                words = raw.decode("utf-8", "replace").strip().split(" ")
                tag, cmd, args = words[0], (words[1].upper() if len(words) > 1 else ""), words[2:]
                if cmd == "CAPABILITY":
                    w.write(("* CAPABILITY %s\r\n%s OK CAPABILITY completed.\r\n" % (PRE_AUTH_CAPS, tag)).encode())
                elif cmd == "ID":
                    w.write(("* ID NIL\r\n%s OK ID completed.\r\n" % tag).encode())
                elif cmd == "NOOP":
                    w.write(("%s OK NOOP completed.\r\n" % tag).encode())
                elif cmd == "LOGOUT":
                    w.write(("* BYE Microsoft Exchange Server IMAP4 server signing off.\r\n%s OK LOGOUT completed.\r\n"
                             % tag).encode())
                    await w.drain()
                    return
                elif cmd == "LOGIN":
                    self.log("refused %s basic authentication" % (args[0] if args else "?"))
                    w.write(("%s NO LOGIN failed.\r\n" % tag).encode())
                elif cmd == "AUTHENTICATE":
                    if await self.authenticate(tag, args, r, w):
                        return
                else:
                    w.write(("%s BAD User is not authenticated\r\n" % tag).encode())
                await w.drain()
        except CLOSED:
            pass
        finally:
            close_quietly(w)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--backend-port", type=int, required=True)
    ap.add_argument("--backend-ca", required=True)
    ap.add_argument("--secrets", required=True)
    ap.add_argument("--introspect", required=True)
    ap.add_argument("--log")
    a = ap.parse_args()
    front = Front(a)
    srv = await asyncio.start_server(front.session, "127.0.0.1", a.port, ssl=toolserver.tls_context(a.cert, a.key))
    print("ready %d" % srv.sockets[0].getsockname()[1], flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
