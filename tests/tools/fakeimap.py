#!/usr/bin/env python3
"""fakeimap.py: a scripted fake IMAP server for tests (python3 stdlib only).

For what real servers will not do on demand: refuse STARTTLS, inject bytes after the STARTTLS OK,
answer garbage, cut a literal short, announce absurd literals, throttle, refuse logins or one
APPEND, or lack UIDPLUS and LITERAL+. Between the scripted failures it is a small but real
in-memory IMAP4rev1 server (LOGIN, AUTHENTICATE PLAIN, LIST/LSUB, STATUS, SELECT/EXAMINE, UID
FETCH, UID SEARCH, UID STORE, EXPUNGE, APPEND, CREATE/DELETE/SUBSCRIBE), shared by all
connections of one process.

  fakeimap.py --scenario NAME [--port N] [--log FILE] [--cert PEM --key PEM [--implicit-tls]]
              [--user U --password P] [--seed N] [--throttle-count K] [--throttle-on login|select]
              [--reject-append N] [--reject-over BYTES] [--refuse-create NAME]... [--greet-after-conns K]
              [--greet-delay-ms N [--pregreet bad|drop]]

The first line on stdout is the port. --log gets one line per command received:
  "<conn> <plain|tls> C: <command line>"   (literal data shown as {N bytes})
so tests can assert the exact command sequence, e.g. that no LOGIN was sent in cleartext.

Scenarios:
  normal              full server: LITERAL+ UIDPLUS SASL-IR AUTH=PLAIN STARTTLS (with --cert) ID
  no-starttls         no STARTTLS advertised; LOGIN accepted in cleartext
  starttls-injection  STARTTLS answered with "OK" and "* OK injected" in the same write
  malformed           valid greeting, then garbage in answer to every command
  truncated           FETCH bodies cut short: the connection closes mid-literal
  huge-literal        FETCH announces a 2 GB literal
  no-uidplus          no UIDPLUS, no LITERAL+ (synchronising literals, no APPENDUID)
  throttle            the first K connections get NO [THROTTLED] (LOGIN or SELECT), then normal;
                      --throttle-text replaces the answer (e.g. Office 365's
                      "BAD User is authenticated but not connected.")
  limit               like throttle with NO [LIMIT]
  authfail            LOGIN/AUTHENTICATE answer NO [AUTHENTICATIONFAILED]
  unavailable         LOGIN answers NO [UNAVAILABLE]
  append-no           the Nth APPEND (--reject-append, default 2) and any message containing
                      "X-Fake-Reject: yes" get NO [TOOBIG]; others are stored
  bye                 greets with BYE [UNAVAILABLE]
  bandwidth           a provider's daily limit: once the FETCH bodies served pass --over-after bytes,
                      every body FETCH gets --over-text (Gmail's "[OVERQUOTA] Account exceeded command
                      or bandwidth limits") for --over-for seconds, then the count starts again; at
                      most --over-times such blocks, then no limit (so that mailcmp can read)
  multiappend         also MULTIAPPEND (RFC 3502); a message larger than --reject-over bytes, or
                      with "X-Fake-Reject: yes", gets NO [TOOBIG], and an APPEND of several
                      messages holding one is refused whole (nothing of it stored), as the RFC says
"""

import argparse
import base64
import re
import select
import socket
import socketserver
import ssl
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import toolserver  # noqa: E402

CRLF = b"\r\n"


class Store:
    """Mailboxes shared by every connection of the process."""

    def __init__(self):
        self.lock = threading.RLock()
        self.boxes = {}
        self.subscribed = set()
        self.uidvalidity = int(time.time()) & 0x7FFFFFFF or 1
        self.appends = 0
        self.connections = 0
        self.served = 0          # bandwidth: body bytes served since the last block
        self.blocked_until = 0.0
        self.blocks = 0
        self.create("INBOX")

    def create(self, name):
        self.uidvalidity += 1
        self.boxes[name] = {"uidvalidity": self.uidvalidity, "uidnext": 1, "msgs": []}

    def add(self, name, data, flags=(), date=None):
        box = self.boxes[name]
        uid = box["uidnext"]
        box["uidnext"] += 1
        box["msgs"].append({"uid": uid, "flags": list(flags), "data": data,
                            "date": date or "17-Jul-1996 02:44:25 -0700"})
        return box["uidvalidity"], uid


