/* io/net.c: TCP connections for io_stream (cleartext half; TLS lives in io/tls.c).
 *
 * Connect: getaddrinfo(AF_UNSPEC), every address in turn, non-blocking connect bounded by
 * connect_timeout_ms overall. The socket stays non-blocking afterwards and every read, write and
 * wait is bounded by poll() with io_timeout_ms of inactivity. Writes use send(MSG_NOSIGNAL), so a
 * peer that closed never raises SIGPIPE here (TLS writes go through the same send(), see tls.c).
 */
#include "io/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/util.h"
#include "io/tls.h"

unsigned net_io_timeout(const struct io_stream *s)
{
	return s->ep.io_timeout_ms ? s->ep.io_timeout_ms : IO_DEFAULT_IO_TIMEOUT_MS;
}

int net_is_ip_literal(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	return host && (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1);
}

static const char *errno_code(int e)
{
	switch (e) {
	case ECONNREFUSED: return NET_ERR_ECONNREFUSED;
	case ECONNRESET: return NET_ERR_ECONNRESET;
	case EPIPE: return NET_ERR_ECONNRESET; /* the peer closed while we wrote: same thing to the caller */
	case ECONNABORTED: return NET_ERR_ECONNRESET;
	case EHOSTUNREACH: return NET_ERR_EHOSTUNREACH;
	case ENETUNREACH: return NET_ERR_ENETUNREACH;
	case ENETDOWN: return NET_ERR_ENETUNREACH;
	case EHOSTDOWN: return NET_ERR_EHOSTUNREACH;
	case ETIMEDOUT: return NET_ERR_TIMEOUT;
	case EADDRNOTAVAIL: return NET_ERR_EADDRNOTAVAIL;
	default: return NET_ERR_ENET;
	}
}

static const char *errno_words(int e)
{
	switch (e) {
	case ECONNREFUSED: return "connection refused";
	case ECONNRESET: return "connection reset by peer";
	case EPIPE: return "connection closed by peer";
	case EHOSTUNREACH: return "host unreachable";
	case ENETUNREACH: return "network unreachable";
	case ETIMEDOUT: return "timed out";
	default: return NULL;
	}
}

int net_errno_err(const struct io_stream *s, int e, const char *doing, struct fleet_err *err)
{
	char sys[128];
	const char *words = errno_words(e);

	if (!words) {
		snprintf(sys, sizeof(sys), "%s", strerror(e));
		words = sys;
	}
	return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, errno_code(e),
			     "could not %s %s: %s", doing, s->where, words);
}

int net_timeout_err(const struct io_stream *s, const char *doing, struct fleet_err *err)
{
	fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, NET_ERR_TIMEOUT,
		      "could not %s %s: timed out after %u ms", doing, s->where, net_io_timeout(s));
	return -1;
}

uint64_t net_sent(struct io_stream *s, const char **p, size_t *len, size_t n)
{
	s->bytes_out += (uint64_t)n;
	*p += n;
	*len -= n;
	return fleet_now_ms() + net_io_timeout(s);
}

int net_waited(const struct io_stream *s, int w, const char *doing, struct fleet_err *err)
{
	if (w < 0)
		return -1;
	return w == 0 ? net_timeout_err(s, doing, err) : 0;
}

int net_cancelled(struct io_stream *s, struct fleet_err *err)
{
	uint64_t now;

	if (!s->ep.cancel || !atomic_load(s->ep.cancel)) {
		s->cancel_seen_ms = 0;
		return 0;
	}
	now = fleet_now_ms();
	if (!s->cancel_seen_ms)
		s->cancel_seen_ms = now;
	if (now - s->cancel_seen_ms < IO_CANCEL_GRACE_MS)
		return 0;
	fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, FLEET_ERR_CODE_CANCELLED,
		      "stopped on request while talking to %s", s->where);
	return -1;
}

