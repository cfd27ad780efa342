/* Unit tests for io/net.c + io/tls.c (the io_stream contract in io/stream.h), without the lab.
 *
 * Servers run in threads of this process on loopback: plain ones (echo, silent, closing) and TLS
 * ones whose certificates are generated here with the OpenSSL API (a CA, a leaf for localhost and
 * 127.0.0.1, an expired leaf, a self-signed leaf), so every verification outcome is reproducible.
 * The test process keeps the default SIGPIPE disposition on purpose: a write to a closed peer
 * that raised SIGPIPE in the client would kill it. Server threads block SIGPIPE for themselves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/unit/unit.h"
#include "tests/unit/unit_io.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "io/stream.h"
#include "io/tls.h"

/* ---- certificates --------------------------------------------------------------------------- */

static EVP_PKEY *g_ca_key, *g_leaf_key;
static X509 *g_ca, *g_leaf, *g_expired, *g_selfsigned;
static SSL_CTX *g_srv_ok, *g_srv_ok12, *g_srv_expired, *g_srv_selfsigned, *g_srv_tls11, *g_srv_single;
static char g_cafile[64], g_cafile2[64], g_cafile_wrong[64];

static void add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by issuer (NULL = self-signed), valid from..to seconds from now. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer, EVP_PKEY *issuer_key,
		       int is_ca, long from_s, long to_s)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from_s);
	X509_gmtime_adj(X509_getm_notAfter(x), to_s);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"imapfleet test", -1, -1,
				   0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	add_ext(issuer ? issuer : x, x, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
	add_ext(issuer ? issuer : x, x, NID_key_usage,
		is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
	add_ext(issuer ? issuer : x, x, NID_subject_key_identifier, "hash");
	if (san)
		add_ext(issuer ? issuer : x, x, NID_subject_alt_name, san);
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

static int count_psk_offer(SSL *ssl, int *alert, void *arg);

static SSL_CTX *server_ctx(X509 *cert, EVP_PKEY *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	SSL_CTX_set_client_hello_cb(ctx, count_psk_offer, NULL);
	assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
	return ctx;
}

/* ---- loopback servers ------------------------------------------------------------------------ */

enum srv_mode {
	SRV_ECHO,	    /* echoes until EOF */
	SRV_SILENT,	    /* reads and discards until EOF, never writes */
	SRV_CLOSE,	    /* closes right after accept */
	SRV_GREET,	    /* cleartext IMAP greeting, then silent */
	SRV_GREET_LATE,	    /* the same greeting 200 ms after accept */
	SRV_TLS_ECHO,	    /* TLS handshake, then echo */
	SRV_TLS_BURST,	    /* TLS handshake, then two lines in one record, then echo */
	SRV_TLS_LATE,	    /* the same, with the lines 200 ms after the handshake */
	SRV_TLS_CLOSE,	    /* TLS handshake, then close */
	SRV_STARTTLS,	    /* greeting, expects "a STARTTLS", says OK, then TLS echo */
	SRV_STARTTLS_INJECT /* same, but pipelines a cleartext line after the OK */
};

struct srv {
	int lfd;
	uint16_t port;
	enum srv_mode mode;
	SSL_CTX *ctx;
	int nconn;
	pthread_t acceptor;
	pthread_t handlers[16];
	int nhandlers;
	atomic_int stop;
	pthread_mutex_t lock;
	char sni[256];
	int sni_sent;
	int handshakes;
	int resumed;     /* handshakes that resumed a session */
	int psk_offered; /* ClientHellos that offered a session (TLS 1.3 pre_shared_key) */
};

struct conn {
	struct srv *sv;
	int fd;
};

static void block_sigpipe(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void drain(int fd)
{
	char buf[4096];

	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
}

static int read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		if (recv(fd, buf + n, 1, 0) != 1)
			return -1;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return 0;
}

/* Counts the ClientHellos that offer a session to resume (TLS 1.3 pre_shared_key extension). */
static int count_psk_offer(SSL *ssl, int *alert, void *arg)
{
	struct srv *sv = SSL_get_app_data(ssl);
	const unsigned char *ext;
	size_t len;

	if (sv && SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &ext, &len) == 1) {
		pthread_mutex_lock(&sv->lock);
		sv->psk_offered++;
		pthread_mutex_unlock(&sv->lock);
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

static void tls_serve(struct conn *c, int burst, int close_at_once)
{
	SSL *ssl = SSL_new(c->sv->ctx);
	char buf[4096];
	int n;

	SSL_set_fd(ssl, c->fd);
	SSL_set_app_data(ssl, c->sv);
	if (SSL_accept(ssl) == 1) {
		const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

		pthread_mutex_lock(&c->sv->lock);
		c->sv->handshakes++;
		c->sv->resumed += SSL_session_reused(ssl) ? 1 : 0;
		c->sv->sni_sent = sni != NULL;
		snprintf(c->sv->sni, sizeof(c->sv->sni), "%s", sni ? sni : "");
		pthread_mutex_unlock(&c->sv->lock);
		if (c->sv->mode == SRV_TLS_LATE)
			usleep(200 * 1000);
		if (burst)
			SSL_write(ssl, "line1\r\nline2\r\n", 14);
		if (!close_at_once) {
			while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
				if (SSL_write(ssl, buf, n) <= 0)
					break;
			SSL_shutdown(ssl);
		}
	}
	SSL_free(ssl);
	ERR_clear_error();
}

static void *srv_handler(void *arg)
{
	struct conn *c = arg;
	struct timeval tv = {.tv_sec = 10};
	char buf[4096];
	ssize_t n;

	block_sigpipe();
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	switch (c->sv->mode) {
	case SRV_ECHO:
		while ((n = recv(c->fd, buf, sizeof(buf), 0)) > 0)
			if (send(c->fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
				break;
		break;
	case SRV_SILENT: drain(c->fd); break;
	case SRV_CLOSE: break;
	case SRV_GREET:
	case SRV_GREET_LATE:
		if (c->sv->mode == SRV_GREET_LATE)
			usleep(200 * 1000);
		send(c->fd, "* OK IMAP4rev1 ready\r\n", 22, MSG_NOSIGNAL);
		drain(c->fd);
		break;
	case SRV_TLS_ECHO:
	case SRV_TLS_BURST:
	case SRV_TLS_LATE:
	case SRV_TLS_CLOSE:
		tls_serve(c, c->sv->mode == SRV_TLS_BURST || c->sv->mode == SRV_TLS_LATE,
			  c->sv->mode == SRV_TLS_CLOSE);
		break;
	case SRV_STARTTLS:
	case SRV_STARTTLS_INJECT:
		send(c->fd, "* OK ready\r\n", 12, MSG_NOSIGNAL);
		if (read_line(c->fd, buf, sizeof(buf)) == 0 && strcmp(buf, "a STARTTLS\r\n") == 0) {
			if (c->sv->mode == SRV_STARTTLS_INJECT) {
				send(c->fd, "a OK go\r\n* injected\r\n", 21, MSG_NOSIGNAL);
				drain(c->fd);
			} else {
				send(c->fd, "a OK go\r\n", 9, MSG_NOSIGNAL);
				tls_serve(c, 0, 0);
			}
		}
		break;
	}
	close(c->fd);
	free(c);
	return NULL;
}

static void *srv_accept_loop(void *arg)
{
	struct srv *sv = arg;

	block_sigpipe();
	while (!atomic_load(&sv->stop) && sv->nhandlers < sv->nconn) {
		struct pollfd p = {.fd = sv->lfd, .events = POLLIN};
		struct conn *c;
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(sv->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		c = malloc(sizeof(*c));
		c->sv = sv;
		c->fd = fd;
		pthread_create(&sv->handlers[sv->nhandlers++], NULL, srv_handler, c);
	}
	return NULL;
}

/* Listens on addr (an IP literal) port 0; returns -1 when the address is unavailable (no IPv6). */
static int srv_start(struct srv *sv, const char *addr, enum srv_mode mode, SSL_CTX *ctx, int nconn)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;

	memset(sv, 0, sizeof(*sv));
	memset(&ss, 0, sizeof(ss));
	sv->mode = mode;
	sv->ctx = ctx;
	sv->nconn = nconn;
	pthread_mutex_init(&sv->lock, NULL);
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;

		a6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &a6->sin6_addr);
		sl = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;

		a4->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &a4->sin_addr);
		sl = sizeof(*a4);
	}
	sv->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sv->lfd < 0)
		return -1;
	setsockopt(sv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(sv->lfd, (struct sockaddr *)&ss, sl) < 0 || listen(sv->lfd, 16) < 0) {
		close(sv->lfd);
		return -1;
	}
	sl = sizeof(ss);
	getsockname(sv->lfd, (struct sockaddr *)&ss, &sl);
	sv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						  : ((struct sockaddr_in *)&ss)->sin_port);
	pthread_create(&sv->acceptor, NULL, srv_accept_loop, sv);
	return 0;
}

