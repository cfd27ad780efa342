/* io/tls.c: TLS for io_stream with OpenSSL (design section 7).
 *
 * - One SSL_CTX per (cafile, insecure), built once under a mutex, kept for the process lifetime.
 *   TLS 1.2 at least, system CA store plus the optional cafile, SSL_VERIFY_PEER.
 * - Host names are verified with SSL_set1_host and sent as SNI; IP literals are verified against
 *   IP SANs (X509_VERIFY_PARAM_set1_ip_asc) and never sent as SNI (RFC 6066 forbids it).
 * - After the handshake the verify result is checked explicitly.
 * - insecure: SSL_VERIFY_NONE, but the chain and name are still verified (the result is ignored)
 *   so the warning and io_stream_tls_info can say what verification would have said.
 * - The SSL object talks to the socket through a small BIO that uses send(MSG_NOSIGNAL) and
 *   recv(), so a peer that vanished never raises SIGPIPE, and the non-blocking socket lets every
 *   wait be a poll() with the endpoint's timeout.
 */
#include "io/tls.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/util.h"


/* ---- the socket BIO ---------------------------------------------------------------------------- */

static BIO_METHOD *g_bio_method;
static int g_ssl_idx = -1;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int bio_fd(BIO *b)
{
	const struct io_stream *s = BIO_get_data(b);

	return s ? s->fd : -1;
}

static int bio_sock_write(BIO *b, const char *data, int len)
{
	const struct io_stream *s = BIO_get_data(b);
	/* Records that more of the same write follows are corked: one TCP push per write, not
	 * per 16 KB record, which halves the per-packet cost on both ends. */
	int flags = MSG_NOSIGNAL | (s && s->tls_more ? MSG_MORE : 0);
	ssize_t n;

	BIO_clear_retry_flags(b);
	do
		n = send(bio_fd(b), data, (size_t)len, flags);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_write(b);
	return (int)n;
}

/* Ciphertext comes from the socket in large pieces into the stream's own buffer, and OpenSSL takes
 * each record from there (a 5-byte header, then the rest). OpenSSL's read-ahead would do the same,
 * but OpenSSL 3.0 realigns its buffer before every record: it moves everything still buffered to the
 * front, several times the data in copies (a quarter of the read side's CPU with 4 KB records). */
static size_t rx_avail(const struct io_stream *s)
{
	return s->rx_len - s->rx_pos;
}

static int bio_sock_read(BIO *b, char *data, int len)
{
	struct io_stream *s = BIO_get_data(b);
	ssize_t n;
	size_t take;

	BIO_clear_retry_flags(b);
	if (!s || len <= 0)
		return 0;
	if (!rx_avail(s)) {
		if (s->tls_buffered_only) {
			BIO_set_retry_read(b); /* as if the socket were empty: see tls_read_buffered */
			return -1;
		}
		if (!s->rx)
			s->rx = xmalloc(TLS_READ_AHEAD);
		s->rx_pos = s->rx_len = 0;
		do
			n = recv(s->fd, s->rx, TLS_READ_AHEAD, 0);
		while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			BIO_set_retry_read(b);
		if (n <= 0)
			return (int)n;
		s->rx_len = (size_t)n;
	}
	take = rx_avail(s) < (size_t)len ? rx_avail(s) : (size_t)len;
	memcpy(data, s->rx + s->rx_pos, take);
	s->rx_pos += take;
	return (int)take;
}

static long bio_sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	switch (cmd) {
	case BIO_CTRL_FLUSH:
	case BIO_CTRL_DUP: return 1;
	case BIO_CTRL_PENDING: {
		const struct io_stream *s = BIO_get_data(b);

		return s ? (long)rx_avail(s) : 0;
	}
	case BIO_C_GET_FD:
		if (ptr)
			*(int *)ptr = bio_fd(b);
		return bio_fd(b);
	default: return 0;
	}
}

static int bio_sock_create(BIO *b)
{
	BIO_set_data(b, NULL);
	BIO_set_init(b, 0);
	return 1;
}

static int bio_sock_destroy(BIO *b)
{
	return 1; /* the stream owns and closes the fd */
}

/* ---- the system CA file, read when first needed -------------------------------------------------
 *
 * SSL_CTX_set_default_verify_paths parses the whole system bundle (Debian: about 150 certificates)
 * when the context is made: 25 ms of CPU, more than all the other work of a run that finds nothing
 * to copy. The bundle is only needed when a chain's issuer is not among the CAs already in the
 * store (those of --cafile), so it is read by a lookup method of its own, at the first lookup that
 * reaches it: the same file (SSL_CERT_FILE, else OpenSSL's default), into the same store, first
 * in the order, as the eager load would have put it. The hashed directory and the default URI
 * lookups follow as in X509_STORE_set_default_paths; they were lazy already. */

struct lazy_file {
	pthread_mutex_t lock;
	int loaded;
};

static X509_LOOKUP_METHOD *g_lazy_file_method;

static int lazy_file_new(X509_LOOKUP *lu)
{
	struct lazy_file *lf = xcalloc(1, sizeof(*lf));

	pthread_mutex_init(&lf->lock, NULL);
	return X509_LOOKUP_set_method_data(lu, lf);
}

static void lazy_file_free(X509_LOOKUP *lu)
{
	struct lazy_file *lf = X509_LOOKUP_get_method_data(lu);

	if (lf) {
		pthread_mutex_destroy(&lf->lock);
		xfree(&lf);
	}
}

