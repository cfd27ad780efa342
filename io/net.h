/* io/net.h: internals shared by io/net.c (sockets) and io/tls.c (OpenSSL). Not a public header:
 * only the transport includes it; the rest of imapfleet uses io/stream.h.
 *
 * The socket is always non-blocking; every wait goes through poll() with a deadline, so one
 * timeout mechanism serves cleartext, STARTTLS and implicit TLS alike.
 */
#ifndef IMAPFLEET_IO_NET_H
#define IMAPFLEET_IO_NET_H

#include <stdint.h>

#include "io/stream.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* no answer within the time limit (connect, read, write) */
#define NET_ERR_TIMEOUT "TIMEOUT"
/* connection refused */
#define NET_ERR_ECONNREFUSED "ECONNREFUSED"
/* connection reset or closed by the peer */
#define NET_ERR_ECONNRESET "ECONNRESET"
/* host unreachable */
#define NET_ERR_EHOSTUNREACH "EHOSTUNREACH"
/* network unreachable */
#define NET_ERR_ENETUNREACH "ENETUNREACH"
/* no local address for the connection */
#define NET_ERR_EADDRNOTAVAIL "EADDRNOTAVAIL"
/* any other socket error */
#define NET_ERR_ENET "ENET"
/* the name could not be resolved now */
#define NET_ERR_DNS "DNS"
/* the name does not exist */
#define NET_ERR_DNS_NOHOST "DNS_NOHOST"
/* an endpoint that cannot be used as given */
#define NET_ERR_CONFIG "CONFIG"

struct ssl_st;
struct x509_st;

/* "host:port" or "[v6]:port" for messages: a DNS name is 253 bytes at the most, and 11 more for
 * brackets, colon and port; a longer host (not a real one) is cut. */
#define NET_WHERE_MAX 300

struct io_stream {
	struct io_endpoint ep; /* copy; its strings point at the owned copies below */
	char *host, *cafile, *verify_host, *label;
	char where[NET_WHERE_MAX]; /* "host:port" or "[v6]:port", for messages */
	int fd;
	struct ssl_st *ssl;	      /* NULL while cleartext */
	struct x509_st *leaf;	      /* the server's certificate as seen by verification (owned ref) */
	int tls_dead;		      /* a fatal TLS error happened: no close_notify on close */
	int tls_more;		      /* the record being sent is not the write's last: MSG_MORE */
	int tls_buffered_only;	      /* the BIO reads nothing from the socket (tls_read_buffered) */
	unsigned char *rx;	      /* ciphertext received ahead (TLS_READ_AHEAD bytes, allocated on first read) */
	size_t rx_pos, rx_len;	      /* rx[rx_pos, rx_len) not yet handed to OpenSSL */
	struct fleet_err *tls_failed; /* a read failure met ahead (tls_read_buffered): the next read's */
	uint64_t expect;	      /* application bytes surely still to come (io_stream_expect) */
	int lowat;		      /* SO_RCVLOWAT now set on fd (0 = never set, the default of 1) */
	int unusable;		      /* STARTTLS failed: the stream must only be closed now */
	uint64_t bytes_in, bytes_out;
	uint64_t cancel_seen_ms; /* when the endpoint's cancel flag was first seen set (0 = not) */
};

#define IO_DEFAULT_CONNECT_TIMEOUT_MS 30000u
#define IO_DEFAULT_IO_TIMEOUT_MS      120000u
/* One poll() waits at most this long, so a far deadline never overflows its int timeout. */
#define NET_POLL_SLICE_MS 1000000
/* Low-water marks come in steps, so that a long literal changes the socket option a few times
 * rather than on every read; below the first step the default (wake on any byte) is kept. The
 * highest mark is a read buffer's worth; a mark is dropped after LOWAT_PATIENCE_MS without data. */
#define NET_LOWAT_STEP	      (8 * 1024)
#define NET_LOWAT_MAX	      (64 * 1024)
#define NET_LOWAT_PATIENCE_MS 250
/* TCP keepalive: a dead peer behind a NAT is noticed in idle + intvl * cnt = 2 min, well before
 * a 2-hour kernel default, even when the reader is waiting longer than that for a big literal. */
#define NET_KEEPIDLE_S	60
#define NET_KEEPINTVL_S 15
#define NET_KEEPCNT	4

/* Effective I/O timeout of the stream's endpoint in milliseconds. */
unsigned net_io_timeout(const struct io_stream *s);

/* 0, or -1 with err filled (code CANCELLED) once the endpoint's cancel flag has been set for
 * IO_CANCEL_GRACE_MS (see stream.h). */
int net_cancelled(struct io_stream *s, struct fleet_err *err);

/* Waits for events (POLLIN/POLLOUT) on the stream's socket until deadline_ms (fleet_now_ms
 * clock). Returns 1 ready, 0 deadline passed, < 0 error (err filled). */
int net_poll_until(struct io_stream *s, short events, uint64_t deadline_ms, struct fleet_err *err);

/* Sets the socket's receive low-water mark for a wait for input that is sure of `bytes` more
 * bytes on the socket (0 = no such certainty): large waits sleep until a good part of them is
 * there instead of waking for every segment. Only calls setsockopt when the value changes. */
void net_rcvlowat(struct io_stream *s, uint64_t bytes);

/* net_poll_until(POLLIN) that sleeps until `sure` bytes are there (net_rcvlowat). A wrong hint
 * costs at most a short patience, after which any byte wakes the wait again. */
int net_poll_in(struct io_stream *s, uint64_t sure, uint64_t deadline_ms, struct fleet_err *err);

/* Fills err for a socket error errno value e while `doing` ("reading from"); returns -1. */
int net_errno_err(const struct io_stream *s, int e, const char *doing, struct fleet_err *err);

/* Fills err for an I/O timeout while `doing`; returns -1. */
int net_timeout_err(const struct io_stream *s, const char *doing, struct fleet_err *err);

/* n bytes of the write at *p went out: counts them, moves *p and *len past them and returns the
 * new inactivity deadline. */
uint64_t net_sent(struct io_stream *s, const char **p, size_t *len, size_t n);

/* The result w of a wait (net_poll_until, net_poll_in) while `doing`: 0 ready, or -1 with err
 * filled (a passed deadline as net_timeout_err). */
int net_waited(const struct io_stream *s, int w, const char *doing, struct fleet_err *err);

/* 1 when host is an IPv4 or IPv6 address literal. */
int net_is_ip_literal(const char *host);

#endif
