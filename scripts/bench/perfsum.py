#!/usr/bin/env python3
"""perfsum.py PERF.DATA: imapfleet's CPU by its own functions (inclusive) and by leaf library.

Reads `perf script` (call graphs) and prints
  - the share of samples per leaf DSO (kernel, libcrypto, libc, imapfleet ...);
  - inclusive share per imapfleet function (a sample counts once for every distinct imapfleet
    function on its stack), which attributes time spent in OpenSSL, libc and the kernel to the
    imapfleet code that called them, also where the library frames have no symbols;
  - per leaf DSO, the innermost imapfleet function that led there.
"""
import collections
import subprocess
import sys


def samples(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "comm,tid,ip,sym,dso"],
                         capture_output=True, text=True, errors="replace").stdout
    for block in out.split("\n\n"):
        lines = [l.strip() for l in block.strip().split("\n") if l.strip()]
        if len(lines) < 2:
            continue
        frames = []
        for l in lines[1:]:
            parts = l.split(None, 1)
            if len(parts) < 2:
                continue
            rest = parts[1]
            dso = rest[rest.rfind("(") + 1:-1] if rest.endswith(")") else "?"
            sym = rest[:rest.rfind("(")].strip() if "(" in rest else rest
            sym = sym.split("+0x")[0]
            frames.append((sym, dso.rsplit("/", 1)[-1]))
        if frames:
            yield frames


def main():
    n = 0
    leaf_dso = collections.Counter()
    incl = collections.Counter()
    via = collections.defaultdict(collections.Counter)
    for frames in samples(sys.argv[1]):
        n += 1
        leaf_dso[frames[0][1]] += 1
        seen = set()
        inner = None
        for sym, dso in frames:
            if dso == "imapfleet" and sym not in seen:
                seen.add(sym)
                incl[sym] += 1
                if inner is None:
                    inner = sym
        via[frames[0][1]][inner or "(no imapfleet frame)"] += 1
    print("%d samples" % n)
    print("== leaf DSO ==")
    for d, c in leaf_dso.most_common(8):
        print("%6.1f%%  %s" % (100.0 * c / n, d))
    print("== inclusive, imapfleet functions (top 45) ==")
    for s, c in incl.most_common(45):
        print("%6.1f%%  %s" % (100.0 * c / n, s))
    for d, _ in leaf_dso.most_common(4):
        print("== leaf in %s, innermost imapfleet caller ==" % d)
        for s, c in via[d].most_common(8):
            print("%6.1f%%  %s" % (100.0 * c / n, s))


if __name__ == "__main__":
    main()