static int lazy_file_by_subject(X509_LOOKUP *lu, X509_LOOKUP_TYPE type, const X509_NAME *name, X509_OBJECT *ret)
{
	struct lazy_file *lf = X509_LOOKUP_get_method_data(lu);
	X509_STORE *st = X509_LOOKUP_get_store(lu);
	X509_OBJECT *o;
	int ok = 0;

	if (!lf || !st || (type != X509_LU_X509 && type != X509_LU_CRL))
		return 0;
	pthread_mutex_lock(&lf->lock);
	if (!lf->loaded) {
		const char *file = getenv(X509_get_default_cert_file_env());

		lf->loaded = 1;
		if (X509_load_cert_crl_file(lu, file ? file : X509_get_default_cert_file(), X509_FILETYPE_PEM) <= 0)
			log_debug("tls: could not load the system CA file");
		ERR_clear_error();
	}
	pthread_mutex_unlock(&lf->lock);
	if (!X509_STORE_lock(st))
		return 0;
	/* RET borrows the store's reference, as OpenSSL's own lookups hand it over (by_dir copies the
	 * pointer): the caller takes a reference of its own and never frees RET, so the one set1 takes
	 * is given back, or the certificate would outlive its store (LeakSanitizer, test_stream). */
	o = X509_OBJECT_retrieve_by_subject(X509_STORE_get0_objects(st), type, (X509_NAME *)name);
	if (o && type == X509_LU_X509) {
		ok = X509_OBJECT_set1_X509(ret, X509_OBJECT_get0_X509(o));
		if (ok)
			X509_free(X509_OBJECT_get0_X509(o));
	} else if (o) {
		ok = X509_OBJECT_set1_X509_CRL(ret, X509_OBJECT_get0_X509_CRL(o));
		if (ok)
			X509_CRL_free(X509_OBJECT_get0_X509_CRL(o));
	}
	X509_STORE_unlock(st);
	return ok;
}

/* X509_STORE_set_default_paths with the file read lazily; 0 when a lookup could not be added. */
static int store_default_paths(SSL_CTX *ctx)
{
	X509_STORE *st = SSL_CTX_get_cert_store(ctx);
	X509_LOOKUP *lu;

	if (!g_lazy_file_method || !X509_STORE_add_lookup(st, g_lazy_file_method))
		return 0;
	/* as OpenSSL does: a default that is not there is no error */
	lu = X509_STORE_add_lookup(st, X509_LOOKUP_hash_dir());
	if (!lu)
		return 0;
	(void)X509_LOOKUP_add_dir(lu, NULL, X509_FILETYPE_DEFAULT);
	lu = X509_STORE_add_lookup(st, X509_LOOKUP_store());
	if (!lu)
		return 0;
	(void)X509_LOOKUP_add_store(lu, NULL);
	ERR_clear_error();
	return 1;
}

static void tls_once(void)
{
	g_bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
				    "imapfleet socket");
	if (!g_bio_method || !BIO_meth_set_write(g_bio_method, bio_sock_write) ||
	    !BIO_meth_set_read(g_bio_method, bio_sock_read) ||
	    !BIO_meth_set_ctrl(g_bio_method, bio_sock_ctrl) ||
	    !BIO_meth_set_create(g_bio_method, bio_sock_create) ||
	    !BIO_meth_set_destroy(g_bio_method, bio_sock_destroy)) {
		fprintf(stderr, "imapfleet: out of memory setting up OpenSSL\n");
		abort();
	}
	g_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	g_lazy_file_method = X509_LOOKUP_meth_new("imapfleet system CA file, read when first needed");
	if (!g_lazy_file_method || !X509_LOOKUP_meth_set_new_item(g_lazy_file_method, lazy_file_new) ||
	    !X509_LOOKUP_meth_set_free(g_lazy_file_method, lazy_file_free) ||
	    !X509_LOOKUP_meth_set_get_by_subject(g_lazy_file_method, lazy_file_by_subject)) {
		fprintf(stderr, "imapfleet: out of memory setting up OpenSSL\n");
		abort();
	}
}

/* ---- SSL_CTX cache ------------------------------------------------------------------------------ */

struct ctx_entry {
	struct ctx_entry *next;
	char *cafile; /* NULL = system store only */
	int insecure;
	SSL_CTX *ctx;
};

static pthread_mutex_t g_ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ctx_entry *g_ctxs;

static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct io_stream *s = ssl ? SSL_get_ex_data(ssl, g_ssl_idx) : NULL;
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);

	/* Keep the server's certificate: after a failed verification OpenSSL does not, and the
	 * message "certificate is for localhost, not 127.0.0.2" needs its names. */
	if (s && !s->leaf && leaf && X509_up_ref(leaf))
		s->leaf = leaf;
	return ok;
}

static const char *openssl_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_last_error();
	const char *r;

	if (!e)
		return "unknown error";
	r = ERR_reason_error_string(e);
	if (r)
		return r;
	ERR_error_string_n(e, buf, cap);
	return buf;
}

/* ---- TLS session pool (resumption across the connections to one server) --------------------------
 *
 * Sessions are pooled per server: the key is (host:port, verified name, which is also the SNI,
 * cafile, verification on), so a session is never offered to another server, under another name
 * or with another CA setting. Every session OpenSSL hands over from a verified connection goes
 * into its server's pool (a TLS 1.3 server sends one or more tickets after each handshake, a
 * TLS 1.2 server one session with it), and every new connection takes one out and offers it. A
 * TLS 1.3 ticket is offered once (RFC 8446 C.4; servers with single-use tickets refuse the second
 * offer), so connections that log in together each get a ticket of their own; a TLS 1.2 session
 * stays in the pool for the next connection (it can be resumed any number of times, and a resumed
 * TLS 1.2 handshake brings no new one). Bounded: TLS_POOL_PER_SERVER sessions per server (the
 * oldest goes), TLS_POOL_SERVERS_MAX servers (the least recently used goes), and a session is
 * dropped once older than TLS_SESSION_LIFETIME_S or past the lifetime the server gave it.
 *
 * Verification is not skipped: a server that cannot resume (an impostor never holds the session's
 * secret) makes a full handshake that is verified as always, and a resumed connection has its
 * certificate (kept in the session) verified again, chain and name, against the current CA store
 * and time (tls_reverify_resumed); a failure there empties the server's pool. Connections with
 * verification off (insecure) neither store nor offer sessions. */