int net_poll_until(struct io_stream *s, short events, uint64_t deadline_ms, struct fleet_err *err)
{
	for (;;) {
		struct pollfd p = {.fd = s->fd, .events = events};
		uint64_t now = fleet_now_ms();
		int wait =
		    now >= deadline_ms ? 0 : (int)(deadline_ms - now > NET_POLL_SLICE_MS ? NET_POLL_SLICE_MS : deadline_ms - now);
		int n;

		if (net_cancelled(s, err) < 0)
			return -1;
		if (s->ep.cancel && wait > IO_CANCEL_POLL_MS)
			wait = IO_CANCEL_POLL_MS; /* a stop request is noticed within this */
		n = poll(&p, 1, wait);
		if (n > 0)
			return 1; /* includes POLLERR/POLLHUP: the next read/write reports them */
		if (n == 0) {
			if (fleet_now_ms() >= deadline_ms)
				return 0;
			continue;
		}
		if (errno != EINTR)
			return net_errno_err(s, errno, "wait for", err);
	}
}

void net_rcvlowat(struct io_stream *s, uint64_t bytes)
{
#ifdef SO_RCVLOWAT
	int want = bytes >= NET_LOWAT_MAX ? NET_LOWAT_MAX : (int)(bytes / NET_LOWAT_STEP * NET_LOWAT_STEP);

	if (want < NET_LOWAT_STEP)
		want = 1;
	if (want == (s->lowat ? s->lowat : 1))
		return;
	/* A failure only costs wake-ups; remember the value anyway so as not to retry each time. */
	(void)setsockopt(s->fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want));
	s->lowat = want;
#else
	(void)s;
	(void)bytes;
#endif
}

int net_poll_in(struct io_stream *s, uint64_t sure, uint64_t deadline_ms, struct fleet_err *err)
{
	net_rcvlowat(s, sure);
	if (s->lowat > 1) {
		uint64_t patience = fleet_now_ms() + NET_LOWAT_PATIENCE_MS;
		int w = net_poll_until(s, POLLIN, patience < deadline_ms ? patience : deadline_ms, err);

		if (w != 0 || patience >= deadline_ms)
			return w;
		/* The hint was wrong (a server that waits for us, say): any byte wakes us again. */
		net_rcvlowat(s, 0);
	}
	return net_poll_until(s, POLLIN, deadline_ms, err);
}

static void set_sockopts(int fd)
{
	int one = 1;
	int idle = NET_KEEPIDLE_S, intvl = NET_KEEPINTVL_S, cnt = NET_KEEPCNT;

	/* Failures here cost performance or liveness detection, not correctness: ignore them. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
#ifdef TCP_KEEPIDLE
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
#endif
#ifdef TCP_KEEPINTVL
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
#endif
#ifdef TCP_KEEPCNT
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
#endif
	(void)idle;
	(void)intvl;
	(void)cnt;
}

static void addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, host,
			  sizeof(host));
	else if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, host,
			  sizeof(host));
	snprintf(out, cap, "%s", host);
}

/* One non-blocking connect attempt. Returns the connected fd, or -1 with *why = errno
 * (ETIMEDOUT when the attempt ran out of time). */
static int connect_one(const struct addrinfo *ai, uint64_t deadline_ms, int *why)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);

	if (fd < 0) {
		*why = errno;
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR) {
		*why = errno;
		close(fd);
		return -1;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		uint64_t now = fleet_now_ms();
		int n;

		if (now >= deadline_ms) {
			*why = ETIMEDOUT;
			close(fd);
			return -1;
		}
		n = poll(&p, 1, (int)(deadline_ms - now));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*why = errno;
			close(fd);
			return -1;
		}
		if (n > 0) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);

			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
				soerr = errno;
			if (soerr == 0)
				return fd;
			*why = soerr;
			close(fd);
			return -1;
		}
	}
}

