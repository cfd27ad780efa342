#!/usr/bin/env python3
"""gettoken.py: print a fresh access token for one user from the tests' token service.

What an administrator's token helper does (oauth2ms, a gcloud wrapper): used as tokencmd1/2 in the
tests, and to fill tokenfile1/2. It makes the JWT bearer grant of a Google service account with
domain-wide delegation (sub = the user), signs the JWT (RS256) with the openssl command, and prints
the access token alone on one line. Optional --count FILE appends one line per token fetched, so a
test can count how often imapfleet asked.

  gettoken.py --url https://localhost:PORT/token --key sa.key --iss svc@example.iam --user user05
              --cafile ca.pem [--count FILE]
"""
import argparse
import base64
import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def main():
    ap = argparse.ArgumentParser()
    for name in ("--url", "--key", "--iss", "--user", "--cafile"):
        ap.add_argument(name, required=True)
    ap.add_argument("--count")
    ap.add_argument("--lifetime", help="ask the test token service for this lifetime (seconds)")
    a = ap.parse_args()
    now = int(time.time())
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"iss": a.iss, "sub": a.user, "scope": "https://mail.google.com/",
                                "aud": a.url, "iat": now, "exp": now + 3600}).encode())
    signing_input = (header + "." + claims).encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", a.key], input=signing_input,
                         capture_output=True, check=True).stdout
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": header + "." + claims + "." + b64url(sig)}
    if a.lifetime:
        form["lifetime"] = a.lifetime
    body = urllib.parse.urlencode(form).encode()
    ctx = ssl.create_default_context(cafile=a.cafile)
    try:
        with urllib.request.urlopen(urllib.request.Request(a.url, data=body), context=ctx, timeout=10) as r:
            token = json.load(r)["access_token"]
    except urllib.error.HTTPError as e:
        sys.stderr.write("gettoken: %s\n" % e.read().decode("utf-8", "replace"))
        return 1
    if a.count:
        with open(a.count, "a") as f:
            f.write(a.user + "\n")
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