struct sess_pool {
	struct sess_pool *next; /* most recently used first */
	char *key;
	size_t n;
	SSL_SESSION *sess[TLS_POOL_PER_SERVER]; /* oldest first */
	uint64_t added_ms[TLS_POOL_PER_SERVER];
};

static pthread_mutex_t g_sess_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sess_pool *g_pools;
static size_t g_npools;
static struct tls_session_stats g_sess_stats;

static const char *verify_name(const struct io_stream *s);

static void sess_key(const struct io_stream *s, char *out, size_t cap)
{
	snprintf(out, cap, "%s\n%s\n%s\n%d", s->where, verify_name(s), s->ep.cafile ? s->ep.cafile : "",
		 s->ep.insecure ? 0 : 1);
}

static void pool_drop(struct sess_pool *p, size_t i)
{
	SSL_SESSION_free(p->sess[i]);
	memmove(&p->sess[i], &p->sess[i + 1], (p->n - i - 1) * sizeof(p->sess[0]));
	memmove(&p->added_ms[i], &p->added_ms[i + 1], (p->n - i - 1) * sizeof(p->added_ms[0]));
	p->n--;
}

static void pool_free(struct sess_pool **p)
{
	while ((*p)->n)
		pool_drop(*p, (*p)->n - 1);
	xfree(&(*p)->key);
	xfree(p);
}

/* Drops the sessions of p that are too old to offer: past TLS_SESSION_LIFETIME_S in the pool, past
 * the server's lifetime for them, or no longer resumable. */
static void pool_expire(struct sess_pool *p, uint64_t now_ms)
{
	time_t now = time(NULL);

	for (size_t i = p->n; i-- > 0;) {
		SSL_SESSION *x = p->sess[i];

		if (now_ms - p->added_ms[i] > (uint64_t)TLS_SESSION_LIFETIME_S * 1000 ||
		    (time_t)(SSL_SESSION_get_time(x) + SSL_SESSION_get_timeout(x)) <= now ||
		    !SSL_SESSION_is_resumable(x))
			pool_drop(p, i);
	}
}

/* The pool for key, moved to the front; with create, a new empty one when there is none (the least
 * recently used goes when TLS_POOL_SERVERS_MAX are kept). Call with g_sess_lock held. */
static struct sess_pool *pool_find(const char *key, int create)
{
	struct sess_pool **pp, *p;

	for (pp = &g_pools; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->key, key) == 0)
			break;
	p = *pp;
	if (p) {
		*pp = p->next;
	} else {
		if (!create)
			return NULL;
		p = xcalloc(1, sizeof(*p));
		p->key = xstrdup(key);
		g_npools++;
	}
	p->next = g_pools;
	g_pools = p;
	if (g_npools > TLS_POOL_SERVERS_MAX) {
		struct sess_pool **last = &g_pools;

		while ((*last)->next)
			last = &(*last)->next;
		pool_free(last);
		g_npools--;
	}
	return p;
}

/* A session for s to offer, with a reference for the caller, or NULL. A TLS 1.3 session leaves the
 * pool (offered once); a TLS 1.2 one stays. The newest is taken. */
static SSL_SESSION *sess_take(const struct io_stream *s)
{
	char key[1024];
	SSL_SESSION *sess = NULL;
	struct sess_pool *p;

	sess_key(s, key, sizeof(key));
	pthread_mutex_lock(&g_sess_lock);
	p = pool_find(key, 0);
	if (p)
		pool_expire(p, fleet_now_ms());
	if (p && p->n) {
		sess = p->sess[p->n - 1];
		if (SSL_SESSION_get_protocol_version(sess) >= TLS1_3_VERSION) {
			p->n--; /* the pool's reference goes to the caller */
		} else if (!SSL_SESSION_up_ref(sess)) {
			sess = NULL;
		}
	}
	if (sess)
		g_sess_stats.offered++;
	pthread_mutex_unlock(&g_sess_lock);
	return sess;
}

/* Adds sess to s's pool (takes the caller's reference); the oldest goes when the pool is full. */
static void sess_put(const struct io_stream *s, SSL_SESSION *sess)
{
	char key[1024];
	struct sess_pool *p;

	sess_key(s, key, sizeof(key));
	pthread_mutex_lock(&g_sess_lock);
	p = pool_find(key, 1);
	pool_expire(p, fleet_now_ms());
	if (p->n == TLS_POOL_PER_SERVER)
		pool_drop(p, 0);
	p->sess[p->n] = sess;
	p->added_ms[p->n] = fleet_now_ms();
	p->n++;
	g_sess_stats.stored++;
	pthread_mutex_unlock(&g_sess_lock);
}

/* Forgets every session kept for s's server. */
static void sess_forget(const struct io_stream *s)
{
	char key[1024];
	struct sess_pool *p;

	sess_key(s, key, sizeof(key));
	pthread_mutex_lock(&g_sess_lock);
	p = pool_find(key, 0);
	while (p && p->n)
		pool_drop(p, p->n - 1);
	pthread_mutex_unlock(&g_sess_lock);
}

