#!/usr/bin/env python3
"""hostileimap.py: the fake IMAP server of fakeimap.py turned malicious (issue 13).

Every scenario is a normal fakeimap server (same options, same --log format) except for one
thing a hostile or broken server does:

  login-latin1     LOGIN/AUTHENTICATE refused with a Latin-1 text (raw 0xFC)
  append-latin1    the Nth APPEND (--reject-append) refused with a Latin-1 text
  evil-greeting    greeting and every NO text carry ESC sequences (window title, clear screen)
                   and a bare CR/LF that would forge a log line
  endless-list     LIST answers short lines forever (never a tagged OK)
  huge-list        LIST answers --list-entries folders (default 200,000), then OK
  endless-fetch    a metadata UID FETCH (no body) answers untagged FETCHes forever, or
                   --fetch-responses N of them (same UID over and over) and then OK
  drip             after login, every response is sent one byte per --drip-ms (default 1000)
  drip-list        only the LIST response is dripped
  evil-names       LIST also returns bad names: one with a NUL, one not valid modified UTF-7
                   ("Bad&Jjg"), one raw 8-bit UTF-8 ("Caf\\xc3\\xa9"), one with ESC; the raw names
                   are real folders (a command must use the name exactly as listed to reach them)
  status-huge      STATUS answers UIDNEXT 4294967301 (above 2^32) and MESSAGES 5000000000
  uidvalidity-zero SELECT/EXAMINE/STATUS answer UIDVALIDITY 0
  alert-repeat     every SELECT/EXAMINE answer starts with the same "* OK [ALERT] ..." (Courier
                   does this when its file-system notifications fail)

  hostileimap.py --scenario NAME [fakeimap options] [--drip-ms N] [--list-entries N]
                 [--fetch-responses N]
"""

import argparse
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakeimap  # noqa: E402

LATIN1_NO = b"NO [AUTHENTICATIONFAILED] Passwort ung\xfcltig f\xfcr diesen Benutzer"
EVIL_TEXT = b"\x1b]0;owned\x07\x1b[2J fake \r\n2026-01-01T00:00:00.000Z INFO forged line"
# name as listed (bytes on the wire) -> messages in it
EVIL_NAMES = [
    (b"Bad&Jjg", 1),            # "&" without a valid base64 run and "-": not modified UTF-7
    (b"Caf\xc3\xa9", 1),        # raw UTF-8 from a server that ignores RFC 3501
    (b"Nul\x00Name", 1),        # a NUL inside a quoted string: invalid IMAP
    (b"Esc\x1b[31mRed", 1),     # control characters in a name
]


