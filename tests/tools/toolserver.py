"""What the test servers of tests/tools (fakeimap.py, tokenservice.py, exofront.py) share; stdlib
only, imported from the same folder (python3 puts the script's folder first on sys.path)."""

import ssl


def tls_context(cert, key):
    """A server's TLS context: TLS 1.2 or later, with the certificate chain CERT and its KEY."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def serve(srv, ready):
    """Prints READY, the first line the test that started the server waits for, then serves SRV
    (a socketserver) until interrupted."""
    print(ready, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