/* Counts a finished handshake (resumed or full) for tls_session_stats. */
static void sess_count(int resumed)
{
	pthread_mutex_lock(&g_sess_lock);
	g_sess_stats.handshakes++;
	if (resumed)
		g_sess_stats.resumed++;
	pthread_mutex_unlock(&g_sess_lock);
}

/* OpenSSL hands over a new session (after the handshake with TLS 1.2, with each NewSessionTicket
 * after it with TLS 1.3): kept only from a connection whose certificate verified. Returns 1 when
 * the reference was taken. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct io_stream *s = SSL_get_ex_data(ssl, g_ssl_idx);

	if (!s || s->ep.insecure || SSL_get_verify_result(ssl) != X509_V_OK || !SSL_SESSION_is_resumable(sess))
		return 0;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	if (!SSL_get0_peer_certificate(ssl))
		return 0;
#endif
	sess_put(s, sess);
	return 1;
}

size_t tls_session_cache_count(void)
{
	size_t n = 0;

	pthread_mutex_lock(&g_sess_lock);
	for (const struct sess_pool *p = g_pools; p; p = p->next)
		n += p->n;
	pthread_mutex_unlock(&g_sess_lock);
	return n;
}

void tls_session_stats(struct tls_session_stats *out)
{
	pthread_mutex_lock(&g_sess_lock);
	*out = g_sess_stats;
	pthread_mutex_unlock(&g_sess_lock);
}

void tls_session_cache_clear(void)
{
	pthread_mutex_lock(&g_sess_lock);
	while (g_pools) {
		struct sess_pool *p = g_pools;

		g_pools = p->next;
		pool_free(&p);
	}
	g_npools = 0;
	memset(&g_sess_stats, 0, sizeof(g_sess_stats));
	pthread_mutex_unlock(&g_sess_lock);
}

/* The peer's certificate, borrowed (valid while ssl is), or NULL. */
static X509 *peer_cert(const SSL *ssl)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	return SSL_get0_peer_certificate(ssl);
#else
	X509 *peer = SSL_get_peer_certificate(ssl);

	X509_free(peer); /* the session keeps its own reference */
	return peer;
#endif
}

/* A resumed handshake carries no certificate: verify the one the session holds again, chain and
 * host name, against the context's store now. Returns X509_V_OK or the reason. */
static long tls_reverify_resumed(struct io_stream *s)
{
	X509_STORE_CTX *xs = X509_STORE_CTX_new();
	X509 *peer;
	long vr = X509_V_ERR_UNSPECIFIED;

	peer = peer_cert(s->ssl);
	if (peer && !s->leaf && X509_up_ref(peer))
		s->leaf = peer; /* for the names in a failure message */
	if (xs && peer &&
	    X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(SSL_get_SSL_CTX(s->ssl)), peer,
				SSL_get_peer_cert_chain(s->ssl)) &&
	    X509_STORE_CTX_set_default(xs, "ssl_server") &&
	    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(xs), SSL_get0_param(s->ssl)))
		vr = X509_verify_cert(xs) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(xs);
	if (vr == X509_V_OK && SSL_get_verify_result(s->ssl) != X509_V_OK)
		vr = SSL_get_verify_result(s->ssl);
	X509_STORE_CTX_free(xs);
	ERR_clear_error();
	return vr;
}

static SSL_CTX *ctx_build(const char *cafile, int insecure, const struct io_stream *s, struct fleet_err *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char why[256];
	uint64_t opts = SSL_OP_NO_COMPRESSION;

	if (!ctx) {
		fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, IO_ERR_TLS,
			      "could not create a TLS context: %s", openssl_reason(why, sizeof(why)));
		return NULL;
	}
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* A server that closes without close_notify reads as end of stream, as in cleartext. IMAP
	 * frames its data (tagged responses, counted literals), so truncation is still detected. */
	opts |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
	SSL_CTX_set_options(ctx, opts);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* No OpenSSL read-ahead: the socket BIO reads several records per recv() itself (bio_sock_read;
	 * servers send small records, Dovecot 4 KB, and two system calls per record were a fifth of the
	 * client's CPU). tls_wait_readable peeks, so data buffered ahead is never mistaken for an idle
	 * socket. */
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		SSL_CTX_free(ctx);
		fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, IO_ERR_TLS, "could not require TLS 1.2");
		return NULL;
	}
	if (!store_default_paths(ctx))
		log_debug("tls: could not set up the system CA store: %s", openssl_reason(why, sizeof(why)));
	ERR_clear_error();
	if (cafile) {
		FILE *f = fopen(cafile, "r");

		if (!f) {
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, TLS_ERR_CAFILE,
				      "cannot load CA file %s: %s", cafile, strerror(errno));
			fleet_err_detail(err,
					 "the CA file must be readable and hold PEM certificates (%s side)",
					 s->label ? s->label : "server");
			SSL_CTX_free(ctx);
			return NULL;
		}
		fclose(f);
	}
	if (cafile && !SSL_CTX_load_verify_locations(ctx, cafile, NULL)) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, TLS_ERR_CAFILE,
			      "cannot load CA file %s: %s", cafile, openssl_reason(why, sizeof(why)));
		fleet_err_detail(err, "the CA file must be readable and hold PEM certificates (%s side)",
				 s->label ? s->label : "server");
		SSL_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	SSL_CTX_set_verify(ctx, insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, verify_cb);
	if (!insecure) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, on_new_session);
	}
	return ctx;
}