class HostileSession(fakeimap.Session):
    hopts = None

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.drip_all = False

    # ---- I/O: dripping ----------------------------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        data = self.greeting_filter(data)
        if self.drip_all:
            for i in range(len(data)):
                self.sock.sendall(data[i:i + 1])
                time.sleep(self.hopts.drip_ms / 1000.0)
            return
        self.sock.sendall(data)

    def drip(self, data):
        old, self.drip_all = self.drip_all, True
        try:
            self.send(data)
        finally:
            self.drip_all = old

    # ---- greeting and texts -----------------------------------------------------------------------
    def greeting_filter(self, data):
        """evil-greeting: fakeimap's greeting with a hostile text instead of "fakeimap ready"."""
        if self.scn == "evil-greeting" and not getattr(self, "greeted", False):
            self.greeted = True
            return data.replace(b"fakeimap ready", EVIL_TEXT)
        return data

    def login_refusal(self):
        if self.scn == "login-latin1":
            return LATIN1_NO
        return super().login_refusal()

    def check_login(self, tag, user, password):
        refusal = self.login_refusal()
        if isinstance(refusal, bytes):
            self.send(tag.encode() + b" " + refusal + b"\r\n")
            return
        if self.scn == "evil-greeting" and (user != self.opts.user or password != self.opts.password):
            self.send(tag.encode() + b" NO [AUTHENTICATIONFAILED] " + EVIL_TEXT + b"\r\n")
            return
        super().check_login(tag, user, password)
        if self.authed and self.scn == "drip":
            self.drip_all = True

    # ---- LIST ---------------------------------------------------------------------------------------
    def cmd_LIST(self, tag, toks, verb="LIST"):
        if not self.need_auth(tag):
            return None
        if self.scn == "endless-list" and verb == "LIST":
            line = b'* LIST (\\HasNoChildren) "/" "F%09d"\r\n'
            i = 0
            while True:
                chunk = b"".join(line % (i + k) for k in range(256))
                i += 256
                self.sock.sendall(chunk)
        if self.scn == "huge-list" and verb == "LIST":
            n = self.hopts.list_entries
            for start in range(0, n, 1000):
                self.sock.sendall(b"".join(b'* LIST (\\HasNoChildren) "/" "Folder%07d"\r\n' % i
                                           for i in range(start, min(n, start + 1000))))
            self.send("%s OK LIST completed\r\n" % tag)
            return None
        if self.scn == "drip-list" and verb == "LIST":
            old, self.drip_all = self.drip_all, True
            try:
                return super().cmd_LIST(tag, toks, verb)
            finally:
                self.drip_all = old
        if self.scn == "evil-names":
            out = []
            for name in self.store_names():
                out.append(b'* ' + verb.encode() + b' (\\HasNoChildren) "/" "' + name + b'"\r\n')
            self.send(b"".join(out) + ("%s OK %s completed\r\n" % (tag, verb)).encode())
            return None
        return super().cmd_LIST(tag, toks, verb)

    def store_names(self):
        with self.store.lock:
            return [n.encode("utf-8", "surrogateescape") for n in sorted(self.store.boxes)]

    # ---- FETCH, STATUS, SELECT ------------------------------------------------------------------------
    def cmd_UID_FETCH(self, tag, toks):
        if self.scn == "endless-fetch" and self.need_selected(tag):
            items = " ".join(fakeimap.sval(i).upper() for i in (toks[1] if isinstance(toks[1], list) else [toks[1]]))
            # metadata: no body, a header section, or sizes with an identity prefix
            # (BODY.PEEK[]<0.16384>); a message copy asks for (UID BODY.PEEK[]) alone
            if "BODY" not in items or "HEADER" in items or "RFC822.SIZE" in items:
                msgs = self.msgs()
                uid = msgs[0]["uid"] if msgs else 1
                line = (b'* 1 FETCH (UID %d FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
                        b'RFC822.SIZE 100)\r\n' % uid)
                n = self.hopts.fetch_responses
                sent = 0
                while n == 0 or sent < n:
                    k = 256 if n == 0 else min(256, n - sent)
                    self.sock.sendall(line * k)
                    sent += k
                self.send("%s OK Fetch completed\r\n" % tag)
                return None
        return super().cmd_UID_FETCH(tag, toks)

    def cmd_STATUS(self, tag, toks):
        if self.scn == "status-huge" and self.need_auth(tag):
            name = fakeimap.sval(toks[0])
            self.send('* STATUS %s (MESSAGES 5000000000 UIDNEXT 4294967301 UIDVALIDITY 7)\r\n'
                      '%s OK Status completed\r\n' % (fakeimap.quote(name), tag))
            return None
        if self.scn == "uidvalidity-zero" and self.need_auth(tag):
            name = fakeimap.sval(toks[0])
            self.send('* STATUS %s (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 0)\r\n%s OK Status completed\r\n'
                      % (fakeimap.quote(name), tag))
            return None
        return super().cmd_STATUS(tag, toks)

    def cmd_SELECT(self, tag, toks, readonly=False):
        if self.scn == "alert-repeat" and self.authed:
            self.send(b"* OK [ALERT] Filesystem notification initialization error -- contact your mail "
                      b"administrator (check for configuration errors with the FAM/Gamin library)\r\n")
        if self.scn == "uidvalidity-zero":
            orig = self.send

            def patched(data):
                if isinstance(data, str):
                    data = data.encode()
                orig(data.replace(b"[UIDVALIDITY ", b"[UIDVALIDITY 0] x [X-WAS "))
            self.send = patched
            try:
                return super().cmd_SELECT(tag, toks, readonly)
            finally:
                self.send = orig
        return super().cmd_SELECT(tag, toks, readonly)

    def cmd_APPEND(self, tag, toks):
        if self.scn == "append-latin1" and self.need_auth(tag):
            with self.store.lock:
                self.store.appends += 1
                n = self.store.appends
            if n == self.opts.reject_append:
                self.send(tag.encode() + b" NO [TOOBIG] Nachricht zu gro\xdf \x1b[2J\r\n")
                return None
        return super().cmd_APPEND(tag, toks)


def main():
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--drip-ms", type=int, default=1000)
    ap.add_argument("--list-entries", type=int, default=200000)
    ap.add_argument("--fetch-responses", type=int, default=0)
    hopts, rest = ap.parse_known_args()
    HostileSession.hopts = hopts
    scenario = None
    for i, a in enumerate(rest):
        if a == "--scenario" and i + 1 < len(rest):
            scenario = rest[i + 1]
    fakeimap.Session = HostileSession
    if scenario == "evil-names":
        orig_store = fakeimap.Store

        class EvilStore(orig_store):
            def __init__(self):
                super().__init__()
                for raw, n in EVIL_NAMES:
                    name = raw.decode("utf-8", "surrogateescape")
                    self.create(name)
                    for i in range(n):
                        self.add(name, b"From: a@example.com\r\nSubject: in %s\r\nMessage-ID: <evil-%d-%d@example.com>"
                                 b"\r\n\r\nbody\r\n" % (raw.replace(b"\x00", b"?").replace(b"\x1b", b"?"), len(raw), i))
        fakeimap.Store = EvilStore
    sys.argv = [sys.argv[0]] + rest
    fakeimap.main()


if __name__ == "__main__":
    main()