class Closed(Exception):
    pass


def quote(s):
    if isinstance(s, bytes):
        s = s.decode("utf-8", "replace")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def uid_set(spec, msgs):
    """parse_set of a UID set, "*" being the last message's UID."""
    return parse_set(spec, msgs[-1]["uid"] if msgs else 0)


def parse_set(spec, maxval):
    out = set()
    for part in spec.split(","):
        if ":" in part:
            a, b = part.split(":", 1)
            a = maxval if a == "*" else int(a)
            b = maxval if b == "*" else int(b)
            if a > b:
                a, b = b, a
            out.update(range(a, b + 1))
        else:
            out.add(maxval if part == "*" else int(part))
    return out


def tokenize(parts):
    """parts: list of str (command text pieces) and bytes (literals). Returns nested lists of
    str/bytes tokens; atoms keep [...] sections whole (BODY.PEEK[HEADER.FIELDS (A B)])."""
    root = []
    stack = [root]
    for piece in parts:
        if isinstance(piece, bytes):
            stack[-1].append(piece)
            continue
        i = 0
        while i < len(piece):
            c = piece[i]
            if c == " ":
                i += 1
            elif c == "(":
                new = []
                stack[-1].append(new)
                stack.append(new)
                i += 1
            elif c == ")":
                if len(stack) > 1:
                    stack.pop()
                i += 1
            elif c == '"':
                text, i = quoted_at(piece, i)
                stack[-1].append(("q", text))
            else:
                j = atom_end(piece, i)
                stack[-1].append(piece[i:j])
                i = j
    return root


def quoted_at(piece, i):
    """The quoted string that starts at piece[i] (a '"'): its text, unescaped, and the index after it."""
    j = i + 1
    out = []
    while j < len(piece) and piece[j] != '"':
        if piece[j] == "\\" and j + 1 < len(piece):
            j += 1
        out.append(piece[j])
        j += 1
    return "".join(out), j + 1


ATOM_STOP = re.compile(r"[\[\] ()]")


def atom_end(piece, i):
    """The index after the atom that starts at piece[i]; a [...] section, spaces and all, is part of it.
    (A regular expression finds the next bracket, space or parenthesis: a UID set of megabytes is one atom.)"""
    j, depth = i, 0
    while True:
        m = ATOM_STOP.search(piece, j)
        if not m:
            return len(piece)
        j = m.start()
        if piece[j] == "[":
            depth += 1
        elif piece[j] == "]":
            depth -= 1
        elif depth == 0:
            return j
        j += 1


def sval(tok):
    """String value of an atom, quoted string or literal."""
    if isinstance(tok, tuple):
        return tok[1]
    if isinstance(tok, bytes):
        return tok.decode("utf-8", "replace")
    return tok