static SSL_CTX *ctx_get(const struct io_stream *s, struct fleet_err *err)
{
	const char *cafile = s->ep.cafile && *s->ep.cafile ? s->ep.cafile : NULL;
	int insecure = s->ep.insecure ? 1 : 0;
	struct ctx_entry *e;
	SSL_CTX *ctx = NULL;

	pthread_mutex_lock(&g_ctx_lock);
	for (e = g_ctxs; e; e = e->next) {
		if (e->insecure == insecure &&
		    ((!e->cafile && !cafile) || (e->cafile && cafile && strcmp(e->cafile, cafile) == 0))) {
			ctx = e->ctx;
			break;
		}
	}
	if (!ctx) {
		ctx = ctx_build(cafile, insecure, s, err);
		if (ctx) {
			e = xcalloc(1, sizeof(*e));
			e->cafile = cafile ? xstrdup(cafile) : NULL;
			e->insecure = insecure;
			e->ctx = ctx;
			e->next = g_ctxs;
			g_ctxs = e;
		}
	}
	/* SSL_new takes its own reference, so a cache clear never pulls a context from under a stream. */
	pthread_mutex_unlock(&g_ctx_lock);
	return ctx;
}

void tls_ctx_cache_clear(void)
{
	pthread_mutex_lock(&g_ctx_lock);
	while (g_ctxs) {
		struct ctx_entry *e = g_ctxs;

		g_ctxs = e->next;
		SSL_CTX_free(e->ctx);
		xfree(&e->cafile);
		xfree(&e);
	}
	pthread_mutex_unlock(&g_ctx_lock);
	tls_session_cache_clear();
}

/* ---- certificate text --------------------------------------------------------------------------- */

/* Appends "DNS:a, IP:1.2.3.4" (typed) or "a, 1.2.3.4" (plain) for the certificate's SANs; falls
 * back to the subject CN when there are none (plain form only). */
static void cert_names(X509 *cert, int typed, char *out, size_t cap)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		char val[INET6_ADDRSTRLEN + 1] = "";
		const char *type = NULL, *v = val;
		int n;

		if (gn->type == GEN_DNS) {
			type = "DNS";
			v = (const char *)ASN1_STRING_get0_data(gn->d.dNSName);
			if (memchr(v, '\0', (size_t)ASN1_STRING_length(gn->d.dNSName)))
				continue; /* embedded NUL: not a name we would ever match */
		} else if (gn->type == GEN_IPADD) {
			const unsigned char *ip = ASN1_STRING_get0_data(gn->d.iPAddress);
			int iplen = ASN1_STRING_length(gn->d.iPAddress);

			type = "IP";
			if (iplen == 4)
				inet_ntop(AF_INET, ip, val, sizeof(val));
			else if (iplen == 16)
				inet_ntop(AF_INET6, ip, val, sizeof(val));
			else
				continue;
		} else {
			continue;
		}
		if (len >= cap)
			break;
		n = snprintf(out + len, cap - len, "%s%s%s%s", len ? ", " : "", typed ? type : "",
			     typed ? ":" : "", v);
		if (n > 0)
			len += (size_t)n;
	}
	GENERAL_NAMES_free(names);
	if (!out[0] && !typed) {
		X509_NAME *subj = X509_get_subject_name(cert);
		int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
		X509_NAME_ENTRY *ent = idx >= 0 ? X509_NAME_get_entry(subj, idx) : NULL;
		ASN1_STRING *cn = ent ? X509_NAME_ENTRY_get_data(ent) : NULL;

		if (cn)
			snprintf(out, cap, "%.*s", ASN1_STRING_length(cn),
				 (const char *)ASN1_STRING_get0_data(cn));
		else
			snprintf(out, cap, "no name");
	}
}

static void asn1_time_text(const ASN1_TIME *t, char *out, size_t cap)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!t || !ASN1_TIME_to_tm(t, &tm) || !strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(out, cap, "?");
}

static void name_text(X509_NAME *name, char *out, size_t cap)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	out[0] = '\0';
	if (!b)
		return;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_read(b, out, (int)cap - 1);
		out[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
}

/* The name of a side setting for s's side: names[0] on the source, [1] on the destination, else [2]. */
static const char *side_opt(const struct io_stream *s, const char *const names[3])
{
	if (s->label && strcmp(s->label, "src") == 0)
		return names[0];
	if (s->label && strcmp(s->label, "dst") == 0)
		return names[1];
	return names[2];
}

static const char *cafile_opt(const struct io_stream *s)
{
	return side_opt(s, (const char *const[]){"--cafile1", "--cafile2", "--cafile"});
}

static const char *insecure_opt(const struct io_stream *s)
{
	return side_opt(s, (const char *const[]){"--insecure1", "--insecure2", "--insecure"});
}

static const char *verify_name(const struct io_stream *s)
{
	return s->ep.verify_host && *s->ep.verify_host ? s->ep.verify_host : s->ep.host;
}

/* The verification failure vr in plain words; with_hint adds what to do for an unknown CA. */
static void verify_reason(const struct io_stream *s, long vr, int with_hint, char *out, size_t cap)
{
	char names[200];

	switch (vr) {
	case X509_V_OK: snprintf(out, cap, "ok"); return;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		snprintf(out, cap, "%s",
			 vr == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ? "self-signed certificate"
			 : vr == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
			     ? "self-signed certificate in chain"
			     : "unable to get local issuer certificate");
		if (with_hint) {
			size_t len = strlen(out);

			snprintf(out + len, cap - len, " (unknown CA; use %s to trust your CA)",
				 cafile_opt(s));
		}
		return;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		if (s->leaf && X509_cmp_current_time(X509_get0_notAfter(s->leaf)) < 0) {
			asn1_time_text(X509_get0_notAfter(s->leaf), names, sizeof(names));
			snprintf(out, cap, "certificate has expired (notAfter %s)", names);
		} else {
			snprintf(out, cap, "certificate has expired");
		}
		return;
	case X509_V_ERR_CERT_NOT_YET_VALID: snprintf(out, cap, "certificate is not yet valid"); return;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		if (s->leaf) {
			cert_names(s->leaf, 0, names, sizeof(names));
			snprintf(out, cap, "host name mismatch: certificate is for %s, not %s", names,
				 verify_name(s));
		} else {
			snprintf(out, cap, "host name mismatch: certificate is not for %s", verify_name(s));
		}
		return;
	default: snprintf(out, cap, "%s", X509_verify_cert_error_string(vr)); return;
	}
}