static void srv_stop(struct srv *sv)
{
	atomic_store(&sv->stop, 1);
	pthread_join(sv->acceptor, NULL);
	for (int i = 0; i < sv->nhandlers; i++)
		pthread_join(sv->handlers[i], NULL);
	close(sv->lfd);
	pthread_mutex_destroy(&sv->lock);
}

static struct io_endpoint endpoint(const char *host, uint16_t port, enum io_tls_mode mode)
{
	return unit_endpoint(host, port, mode, NULL, 5000);
}

/* ---- cleartext ------------------------------------------------------------------------------- */

/* A test server and the stream connected to it. */
struct link {
	struct srv sv;
	struct io_stream *s;
	struct fleet_err err;
};

/* A server in MODE (TLS context CTX, or NULL) on 127.0.0.1 and l->s connected to it as HOST in the TLS
 * mode TLS, trusting CAFILE (or nothing); a failure to connect fails the test. */
static void link_to(struct link *l, const char *host, enum srv_mode mode, SSL_CTX *ctx, enum io_tls_mode tls,
		    const char *cafile)
{
	struct io_endpoint ep;

	assert_int_equal(srv_start(&l->sv, "127.0.0.1", mode, ctx, 1), 0);
	ep = endpoint(host, l->sv.port, tls);
	ep.cafile = cafile;
	if (io_stream_connect(&ep, &l->s, &l->err) != 0)
		fail_msg("%s (%s)", l->err.message, l->err.detail);
}

/* Closes the stream, then stops the server. */
static void link_close(struct link *l)
{
	io_stream_close(&l->s);
	srv_stop(&l->sv);
}

static void connect_refused_is_transient_econnrefused_naming_host_port(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t sl = sizeof(a);
	struct io_endpoint ep;
	struct io_stream *s = (void *)1;
	struct fleet_err err;
	char where[32];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* A port that was just bound and released: nothing listens there. */
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &sl);
	close(fd);
	ep = endpoint("127.0.0.1", ntohs(a.sin_port), IO_TLS_PLAIN);
	assert_int_equal(io_stream_connect(&ep, &s, &err), -1);
	assert_null(s);
	assert_int_equal(err.cls, FLEET_ERR_TRANSIENT);
	assert_int_equal(err.scope, FLEET_SCOPE_ACCOUNT);
	assert_string_equal(err.code, "ECONNREFUSED");
	snprintf(where, sizeof(where), "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
	assert_contains(err.message, where);
	assert_contains(err.message, "refused");
}

/* A name that does not exist fails at once (permanent), not retried with backoff; a resolver that
 * cannot answer now stays transient. The resolver's own answer decides which one this must be. */
static void unknown_host_name_is_permanent(void **state)
{
	struct addrinfo hints, *res = NULL;
	struct io_endpoint ep = endpoint("no-such-host.invalid", 143, IO_TLS_PLAIN);
	struct io_stream *s = (void *)1;
	struct fleet_err err;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo("no-such-host.invalid", "143", &hints, &res);
	if (rc == 0)
		freeaddrinfo(res);
	assert_int_equal(io_stream_connect(&ep, &s, &err), -1);
	assert_null(s);
	assert_contains(err.message, "no-such-host.invalid");
	if (rc == EAI_NONAME) {
		assert_int_equal(err.cls, FLEET_ERR_PERMANENT);
		assert_string_equal(err.code, "DNS_NOHOST");
		assert_contains(err.message, "no such host");
	} else {
		assert_int_equal(err.cls, FLEET_ERR_TRANSIENT);
		assert_string_equal(err.code, "DNS");
	}
}

static void empty_host_is_permanent(void **state)
{
	struct io_endpoint ep = endpoint("", 143, IO_TLS_PLAIN);
	struct io_stream *s;
	struct fleet_err err;

	assert_int_equal(io_stream_connect(&ep, &s, &err), -1);
	assert_int_equal(err.cls, FLEET_ERR_PERMANENT);
}