static int resolve_and_connect(struct io_stream *s, uint16_t port, struct fleet_err *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	unsigned ctimeout =
	    s->ep.connect_timeout_ms ? s->ep.connect_timeout_ms : IO_DEFAULT_CONNECT_TIMEOUT_MS;
	uint64_t deadline = fleet_now_ms() + ctimeout;
	char portstr[8], tried[FLEET_ERR_TEXT_MAX] = "";
	size_t tlen = 0, naddr = 0, left;
	int rc, last = 0, any_refused = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	rc = getaddrinfo(s->host, portstr, &hints, &res);
	if (rc != 0) {
		const char *why = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
		/* A name that does not exist will not exist in a minute either: fail at once instead of
		 * retrying with backoff. A DNS server that does not answer (EAI_AGAIN ...) may later. */
		int nohost = rc == EAI_NONAME
#ifdef EAI_NODATA
			     || rc == EAI_NODATA
#endif
#ifdef EAI_ADDRFAMILY
			     || rc == EAI_ADDRFAMILY
#endif
		    ;

		if (nohost)
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, NET_ERR_DNS_NOHOST,
				      "cannot resolve host name %s: no such host (%s)", s->host, why);
		else
			fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, NET_ERR_DNS,
				      "could not resolve host name %s: %s", s->host, why);
		fleet_err_detail(err, "check the host name (%s side) and this machine's DNS settings",
				 s->label ? s->label : "server");
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next)
		naddr++;
	left = naddr;
	for (ai = res; ai; ai = ai->ai_next, left--) {
		uint64_t now = fleet_now_ms(), until;
		char addr[INET6_ADDRSTRLEN];
		int why = 0, fd;

		if (now >= deadline) {
			why = ETIMEDOUT;
		} else {
			/* Share the remaining time: half of it while more addresses wait their turn. */
			until = left > 1 ? now + (deadline - now + 1) / 2 : deadline;
			fd = connect_one(ai, until, &why);
			if (fd >= 0) {
				freeaddrinfo(res);
				s->fd = fd;
				set_sockopts(fd);
				return 0;
			}
		}
		last = why;
		if (why == ECONNREFUSED)
			any_refused = 1;
		addr_text(ai->ai_addr, addr, sizeof(addr));
		if (tlen < sizeof(tried)) {
			int n = snprintf(tried + tlen, sizeof(tried) - tlen, "%s%s: %s", tlen ? ", " : "",
					 addr, errno_words(why) ? errno_words(why) : strerror(why));
			if (n > 0)
				tlen += (size_t)n;
		}
	}
	freeaddrinfo(res);
	/* Refused on any address means the host answers but nothing listens: the most useful cause. */
	if (any_refused && last != ECONNREFUSED)
		last = ECONNREFUSED;
	if (last == ETIMEDOUT)
		fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, NET_ERR_TIMEOUT,
			      "could not connect to %s: timed out after %u ms", s->where, ctimeout);
	else
		net_errno_err(s, last, "connect to", err);
	fleet_err_detail(err, "tried %zu address%s: %s", naddr, naddr == 1 ? "" : "es", tried);
	return -1;
}

static void stream_free(struct io_stream *s)
{
	if (s->ssl || s->leaf)
		tls_close(s);
	if (s->fd >= 0)
		close(s->fd);
	xfree(&s->tls_failed);
	xfree(&s->host);
	xfree(&s->cafile);
	xfree(&s->verify_host);
	xfree(&s->label);
	xfree(&s);
}

int io_stream_connect(const struct io_endpoint *ep, struct io_stream **out, struct fleet_err *err)
{
	struct io_stream *s;
	uint16_t port;

	*out = NULL;
	if (!ep || !ep->host || !*ep->host)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, NET_ERR_CONFIG,
				     "cannot connect: no host name given");
	if (ep->mode != IO_TLS_IMPLICIT && ep->mode != IO_TLS_STARTTLS && ep->mode != IO_TLS_PLAIN)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, NET_ERR_CONFIG, "invalid TLS mode %d",
				     (int)ep->mode);
	port = (uint16_t)io_port_or_default(ep->port, ep->mode);

	s = xcalloc(1, sizeof(*s));
	s->fd = -1;
	s->ep = *ep;
	s->ep.port = port;
	s->host = xstrdup(ep->host);
	s->cafile = ep->cafile ? xstrdup(ep->cafile) : NULL;
	s->verify_host = ep->verify_host ? xstrdup(ep->verify_host) : NULL;
	s->label = ep->label ? xstrdup(ep->label) : NULL;
	s->ep.host = s->host;
	s->ep.cafile = s->cafile;
	s->ep.verify_host = s->verify_host;
	s->ep.label = s->label;
	if (strchr(s->host, ':'))
		snprintf(s->where, sizeof(s->where), "[%s]:%u", s->host, (unsigned)port);
	else
		snprintf(s->where, sizeof(s->where), "%s:%u", s->host, (unsigned)port);

	if (resolve_and_connect(s, port, err) < 0) {
		stream_free(s);
		return -1;
	}
	log_debug("%s: connected to %s", s->label ? s->label : "io", s->where);
	if (ep->mode == IO_TLS_IMPLICIT && tls_handshake(s, err) < 0) {
		stream_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

int io_stream_start_tls(struct io_stream *s, struct fleet_err *err)
{
	char peek;
	ssize_t n;

	if (s->ssl || s->unusable)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS_STATE,
				     "cannot start TLS on %s: TLS was already started on this stream",
				     s->where);
	/* Before our ClientHello the server must stay silent: bytes waiting now were sent after the
	 * STARTTLS OK in cleartext (response injection, CVE-2011-0411 style). Never mix them in. */
	n = recv(s->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0) {
		s->unusable = 1;
		return fleet_err_set(
		    err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_STARTTLS_INJECTION,
		    "cannot start TLS with %s: the server sent cleartext after the STARTTLS OK", s->where);
	}
	if (tls_handshake(s, err) < 0) {
		/* Half a handshake leaves the connection in no usable state, and cleartext is never an
		 * acceptable fallback: from now on the stream only fails until it is closed. */
		s->unusable = 1;
		return -1;
	}
	return 0;
}