static int verify_err(struct io_stream *s, long vr, struct fleet_err *err)
{
	char why[FLEET_ERR_TEXT_MAX - 64];

	verify_reason(s, vr, 1, why, sizeof(why));
	fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS_VERIFY,
		      "certificate verify failed for %s: %s", s->where, why);
	switch (vr) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		fleet_err_detail(err, "connect by a name the certificate holds, or have the server's certificate "
				      "reissued; %s skips verification (not recommended)", insecure_opt(s));
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		fleet_err_detail(err, "the server's certificate must be renewed (or the clock here is wrong); "
				      "%s skips verification (not recommended)", insecure_opt(s));
		break;
	default:
		fleet_err_detail(err, "pass %s with your CA, or %s to skip verification (not recommended)",
				 cafile_opt(s), insecure_opt(s));
		break;
	}
	return -1;
}

/* ---- handshake ---------------------------------------------------------------------------------- */

static int reason_is_protocol(int reason)
{
	switch (reason) {
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_UNSAFE_LEGACY_RENEGOTIATION_DISABLED:
	case SSL_R_DH_KEY_TOO_SMALL:
	case SSL_R_EE_KEY_TOO_SMALL:
	case SSL_R_CA_MD_TOO_WEAK: return 1;
	default: return 0;
	}
}

static void free_ssl(struct io_stream *s)
{
	SSL_free(s->ssl); /* frees the BIO too */
	s->ssl = NULL;
	xfree(&s->rx);
	s->rx_pos = s->rx_len = 0;
	X509_free(s->leaf);
	s->leaf = NULL;
}

static int handshake_failed(struct io_stream *s, int sslerr, int saved_errno, struct fleet_err *err)
{
	long vr = SSL_get_verify_result(s->ssl);
	char buf[256];
	const char *why;
	unsigned long e;

	if (!s->ep.insecure && vr != X509_V_OK) {
		verify_err(s, vr, err);
	} else if (sslerr == SSL_ERROR_SYSCALL && saved_errno) {
		net_errno_err(s, saved_errno, "complete the TLS handshake with", err);
	} else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN) {
		fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, NET_ERR_ECONNRESET,
			      "could not complete the TLS handshake with %s: connection closed by server",
			      s->where);
	} else {
		e = ERR_peek_last_error();
		why = openssl_reason(buf, sizeof(buf));
		if (e && ERR_GET_LIB(e) == ERR_LIB_SSL && reason_is_protocol(ERR_GET_REASON(e))) {
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS_PROTOCOL,
				      "cannot negotiate TLS with %s: %s", s->where, why);
			if (ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER ||
			    ERR_GET_REASON(e) == SSL_R_PACKET_LENGTH_TOO_LONG)
				fleet_err_detail(
				    err, "the server did not answer in TLS: for a cleartext port use "
					 "STARTTLS (--tls), for implicit TLS use the IMAPS port (993)");
			else
				fleet_err_detail(err,
						 "imapfleet requires TLS 1.2 or later and current ciphers");
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
		} else if (e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
			   ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			fleet_err_set(
			    err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, NET_ERR_ECONNRESET,
			    "could not complete the TLS handshake with %s: connection closed by server",
			    s->where);
#endif
		} else {
			fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS,
				      "could not complete the TLS handshake with %s: %s", s->where, why);
		}
	}
	ERR_clear_error();
	free_ssl(s);
	return -1;
}

