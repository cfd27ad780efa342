#!/usr/bin/env python3
"""Small helpers for scripts/lab.sh (stdlib only).

  labutil.py ports N                     print N free TCP ports, free on every lab address
                                         (in LAB_PORT_RANGE=LOW-HIGH if set, else 20000-31999)
  labutil.py addrs                       print the loopback addresses the lab listens on
  labutil.py render TEMPLATE KEY=VAL...  print TEMPLATE with every @KEY@ replaced
  labutil.py wait-imap PORT SECS         wait until an IMAP server greets on 127.0.0.1:PORT
  labutil.py probe-imap PORT [CAFILE]    one greeting check (TLS verified against CAFILE if given)
  labutil.py cyrus-mailboxes PORT ADMINPWFILE USER...
                                         create the Cyrus mailboxes user.USER that are missing
                                         (quotauser gets a 2 MB STORAGE quota)

As a module (seed.py, tests/tools/imaptool.py): mutf7_encode and quote, for mailbox names.
"""

import base64
import os
import random
import socket
import ssl
import sys
import time

# Ports are picked below the kernel's ephemeral range, so that client connections made
# while a server is being restarted cannot steal its port. LAB_PORT_RANGE=LOW-HIGH (both
# included) confines them, e.g. to what a firewall or a shared machine allots this lab.
PORT_LOW, PORT_HIGH = 20000, 32000


def mutf7_encode(name):
    """Encode a mailbox name in IMAP's modified UTF-7 (RFC 3501 5.1.3)."""
    out, pending = [], []

    def flush():
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def quote(name):
    """A mailbox name as an IMAP quoted string."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def port_range():
    """(low, high) with high excluded, from LAB_PORT_RANGE or the default."""
    spec = os.environ.get("LAB_PORT_RANGE", "").strip()
    if not spec:
        return PORT_LOW, PORT_HIGH
    low, sep, high = spec.partition("-")
    try:
        low, high = int(low), int(high)
    except ValueError:
        low = high = -1
    if not sep or not 1024 <= low <= high <= 65535:
        sys.exit("labutil: LAB_PORT_RANGE=%r: give LOW-HIGH, two ports from 1024 to 65535 "
                 "(e.g. 21000-21999)" % spec)
    return low, high + 1


def lab_addrs():
    """127.0.0.1 always; ::1 and 127.0.0.2 when this host can bind them.

    127.0.0.2 matters: Dovecot treats a connection whose source and destination IP are
    equal as secure (no LOGINDISABLED before STARTTLS). A client connecting to 127.0.0.2
    gets source 127.0.0.1, so there it sees the rules a remote client would see.
    """
    addrs = ["127.0.0.1"]
    for fam, addr in ((socket.AF_INET, "127.0.0.2"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.bind((addr, 0))
            addrs.append(addr)
        except OSError:
            pass
    return addrs


def port_free(port, addrs):
    for addr in addrs:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            try:
                s.bind((addr, port))
            except OSError:
                return False
    return True


def free_ports(n):
    addrs = lab_addrs()
    low, high = port_range()
    start = random.SystemRandom().randrange(low, high)
    found = []
    for i in range(high - low):
        port = low + (start - low + i) % (high - low)
        if port_free(port, addrs):
            found.append(port)
            if len(found) == n:
                return found
    sys.exit("labutil: no %d free ports in %d-%d (LAB_PORT_RANGE gives another range)"
             % (n, low, high - 1))


def render(template, pairs):
    with open(template, encoding="utf-8") as f:
        text = f.read()
    for pair in pairs:
        key, _, val = pair.partition("=")
        text = text.replace("@%s@" % key, val)
    if "@" in text:
        for line in text.splitlines():
            if line.count("@") >= 2 and not line.lstrip().startswith("#"):
                sys.exit("labutil: unreplaced placeholder in %s: %s" % (template, line))
    sys.stdout.write(text)


def greet(port, cafile=None, timeout=3.0):
    """True when 127.0.0.1:port answers with an IMAP '* OK' greeting."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    try:
        if cafile:
            ctx = ssl.create_default_context(cafile=cafile)
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        data = b""
        while b"\n" not in data and len(data) < 4096:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.startswith(b"* OK")
    except (OSError, ssl.SSLError):
        return False
    finally:
        sock.close()


def cyrus_mailboxes(port, pwfile, users):
    """As Cyrus's admin: CREATE user.NAME for every account that has none yet."""
    import imaplib
    with open(pwfile) as f:
        password = f.read().strip()
    conn = imaplib.IMAP4("127.0.0.1", port)
    conn.login("admin", password)
    typ, data = conn.list('""', '"user.%"')
    have = set()
    for item in data or []:
        if isinstance(item, bytes):
            have.add(item.rsplit(b" ", 1)[-1].strip(b'"').decode())
    for user in users:
        box = "user." + user
        if box not in have:
            typ, data = conn.create(box)
            if typ != "OK":
                sys.exit("labutil: Cyrus refused CREATE %s: %s" % (box, data))
        if user == "quotauser":
            conn._simple_command("SETQUOTA", box, "(STORAGE 2048)")
    conn.logout()


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "ports":
        print(" ".join(str(p) for p in free_ports(int(args[0]))))
    elif cmd == "addrs":
        print(" ".join(lab_addrs()))
    elif cmd == "render":
        render(args[0], args[1:])
    elif cmd == "wait-imap":
        port, deadline = int(args[0]), time.monotonic() + float(args[1])
        while not greet(port, timeout=1.0):
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.05)
    elif cmd == "cyrus-mailboxes":
        cyrus_mailboxes(int(args[0]), args[1], args[2:])
    elif cmd == "probe-imap":
        return 0 if greet(int(args[0]), args[1] if len(args) > 1 else None) else 1
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
