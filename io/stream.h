/* io/stream.h: a connected byte stream to one IMAP server, in cleartext or TLS.
 *
 * Contract between the transport (io/net.c + io/tls.c implement it) and the IMAP client
 * (io/imap.c uses it). Blocking I/O with timeouts: every call returns within the endpoint's
 * io_timeout_ms or fails with a transient "timeout" error. Not thread-safe: one stream belongs to
 * one thread at a time.
 *
 * Security defaults (design section 7): certificates and host names are verified unless the
 * endpoint says insecure (then a warning is logged on every connection); TLS 1.2 at least; SNI is
 * sent only for host names, never for IP literals; a TLS failure never falls back to cleartext.
 */
#ifndef IMAPFLEET_IO_STREAM_H
#define IMAPFLEET_IO_STREAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* Error codes of connections (all scope account unless said otherwise). */
#define IO_ERR_TLS "TLS"                                 /* the TLS handshake failed */
#define IO_ERR_TLS_VERIFY "TLS_VERIFY"                   /* certificate or host name not verified */
#define IO_ERR_TLS_PROTOCOL "TLS_PROTOCOL"               /* no acceptable protocol version */
#define IO_ERR_TLS_STATE "TLS_STATE"                     /* TLS in a state it cannot go on from */
#define IO_ERR_TLS_IMPLICIT_PORT "TLS_IMPLICIT_PORT"     /* --tls on an implicit-TLS port (993) */
#define IO_ERR_STARTTLS_UNAVAILABLE "STARTTLS_UNAVAILABLE" /* STARTTLS asked for, not offered */
#define IO_ERR_STARTTLS_FAILED "STARTTLS_FAILED"         /* the server refused STARTTLS */
#define IO_ERR_STARTTLS_INJECTION "STARTTLS_INJECTION"   /* bytes pipelined after the STARTTLS OK */

enum io_tls_mode {
	IO_TLS_IMPLICIT = 0, /* --ssl: TLS from the first byte (IMAPS, port 993) */
	IO_TLS_STARTTLS,     /* --tls: cleartext greeting, then STARTTLS (port 143) */
	IO_TLS_PLAIN         /* --plain: no TLS at all; only when chosen explicitly */
};

/* The IMAP ports, and the one place that says which goes with which mode. */
#define IO_PORT_IMAPS 993u /* implicit TLS */
#define IO_PORT_IMAP 143u  /* cleartext greeting, STARTTLS */
/* A port given: the port itself; none (0): the default of the mode. */
static inline unsigned io_port_or_default(unsigned port, enum io_tls_mode mode)
{
	return port ? port : mode == IO_TLS_IMPLICIT ? IO_PORT_IMAPS : IO_PORT_IMAP;
}
/* The mode a port implies when none was chosen: STARTTLS on 143, implicit TLS anywhere else. */
static inline enum io_tls_mode io_mode_for_port(unsigned port)
{
	return port == IO_PORT_IMAP ? IO_TLS_STARTTLS : IO_TLS_IMPLICIT;
}

struct io_endpoint {
	const char *host;            /* name or address literal (IPv4, IPv6 without brackets) */
	uint16_t port;               /* 0 = default for the mode: 993 implicit, 143 otherwise */
	enum io_tls_mode mode;
	const char *cafile;          /* extra trust anchors (PEM); NULL = system store only */
	int insecure;                /* 1 = do not verify certificate or host name (warns) */
	const char *verify_host;     /* name to verify instead of host (NULL = host) */
	unsigned connect_timeout_ms; /* 0 = 30 s */
	unsigned io_timeout_ms;      /* 0 = 120 s */
	const char *label;           /* "src" / "dst", for log lines */
	/* Stop request (NULL = none; the flag must outlive the stream): once it has been non-zero for
	 * IO_CANCEL_GRACE_MS, every read, write and wait fails within IO_CANCEL_POLL_MS with a transient
	 * error, code "CANCELLED", scope run, whatever the server is sending (a drip-fed response
	 * included). The grace lets an APPEND in flight end cleanly first. */
	atomic_int *cancel;
};

