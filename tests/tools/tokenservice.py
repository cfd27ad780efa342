#!/usr/bin/env python3
"""tokenservice.py: a small OAuth 2.0 authorization server for the tests (python3 stdlib + openssl).

It plays Microsoft Entra ID and Google's token endpoint closely enough for imapfleet's OAuth code,
over HTTPS with the lab's certificate, and answers the token introspection that Dovecot's
`passdb oauth2` makes on every XOAUTH2/OAUTHBEARER login:

  POST /<tenant>/oauth2/v2.0/token   client credentials grant (Microsoft 365 app-only): client_id
                                     plus client_secret, or a client_assertion JWT (RS256, signed
                                     with the key of the client's certificate, aud = this URL);
                                     scope must be https://outlook.office365.com/.default.
                                     The token names the application, not a user.
  POST /token                        JWT bearer grant (Google service account with domain-wide
                                     delegation): assertion = RS256 JWT with iss = the service
                                     account, sub = the user, scope, aud = this URL. Also the
                                     client credentials grant for a user client (client_id = user).
  POST /introspect                   RFC 7662: token=... -> {"active": true, "username": ...} for a
                                     user's token; an application token has client_id/tenant/roles
                                     and no username. Expired or unknown: {"active": false}.
  GET  /stats                        what was issued and refused, for the tests' assertions.
  GET  /admin/tokens                 every token issued (the secrets audit looks for each one).
  POST /admin/refuse                 count=N: the next N introspections answer inactive, as for a
                                     token that expired between its fetch and the login.

Test knob: a token request may carry lifetime=S (seconds) to override --lifetime for that token
(tokens written to a tokenfile before a run of a few seconds' tokens).

Signatures are checked for real (RSASSA-PKCS1-v1_5 with SHA-256, the public key read with the
openssl command), tokens expire after --lifetime seconds, and the errors are the providers' own
(invalid_client with AADSTS7000215 for a wrong secret, invalid_grant "Invalid email or User ID"
for an unknown user ...), so the client's classification is tested against what it will meet.

  tokenservice.py --config FILE --port N --cert PEM --key PEM [--lifetime S] [--log FILE]

The config (JSON):
  {"tenants": {"TENANT": {"clients": {"CLIENT_ID": {"secret": "...", "cert": "cert.pem"}},
                          "mailboxes": ["user01", ...]}},         # granted to the tenant's apps
   "service_accounts": {"svc@example.iam": {"public_key": "pub.pem", "users": ["user01", ...]}},
   "user_clients": {"user01": "secret"}}                           # client credentials per user
The first line on stdout is "ready PORT".
"""
import argparse
import base64
import hashlib
import json
import os
import secrets
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import toolserver  # noqa: E402

MS_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# DER prefix of a SHA-256 DigestInfo (RFC 8017 section 9.2, note 1).
SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url_decode(s):
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.encode())