static void write_read_round_trip_counts_bytes(void **state)
{
	struct link l;
	char buf[64];
	size_t got = 0;

	link_to(&l, "127.0.0.1", SRV_ECHO, NULL, IO_TLS_PLAIN, NULL);
	assert_false(io_stream_is_tls(l.s));
	assert_int_equal(io_stream_write(l.s, "a NOOP\r\n", 8, &l.err), 0);
	while (got < 8) {
		ssize_t n = io_stream_read(l.s, buf + got, sizeof(buf) - got, &l.err);

		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(buf, "a NOOP\r\n", 8);
	assert_int_equal(io_stream_bytes_out(l.s), 8);
	assert_int_equal(io_stream_bytes_in(l.s), 8);
	assert_int_equal(io_stream_tls_info(l.s, &(struct io_tls_info){0}), -1);
	assert_int_equal(io_stream_endpoint(l.s)->port, l.sv.port);
	assert_string_equal(io_stream_endpoint(l.s)->label, "src");
	io_stream_close(&l.s);
	assert_null(l.s);
	srv_stop(&l.sv);
}

static void connect_tries_every_address_of_a_name(void **state)
{
	struct link l;

	/* Listening on IPv4 only: if "localhost" gives ::1 first, that refusal must not be final. */
	link_to(&l, "localhost", SRV_ECHO, NULL, IO_TLS_PLAIN, NULL);
	link_close(&l);
}

/* An echo server on ::1 for NCONN connections; the test is skipped on a host without IPv6 loopback. */
static void ipv6_echo_or_skip(struct srv *sv, int nconn)
{
	if (srv_start(sv, "::1", SRV_ECHO, NULL, nconn) != 0)
		skip();
}

static void connect_over_ipv6_loopback_round_trips(void **state)
{
	struct srv sv;
	struct io_endpoint ep;
	struct io_stream *s;
	struct fleet_err err;
	char buf[8];

	ipv6_echo_or_skip(&sv, 1);
	ep = endpoint("::1", sv.port, IO_TLS_PLAIN);
	assert_int_equal(io_stream_connect(&ep, &s, &err), 0);
	assert_int_equal(io_stream_write(s, "x", 1, &err), 0);
	assert_int_equal(io_stream_read(s, buf, sizeof(buf), &err), 1);
	assert_int_equal(buf[0], 'x');
	io_stream_close(&s);
	srv_stop(&sv);
}

static void error_names_ipv6_literal_in_brackets(void **state)
{
	struct srv sv;
	struct io_endpoint ep;
	struct io_stream *s;
	struct fleet_err err;
	char where[40];

	ipv6_echo_or_skip(&sv, 0);
	srv_stop(&sv); /* now nothing listens on that port */
	ep = endpoint("::1", sv.port, IO_TLS_PLAIN);
	assert_int_equal(io_stream_connect(&ep, &s, &err), -1);
	snprintf(where, sizeof(where), "[::1]:%u", (unsigned)sv.port);
	assert_contains(err.message, where);
}

static void read_times_out_within_io_timeout_as_transient_timeout(void **state)
{
	struct srv sv;
	struct io_endpoint ep;
	struct io_stream *s;
	struct fleet_err err;
	char buf[8];
	uint64_t t0, dt;

	assert_int_equal(srv_start(&sv, "127.0.0.1", SRV_SILENT, NULL, 1), 0);
	ep = endpoint("127.0.0.1", sv.port, IO_TLS_PLAIN);
	ep.io_timeout_ms = 300;
	assert_int_equal(io_stream_connect(&ep, &s, &err), 0);
	t0 = fleet_now_ms();
	assert_int_equal(io_stream_read(s, buf, sizeof(buf), &err), -1);
	dt = fleet_now_ms() - t0;
	assert_true(dt >= 290 && dt < 2000);
	assert_int_equal(err.cls, FLEET_ERR_TRANSIENT);
	assert_string_equal(err.code, "TIMEOUT");
	assert_contains(err.message, "timed out");
	io_stream_close(&s);
	srv_stop(&sv);
}

/* io_stream_expect only tunes wake-ups: when fewer bytes come than announced, the read still
 * returns them, long before the io timeout. */
static void read_returns_what_came_when_fewer_bytes_than_expected_arrive(void **state)
{
	struct link l;
	char buf[64];
	uint64_t t0, dt;

	link_to(&l, "127.0.0.1", SRV_GREET_LATE, NULL, IO_TLS_PLAIN, NULL);
	io_stream_expect(l.s, 1024 * 1024);
	t0 = fleet_now_ms();
	assert_int_equal(io_stream_read(l.s, buf, sizeof(buf), &l.err), 22);
	dt = fleet_now_ms() - t0;
	assert_true(dt < 2000);
	assert_memory_equal(buf, "* OK IMAP4rev1 ready\r\n", 22);
	link_close(&l);
}

static void wait_readable_reports_data_only_when_it_arrives(void **state)
{
	struct link l;
	char buf[8];

	link_to(&l, "127.0.0.1", SRV_ECHO, NULL, IO_TLS_PLAIN, NULL);
	assert_int_equal(io_stream_wait_readable(l.s, 0, &l.err), 0);
	assert_int_equal(io_stream_wait_readable(l.s, 50, &l.err), 0);
	assert_int_equal(io_stream_write(l.s, "y", 1, &l.err), 0);
	assert_int_equal(io_stream_wait_readable(l.s, 2000, &l.err), 1);
	assert_int_equal(io_stream_read(l.s, buf, sizeof(buf), &l.err), 1);
	link_close(&l);
}

/* The server of L has closed its end: the stream turns readable and a read returns 0 (end of
 * stream). */
static void a_closed_peer_reads_as_the_end(struct link *l)
{
	char buf[8];

	assert_int_equal(io_stream_wait_readable(l->s, 2000, &l->err), 1);
	assert_int_equal(io_stream_read(l->s, buf, sizeof(buf), &l->err), 0);
	link_close(l);
}

/* The server of L is stopped: writing fails (within 100 writes of 64 KB) as a transient error, and
 * without SIGPIPE (the test would die of it); the error stays in l->err. */
static void writes_to_a_closed_peer_fail_transient(struct link *l)
{
	static char big[65536];
	int rc = 0;

	srv_stop(&l->sv); /* the server has closed its end */
	for (int i = 0; i < 100 && rc == 0; i++)
		rc = io_stream_write(l->s, big, sizeof(big), &l->err);
	assert_int_equal(rc, -1);
	assert_int_equal(l->err.cls, FLEET_ERR_TRANSIENT);
}

/* A peer that closes its end, over one transport: reading then sees the end, or writing fails. */
struct closed_peer {
	const char *host;
	enum srv_mode mode; /* a server that closes at once (after the handshake, for TLS) */
	SSL_CTX **ctx;
	enum io_tls_mode tls;
	int writes;	  /* write (else read) after the close */
	const char *code; /* the write's error code, unless NULL */
};

static const struct closed_peer closed_plain_read = {"127.0.0.1", SRV_CLOSE, NULL, IO_TLS_PLAIN, 0, NULL},
				 closed_plain_write = {"127.0.0.1", SRV_CLOSE, NULL, IO_TLS_PLAIN, 1, "ECONNRESET"},
				 closed_tls_read = {"localhost", SRV_TLS_CLOSE, &g_srv_ok, IO_TLS_IMPLICIT, 0, NULL},
				 closed_tls_write = {"localhost", SRV_TLS_CLOSE, &g_srv_ok, IO_TLS_IMPLICIT, 1, NULL};

/* Connects over R's transport to R's server, which closes, then reads or writes. */
static void a_closed_peer_ends_the_stream(const struct closed_peer *r)
{
	struct link l;

	link_to(&l, r->host, r->mode, r->ctx ? *r->ctx : NULL, r->tls, r->tls == IO_TLS_PLAIN ? NULL : g_cafile);
	if (!r->writes) {
		a_closed_peer_reads_as_the_end(&l);
		return;
	}
	writes_to_a_closed_peer_fail_transient(&l);
	if (r->code)
		assert_string_equal(l.err.code, r->code);
	io_stream_close(&l.s);
}

static void read_returns_zero_on_orderly_close(void **state)
{
	a_closed_peer_ends_the_stream(&closed_plain_read);
}

static void write_to_closed_peer_fails_transient_without_sigpipe(void **state)
{
	a_closed_peer_ends_the_stream(&closed_plain_write);
}

static void default_port_is_993_for_implicit_and_143_otherwise(void **state)
{
	static const struct {
		enum io_tls_mode mode;
		unsigned port;
	} cases[] = {{IO_TLS_IMPLICIT, 993}, {IO_TLS_STARTTLS, 143}, {IO_TLS_PLAIN, 143}};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct io_endpoint ep = endpoint("127.0.0.1", 0, cases[i].mode);
		struct io_stream *s;
		struct fleet_err err;
		char where[32];

		ep.connect_timeout_ms = 1000;
		ep.io_timeout_ms = 1000;
		snprintf(where, sizeof(where), "127.0.0.1:%u", cases[i].port);
		if (io_stream_connect(&ep, &s, &err) == 0) {
			assert_int_equal(io_stream_endpoint(s)->port, cases[i].port);
			io_stream_close(&s);
		} else {
			assert_contains(err.message, where);
		}
	}
}