static int unusable_err(const struct io_stream *s, struct fleet_err *err)
{
	return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS_STATE,
			     "cannot use the connection to %s: TLS negotiation failed on it", s->where);
}

ssize_t io_stream_read(struct io_stream *s, void *buf, size_t len, struct fleet_err *err)
{
	uint64_t deadline;

	if (s->unusable)
		return unusable_err(s, err);
	if (len == 0)
		return 0;
	/* Checked before every read, not only while waiting: a server that drips one byte at a time
	 * never leaves a read waiting, and must not outlast a stop request. */
	if (net_cancelled(s, err) < 0)
		return -1;
	if (s->ssl)
		return tls_read(s, buf, len, err);
	deadline = fleet_now_ms() + net_io_timeout(s);
	for (;;) {
		ssize_t n = recv(s->fd, buf, len, 0);

		if (n > 0) {
			s->bytes_in += (uint64_t)n;
			return n;
		}
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return net_errno_err(s, errno, "read from", err);
		if (net_waited(s, net_poll_in(s, s->expect, deadline, err), "read from", err) < 0)
			return -1;
	}
}

void io_stream_expect(struct io_stream *s, uint64_t n)
{
	s->expect = n;
}

int io_stream_write(struct io_stream *s, const void *buf, size_t len, struct fleet_err *err)
{
	const char *p = buf;
	uint64_t deadline;

	if (s->unusable)
		return unusable_err(s, err);
	if (s->ssl)
		return tls_write(s, buf, len, err);
	/* The timeout is for inactivity: it restarts whenever the peer takes some bytes, so a large
	 * literal to a slow but live server is not cut off. */
	deadline = fleet_now_ms() + net_io_timeout(s);
	while (len > 0) {
		ssize_t n = send(s->fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			deadline = net_sent(s, &p, &len, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return net_errno_err(s, errno, "write to", err);
		if (net_waited(s, net_poll_until(s, POLLOUT, deadline, err), "write to", err) < 0)
			return -1;
	}
	return 0;
}

int io_stream_wait_readable(struct io_stream *s, int timeout_ms, struct fleet_err *err)
{
	if (s->unusable)
		return unusable_err(s, err);
	if (timeout_ms < 0)
		timeout_ms = (int)net_io_timeout(s);
	if (s->ssl)
		return tls_wait_readable(s, timeout_ms, err);
	net_rcvlowat(s, 0); /* "would a read block" means any byte */
	return net_poll_until(s, POLLIN, fleet_now_ms() + (uint64_t)timeout_ms, err);
}

int io_stream_is_tls(const struct io_stream *s)
{
	return s && s->ssl != NULL;
}

int io_stream_tls_info(const struct io_stream *s, struct io_tls_info *info)
{
	if (!s || !s->ssl)
		return -1;
	return tls_fill_info(s, info);
}

const struct io_endpoint *io_stream_endpoint(const struct io_stream *s)
{
	return &s->ep;
}

uint64_t io_stream_bytes_in(const struct io_stream *s)
{
	return s->bytes_in;
}

uint64_t io_stream_bytes_out(const struct io_stream *s)
{
	return s->bytes_out;
}

void io_stream_close(struct io_stream **sp)
{
	if (!sp || !*sp)
		return;
	stream_free(*sp);
	*sp = NULL;
}
