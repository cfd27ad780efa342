#include "io/deflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/alloc.h"

struct io_deflate {
	z_stream d, i; /* deflate (to the server), inflate (from it) */
	unsigned char *in;
	int in_more;    /* the last inflate filled its output: more may be pending */
	uint64_t idle_in; /* compressed bytes consumed since the last inflated byte */
	uint64_t in_raw, in_plain, out_plain, out_raw;
};

struct io_deflate *io_deflate_new(void)
{
	struct io_deflate *z = xcalloc(1, sizeof(*z));

	/* Raw deflate both ways (RFC 4978 section 4: no zlib header or checksum). */
	if (deflateInit2(&z->d, IO_DEFLATE_LEVEL, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK ||
	    inflateInit2(&z->i, -15) != Z_OK) {
		fputs("imapfleet: zlib cannot initialise a stream (out of memory)\n", stderr);
		abort();
	}
	z->in = xmalloc(IO_DEFLATE_IN_MAX);
	z->i.next_in = z->in;
	z->i.avail_in = 0;
	return z;
}

void io_deflate_free(struct io_deflate **zp)
{
	struct io_deflate *z = *zp;

	if (!z)
		return;
	deflateEnd(&z->d);
	inflateEnd(&z->i);
	xfree(&z->in);
	xfree(zp);
}

int io_deflate_compress(struct io_deflate *z, const void *in, size_t len, struct fleet_buf *out,
			struct fleet_err *err)
{
	unsigned char chunk[IO_DEFLATE_OUT_CHUNK];

	z->d.next_in = (unsigned char *)(uintptr_t)in;
	z->d.avail_in = (uInt)len;
	z->out_plain += len;
	do {
		int r;

		z->d.next_out = chunk;
		z->d.avail_out = sizeof(chunk);
		r = deflate(&z->d, Z_SYNC_FLUSH);
		if (r != Z_OK && r != Z_BUF_ERROR)
			return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IO_ERR_COMPRESS,
					     "compressing for the server failed (zlib %d)", r);
		if (fleet_buf_append(out, chunk, sizeof(chunk) - z->d.avail_out) < 0)
			return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IO_ERR_COMPRESS,
					     "compressed output over the buffer's cap");
		z->out_raw += sizeof(chunk) - z->d.avail_out;
	} while (z->d.avail_out == 0 || z->d.avail_in > 0);
	return 0;
}

void *io_deflate_inbuf(struct io_deflate *z, size_t *cap)
{
	*cap = IO_DEFLATE_IN_MAX;
	return z->in;
}

void io_deflate_fed(struct io_deflate *z, size_t n)
{
	z->i.next_in = z->in;
	z->i.avail_in = (uInt)n;
	z->in_raw += n;
}

void io_deflate_feed(struct io_deflate *z, const void *in, size_t n)
{
	if (n > IO_DEFLATE_IN_MAX)
		n = IO_DEFLATE_IN_MAX; /* callers pass at most a read buffer's worth */
	memcpy(z->in, in, n);
	io_deflate_fed(z, n);
}

ssize_t io_deflate_inflate(struct io_deflate *z, void *out, size_t cap, struct fleet_err *err)
{
	uInt before = z->i.avail_in;
	size_t got;
	int r;

	if (z->i.avail_in == 0 && !z->in_more)
		return 0;
	z->i.next_out = out;
	z->i.avail_out = (uInt)cap;
	r = inflate(&z->i, Z_SYNC_FLUSH);
	got = cap - z->i.avail_out;
	z->in_more = z->i.avail_out == 0;
	z->idle_in += before - z->i.avail_in;
	if (r == Z_STREAM_END)
		return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, IO_ERR_COMPRESS,
			"the server ended its compressed stream (RFC 4978 forbids it); connection closed");
	if (r != Z_OK && r != Z_BUF_ERROR)
		return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, IO_ERR_COMPRESS,
				     "the server's compressed stream is corrupt (%s)",
				     z->i.msg ? z->i.msg : "zlib error");
	if (got) {
		z->idle_in = 0;
		z->in_plain += got;
		return (ssize_t)got;
	}
	if (z->idle_in > IO_DEFLATE_MAX_IDLE_IN)
		return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, IO_ERR_COMPRESS,
				     "the server sent %llu compressed bytes that inflate to nothing; gave up",
				     (unsigned long long)z->idle_in);
	return 0;
}

int io_deflate_has_input(const struct io_deflate *z)
{
	return z->i.avail_in > 0 || z->in_more;
}

void io_deflate_counts(const struct io_deflate *z, uint64_t *in_raw, uint64_t *in_plain, uint64_t *out_plain,
		       uint64_t *out_raw)
{
	*in_raw = z->in_raw;
	*in_plain = z->in_plain;
	*out_plain = z->out_plain;
	*out_raw = z->out_raw;
}