/* ---- TLS ------------------------------------------------------------------------------------- */

static int tls_connect(struct srv *sv, const char *host, enum srv_mode mode, SSL_CTX *ctx, const char *cafile,
		       const char *verify_host, int insecure, struct io_stream **s, struct fleet_err *err)
{
	const char *bind_to = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
	struct io_endpoint ep;

	assert_int_equal(srv_start(sv, bind_to, mode, ctx, 1), 0);
	ep = endpoint(host, sv->port, IO_TLS_IMPLICIT);
	ep.cafile = cafile;
	ep.verify_host = verify_host;
	ep.insecure = insecure;
	return io_stream_connect(&ep, s, err);
}

static void tls_verified_with_cafile_reports_info(void **state)
{
	struct link l;
	struct io_tls_info info;
	char buf[16];

	link_to(&l, "localhost", SRV_TLS_ECHO, g_srv_ok, IO_TLS_IMPLICIT, g_cafile);
	unit_assert_verified(l.s, &info);
	assert_string_equal(info.verify_result, "ok");
	assert_true(strcmp(info.version, "TLSv1.2") == 0 || strcmp(info.version, "TLSv1.3") == 0);
	assert_true(info.cipher[0] != '\0');
	assert_contains(info.subject, "CN=localhost");
	assert_contains(info.issuer, "CN=imapfleet test CA");
	assert_contains(info.san, "DNS:localhost");
	assert_contains(info.san, "IP:127.0.0.1");
	assert_contains(info.not_after, " UTC");
	assert_int_equal(io_stream_write(l.s, "a NOOP\r\n", 8, &l.err), 0);
	assert_true(io_stream_read(l.s, buf, sizeof(buf), &l.err) > 0);
	assert_int_equal(io_stream_bytes_out(l.s), 8);
	assert_true(io_stream_bytes_in(l.s) > 0);
	link_close(&l);
	assert_string_equal(l.sv.sni, "localhost");
}

static void tls_ip_literal_verifies_against_ip_san_and_sends_no_sni(void **state)
{
	struct link l;
	struct io_tls_info info;

	link_to(&l, "127.0.0.1", SRV_TLS_ECHO, g_srv_ok, IO_TLS_IMPLICIT, g_cafile);
	unit_assert_verified(l.s, &info);
	link_close(&l);
	assert_int_equal(l.sv.handshakes, 1);
	assert_int_equal(l.sv.sni_sent, 0);
}

/* ---- TLS handshakes that fail: one table, one check --------------------------------------------- */

/* A server with a context and what connecting to it with implicit TLS must end with. NULL and 0
 * fields are not checked. */
struct tls_refusal {
	const char *name;	 /* the test's name in the TAP output */
	const char *host;	 /* connected to; the server listens on it (localhost: 127.0.0.1) */
	enum srv_mode mode;
	SSL_CTX **ctx;		 /* the server's context (made by group_setup) */
	const char *cafile;	 /* trusted CAs (g_cafile: the test CA) */
	const char *verify_host; /* checked instead of host */
	unsigned io_timeout_ms;	 /* 0: the endpoint's */
	enum fleet_err_class cls;
	const char *code;
	const char *in_message[2], *in_detail;
	int no_sni_recorded; /* the handshake was aborted before the server saw an SNI */
};

static const struct tls_refusal tls_refusals[] = {
    {.name = "tls_without_cafile_fails_permanent_naming_unknown_ca",
     .host = "localhost", .mode = SRV_TLS_ECHO, .ctx = &g_srv_ok, .cls = FLEET_ERR_PERMANENT, .code = "TLS_VERIFY",
     .in_message = {"certificate verify failed for localhost:",
		    "unable to get local issuer certificate (unknown CA; use --cafile1"},
     .in_detail = "--insecure1"},
    {.name = "tls_self_signed_certificate_fails_permanent",
     .host = "localhost", .mode = SRV_TLS_ECHO, .ctx = &g_srv_selfsigned, .cafile = g_cafile,
     .cls = FLEET_ERR_PERMANENT, .code = "TLS_VERIFY", .in_message = {"self-signed certificate"}},
    {.name = "tls_expired_certificate_fails_permanent",
     .host = "localhost", .mode = SRV_TLS_ECHO, .ctx = &g_srv_expired, .cafile = g_cafile,
     .cls = FLEET_ERR_PERMANENT, .code = "TLS_VERIFY", .in_message = {"certificate has expired"}},
    {.name = "tls_host_name_mismatch_names_the_certificate_names",
     .host = "127.0.0.1", .mode = SRV_TLS_ECHO, .ctx = &g_srv_ok, .cafile = g_cafile,
     .verify_host = "imap.example.org", .cls = FLEET_ERR_PERMANENT, .code = "TLS_VERIFY",
     .in_message = {"host name mismatch: certificate is for localhost, 127.0.0.1, not imap.example.org"},
     .no_sni_recorded = 1},
    {.name = "tls_ip_literal_not_in_san_is_a_mismatch",
     .host = "127.0.0.2", .mode = SRV_TLS_ECHO, .ctx = &g_srv_ok, .cafile = g_cafile,
     .cls = FLEET_ERR_PERMANENT, .code = "TLS_VERIFY",
     .in_message = {"host name mismatch: certificate is for localhost, 127.0.0.1, not 127.0.0.2"}},
    {.name = "tls_to_a_cleartext_port_is_a_permanent_protocol_error",
     .host = "localhost", .mode = SRV_GREET, .cafile = g_cafile, .cls = FLEET_ERR_PERMANENT,
     .code = "TLS_PROTOCOL", .in_detail = "STARTTLS"},
    {.name = "tls_server_below_1_2_is_refused_permanently",
     .host = "localhost", .mode = SRV_TLS_ECHO, .ctx = &g_srv_tls11, .cafile = g_cafile,
     .cls = FLEET_ERR_PERMANENT, .code = "TLS_PROTOCOL"},
    {.name = "tls_handshake_times_out_as_transient",
     .host = "localhost", .mode = SRV_SILENT, .cafile = g_cafile, .io_timeout_ms = 300,
     .cls = FLEET_ERR_TRANSIENT, .code = "TIMEOUT", .in_message = {"TLS handshake"}},
    {.name = "tls_closed_during_handshake_is_transient",
     .host = "localhost", .mode = SRV_CLOSE, .cafile = g_cafile, .cls = FLEET_ERR_TRANSIENT},
    {.name = "missing_cafile_is_a_permanent_error",
     .host = "localhost", .mode = SRV_TLS_ECHO, .ctx = &g_srv_ok, .cafile = "/nonexistent/imapfleet-ca.pem",
     .cls = FLEET_ERR_PERMANENT, .code = "CAFILE", .in_message = {"/nonexistent/imapfleet-ca.pem"}},
};

