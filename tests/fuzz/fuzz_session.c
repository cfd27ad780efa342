/* libFuzzer target for a whole IMAP client session (io/imap.c over io/imap_parser.c), greeting
 * to LOGOUT, against a server whose every byte is the fuzzer's input (issue 13).
 *
 * The transport (io/stream.h) is replaced by an in-memory stream defined here: the input is what
 * the server sends, read in chunks whose size comes from the first byte (so responses split at
 * every possible place), whatever the client writes is dropped, STARTTLS "succeeds" at once, and
 * the end of the input is the server closing the connection. The second byte picks the TLS mode
 * (implicit, STARTTLS, cleartext) and whether ID is sent. Then the session does what the engine
 * does with a source and a destination: login, CAPABILITY, NAMESPACE, LIST, LSUB, STATUS, EXAMINE,
 * metadata FETCH, streamed body FETCH, GETQUOTAROOT, SELECT, APPEND, LOGOUT, each only while the
 * connection is usable. Any crash, leak, sanitizer report or hang is a bug; errors are expected.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "io/imap.h"
#include "io/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct io_stream {
	const uint8_t *d;
	size_t n, pos;
	size_t chunk;
	int tls;
	struct io_endpoint ep;
};

/* What the next io_stream_connect serves: the first connection gets the input, any other one
 * (the implicit-TLS probe after a silent greeting) is refused. */
static const uint8_t *g_data;
static size_t g_size, g_chunk;

int io_stream_connect(const struct io_endpoint *ep, struct io_stream **out, struct fleet_err *err)
{
	struct io_stream *s;

	*out = NULL;
	if (!g_data)
		return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, "ECONNREFUSED",
				     "could not connect to %s: refused (fuzz)", ep->host);
	s = xcalloc(1, sizeof(*s));
	s->d = g_data;
	s->n = g_size;
	s->chunk = g_chunk;
	s->tls = ep->mode == IO_TLS_IMPLICIT;
	s->ep = *ep;
	g_data = NULL;
	*out = s;
	return 0;
}

int io_stream_start_tls(struct io_stream *s, struct fleet_err *err)
{
	(void)err;
	s->tls = 1;
	return 0;
}

ssize_t io_stream_read(struct io_stream *s, void *buf, size_t len, struct fleet_err *err)
{
	size_t k = s->n - s->pos;

	(void)err;
	if (k > len)
		k = len;
	if (k > s->chunk)
		k = s->chunk;
	memcpy(buf, s->d + s->pos, k);
	s->pos += k;
	return (ssize_t)k;
}

void io_stream_expect(struct io_stream *s, uint64_t n)
{
	(void)s;
	(void)n;
}

int io_stream_write(struct io_stream *s, const void *buf, size_t len, struct fleet_err *err)
{
	(void)s;
	(void)buf;
	(void)len;
	(void)err;
	return 0;
}

/* Always readable: bytes are there, or the end of the stream is (a read then returns 0). */
int io_stream_wait_readable(struct io_stream *s, int timeout_ms, struct fleet_err *err)
{
	(void)s;
	(void)timeout_ms;
	(void)err;
	return 1;
}

int io_stream_is_tls(const struct io_stream *s)
{
	return s->tls;
}

int io_stream_tls_info(const struct io_stream *s, struct io_tls_info *info)
{
	memset(info, 0, sizeof(*info));
	return s->tls ? 0 : -1;
}

const struct io_endpoint *io_stream_endpoint(const struct io_stream *s)
{
	return &s->ep;
}

uint64_t io_stream_bytes_in(const struct io_stream *s)
{
	return s->pos;
}

uint64_t io_stream_bytes_out(const struct io_stream *s)
{
	(void)s;
	return 0;
}

void io_stream_close(struct io_stream **sp)
{
	xfree(sp);
}

/* ---- the session ---------------------------------------------------------------------------- */

struct body_sink {
	uint64_t bytes;
};

static int on_message(void *ctx, const struct imap_fetch_msg *m, struct fleet_err *err)
{
	(void)ctx;
	(void)err;
	/* Touch what the engine reads. */
	if (m->section && m->section_len)
		(void)memchr(m->section, '\n', m->section_len);
	return 0;
}

static int on_body_start(void *ctx, uint32_t seq, uint32_t uid, uint64_t size, struct fleet_err *err)
{
	(void)seq;
	(void)uid;
	(void)size;
	(void)err;
	((struct body_sink *)ctx)->bytes = 0;
	return 0;
}