int tls_handshake(struct io_stream *s, struct fleet_err *err)
{
	const char *name = verify_name(s);
	uint64_t deadline;
	SSL_CTX *ctx;
	BIO *bio;
	long vr;
	int ok;

	pthread_once(&g_once, tls_once);
	ctx = ctx_get(s, err);
	if (!ctx)
		return -1;
	s->ssl = SSL_new(ctx);
	bio = BIO_new(g_bio_method);
	if (!s->ssl || !bio) {
		BIO_free(bio);
		SSL_free(s->ssl);
		s->ssl = NULL;
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, IO_ERR_TLS,
				     "could not create a TLS session");
	}
	BIO_set_data(bio, s);
	BIO_set_init(bio, 1);
	SSL_set_bio(s->ssl, bio, bio);
	SSL_set_ex_data(s->ssl, g_ssl_idx, s);
	s->tls_dead = 0;

	if (net_is_ip_literal(name)) {
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), name);
	} else {
		SSL_set_hostflags(s->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = SSL_set_tlsext_host_name(s->ssl, name) && SSL_set1_host(s->ssl, name);
	}
	if (!ok) {
		free_ssl(s);
		ERR_clear_error();
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS_VERIFY,
				     "cannot verify %s: %s is not a usable host name", s->where, name);
	}
	if (!s->ep.insecure) {
		SSL_SESSION *sess = sess_take(s);

		if (sess) {
			SSL_set_session(s->ssl, sess);
			SSL_SESSION_free(sess);
		}
	}

	net_rcvlowat(s, 0); /* handshake messages are small: wake on any byte */
	deadline = fleet_now_ms() + net_io_timeout(s);
	for (;;) {
		int rc, sslerr, saved, w;

		ERR_clear_error();
		errno = 0;
		rc = SSL_connect(s->ssl);
		saved = errno;
		if (rc == 1)
			break;
		sslerr = SSL_get_error(s->ssl, rc);
		if (sslerr != SSL_ERROR_WANT_READ && sslerr != SSL_ERROR_WANT_WRITE)
			return handshake_failed(s, sslerr, saved, err);
		w = net_poll_until(s, sslerr == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, err);
		if (w <= 0) {
			if (w == 0)
				fleet_err_set(
				    err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, NET_ERR_TIMEOUT,
				    "could not complete the TLS handshake with %s: timed out after %u ms",
				    s->where, net_io_timeout(s));
			free_ssl(s);
			return -1;
		}
	}

	vr = SSL_get_verify_result(s->ssl);
	if (!s->ep.insecure) {
		X509 *peer;

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
		peer = SSL_get0_peer_certificate(s->ssl);
#else
		peer = SSL_get_peer_certificate(s->ssl);
		X509_free(peer); /* the session keeps its own reference */
#endif
		if (!peer) {
			free_ssl(s);
			return fleet_err_set(
			    err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS_VERIFY,
			    "certificate verify failed for %s: the server sent no certificate", s->where);
		}
		if (vr == X509_V_OK && SSL_session_reused(s->ssl))
			vr = tls_reverify_resumed(s);
		if (vr != X509_V_OK) {
			sess_forget(s); /* none of this server's sessions is offered again */
			verify_err(s, vr, err);
			free_ssl(s);
			return -1;
		}
	} else {
		char why[200];

		verify_reason(s, vr, 0, why, sizeof(why));
		log_warn("%s: TLS certificate verification is disabled for %s (insecure): %s%s",
			 s->label ? s->label : "server", s->where,
			 vr == X509_V_OK ? "the certificate would have passed" : "verification would fail: ",
			 vr == X509_V_OK ? "" : why);
	}
	if (!s->ep.insecure)
		sess_count(SSL_session_reused(s->ssl));
	log_debug("%s: TLS with %s: %s %s%s", s->label ? s->label : "server", s->where, SSL_get_version(s->ssl),
		  SSL_get_cipher_name(s->ssl), SSL_session_reused(s->ssl) ? " (session resumed, certificate verified)" : "");
	return 0;
}

/* ---- I/O ---------------------------------------------------------------------------------------- */

static int io_failed(struct io_stream *s, int sslerr, int saved_errno, const char *doing,
		     struct fleet_err *err)
{
	char buf[256];

	s->tls_dead = 1;
	if (sslerr == SSL_ERROR_SYSCALL && saved_errno)
		net_errno_err(s, saved_errno, doing, err);
	else if (sslerr == SSL_ERROR_SYSCALL)
		fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, NET_ERR_ECONNRESET,
			      "could not %s %s: connection closed by server", doing, s->where);
	else
		fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS,
			      "could not %s %s: TLS error: %s", doing, s->where,
			      openssl_reason(buf, sizeof(buf)));
	ERR_clear_error();
	return -1;
}

/* Bytes surely still to come on the socket for the expected plaintext: all of it when neither
 * OpenSSL nor the BIO holds anything (ciphertext is never shorter than its plaintext), else all but
 * what one buffered partial record can carry (the BIO is asked for more only once it is empty).
 * None during a handshake, whose messages need our answers. */
static uint64_t tls_sure_bytes(struct io_stream *s)
{
	if (!s->expect || SSL_in_init(s->ssl))
		return 0;
	if (!SSL_has_pending(s->ssl) && !rx_avail(s))
		return s->expect;
	return s->expect > TLS_RECORD_PLAIN_MAX ? s->expect - TLS_RECORD_PLAIN_MAX : 0;
}

/* Decrypts records already received (the BIO's buffer) into buf, without touching the socket, so that
 * the IMAP layer gets one large piece rather than one per record (servers send 4 KB records): fewer
 * events, callbacks and digest calls per body. Stops at a partial record (the BIO then says "retry"
 * as for an empty socket), at close_notify, which the next read meets again, and at a failure,
 * which is kept for the next read to report: the bytes before it are good. */
static size_t tls_read_buffered(struct io_stream *s, char *buf, size_t len)
{
	size_t got = 0;

	/* The caller's SSL_read just succeeded, so the error queue is empty: no clearing per record. */
	s->tls_buffered_only = 1;
	while (got < len && (rx_avail(s) || SSL_has_pending(s->ssl))) {
		size_t left = len - got;
		int n = SSL_read(s->ssl, buf + got, left > INT_MAX ? INT_MAX : (int)left);

		if (n <= 0) {
			/* Asked by SSL_want, not SSL_get_error, which a stale queued error would mislead. */
			if (!SSL_want_read(s->ssl) && !SSL_want_write(s->ssl) &&
			    !(SSL_get_shutdown(s->ssl) & SSL_RECEIVED_SHUTDOWN) && !s->tls_failed) {
				s->tls_failed = xcalloc(1, sizeof(*s->tls_failed));
				io_failed(s, SSL_get_error(s->ssl, n), 0, "read from", s->tls_failed);
			}
			ERR_clear_error();
			break;
		}
		got += (size_t)n;
	}
	s->tls_buffered_only = 0;
	s->bytes_in += got;
	return got;
}