/* Runs one row of tls_refusals (the test's state). */
static void the_handshake_fails_as_the_row_says(void **state)
{
	const struct tls_refusal *r = *state;
	const char *bind_to = strcmp(r->host, "localhost") == 0 ? "127.0.0.1" : r->host;
	struct srv sv;
	struct io_endpoint ep;
	struct io_stream *s;
	struct fleet_err err;

	assert_int_equal(srv_start(&sv, bind_to, r->mode, r->ctx ? *r->ctx : NULL, 1), 0);
	ep = endpoint(r->host, sv.port, IO_TLS_IMPLICIT);
	ep.cafile = r->cafile;
	ep.verify_host = r->verify_host;
	if (r->io_timeout_ms)
		ep.io_timeout_ms = r->io_timeout_ms;
	assert_int_equal(io_stream_connect(&ep, &s, &err), -1);
	srv_stop(&sv);
	assert_null(s);
	assert_int_equal(err.cls, r->cls);
	if (r->code)
		assert_string_equal(err.code, r->code);
	for (size_t i = 0; i < 2; i++)
		if (r->in_message[i])
			assert_contains(err.message, r->in_message[i]);
	if (r->in_detail)
		assert_contains(err.detail, r->in_detail);
	if (r->no_sni_recorded)
		assert_string_equal(sv.sni, "");
}

static void tls_insecure_connects_warns_and_says_what_would_fail(void **state)
{
	struct srv sv;
	struct io_stream *s;
	struct fleet_err err;
	struct io_tls_info info;
	struct unit_log log;
	int rc;

	unit_log_capture(&log);
	rc = tls_connect(&sv, "localhost", SRV_TLS_ECHO, g_srv_selfsigned, NULL, NULL, 1, &s, &err);
	unit_log_end(&log);
	if (rc != 0)
		fail_msg("%s", err.message);
	assert_contains(log.text, "src:");
	unit_assert_insecure_warned(&log, sv.port, "would fail: self-signed certificate", s, &info);
	assert_string_equal(info.verify_result, "self-signed certificate");
	io_stream_close(&s);
	srv_stop(&sv);
}

static void tls_insecure_warns_on_every_connection(void **state)
{
	struct unit_log log;
	char *logbuf;
	int warnings = 0;

	unit_log_capture(&log);
	for (int i = 0; i < 2; i++) {
		struct srv sv;
		struct io_stream *s;
		struct fleet_err err;

		assert_int_equal(
		    tls_connect(&sv, "localhost", SRV_TLS_ECHO, g_srv_ok, g_cafile, NULL, 1, &s, &err), 0);
		io_stream_close(&s);
		srv_stop(&sv);
	}
	logbuf = unit_log_end(&log);
	for (const char *p = logbuf; (p = strstr(p, "verification is disabled")) != NULL; p++)
		warnings++;
	assert_int_equal(warnings, 2);
	assert_contains(logbuf, "the certificate would have passed");
	free(logbuf);
}

static void tls_wait_readable_sees_decrypted_pending_bytes(void **state)
{
	struct link l;
	char c, rest[32];

	link_to(&l, "localhost", SRV_TLS_BURST, g_srv_ok, IO_TLS_IMPLICIT, g_cafile);
	assert_int_equal(io_stream_read(l.s, &c, 1, &l.err), 1);
	assert_int_equal(c, 'l');
	/* The rest of the record is decrypted inside OpenSSL, not on the socket. */
	assert_int_equal(io_stream_wait_readable(l.s, 0, &l.err), 1);
	assert_int_equal(io_stream_read(l.s, rest, sizeof(rest), &l.err), 13);
	assert_int_equal(io_stream_wait_readable(l.s, 100, &l.err), 0);
	link_close(&l);
}

static void tls_read_returns_what_came_when_fewer_bytes_than_expected_arrive(void **state)
{
	struct link l;
	char buf[64];
	size_t got = 0;
	uint64_t t0, dt;

	link_to(&l, "localhost", SRV_TLS_LATE, g_srv_ok, IO_TLS_IMPLICIT, g_cafile);
	io_stream_expect(l.s, 1024 * 1024);
	t0 = fleet_now_ms();
	while (got < 14) {
		ssize_t n = io_stream_read(l.s, buf + got, sizeof(buf) - got, &l.err);

		assert_true(n > 0);
		got += (size_t)n;
	}
	dt = fleet_now_ms() - t0;
	assert_true(dt < 2000);
	assert_int_equal(got, 14);
	assert_memory_equal(buf, "line1\r\nline2\r\n", 14);
	link_close(&l);
}

static void tls_read_returns_zero_when_server_closes(void **state)
{
	a_closed_peer_ends_the_stream(&closed_tls_read);
}

static void tls_write_to_closed_peer_fails_without_sigpipe(void **state)
{
	a_closed_peer_ends_the_stream(&closed_tls_write);
}

static int starttls_dance(struct io_stream *s, struct fleet_err *err)
{
	char line[64];
	size_t n = 0;

	/* Byte by byte, like a client that must not read past the OK line. */
	for (int lines = 0; lines < 2;) {
		if (io_stream_read(s, line + n, 1, err) != 1)
			return -1;
		if (line[n++] == '\n') {
			line[n] = '\0';
			if (lines++ == 0 && io_stream_write(s, "a STARTTLS\r\n", 12, err) < 0)
				return -1;
			n = 0;
		}
	}
	return strcmp(line, "a OK go\r\n") == 0 ? 0 : -1;
}