static int on_body_data(void *ctx, const char *data, size_t len, struct fleet_err *err)
{
	(void)data;
	(void)err;
	((struct body_sink *)ctx)->bytes += len;
	return 0;
}

static int on_body_end(void *ctx, struct fleet_err *err)
{
	(void)ctx;
	(void)err;
	return 0;
}

static int usable(struct imap_conn *c)
{
	return !imap_conn_is_broken(c);
}

static void session(struct imap_conn *c)
{
	struct fleet_err err;
	struct imap_namespace ns;
	struct imap_list l;
	struct imap_status_info si;
	struct imap_mailbox mb;
	struct imap_quota q;
	struct imap_append_result ar;
	struct body_sink sink = {0};
	const struct imap_fetch_cb meta = {on_message, NULL, NULL, NULL};
	const struct imap_fetch_cb bodies = {on_message, on_body_start, on_body_data, on_body_end};
	static const char msg[] = "From: a@example.org\r\nSubject: fuzz\r\n\r\nbody\r\n";

	if (!imap_conn_is_preauth(c) && imap_conn_login(c, &err) < 0)
		return;
	if (usable(c))
		imap_capability(c, &err);
	memset(&ns, 0, sizeof(ns));
	if (usable(c))
		imap_namespace(c, &ns, &err);
	/* What a failed LIST read so far stays in l: the caller releases it either way. */
	memset(&l, 0, sizeof(l));
	if (usable(c))
		imap_list(c, &l, &err);
	imap_list_release(&l);
	memset(&l, 0, sizeof(l));
	if (usable(c))
		imap_lsub(c, &l, &err);
	imap_list_release(&l);
	memset(&si, 0, sizeof(si));
	if (usable(c))
		imap_status(c, "INBOX", &si, &err);
	memset(&mb, 0, sizeof(mb));
	if (usable(c) && imap_select(c, "INBOX", 1, &mb, &err) == 0) {
		if (usable(c))
			imap_fetch(c, "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
				   &meta, NULL, &err);
		if (usable(c))
			imap_fetch(c, "1:*", "(UID BODY.PEEK[])", &bodies, &sink, &err);
	}
	imap_mailbox_release(&mb);
	memset(&q, 0, sizeof(q));
	if (usable(c))
		imap_getquotaroot(c, "INBOX", &q, &err);
	memset(&mb, 0, sizeof(mb));
	if (usable(c))
		imap_select(c, "Caf\xc3\xa9", 0, &mb, &err);
	imap_mailbox_release(&mb);
	memset(&ar, 0, sizeof(ar));
	if (usable(c))
		imap_append_buf(c, "INBOX", "\\Seen", "17-Jul-1996 02:44:25 -0700", msg, sizeof(msg) - 1, &ar, &err);
	if (usable(c))
		imap_logout(c, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	struct imap_options o;
	struct imap_conn *c = NULL;
	struct fleet_err err;

	if (!quiet) {
		/* Warnings are rendered (their escaping is part of what is fuzzed), then dropped. */
		FILE *null = fopen("/dev/null", "w");

		if (null)
			fleet_log_set_sink(null);
		fleet_log_set_level(FLEET_LOG_WARN);
		quiet = 1;
	}
	if (size < 2)
		return 0;
	memset(&o, 0, sizeof(o));
	o.ep.host = "imap.example.org";
	o.ep.port = 993;
	o.ep.mode = (data[1] & 3) == 0 ? IO_TLS_IMPLICIT : (data[1] & 3) == 1 ? IO_TLS_STARTTLS : IO_TLS_PLAIN;
	o.ep.connect_timeout_ms = o.ep.io_timeout_ms = 1000;
	o.ep.label = "src";
	o.user = "user";
	o.password = "fuzz-password";
	o.label = "src";
	o.no_id = (data[1] & 4) != 0;
	o.auth = (data[1] & 8) ? IMAP_AUTH_PLAIN : IMAP_AUTH_AUTO;
	g_chunk = 1 + (data[0] < 128 ? data[0] % 16 : (size_t)data[0] * 64);
	g_data = data + 2;
	g_size = size - 2;
	if (imap_conn_open(&o, &c, &err) == 0)
		session(c);
	imap_conn_close(&c);
	g_data = NULL;
	return 0;
}