ssize_t tls_read(struct io_stream *s, void *buf, size_t len, struct fleet_err *err)
{
	uint64_t deadline = fleet_now_ms() + net_io_timeout(s);
	int want = len > INT_MAX ? INT_MAX : (int)len;

	if (s->tls_failed) {
		if (err)
			*err = *s->tls_failed;
		return -1;
	}
	if (s->tls_dead)
		return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, NET_ERR_ECONNRESET,
				     "could not read from %s: the TLS session failed earlier", s->where);
	for (;;) {
		int n, sslerr, saved, w;

		ERR_clear_error();
		errno = 0;
		n = SSL_read(s->ssl, buf, want);
		saved = errno;
		if (n > 0) {
			s->bytes_in += (uint64_t)n;
			return (ssize_t)((size_t)n +
					 tls_read_buffered(s, (char *)buf + n, (size_t)(want - n)));
		}
		sslerr = SSL_get_error(s->ssl, n);
		if (sslerr == SSL_ERROR_ZERO_RETURN)
			return 0;
		if (sslerr == SSL_ERROR_SYSCALL && saved == 0) {
			s->tls_dead = 1; /* plain EOF without close_notify (OpenSSL 1.1 style) */
			return 0;
		}
		if (sslerr != SSL_ERROR_WANT_READ && sslerr != SSL_ERROR_WANT_WRITE)
			return io_failed(s, sslerr, saved, "read from", err);
		if (sslerr == SSL_ERROR_WANT_READ)
			w = net_poll_in(s, tls_sure_bytes(s), deadline, err);
		else
			w = net_poll_until(s, POLLOUT, deadline, err);
		if (net_waited(s, w, "read from", err) < 0)
			return -1;
	}
}

int tls_write(struct io_stream *s, const void *buf, size_t len, struct fleet_err *err)
{
	const char *p = buf;
	uint64_t deadline = fleet_now_ms() + net_io_timeout(s);

	if (s->tls_dead)
		return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, NET_ERR_ECONNRESET,
				     "could not write to %s: the TLS session failed earlier", s->where);
	while (len > 0) {
		/* Chunks keep the inactivity timeout meaningful: it restarts after each one. A retried
		 * SSL_write must see the same arguments, which the loop guarantees. */
		int chunk = len > TLS_WRITE_CHUNK ? TLS_WRITE_CHUNK : (int)len;
		int n, sslerr, saved, w;

		ERR_clear_error();
		errno = 0;
		s->tls_more = len > (size_t)chunk;
		n = SSL_write(s->ssl, p, chunk);
		s->tls_more = 0;
		saved = errno;
		if (n > 0) {
			deadline = net_sent(s, &p, &len, (size_t)n);
			continue;
		}
		sslerr = SSL_get_error(s->ssl, n);
		if (sslerr != SSL_ERROR_WANT_READ && sslerr != SSL_ERROR_WANT_WRITE)
			return io_failed(s, sslerr, saved, "write to", err);
		if (sslerr == SSL_ERROR_WANT_READ)
			net_rcvlowat(s, 0); /* a handshake message, not the literal we may be expecting */
		w = net_poll_until(s, sslerr == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, err);
		if (net_waited(s, w, "write to", err) < 0)
			return -1;
	}
	return 0;
}

int tls_wait_readable(struct io_stream *s, int timeout_ms, struct fleet_err *err)
{
	uint64_t deadline = fleet_now_ms() + (uint64_t)timeout_ms;

	if (s->tls_dead)
		return 1; /* the next read reports the failure without blocking */
	/* "Would a read block" means any byte here. */
	net_rcvlowat(s, 0);
	for (;;) {
		char c;
		int n, sslerr, w;

		if (SSL_pending(s->ssl) > 0)
			return 1;
		/* Records already in OpenSSL's buffer or on the socket may hold no application data
		 * (a TLS 1.3 session ticket, a key update): a non-blocking peek tells for sure. */
		ERR_clear_error();
		n = SSL_peek(s->ssl, &c, 1);
		if (n > 0)
			return 1;
		sslerr = SSL_get_error(s->ssl, n);
		if (sslerr != SSL_ERROR_WANT_READ && sslerr != SSL_ERROR_WANT_WRITE) {
			ERR_clear_error();
			return 1; /* end of stream or an error: a read returns at once and says which */
		}
		w = net_poll_until(s, sslerr == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, err);
		if (w <= 0)
			return w;
	}
}

int tls_fill_info(const struct io_stream *s, struct io_tls_info *info)
{
	X509 *peer;
	long vr;

	memset(info, 0, sizeof(*info));
	snprintf(info->version, sizeof(info->version), "%s", SSL_get_version(s->ssl));
	snprintf(info->cipher, sizeof(info->cipher), "%s", SSL_get_cipher_name(s->ssl));
	peer = peer_cert(s->ssl);
	if (peer) {
		name_text(X509_get_subject_name(peer), info->subject, sizeof(info->subject));
		name_text(X509_get_issuer_name(peer), info->issuer, sizeof(info->issuer));
		asn1_time_text(X509_get0_notAfter(peer), info->not_after, sizeof(info->not_after));
		cert_names(peer, 1, info->san, sizeof(info->san));
	}
	vr = SSL_get_verify_result(s->ssl);
	info->verified = !s->ep.insecure && peer && vr == X509_V_OK;
	info->resumed = SSL_session_reused(s->ssl) ? 1 : 0;
	if (!peer)
		snprintf(info->verify_result, sizeof(info->verify_result), "no certificate");
	else
		verify_reason(s, vr, 0, info->verify_result, sizeof(info->verify_result));
	return 0;
}

void tls_close(struct io_stream *s)
{
	if (s->ssl && !s->tls_dead) {
		/* One non-blocking close_notify; never wait for the server's. */
		ERR_clear_error();
		(void)SSL_shutdown(s->ssl);
		ERR_clear_error();
	}
	if (s->ssl)
		free_ssl(s);
	X509_free(s->leaf);
	s->leaf = NULL;
}