def public_numbers(path):
    """(n, e) of an RSA public key or certificate (PEM), through the openssl command."""
    with open(path) as f:
        is_cert = "CERTIFICATE" in f.read()
    cmd = ["openssl", "x509", "-in", path, "-noout", "-modulus"] if is_cert else \
        ["openssl", "rsa", "-pubin", "-in", path, "-noout", "-modulus"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
    return int(out.split("=", 1)[1], 16), 65537


def rs256_verify(signing_input, sig, n, e):
    k = (n.bit_length() + 7) // 8
    if len(sig) != k:
        return False
    m = pow(int.from_bytes(sig, "big"), e, n).to_bytes(k, "big")
    digest = SHA256_PREFIX + hashlib.sha256(signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (k - 3 - len(digest)) + b"\x00" + digest
    return secrets.compare_digest(m, expected)


def jwt_parse(token):
    """(header, claims, signing_input, signature) or raises ValueError."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    return header, claims, (parts[0] + "." + parts[1]).encode(), b64url_decode(parts[2])


class Service:
    def __init__(self, config, lifetime, base_url):
        self.lock = threading.Lock()
        self.lifetime = lifetime
        self.base_url = base_url
        self.tenants = config.get("tenants", {})
        self.sas = config.get("service_accounts", {})
        self.user_clients = config.get("user_clients", {})
        self.keys = {}
        for t in self.tenants.values():
            for cid, c in t.get("clients", {}).items():
                if c.get("cert"):
                    self.keys[("client", cid)] = public_numbers(c["cert"])
        for sa, s in self.sas.items():
            self.keys[("sa", sa)] = public_numbers(s["public_key"])
        self.tokens = {}      # token -> record
        self.issued = {}      # "user01" or "app:tenant/client" -> count
        self.refused = []     # [error, description, who]
        self.introspections = 0
        self.seen_jti = set()
        self.refuse_next = 0
        self.refused_logins = 0

    def issue(self, record, who, lifetime=None):
        token = ("ms-" if record.get("app") else "ya29.") + secrets.token_urlsafe(32)
        lifetime = lifetime or self.lifetime
        record["exp"] = time.time() + lifetime
        with self.lock:
            self.tokens[token] = record
            self.issued[who] = self.issued.get(who, 0) + 1
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}

    def refuse(self, status, error, desc, who):
        with self.lock:
            self.refused.append([error, desc, who])
        return status, {"error": error, "error_description": desc}

    def check_assertion(self, jwt, key_id, aud, who):
        """None when the JWT is good, else the description of what is wrong."""
        try:
            header, claims, signing_input, sig = jwt_parse(jwt)
        except (ValueError, json.JSONDecodeError):
            return "malformed JWT"
        if header.get("alg") != "RS256":
            return "unsupported alg %r" % header.get("alg")
        key = self.keys.get(key_id)
        if not key or not rs256_verify(signing_input, sig, *key):
            return "Invalid JWT Signature."
        now = time.time()
        if claims.get("aud") != aud:
            return "Invalid JWT: aud %r is not %r" % (claims.get("aud"), aud)
        if not isinstance(claims.get("exp"), int) or claims["exp"] < now - 5 or claims["exp"] > now + 3700:
            return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
        jti = claims.get("jti")
        if jti is not None:
            with self.lock:
                if jti in self.seen_jti:
                    return "JWT replayed (jti already used)"
                self.seen_jti.add(jti)
        return claims

    def ms_token(self, tenant, form):
        url = "%s/%s/oauth2/v2.0/token" % (self.base_url, tenant)
        t = self.tenants.get(tenant)
        cid = form.get("client_id", "")
        who = "app:%s/%s" % (tenant, cid)
        if t is None:
            return self.refuse(400, "invalid_request", "AADSTS90002: Tenant '%s' not found." % tenant, who)
        if form.get("grant_type") != "client_credentials":
            return self.refuse(400, "unsupported_grant_type", "AADSTS70003: grant_type not supported", who)
        c = t.get("clients", {}).get(cid)
        if c is None:
            return self.refuse(400, "unauthorized_client",
                               "AADSTS700016: Application with identifier '%s' was not found in the "
                               "directory '%s'." % (cid, tenant), who)
        if form.get("scope") != MS_SCOPE:
            return self.refuse(400, "invalid_scope", "AADSTS70011: The provided value for scope %s is not "
                               "valid." % form.get("scope"), who)
        if "client_assertion" in form:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                return self.refuse(400, "invalid_request", "AADSTS50027: bad client_assertion_type", who)
            r = self.check_assertion(form["client_assertion"], ("client", cid), url, who)
            if isinstance(r, str):
                return self.refuse(401, "invalid_client", "AADSTS700027: Client assertion failed signature "
                                   "validation. (%s)" % r, who)
            if r.get("iss") != cid or r.get("sub") != cid:
                return self.refuse(401, "invalid_client", "AADSTS700023: iss and sub must be the client id", who)
        elif "client_secret" in form:
            if not c.get("secret") or not secrets.compare_digest(form["client_secret"], c["secret"]):
                return self.refuse(401, "invalid_client", "AADSTS7000215: Invalid client secret provided. "
                                   "Ensure the secret being sent in the request is the client secret value, "
                                   "not the client secret ID.", who)
        else:
            return self.refuse(401, "invalid_client", "AADSTS7000218: The request body must contain "
                               "client_assertion or client_secret.", who)
        return self.issue({"app": True, "tenant": tenant, "client_id": cid}, who)

    def google_token(self, form):
        url = self.base_url + "/token"
        if form.get("grant_type") == "client_credentials":
            user = form.get("client_id", "")
            pw = self.user_clients.get(user)
            if pw is None or not secrets.compare_digest(form.get("client_secret", ""), pw):
                return self.refuse(401, "invalid_client", "Unauthorized", user)
            return self.issue({"user": user}, user)
        if form.get("grant_type") != JWT_BEARER:
            return self.refuse(400, "unsupported_grant_type", "Invalid grant_type: %s" % form.get("grant_type"), "")
        try:
            _, claims, _, _ = jwt_parse(form.get("assertion", ""))
        except (ValueError, json.JSONDecodeError):
            return self.refuse(400, "invalid_grant", "Invalid JWT: malformed", "")
        iss, sub = claims.get("iss", ""), claims.get("sub", "")
        sa = self.sas.get(iss)
        if sa is None:
            return self.refuse(400, "invalid_grant", "Invalid JWT Signature.", iss)
        r = self.check_assertion(form["assertion"], ("sa", iss), url, sub)
        if isinstance(r, str):
            return self.refuse(400, "invalid_grant", r, sub)
        if r.get("scope") != GOOGLE_SCOPE:
            return self.refuse(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.", sub)
        if sub not in sa.get("users", []):
            return self.refuse(400, "invalid_grant", "Invalid email or User ID", sub)
        life = form.get("lifetime", "")
        return self.issue({"user": sub}, sub, int(life) if life.isdigit() and int(life) > 0 else None)

    def introspect(self, form):
        with self.lock:
            self.introspections += 1
            rec = self.tokens.get(form.get("token", ""))
            forced = self.refuse_next > 0
            if forced:
                self.refuse_next -= 1
                self.refused_logins += 1
        if forced or rec is None or rec["exp"] < time.time():
            return 200, {"active": False}
        if rec.get("app"):
            t = self.tenants[rec["tenant"]]
            return 200, {"active": True, "client_id": rec["client_id"], "tenant": rec["tenant"],
                         "roles": ["IMAP.AccessAsApp"], "mailboxes": t.get("mailboxes", []),
                         "exp": int(rec["exp"])}
        return 200, {"active": True, "username": rec["user"], "exp": int(rec["exp"])}

    def stats(self):
        with self.lock:
            return 200, {"issued": dict(self.issued), "refused": list(self.refused),
                         "introspections": self.introspections, "refused_logins": self.refused_logins}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tokenservice/1"

    def log_message(self, fmt, *args):  # one line per request, never a body (secrets)
        if self.server.logf:
            self.server.logf.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))
            self.server.logf.flush()

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/stats":
            return self.reply(*self.server.svc.stats())
        if self.path == "/admin/tokens":  # for the secrets audit: every token issued, to look for
            with self.server.svc.lock:
                return self.reply(200, {"tokens": list(self.server.svc.tokens)})
        self.reply(404, {"error": "not_found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n > 65536:
            return self.reply(413, {"error": "invalid_request", "error_description": "too large"})
        raw = self.rfile.read(n).decode("utf-8", "replace")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        parts = self.path.split("?")[0].strip("/").split("/")
        svc = self.server.svc
        if parts == ["token"]:
            return self.reply(*svc.google_token(form))
        if parts == ["admin", "refuse"]:
            with svc.lock:
                svc.refuse_next = int(form.get("count", "1"))
            return self.reply(200, {"refuse_next": svc.refuse_next})
        if parts == ["introspect"]:
            return self.reply(*svc.introspect(form))
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self.reply(*svc.ms_token(parts[0], form))
        self.reply(404, {"error": "not_found"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--lifetime", type=int, default=3600)
    ap.add_argument("--log")
    a = ap.parse_args()
    with open(a.config) as f:
        config = json.load(f)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.socket = toolserver.tls_context(a.cert, a.key).wrap_socket(srv.socket, server_side=True)
    srv.svc = Service(config, a.lifetime, "https://localhost:%d" % a.port)
    srv.logf = open(a.log, "a") if a.log else None
    toolserver.serve(srv, "ready %d" % a.port)


if __name__ == "__main__":
    main()