static void starttls_upgrades_a_cleartext_stream_and_verifies(void **state)
{
	struct link l;
	struct io_tls_info info;
	char buf[16];

	link_to(&l, "localhost", SRV_STARTTLS, g_srv_ok, IO_TLS_STARTTLS, g_cafile);
	assert_false(io_stream_is_tls(l.s));
	assert_int_equal(starttls_dance(l.s, &l.err), 0);
	if (io_stream_start_tls(l.s, &l.err) != 0)
		fail_msg("%s", l.err.message);
	unit_assert_verified(l.s, &info);
	assert_int_equal(io_stream_write(l.s, "b", 1, &l.err), 0);
	assert_int_equal(io_stream_read(l.s, buf, sizeof(buf), &l.err), 1);
	assert_int_equal(io_stream_start_tls(l.s, &l.err), -1); /* twice is a bug */
	link_close(&l);
}

static void starttls_refuses_bytes_pipelined_after_the_ok(void **state)
{
	struct link l;

	link_to(&l, "localhost", SRV_STARTTLS_INJECT, g_srv_ok, IO_TLS_STARTTLS, g_cafile);
	assert_int_equal(starttls_dance(l.s, &l.err), 0);
	fleet_sleep_ms(50); /* let the injected line arrive */
	assert_int_equal(io_stream_start_tls(l.s, &l.err), -1);
	assert_int_equal(l.err.cls, FLEET_ERR_PERMANENT);
	assert_string_equal(l.err.code, "STARTTLS_INJECTION");
	assert_false(io_stream_is_tls(l.s));
	assert_int_equal(io_stream_read(l.s, &(char){0}, 1, &l.err), -1);
	link_close(&l);
}

static void starttls_verification_failure_is_permanent(void **state)
{
	struct link l;

	link_to(&l, "localhost", SRV_STARTTLS, g_srv_ok, IO_TLS_STARTTLS, NULL);
	assert_int_equal(starttls_dance(l.s, &l.err), 0);
	assert_int_equal(io_stream_start_tls(l.s, &l.err), -1);
	assert_string_equal(l.err.code, "TLS_VERIFY");
	assert_false(io_stream_is_tls(l.s)); /* and never a silent fallback: */
	assert_int_equal(io_stream_write(l.s, "a LOGIN u p\r\n", 13, &l.err), -1);
	assert_string_equal(l.err.code, "TLS_STATE");
	link_close(&l);
}

#define NTHREADS 8

struct tls_worker {
	uint16_t port;
	int ok;
};

static void *tls_worker_main(void *arg)
{
	struct tls_worker *w = arg;
	struct io_endpoint ep = endpoint("localhost", w->port, IO_TLS_IMPLICIT);
	struct io_stream *s;
	struct fleet_err err;
	char buf[64];
	size_t got = 0;

	ep.cafile = g_cafile;
	if (io_stream_connect(&ep, &s, &err) != 0)
		return NULL;
	for (int i = 0; i < 20; i++) {
		got = 0;
		if (io_stream_write(s, "0123456789", 10, &err) != 0)
			break;
		while (got < 10) {
			ssize_t n = io_stream_read(s, buf + got, sizeof(buf) - got, &err);

			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got != 10)
			break;
	}
	w->ok = got == 10 && io_stream_bytes_in(s) == 200;
	io_stream_close(&s);
	return NULL;
}

/* NTHREADS threads connect to port at the same moment, each echoing (tls_worker_main); every one
 * must succeed. */
