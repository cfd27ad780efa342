#!/usr/bin/env python3
"""hugeseed.py: fill one account's INBOX with N small messages, fast (the huge-mailbox case).

  hugeseed.py --host H --port P --user U --passfile F --cafile CA --messages N [--seed S]

Empties INBOX of the account, then APPENDs N deterministic messages of 1-4 KB (Message-ID, Date,
From, To, Subject, a text body; a few flags and keywords; INTERNALDATEs spread over 3 years) with
pipelined LITERAL+ APPENDs, 500 in flight. Prints "N messages, B bytes".
"""
import argparse
import random
import socket
import ssl
import sys
import time

WORDS = ("the of to and in is for on that with as this be by are from at report meeting budget "
         "project quarter review draft invoice schedule deadline customer server migration backup "
         "release update proposal contract team office travel agenda").split()
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


class Conn:
    def __init__(self, host, port, cafile):
        ctx = ssl.create_default_context(cafile=cafile)
        self.s = ctx.wrap_socket(socket.create_connection((host, port), timeout=120), server_hostname=host)
        self.buf = b""
        self.tag = 0
        self.line()  # greeting

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise RuntimeError("connection closed")
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, text):
        self.tag += 1
        t = b"h%d" % self.tag
        self.send(t + b" " + text + b"\r\n")
        return self.wait(t)

    def wait(self, t):
        while True:
            ln = self.line()
            if ln.startswith(t + b" "):
                if not ln[len(t) + 1:].startswith(b"OK"):
                    raise RuntimeError(ln.decode(errors="replace"))
                return ln


def message(rng, i):
    day = rng.randrange(0, 3 * 365)
    t = time.gmtime(1640995200 + day * 86400 + rng.randrange(86400))
    date = "%02d-%s-%04d %02d:%02d:%02d +0000" % (t.tm_mday, MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour,
                                                   t.tm_min, t.tm_sec)
    hdate = time.strftime("%a, %d %b %Y %H:%M:%S +0000", t)
    body = []
    for _ in range(rng.randrange(8, 50)):
        body.append(" ".join(rng.choice(WORDS) for _ in range(rng.randrange(6, 14))))
    raw = ("From: Sender %d <s%d@example.org>\r\nTo: huge@example.org\r\nSubject: note %d %s\r\n"
           "Date: %s\r\nMessage-ID: <huge.%d.%d@example.org>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n" %
           (i % 97, i % 97, i, rng.choice(WORDS), hdate, i, rng.randrange(1 << 30), "\r\n".join(body)))
    flags = []
    r = rng.random()
    if r < 0.7:
        flags.append("\\Seen")
    if r < 0.05:
        flags.append("\\Flagged")
    if rng.random() < 0.02:
        flags.append("$Label1")
    return raw.encode(), " ".join(flags), date


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--passfile", required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--messages", type=int, required=True)
    ap.add_argument("--seed", default="huge")
    a = ap.parse_args()
    c = Conn(a.host, a.port, a.cafile)
    with open(a.passfile) as f:
        pw = f.read().strip()
    c.cmd(b'LOGIN "%s" "%s"' % (a.user.encode(), pw.encode()))
    c.cmd(b"SELECT INBOX")
    c.cmd(b"UID STORE 1:* +FLAGS.SILENT (\\Deleted)")
    c.cmd(b"EXPUNGE")
    rng = random.Random(a.seed)
    total, inflight, tags = 0, 0, []
    for i in range(a.messages):
        raw, flags, date = message(rng, i)
        c.tag += 1
        t = b"h%d" % c.tag
        c.send(t + b' APPEND INBOX (%s) "%s" {%d+}\r\n' % (flags.encode(), date.encode(), len(raw)) + raw + b"\r\n")
        tags.append(t)
        total += len(raw)
        if len(tags) >= 500:
            for t in tags:
                c.wait(t)
            tags = []
    for t in tags:
        c.wait(t)
    c.cmd(b"LOGOUT")
    print("%d messages, %d bytes" % (a.messages, total))


if __name__ == "__main__":
    sys.exit(main())