class Session:
    def __init__(self, server, sock, n):
        self.srv = server
        self.opts = server.opts
        self.store = server.store
        self.sock = sock
        self.n = n
        self.buf = b""
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.authed = False
        self.selected = None
        self.readonly = False
        self.scn = self.opts.scenario

    # ---- I/O ------------------------------------------------------------------------------------
    def log(self, line):
        if self.srv.logf:
            with self.srv.loglock:
                self.srv.logf.write("%d %s C: %s\n" % (self.n, "tls" if self.tls else "plain", line))
                self.srv.logf.flush()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed()
            self.buf += chunk
            if len(self.buf) > self.srv.opts.max_line:
                raise Closed()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def readn(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed()
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_command(self):
        """Returns (tag, verb, parts, logline); literals are read here (with '+' when synchronising)."""
        parts = []
        shown = []
        while True:
            line = self.readline().decode("utf-8", "replace")
            m = re.search(r"\{(\d+)(\+?)\}$", line)
            if not m:
                parts.append(line)
                shown.append(line)
                break
            parts.append(line[:m.start()])
            shown.append(line[:m.start()] + "{%s bytes}" % m.group(1))
            n = int(m.group(1))
            if not m.group(2):
                if self.on_literal(parts, n):
                    return None
                self.send("+ Ready for literal data\r\n")
            parts.append(self.readn(n))
        logline = " ".join(s for s in shown)
        first = parts[0].split(" ", 2) if parts else [""]
        tag = first[0]
        verb = first[1].upper() if len(first) > 1 else ""
        if verb == "UID" and len(first) > 2:
            verb = "UID " + first[2].split(" ", 1)[0].upper()
        return tag, verb, parts, logline

    def on_literal(self, parts, n):
        """Hook before a synchronising literal: True when the command was answered already."""
        head = parts[0].split(" ")
        if len(head) > 1 and head[1].upper() == "APPEND":
            self._counted = True
        if len(head) > 1 and head[1].upper() == "APPEND" and self.reject_append_now(parts, None):
            self._counted = False
            self.log(parts[0] + "{%d}" % n)
            self.send("%s NO [TOOBIG] Message too large for this server (fake)\r\n" % head[0])
            return True
        return False

    # ---- capabilities ---------------------------------------------------------------------------
    def caps(self):
        c = ["IMAP4rev1", "ID", "ENABLE", "NAMESPACE", "SASL-IR", "AUTH=PLAIN"]
        if self.scn not in ("no-uidplus",):
            c += ["LITERAL+", "UIDPLUS"]
        if self.scn == "multiappend":
            c.append("MULTIAPPEND")
        if self.scn not in ("no-starttls",) and self.opts.cert and not self.tls:
            c.append("STARTTLS")
        if self.scn == "starttls-injection" and not self.tls:
            c.append("STARTTLS")
        if self.authed:
            c = [x for x in c if not x.startswith("AUTH=") and x not in ("SASL-IR", "STARTTLS")]
        return " ".join(c)

    # ---- main loop ------------------------------------------------------------------------------
    def run(self):
        if self.scn == "bye":
            self.send("* BYE [UNAVAILABLE] Server shutting down for maintenance (fake)\r\n")
            return
        if self.opts.greet_after_conns:
            # --greet-after-conns K: no greeting before K connections were accepted (5 s at most),
            # so that only clients that connect in parallel are greeted at once.
            deadline = time.time() + 5.0
            while time.time() < deadline:
                with self.srv.store.lock:
                    seen = self.srv.store.connections
                if seen >= self.opts.greet_after_conns:
                    break
                time.sleep(0.01)
            with self.srv.store.lock:
                seen = self.srv.store.connections
            self.log("(greeting with %d connections accepted)" % seen)
        if self.opts.greet_delay_ms:
            # --greet-delay-ms N: the greeting N ms after the connection is up, and whether the
            # client sent anything before it (a login sent ahead of the greeting)
            time.sleep(self.opts.greet_delay_ms / 1000.0)
            early = (self.tls and self.sock.pending()) or select.select([self.sock], [], [], 0)[0]
            self.log("(client %s before the greeting)" % ("spoke" if early else "silent"))
            if early and self.opts.pregreet == "drop":
                # --pregreet drop: what came before the greeting is thrown away, unanswered
                self.sock.settimeout(0.2)
                try:
                    while self.sock.recv(65536):
                        pass
                except (socket.timeout, ssl.SSLWantReadError, BlockingIOError):
                    pass
                self.sock.settimeout(None)
            elif early and self.opts.pregreet == "bad":
                # --pregreet bad: a command sent before the greeting is answered BAD after it
                self.send("* OK [CAPABILITY %s] fakeimap ready\r\n" % self.caps())
                cmd = self.read_command()
                if cmd:
                    self.log(cmd[3])
                    self.send("%s BAD command sent before the greeting (fake)\r\n" % cmd[0])
                return self.serve()
        self.send("* OK [CAPABILITY %s] fakeimap ready\r\n" % self.caps())
        return self.serve()

    def serve(self):
        while True:
            cmd = self.read_command()
            if cmd is None:
                continue
            tag, verb, parts, logline = cmd
            self.log(logline)
            if self.scn == "malformed":
                self.send("* 1 FETCH (UID 1))\r\n%s OK [[[\r\n" % tag)
                continue
            try:
                if self.dispatch(tag, verb, parts) == "close":
                    return
            except Closed:
                raise
            except Exception as e:  # a bad command is the client's bug: say BAD
                self.send("%s BAD %s\r\n" % (tag, str(e).replace("\r", " ").replace("\n", " ")[:200]))

    def dispatch(self, tag, verb, parts):
        toks = tokenize(parts)[2:] if verb[:4] != "UID " else tokenize(parts)[3:]
        h = getattr(self, "cmd_" + verb.replace(" ", "_"), None)
        if h is None:
            self.send("%s BAD unknown command %s\r\n" % (tag, verb))
            return None
        return h(tag, toks)

    # ---- not authenticated ----------------------------------------------------------------------
    def cmd_CAPABILITY(self, tag, toks):
        self.send("* CAPABILITY %s\r\n%s OK Capability completed\r\n" % (self.caps(), tag))

    def cmd_NOOP(self, tag, toks):
        self.send("%s OK NOOP completed\r\n" % tag)

    def cmd_LOGOUT(self, tag, toks):
        self.send("* BYE Logging out\r\n%s OK Logout completed\r\n" % tag)
        return "close"

    def cmd_ID(self, tag, toks):
        self.send('* ID ("name" "fakeimap")\r\n%s OK ID completed\r\n' % tag)

    def cmd_STARTTLS(self, tag, toks):
        if self.tls or "STARTTLS" not in self.caps().split():
            self.send("%s BAD STARTTLS not available\r\n" % tag)
            return None
        if self.scn == "starttls-injection":
            # The classic attack: a response smuggled in before the handshake.
            self.send("%s OK Begin TLS negotiation now\r\n* OK injected\r\n" % tag)
            time.sleep(0.5)
            return "close"
        self.send("%s OK Begin TLS negotiation now\r\n" % tag)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.opts.cert, self.opts.key)
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        self.tls = True
        self.buf = b""
        return None

    def login_refusal(self):
        """The scripted answer to a login attempt, or None to accept."""
        if self.scn == "authfail":
            return "NO [AUTHENTICATIONFAILED] Authentication failed."
        if self.scn == "unavailable":
            return "NO [UNAVAILABLE] Temporary authentication failure. (fake)"
        if self.scn in ("throttle", "limit") and self.opts.throttle_on == "login" and \
                self.n <= self.opts.throttle_count:
            if self.opts.throttle_text:
                return self.opts.throttle_text
            return ("NO [THROTTLED] Too many connections, slow down (fake)" if self.scn == "throttle"
                    else "NO [LIMIT] Maximum number of connections from user+IP exceeded")
        return None

    def check_login(self, tag, user, password):
        refusal = self.login_refusal()
        if refusal:
            self.send("%s %s\r\n" % (tag, refusal))
            return
        if user != self.opts.user or password != self.opts.password:
            self.send("%s NO [AUTHENTICATIONFAILED] Authentication failed.\r\n" % tag)
            return
        self.authed = True
        self.send("%s OK [CAPABILITY %s] Logged in\r\n" % (tag, self.caps()))

    def cmd_LOGIN(self, tag, toks):
        if len(toks) < 2:
            raise ValueError("LOGIN needs user and password")
        self.check_login(tag, sval(toks[0]), sval(toks[1]))

    def cmd_AUTHENTICATE(self, tag, toks):
        mech = sval(toks[0]).upper() if toks else ""
        if mech != "PLAIN":
            self.send("%s NO Unsupported authentication mechanism\r\n" % tag)
            return
        if len(toks) > 1:
            payload = sval(toks[1])
        else:
            self.send("+ \r\n")
            payload = self.readline().decode()
            self.log("<sasl response>")
        if payload == "*":
            self.send("%s BAD Authentication cancelled\r\n" % tag)
            return
        try:
            authz, authc, pw = base64.b64decode(payload).decode().split("\0")
        except Exception:
            self.send("%s BAD invalid SASL payload\r\n" % tag)
            return
        self.check_login(tag, authz or authc, pw)

    # ---- authenticated --------------------------------------------------------------------------
    def need_auth(self, tag):
        if not self.authed:
            self.send("%s BAD Not logged in\r\n" % tag)
            return False
        return True

    def box(self, tag, name):
        with self.store.lock:
            key = "INBOX" if name.upper() == "INBOX" else name
            b = self.store.boxes.get(key)
        if b is None:
            self.send("%s NO [NONEXISTENT] Mailbox doesn't exist: %s\r\n" % (tag, name))
        return key, b

    def cmd_ENABLE(self, tag, toks):
        self.send("* ENABLED\r\n%s OK Enabled\r\n" % tag)

    def cmd_NAMESPACE(self, tag, toks):
        if self.need_auth(tag):
            self.send('* NAMESPACE (("" "/")) NIL NIL\r\n%s OK Namespace completed\r\n' % tag)

    def cmd_LIST(self, tag, toks, verb="LIST"):
        if not self.need_auth(tag):
            return
        pattern = sval(toks[1]) if len(toks) > 1 else "*"
        out = []
        if pattern == "":
            out.append('* %s (\\Noselect) "/" ""\r\n' % verb)
        else:
            rx = re.compile("^" + re.escape(pattern).replace("\\*", ".*").replace("%", "[^/]*") + "$")
            with self.store.lock:
                names = sorted(self.store.boxes)
                subs = set(self.store.subscribed)
            for name in names:
                if not rx.match(name) or (verb == "LSUB" and name not in subs):
                    continue
                out.append('* %s (\\HasNoChildren) "/" %s\r\n' % (verb, quote(name)))
        self.send("".join(out) + "%s OK %s completed\r\n" % (tag, verb))

    def cmd_LSUB(self, tag, toks):
        self.cmd_LIST(tag, toks, "LSUB")

    def cmd_CREATE(self, tag, toks):
        if not self.need_auth(tag):
            return
        name = sval(toks[0])
        if name in self.opts.refuse_create:
            self.send("%s NO [CANNOT] Refusing to create this mailbox (fake)\r\n" % tag)
            return
        with self.store.lock:
            if name in self.store.boxes:
                self.send("%s NO [ALREADYEXISTS] Mailbox already exists\r\n" % tag)
                return
            self.store.create(name)
        self.send("%s OK Create completed\r\n" % tag)

    def cmd_DELETE(self, tag, toks):
        if not self.need_auth(tag):
            return
        key, b = self.box(tag, sval(toks[0]))
        if b is None:
            return
        with self.store.lock:
            del self.store.boxes[key]
            self.store.subscribed.discard(key)
        self.send("%s OK Delete completed\r\n" % tag)

    def cmd_SUBSCRIBE(self, tag, toks):
        if self.need_auth(tag):
            with self.store.lock:
                self.store.subscribed.add(sval(toks[0]))
            self.send("%s OK Subscribe completed\r\n" % tag)

    def cmd_STATUS(self, tag, toks):
        if not self.need_auth(tag):
            return
        name = sval(toks[0])
        key, b = self.box(tag, name)
        if b is None:
            return
        with self.store.lock:
            vals = {"MESSAGES": len(b["msgs"]), "UIDNEXT": b["uidnext"], "UIDVALIDITY": b["uidvalidity"],
                    "UNSEEN": sum(1 for m in b["msgs"] if "\\Seen" not in m["flags"]), "RECENT": 0}
        items = [sval(t).upper() for t in toks[1]] if len(toks) > 1 and isinstance(toks[1], list) else []
        body = " ".join("%s %d" % (i, vals[i]) for i in items if i in vals)
        self.send("* STATUS %s (%s)\r\n%s OK Status completed\r\n" % (quote(name), body, tag))

    def cmd_SELECT(self, tag, toks, readonly=False):
        if not self.need_auth(tag):
            return
        if self.scn in ("throttle", "limit") and self.opts.throttle_on == "select" and \
                self.n <= self.opts.throttle_count:
            code = "THROTTLED" if self.scn == "throttle" else "LIMIT"
            if self.opts.throttle_text:
                self.send("%s %s\r\n" % (tag, self.opts.throttle_text))
            else:
                self.send("%s NO [%s] Too many requests, try later (fake)\r\n" % (tag, code))
            return
        key, b = self.box(tag, sval(toks[0]))
        if b is None:
            self.selected = None
            return
        self.selected = key
        self.readonly = readonly
        with self.store.lock:
            n, uv, un = len(b["msgs"]), b["uidvalidity"], b["uidnext"]
        self.send("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                  "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n"
                  "* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY %d] UIDs valid\r\n"
                  "* OK [UIDNEXT %d] Predicted next UID\r\n%s OK [%s] %s completed\r\n"
                  % (n, uv, un, tag, "READ-ONLY" if readonly else "READ-WRITE",
                     "EXAMINE" if readonly else "SELECT"))

    def cmd_EXAMINE(self, tag, toks):
        self.cmd_SELECT(tag, toks, True)

    def msgs(self):
        with self.store.lock:
            return list(self.store.boxes.get(self.selected, {"msgs": []})["msgs"])

    def need_selected(self, tag):
        if not self.need_auth(tag):
            return False
        if self.selected is None:
            self.send("%s BAD No mailbox selected\r\n" % tag)
            return False
        return True

    def selected_msgs(self, tag):
        """The selected mailbox's messages; None, the refusal sent, when no mailbox is selected."""
        return self.msgs() if self.need_selected(tag) else None

    def cmd_UID_FETCH(self, tag, toks):
        msgs = self.selected_msgs(tag)
        if msgs is None:
            return
        want = uid_set(sval(toks[0]), msgs)
        items = toks[1] if isinstance(toks[1], list) else [toks[1]]
        items = [sval(i).upper() for i in items]
        bodies = any(i.startswith("BODY") for i in items)
        for seq, m in enumerate(msgs, 1):
            if m["uid"] not in want:
                continue
            if self.scn == "bandwidth" and bodies and self.over_limit():
                # mid-response, as a provider does when the limit is reached during a FETCH
                self.send("%s %s\r\n" % (tag, self.opts.over_text))
                return
            out = [b"UID %d" % m["uid"]]
            for it in items:
                if it == "UID":
                    continue
                if it == "FLAGS":
                    out.append(("FLAGS (%s)" % " ".join(m["flags"])).encode())
                elif it == "INTERNALDATE":
                    out.append(('INTERNALDATE "%s"' % m["date"]).encode())
                elif it == "RFC822.SIZE":
                    out.append(b"RFC822.SIZE %d" % len(m["data"]))
                elif it.startswith("BODY"):
                    section = it[it.index("["):]
                    name = "BODY" + section
                    if section == "[]":
                        data = m["data"]
                    elif section.startswith("[HEADER"):
                        hdr = m["data"].split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                        if "FIELDS" in section:
                            fields = re.findall(r"[A-Z0-9-]+", section.split("(", 1)[1])
                            lines = [l for l in re.split(rb"\r\n(?![ \t])", hdr)
                                     if l.split(b":", 1)[0].upper().decode() in fields]
                            data = b"".join(l + b"\r\n" for l in lines) + b"\r\n"
                        else:
                            data = hdr
                    else:
                        data = m["data"]
                    if self.scn == "truncated" and section == "[]":
                        self.send(b"* %d FETCH (%s %s {%d}\r\n" % (seq, out[0], name.encode(), len(data) + 100)
                                  + data[: len(data) // 2])
                        return "close"
                    if self.scn == "huge-literal" and section == "[]":
                        self.send(b"* %d FETCH (%s %s {2000000000}\r\n" % (seq, out[0], name.encode()))
                        self.send(b"x" * 4096)
                        time.sleep(1)
                        return "close"
                    out.append(name.encode() + b" {%d}\r\n" % len(data) + data)
                    if self.scn == "bandwidth":
                        with self.store.lock:
                            self.store.served += len(data)
            self.send(b"* %d FETCH (" % seq + b" ".join(out) + b")\r\n")
        self.send("%s OK Fetch completed\r\n" % tag)

    def over_limit(self):
        """bandwidth: True while the account is blocked (a block starts once --over-after is passed)."""
        with self.store.lock:
            st, now = self.store, time.time()
            if now < st.blocked_until:
                return True
            if st.blocked_until:
                st.blocked_until, st.served = 0.0, 0
            if st.blocks < self.opts.over_times and st.served >= self.opts.over_after:
                st.blocks += 1
                st.blocked_until = now + self.opts.over_for
                return True
            return False

    def cmd_UID_SEARCH(self, tag, toks):
        msgs = self.selected_msgs(tag)
        if msgs is None:
            return
        words = [sval(t) for t in toks if not isinstance(t, list)]
        want = uid_set(words[1], msgs) if len(words) >= 2 and words[0].upper() == "UID" else None
        uids = [m["uid"] for m in msgs if want is None or m["uid"] in want]
        self.send("* SEARCH%s\r\n%s OK Search completed\r\n" % ("".join(" %d" % u for u in uids), tag))

    def cmd_UID_STORE(self, tag, toks):
        msgs = self.selected_msgs(tag)
        if msgs is None:
            return
        want = uid_set(sval(toks[0]), msgs)
        op = sval(toks[1]).upper()
        flags = [sval(f) for f in (toks[2] if isinstance(toks[2], list) else [toks[2]])]
        out = []
        with self.store.lock:
            for seq, m in enumerate(self.store.boxes[self.selected]["msgs"], 1):
                if m["uid"] not in want:
                    continue
                if op.startswith("+"):
                    m["flags"] += [f for f in flags if f not in m["flags"]]
                elif op.startswith("-"):
                    m["flags"] = [f for f in m["flags"] if f not in flags]
                else:
                    m["flags"] = list(flags)
                if not op.endswith(".SILENT"):
                    out.append("* %d FETCH (UID %d FLAGS (%s))\r\n" % (seq, m["uid"], " ".join(m["flags"])))
        self.send("".join(out) + "%s OK Store completed\r\n" % tag)

    def cmd_EXPUNGE(self, tag, toks, only=None):
        if not self.need_selected(tag):
            return
        out = []
        with self.store.lock:
            box = self.store.boxes[self.selected]
            keep = []
            seq = 0
            for m in box["msgs"]:
                seq += 1
                if "\\Deleted" in m["flags"] and (only is None or m["uid"] in only):
                    out.append("* %d EXPUNGE\r\n" % seq)
                    seq -= 1
                else:
                    keep.append(m)
            box["msgs"] = keep
        self.send("".join(out) + "%s OK Expunge completed\r\n" % tag)

    def cmd_UID_EXPUNGE(self, tag, toks):
        if "UIDPLUS" not in self.caps().split():
            self.send("%s BAD unknown command UID EXPUNGE\r\n" % tag)
            return
        self.cmd_EXPUNGE(tag, toks, parse_set(sval(toks[0]), 1 << 32))

    def cmd_CLOSE(self, tag, toks):
        self.selected = None
        self.send("%s OK Close completed\r\n" % tag)

    def reject_append_now(self, parts, data):
        """append-no: the Nth APPEND, or a body with X-Fake-Reject: yes."""
        if self.scn != "append-no":
            return False
        if data is None:
            with self.store.lock:
                self.store.appends += 1
                n = self.store.appends
            return n == self.opts.reject_append
        return b"X-Fake-Reject: yes" in data

    def cmd_APPEND(self, tag, toks):
        if not self.need_auth(tag):
            return
        if self.scn == "multiappend":
            return self.multi_append(tag, toks)
        name = sval(toks[0])
        flags, date = [], None
        rest = toks[1:]
        if rest and isinstance(rest[0], list):
            flags = [sval(f) for f in rest[0]]
            rest = rest[1:]
        if rest and isinstance(rest[0], tuple):
            date = rest[0][1]
            rest = rest[1:]
        data = rest[-1] if rest and isinstance(rest[-1], bytes) else b""
        counted = getattr(self, "_counted", False)
        self._counted = False
        if self.scn == "append-no":
            if not counted and self.reject_append_now(None, None):
                self.send("%s NO [TOOBIG] Message too large for this server (fake)\r\n" % tag)
                return
            if self.reject_append_now(None, data):
                self.send("%s NO [TOOBIG] Message too large for this server (fake)\r\n" % tag)
                return
        key, b = self.box(tag, name)
        if b is None:
            return
        with self.store.lock:
            uv, uid = self.store.add(key, data, flags, date)
        if "UIDPLUS" in self.caps().split():
            self.send("%s OK [APPENDUID %d %d] Append completed\r\n" % (tag, uv, uid))
        else:
            self.send("%s OK Append completed\r\n" % tag)


    def multi_append(self, tag, toks):
        """APPEND box [flags] [date] literal [[flags] [date] literal]...: all or nothing."""
        name, rest, msgs = sval(toks[0]), toks[1:], []
        while rest:
            flags, date = [], None
            if isinstance(rest[0], list):
                flags = [sval(f) for f in rest[0]]
                rest = rest[1:]
            if rest and isinstance(rest[0], tuple):
                date = rest[0][1]
                rest = rest[1:]
            if not rest or not isinstance(rest[0], bytes):
                self.send("%s BAD APPEND: message literal expected\r\n" % tag)
                return
            msgs.append((rest[0], flags, date))
            rest = rest[1:]
        if not msgs:
            self.send("%s BAD APPEND: no message\r\n" % tag)
            return
        for data, _, _ in msgs:
            if (self.opts.reject_over and len(data) > self.opts.reject_over) or b"X-Fake-Reject: yes" in data:
                self.send("%s NO [TOOBIG] Message too large for this server (fake; %d messages in this "
                          "APPEND, none stored)\r\n" % (tag, len(msgs)))
                return
        key, b = self.box(tag, name)
        if b is None:
            return
        with self.store.lock:
            uids = [self.store.add(key, d, f, dt) for d, f, dt in msgs]
        uv = uids[0][0]
        first, last = uids[0][1], uids[-1][1]
        uidset = "%d" % first if first == last else "%d:%d" % (first, last)
        self.send("%s OK [APPENDUID %d %s] Append completed\r\n" % (tag, uv, uidset))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        with srv.store.lock:
            srv.store.connections += 1
            n = srv.store.connections
        sock = self.request
        try:
            if srv.opts.implicit_tls:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(srv.opts.cert, srv.opts.key)
                sock = ctx.wrap_socket(sock, server_side=True)
            Session(srv, sock, n).run()
        except (Closed, ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="normal")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--log")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--implicit-tls", action="store_true")
    ap.add_argument("--greet-delay-ms", type=int, default=0)
    ap.add_argument("--pregreet", choices=["bad", "drop"])
    ap.add_argument("--user", default="user")
    ap.add_argument("--password", default="pass")
    ap.add_argument("--seed", type=int, default=3, help="messages put in INBOX at start")
    ap.add_argument("--max-line", type=int, default=1 << 20, help="a longer command line closes the connection")
    ap.add_argument("--throttle-count", type=int, default=2)
    ap.add_argument("--throttle-on", choices=("login", "select"), default="login")
    ap.add_argument("--throttle-text", help="throttle: the answer after the tag instead of NO [THROTTLED]")
    ap.add_argument("--over-after", type=int, default=1000, help="bandwidth: body bytes before a block")
    ap.add_argument("--over-for", type=float, default=3.0, help="bandwidth: seconds a block lasts")
    ap.add_argument("--over-times", type=int, default=1, help="bandwidth: blocks at most")
    ap.add_argument("--over-text", default="NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)")
    ap.add_argument("--reject-append", type=int, default=2)
    ap.add_argument("--reject-over", type=int, default=0)
    ap.add_argument("--greet-after-conns", type=int, default=0,
                    help="greet no connection before this many were accepted (5 s at most; any scenario)")
    ap.add_argument("--refuse-create", action="append", default=[], help="CREATE NAME gets NO [CANNOT] (any scenario)")
    opts = ap.parse_args()

    srv = Server((opts.host, opts.port), Handler)
    srv.opts = opts
    srv.store = Store()
    srv.logf = open(opts.log, "a") if opts.log else None
    srv.loglock = threading.Lock()
    for i in range(1, opts.seed + 1):
        srv.store.add("INBOX", (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: test %d\r\n"
                                b"Message-ID: <fake-%d@example.com>\r\n\r\nbody %d\r\n" % (i, i, i)),
                      ["\\Seen"] if i % 2 else [])
    toolserver.serve(srv, srv.server_address[1])


if __name__ == "__main__":
    main()