static void tls_workers_at_once(uint16_t port)
{
	pthread_t th[NTHREADS];
	struct tls_worker w[NTHREADS];

	for (int i = 0; i < NTHREADS; i++) {
		w[i].port = port;
		w[i].ok = 0;
		pthread_create(&th[i], NULL, tls_worker_main, &w[i]);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(w[i].ok, 1);
}

/* The system CA file (SSL_CERT_FILE here) is read when a chain first needs an issuer that the
 * --cafile CAs do not hold, not when the context is made: a context made while the file was empty
 * verifies a chain whose CA was written to the file afterwards. */
static void tls_system_ca_file_is_read_when_a_chain_first_needs_it(void **state)
{
	const char *env = X509_get_default_cert_file_env();
	char *saved = getenv(env) ? strdup(getenv(env)) : NULL;
	char path[] = "/tmp/imapfleet-test-sysca-XXXXXX";
	int fd = mkstemp(path);
	struct srv sv;
	struct io_stream *s;
	struct fleet_err err;
	FILE *f;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(setenv(env, path, 1), 0);
	tls_ctx_cache_clear();
	/* the context (g_cafile_wrong: only the self-signed certificate) is made; nothing to look up */
	if (tls_connect(&sv, "localhost", SRV_TLS_ECHO, g_srv_selfsigned, g_cafile_wrong, NULL, 0, &s, &err) != 0)
		fail_msg("%s", err.message);
	io_stream_close(&s);
	srv_stop(&sv);
	/* the test CA goes into the system file only now */
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(PEM_write_X509(f, g_ca));
	fclose(f);
	if (tls_connect(&sv, "localhost", SRV_TLS_ECHO, g_srv_ok, g_cafile_wrong, NULL, 0, &s, &err) != 0)
		fail_msg("the system CA file was not read when needed: %s", err.message);
	io_stream_close(&s);
	srv_stop(&sv);
	unlink(path);
	if (saved)
		setenv(env, saved, 1);
	else
		unsetenv(env);
	free(saved);
	tls_ctx_cache_clear();
}

static void tls_many_threads_share_one_context(void **state)
{
	struct srv sv;

	tls_ctx_cache_clear(); /* the threads race to create it */
	assert_int_equal(srv_start(&sv, "127.0.0.1", SRV_TLS_ECHO, g_srv_ok, NTHREADS), 0);
	tls_workers_at_once(sv.port);
	srv_stop(&sv);
	assert_int_equal(sv.handshakes, NTHREADS);
}

/* Connects to sv as host, trusting cafile, sends a line, reads its echo (which also takes in a TLS
 * 1.3 server's session tickets), and returns the connection's TLS info. */
static void echo_with(struct srv *sv, const char *host, const char *cafile, struct io_tls_info *info)
{
	struct io_endpoint ep = endpoint(host, sv->port, IO_TLS_IMPLICIT);
	struct io_stream *s;
	struct fleet_err err;
	char buf[16];

	ep.cafile = cafile;
	if (io_stream_connect(&ep, &s, &err) != 0)
		fail_msg("%s", err.message);
	assert_int_equal(io_stream_tls_info(s, info), 0);
	assert_int_equal(io_stream_write(s, "a NOOP\r\n", 8, &err), 0);
	assert_true(io_stream_read(s, buf, sizeof(buf), &err) > 0);
	io_stream_close(&s);
}

/* The same as localhost with the test CA. */
static void echo_once(struct srv *sv, struct io_tls_info *info)
{
	echo_with(sv, "localhost", g_cafile, info);
}

/* The second connection to a server resumes the first one's session (TLS 1.3 tickets and TLS 1.2
 * alike) and is still reported verified: the session's certificate is checked again. */
static void tls_session_is_resumed_on_the_next_connection_to_the_server(void **state)
{
	SSL_CTX *ctx[2] = {g_srv_ok, g_srv_ok12};

	for (int v = 0; v < 2; v++) {
		struct srv sv;
		struct io_tls_info info;

		tls_session_cache_clear();
		assert_int_equal(srv_start(&sv, "127.0.0.1", SRV_TLS_ECHO, ctx[v], 3), 0);
		echo_once(&sv, &info);
		assert_int_equal(info.resumed, 0);
		assert_int_equal(info.verified, 1);
		assert_string_equal(info.version, v == 0 ? "TLSv1.3" : "TLSv1.2");
		assert_true(tls_session_cache_count() >= 1);
		echo_once(&sv, &info);
		assert_int_equal(info.resumed, 1);
		assert_int_equal(info.verified, 1);
		assert_string_equal(info.verify_result, "ok");
		assert_contains(info.subject, "CN=localhost");
		echo_once(&sv, &info);
		assert_int_equal(info.resumed, 1);
		srv_stop(&sv);
	}
	tls_session_cache_clear();
}

/* A session cached for host:port is offered to whatever answers there next; a server with a wrong
 * certificate (it cannot resume: it does not hold the session's secret) is verified in full and
 * refused, exactly as without a cached session. */
static void tls_wrong_certificate_fails_even_with_a_cached_session(void **state)
{
	struct srv sv;
	struct io_tls_info info;
	struct io_endpoint ep;
	struct io_stream *s;
	struct fleet_err err;

	tls_session_cache_clear();
	assert_int_equal(srv_start(&sv, "127.0.0.1", SRV_TLS_ECHO, g_srv_ok, 3), 0);
	echo_once(&sv, &info);
	assert_true(tls_session_cache_count() >= 1);
	/* the same address now answers with a self-signed certificate, then an expired one */
	for (int k = 0; k < 2; k++) {
		sv.ctx = k == 0 ? g_srv_selfsigned : g_srv_expired;
		ep = endpoint("localhost", sv.port, IO_TLS_IMPLICIT);
		ep.cafile = g_cafile;
		assert_int_equal(io_stream_connect(&ep, &s, &err), -1);
		assert_null(s);
		assert_int_equal(err.cls, FLEET_ERR_PERMANENT);
		assert_string_equal(err.code, "TLS_VERIFY");
		assert_contains(err.message, k == 0 ? "self-signed certificate" : "certificate has expired");
	}
	srv_stop(&sv);
	tls_session_cache_clear();
}

/* Connections with verification off neither store a session nor use one. */
static void tls_insecure_connections_keep_no_session(void **state)
{
	struct srv sv;
	struct io_stream *s;
	struct fleet_err err;
	char buf[16];

	tls_session_cache_clear();
	for (int i = 0; i < 2; i++) {
		struct io_endpoint ep;
		struct io_tls_info info;

		if (i == 0)
			assert_int_equal(srv_start(&sv, "127.0.0.1", SRV_TLS_ECHO, g_srv_ok, 2), 0);
		ep = endpoint("localhost", sv.port, IO_TLS_IMPLICIT);
		ep.insecure = 1;
		if (io_stream_connect(&ep, &s, &err) != 0)
			fail_msg("%s", err.message);
		assert_int_equal(io_stream_write(s, "a NOOP\r\n", 8, &err), 0);
		assert_true(io_stream_read(s, buf, sizeof(buf), &err) > 0);
		assert_int_equal(io_stream_tls_info(s, &info), 0);
		assert_int_equal(info.resumed, 0);
		io_stream_close(&s);
	}
	srv_stop(&sv);
	assert_int_equal(tls_session_cache_count(), 0);
}

/* Connections that log in together each take a session of their own from the server's pool: a
 * server whose TLS 1.3 tickets are single-use (stateful, OpenSSL's SSL_OP_NO_TICKET) resumes all
 * of them. With one session shared by all, only the first would resume. */
static void tls_connections_that_start_together_each_resume_a_session_of_their_own(void **state)
{
	struct srv sv;
	struct io_tls_info info;
	struct tls_session_stats st;

	tls_session_cache_clear();
	assert_int_equal(srv_start(&sv, "127.0.0.1", SRV_TLS_ECHO, g_srv_single, NTHREADS + 2), 0);
	echo_once(&sv, &info); /* a full handshake; the server sends NTHREADS tickets */
	assert_int_equal(info.resumed, 0);
	assert_int_equal(tls_session_cache_count(), NTHREADS);
	tls_workers_at_once(sv.port);
	assert_int_equal(sv.resumed, NTHREADS);
	tls_session_stats(&st);
	assert_int_equal(st.handshakes, NTHREADS + 1);
	assert_int_equal(st.offered, NTHREADS);
	assert_int_equal(st.resumed, NTHREADS);
	/* the resumed connections brought tickets of their own: the next one resumes too */
	echo_once(&sv, &info);
	assert_int_equal(info.resumed, 1);
	assert_int_equal(info.verified, 1);
	srv_stop(&sv);
	tls_session_cache_clear();
}

/* A session is offered only on a connection to the same host:port, verifying the same name with the
 * same CA setting: never to a second server (here one that would resume it: it shares the first
 * one's ticket keys), never under another name, never with another cafile, never when verification
 * is off; a CA that does not trust the server fails as it would without any session. */
static void tls_a_session_is_offered_only_to_its_server_name_and_ca(void **state)
{
	struct srv a, b;
	struct io_tls_info info;
	struct io_endpoint ep;
	struct io_stream *s;
	struct fleet_err err;

	tls_session_cache_clear();
	assert_int_equal(srv_start(&a, "127.0.0.1", SRV_TLS_ECHO, g_srv_ok, 6), 0);
	assert_int_equal(srv_start(&b, "127.0.0.1", SRV_TLS_ECHO, g_srv_ok, 1), 0);
	echo_once(&a, &info);
	assert_true(tls_session_cache_count() >= 1);
	echo_once(&b, &info); /* another server (port) */
	assert_int_equal(info.resumed, 0);
	assert_int_equal(info.verified, 1);
	echo_with(&a, "localhost", g_cafile2, &info); /* another cafile (the same CA, copied) */
	assert_int_equal(info.resumed, 0);
	echo_with(&a, "127.0.0.1", g_cafile, &info); /* another name verified */
	assert_int_equal(info.resumed, 0);
	ep = endpoint("localhost", a.port, IO_TLS_IMPLICIT); /* a CA that does not trust the server */
	ep.cafile = g_cafile_wrong;
	assert_int_equal(io_stream_connect(&ep, &s, &err), -1);
	assert_string_equal(err.code, "TLS_VERIFY");
	assert_int_equal(a.psk_offered, 0);
	assert_int_equal(b.psk_offered, 0);
	echo_once(&a, &info); /* the same settings again: offered and resumed */
	assert_int_equal(info.resumed, 1);
	assert_int_equal(info.verified, 1);
	srv_stop(&a);
	srv_stop(&b);
	assert_int_equal(a.psk_offered, 1);
	assert_int_equal(a.resumed, 1);
	assert_int_equal(b.psk_offered, 0);
	tls_session_cache_clear();
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	EVP_PKEY *other;
	FILE *f;
	int fd;

	g_ca_key = EVP_EC_gen("P-256");
	g_leaf_key = EVP_EC_gen("P-256");
	other = EVP_EC_gen("P-256");
	if (!g_ca_key || !g_leaf_key || !other)
		return -1;
	g_ca = make_cert(g_ca_key, "imapfleet test CA", NULL, NULL, NULL, 1, -3600, 86400);
	g_leaf =
	    make_cert(g_leaf_key, "localhost", "DNS:localhost,IP:127.0.0.1", g_ca, g_ca_key, 0, -3600, 86400);
	g_expired = make_cert(g_leaf_key, "localhost", "DNS:localhost,IP:127.0.0.1", g_ca, g_ca_key, 0,
			      -2 * 86400, -86400);
	g_selfsigned =
	    make_cert(other, "localhost", "DNS:localhost,IP:127.0.0.1", NULL, NULL, 0, -3600, 86400);
	g_srv_ok = server_ctx(g_leaf, g_leaf_key);
	g_srv_ok12 = server_ctx(g_leaf, g_leaf_key);
	SSL_CTX_set_max_proto_version(g_srv_ok12, TLS1_2_VERSION);
	g_srv_expired = server_ctx(g_expired, g_leaf_key);
	g_srv_selfsigned = server_ctx(g_selfsigned, other);
	g_srv_tls11 = server_ctx(g_leaf, g_leaf_key);
	SSL_CTX_set_security_level(g_srv_tls11, 0);
	SSL_CTX_set_min_proto_version(g_srv_tls11, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(g_srv_tls11, TLS1_1_VERSION);
	SSL_CTX_set_cipher_list(g_srv_tls11, "DEFAULT:@SECLEVEL=0");

	g_srv_single = server_ctx(g_leaf, g_leaf_key);
	/* stateful TLS 1.3 tickets with OpenSSL's anti-replay (on when the server allows early data):
	 * each ticket resumes once */
	SSL_CTX_set_options(g_srv_single, SSL_OP_NO_TICKET);
	SSL_CTX_set_max_early_data(g_srv_single, 16384);
	SSL_CTX_set_num_tickets(g_srv_single, 8);
	EVP_PKEY_free(other);

	/* the test CA, the same CA in a second file, and a file trusting only the self-signed leaf */
	for (int i = 0; i < 3; i++) {
		char *path = i == 0 ? g_cafile : i == 1 ? g_cafile2 : g_cafile_wrong;

		snprintf(path, sizeof(g_cafile), "/tmp/imapfleet-test-ca-XXXXXX");
		fd = mkstemp(path);
		if (fd < 0)
			return -1;
		f = fdopen(fd, "w");
		if (!f || !PEM_write_X509(f, i == 2 ? g_selfsigned : g_ca))
			return -1;
		fclose(f);
	}
	return 0;
}

static int group_teardown(void **state)
{
	unlink(g_cafile);
	unlink(g_cafile2);
	unlink(g_cafile_wrong);
	SSL_CTX_free(g_srv_single);
	SSL_CTX_free(g_srv_ok);
	SSL_CTX_free(g_srv_ok12);
	SSL_CTX_free(g_srv_expired);
	SSL_CTX_free(g_srv_selfsigned);
	SSL_CTX_free(g_srv_tls11);
	X509_free(g_ca);
	X509_free(g_leaf);
	X509_free(g_expired);
	X509_free(g_selfsigned);
	EVP_PKEY_free(g_ca_key);
	EVP_PKEY_free(g_leaf_key);
	return unit_tls_group_teardown(state);
}

int main(void)
{
	static const struct CMUnitTest others[] = {
	    cmocka_unit_test(connect_refused_is_transient_econnrefused_naming_host_port),
	    cmocka_unit_test(empty_host_is_permanent),
	    cmocka_unit_test(unknown_host_name_is_permanent),
	    cmocka_unit_test(write_read_round_trip_counts_bytes),
	    cmocka_unit_test(connect_tries_every_address_of_a_name),
	    cmocka_unit_test(connect_over_ipv6_loopback_round_trips),
	    cmocka_unit_test(error_names_ipv6_literal_in_brackets),
	    cmocka_unit_test(read_times_out_within_io_timeout_as_transient_timeout),
	    cmocka_unit_test(read_returns_what_came_when_fewer_bytes_than_expected_arrive),
	    cmocka_unit_test(wait_readable_reports_data_only_when_it_arrives),
	    cmocka_unit_test(read_returns_zero_on_orderly_close),
	    cmocka_unit_test(write_to_closed_peer_fails_transient_without_sigpipe),
	    cmocka_unit_test(default_port_is_993_for_implicit_and_143_otherwise),
	    cmocka_unit_test(tls_verified_with_cafile_reports_info),
	    cmocka_unit_test(tls_ip_literal_verifies_against_ip_san_and_sends_no_sni),
	    cmocka_unit_test(tls_insecure_connects_warns_and_says_what_would_fail),
	    cmocka_unit_test(tls_insecure_warns_on_every_connection),
	    cmocka_unit_test(tls_wait_readable_sees_decrypted_pending_bytes),
	    cmocka_unit_test(tls_read_returns_what_came_when_fewer_bytes_than_expected_arrive),
	    cmocka_unit_test(tls_read_returns_zero_when_server_closes),
	    cmocka_unit_test(tls_write_to_closed_peer_fails_without_sigpipe),
	    cmocka_unit_test(starttls_upgrades_a_cleartext_stream_and_verifies),
	    cmocka_unit_test(starttls_refuses_bytes_pipelined_after_the_ok),
	    cmocka_unit_test(starttls_verification_failure_is_permanent),
	    cmocka_unit_test(tls_many_threads_share_one_context),
	    cmocka_unit_test(tls_system_ca_file_is_read_when_a_chain_first_needs_it),
	    cmocka_unit_test(tls_session_is_resumed_on_the_next_connection_to_the_server),
	    cmocka_unit_test(tls_wrong_certificate_fails_even_with_a_cached_session),
	    cmocka_unit_test(tls_insecure_connections_keep_no_session),
	    cmocka_unit_test(tls_connections_that_start_together_each_resume_a_session_of_their_own),
	    cmocka_unit_test(tls_a_session_is_offered_only_to_its_server_name_and_ca),
	};

	/* each row of tls_refusals is a test of its own, by its name */
	return unit_run_rows("io_stream", others, tls_refusals, the_handshake_fails_as_the_row_says, NULL, group_setup,
			     group_teardown);
}