#define IO_CANCEL_GRACE_MS 2000u
#define IO_CANCEL_POLL_MS 200

/* The texts of struct io_tls_info, for preflight's and probe's lines: a protocol name ("TLSv1.3"),
 * an OpenSSL cipher name (under 50 bytes), a certificate's subject, issuer and subjectAltName as
 * one line (cut: the line is for people), a date "2027-01-01 00:00:00 UTC" and a verify result. */
#define IO_TLS_VERSION_MAX 16
#define IO_TLS_CIPHER_MAX  64
#define IO_TLS_NAME_MAX	   256
#define IO_TLS_DATE_MAX	   40
#define IO_TLS_RESULT_MAX  160

struct io_tls_info {
	char version[IO_TLS_VERSION_MAX]; /* "TLSv1.3" */
	char cipher[IO_TLS_CIPHER_MAX];
	char subject[IO_TLS_NAME_MAX];
	char issuer[IO_TLS_NAME_MAX];
	char not_after[IO_TLS_DATE_MAX]; /* "2027-01-01 00:00:00 UTC" */
	char san[IO_TLS_NAME_MAX];	  /* "DNS:localhost, IP:127.0.0.1" */
	int verified;			  /* 1 when chain and host name verified */
	/* "ok" or the reason: "self-signed certificate", "host name mismatch" ... */
	char verify_result[IO_TLS_RESULT_MAX];
	int resumed;         /* 1 when an earlier session to this server was resumed (its certificate,
			      * kept in the session, verified again: io/tls.c) */
};

struct io_stream;

/* Connects (trying every address of the name, IPv6 and IPv4) and, for IO_TLS_IMPLICIT, completes the
 * TLS handshake and verification. Errors: refused/unreachable/timeout/reset are FLEET_ERR_TRANSIENT;
 * a certificate or host-name verification failure is FLEET_ERR_PERMANENT with code "TLS_VERIFY" and
 * the reason in the message; name resolution failure is FLEET_ERR_TRANSIENT with code "DNS". */
int io_stream_connect(const struct io_endpoint *ep, struct io_stream **out, struct fleet_err *err);

/* Upgrades a cleartext stream to TLS (after the server's OK to STARTTLS) with the endpoint's TLS
 * settings and verification. The caller must have checked that no bytes were pipelined after the
 * OK (see io_stream_pending and the IMAP client's own buffer). */
int io_stream_start_tls(struct io_stream *s, struct fleet_err *err);

/* Reads up to len bytes: > 0 bytes read, 0 on orderly end of stream, < 0 on error (err filled;
 * timeouts and resets are transient). */
ssize_t io_stream_read(struct io_stream *s, void *buf, size_t len, struct fleet_err *err);

/* Says that at least n more bytes of application data will surely come (the rest of a literal),
 * so that a read may sleep until a good part of them has arrived rather than wake for every
 * segment: fewer system calls for large bodies (SO_RCVLOWAT where supported). 0 withdraws the
 * hint. Reads still return what is there, and timeouts still apply. A wrong (too large) n can only
 * delay a read until the io timeout, never lose bytes. */
void io_stream_expect(struct io_stream *s, uint64_t n);

/* Writes all len bytes or fails. */
int io_stream_write(struct io_stream *s, const void *buf, size_t len, struct fleet_err *err);

/* 1 when a read would not block (bytes in the socket or decrypted inside TLS), 0 when nothing came
 * within timeout_ms (0 = just look), < 0 on error. */
int io_stream_wait_readable(struct io_stream *s, int timeout_ms, struct fleet_err *err);

int io_stream_is_tls(const struct io_stream *s);
/* Fills info about the TLS session; returns -1 on a cleartext stream. */
int io_stream_tls_info(const struct io_stream *s, struct io_tls_info *info);
const struct io_endpoint *io_stream_endpoint(const struct io_stream *s);
/* Total bytes read and written (for rates and benchmarks). */
uint64_t io_stream_bytes_in(const struct io_stream *s);
uint64_t io_stream_bytes_out(const struct io_stream *s);

/* Closes (TLS close_notify when possible) and frees; sets *s to NULL. */
void io_stream_close(struct io_stream **s);

#endif
