/* io/tls.h: the OpenSSL half of io_stream (internal to the transport; see io/stream.h).
 *
 * One SSL_CTX per (cafile, insecure) pair, created on first use under a mutex and kept for the
 * life of the process; SSL objects are per stream. Any number of threads may connect at once.
 */
#ifndef IMAPFLEET_IO_TLS_H
#define IMAPFLEET_IO_TLS_H

#include <sys/types.h>

#include "common/err.h"
#include "io/net.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* the --cafile could not be read */
#define TLS_ERR_CAFILE "CAFILE"

/* Plaintext handed to SSL_write at a time: one full TLS record. */
#define TLS_WRITE_CHUNK 16384
/* Plaintext of the expected bytes that OpenSSL may already hold when it asks the socket for more:
 * at most one partial record (complete ones are decrypted first). */
#define TLS_RECORD_PLAIN_MAX 16384
/* The socket BIO's receive buffer: four full records per recv() (servers send small records). */
#define TLS_READ_AHEAD (64 * 1024)
/* Session pools kept for resumption, one per (host:port, verified name, cafile): more than the
 * servers of a run. */
#define TLS_POOL_SERVERS_MAX 256
/* Sessions kept per server: a TLS 1.3 ticket is offered once, so this many connections to one
 * server can resume at the same moment (an account's connection pairs log in together; the
 * providers' per-user limits are 15-20 connections). */
#define TLS_POOL_PER_SERVER 32
/* A pooled session older than this is not offered: servers rotate their ticket keys (Dovecot and
 * OpenSSL keep a session 2 hours by default), and a run that came back after an hour gains little
 * from sessions that are likely refused. */
#define TLS_SESSION_LIFETIME_S 3600

/* Runs the client handshake on s->fd and verifies the peer as the endpoint says. On failure the
 * SSL object is freed again (s->ssl == NULL) and err says why. */
int tls_handshake(struct io_stream *s, struct fleet_err *err);

ssize_t tls_read(struct io_stream *s, void *buf, size_t len, struct fleet_err *err);
int tls_write(struct io_stream *s, const void *buf, size_t len, struct fleet_err *err);
int tls_wait_readable(struct io_stream *s, int timeout_ms, struct fleet_err *err);
int tls_fill_info(const struct io_stream *s, struct io_tls_info *info);

/* Sends close_notify (best effort, short wait) and frees the SSL object and captured cert. */
void tls_close(struct io_stream *s);

/* Frees every cached SSL_CTX (for tests and leak checkers; no stream may be open). */
void tls_ctx_cache_clear(void);

/* TLS sessions kept for resumption (see io/tls.c, "TLS session pool"): how many in all pools, and
 * forget them all (which also zeroes the counts below). Thread-safe. */
size_t tls_session_cache_count(void);
void tls_session_cache_clear(void);

/* Counts since the start (or the last tls_session_cache_clear) of verified connections:
 * handshakes finished, sessions offered, handshakes that resumed, sessions stored. */
struct tls_session_stats {
	unsigned long handshakes, offered, resumed, stored;
};
void tls_session_stats(struct tls_session_stats *out);

#endif
