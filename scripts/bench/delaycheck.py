#!/usr/bin/env python3
"""delaycheck.py: what a scripts/bench/delayproxy link really carries, measured end to end.

  delaycheck.py PROXY_BINARY [--kbit N] [--rtt-ms N] [--mbytes M] [--direction up|down]

Starts a sink (or source) on a loopback port of the system's choosing, the proxy in front of it
(--listen 127.0.0.1:0), pushes M MB (10^6 bytes) through one connection in the given direction
(up: client to target, as an APPEND; down: target to client, as a FETCH answer) and prints the
throughput seen by the receiver, to compare with --kbit. Loopback only; nothing is kept.
"""
import argparse
import socket
import subprocess
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("proxy")
    ap.add_argument("--kbit", type=int, default=20000)
    ap.add_argument("--rtt-ms", type=int, default=0)
    ap.add_argument("--mbytes", type=int, default=20)
    ap.add_argument("--direction", choices=("up", "down"), default="up")
    o = ap.parse_args()
    nbytes = o.mbytes * 1000 * 1000
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    target = "127.0.0.1:%d" % ls.getsockname()[1]
    p = subprocess.Popen([o.proxy, "--listen", "127.0.0.1:0", "--target", target, "--rtt-ms", str(o.rtt_ms),
                          "--kbit", str(o.kbit)], stdout=subprocess.PIPE)
    try:
        port = int(p.stdout.readline())
        c = socket.create_connection(("127.0.0.1", port))
        s, _ = ls.accept()
        snd, rcv = (c, s) if o.direction == "up" else (s, c)
        chunk = b"x" * 65536

        def send():
            left = nbytes
            while left > 0:
                left -= snd.send(chunk[:min(left, len(chunk))])
            snd.shutdown(socket.SHUT_WR)

        t0 = time.monotonic()
        th = threading.Thread(target=send)
        th.start()
        got = 0
        while True:
            d = rcv.recv(1 << 20)
            if not d:
                break
            got += len(d)
        dt = time.monotonic() - t0
        th.join()
        print("delaycheck: --kbit %d --rtt-ms %d %s: %d bytes in %.2f s = %.0f kbit/s" % (
            o.kbit, o.rtt_ms, o.direction, got, dt, got * 8 / dt / 1000))
    finally:
        p.terminate()
        p.wait()


if __name__ == "__main__":
    main()
