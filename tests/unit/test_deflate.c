/* Unit tests for io/deflate.c: a round trip, and the bounds on what a server can send (a
 * decompression bomb comes out in read-buffer pieces; input that inflates to nothing is capped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "io/deflate.h"

/* Raw deflate of in, as a server would send it (sync flush, no end of stream). */
static size_t server_deflate(const void *in, size_t len, unsigned char *out, size_t cap)
{
	z_stream d;

	memset(&d, 0, sizeof(d));
	assert_int_equal(deflateInit2(&d, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	d.next_in = (unsigned char *)(uintptr_t)in;
	d.avail_in = (uInt)len;
	d.next_out = out;
	d.avail_out = (uInt)cap;
	assert_int_equal(deflate(&d, Z_SYNC_FLUSH), Z_OK);
	assert_int_equal(d.avail_in, 0);
	len = cap - d.avail_out;
	deflateEnd(&d);
	return len;
}

static void what_we_compress_inflates_back(void **state)
{
	struct io_deflate *a = io_deflate_new(), *b = io_deflate_new();
	struct fleet_buf out = FLEET_BUF_INIT(1 << 20);
	struct fleet_err err;
	const char *text = "a1 APPEND INBOX {5}\r\nhello\r\n";
	char got[256];
	ssize_t n;

	(void)state;
	assert_int_equal(io_deflate_compress(a, text, strlen(text), &out, &err), 0);
	io_deflate_feed(b, out.data, out.len);
	n = io_deflate_inflate(b, got, sizeof(got), &err);
	assert_int_equal(n, (ssize_t)strlen(text));
	assert_memory_equal(got, text, strlen(text));
	assert_int_equal(io_deflate_inflate(b, got, sizeof(got), &err), 0);
	fleet_buf_release(&out);
	io_deflate_free(&a);
	io_deflate_free(&b);
}

static void a_bomb_comes_out_in_pieces_of_the_buffer(void **state)
{
	size_t big = 64u << 20; /* 64 MB of one byte: about 64 KB compressed */
	char *plain = xcalloc(1, big);
	unsigned char *z = xmalloc(1 << 20);
	size_t zlen = server_deflate(plain, big, z, 1 << 20);
	struct io_deflate *d = io_deflate_new();
	struct fleet_err err;
	char piece[4096];
	uint64_t total = 0;
	ssize_t n;

	(void)state;
	assert_true(zlen < 200000);
	io_deflate_feed(d, z, zlen < 65536 ? zlen : 65536);
	while ((n = io_deflate_inflate(d, piece, sizeof(piece), &err)) > 0) {
		assert_true(n <= (ssize_t)sizeof(piece));
		total += (uint64_t)n;
	}
	assert_int_equal(n, 0);
	assert_true(total > 0); /* it only ever gave what fits, and stopped for more input */
	xfree(&plain);
	xfree(&z);
	io_deflate_free(&d);
}

static void input_that_inflates_to_nothing_is_capped(void **state)
{
	unsigned char z[64];
	size_t zlen = server_deflate("", 0, z, sizeof(z)); /* an empty sync-flush block */
	struct io_deflate *d = io_deflate_new();
	struct fleet_err err;
	unsigned char *in;
	size_t cap, fed = 0;
	char out[64];
	ssize_t n = 0;

	(void)state;
	assert_true(zlen > 0);
	while (fed <= 2 * IO_DEFLATE_MAX_IDLE_IN) {
		size_t k = 0;

		in = io_deflate_inbuf(d, &cap);
		while (k + zlen <= cap) {
			memcpy(in + k, z, zlen);
			k += zlen;
		}
		io_deflate_fed(d, k);
		fed += k;
		if ((n = io_deflate_inflate(d, out, sizeof(out), &err)) < 0)
			break;
		assert_int_equal(n, 0);
	}
	assert_true(n < 0);
	assert_string_equal(err.code, IO_ERR_COMPRESS);
	io_deflate_free(&d);
}

static void a_corrupt_stream_fails(void **state)
{
	struct io_deflate *d = io_deflate_new();
	struct fleet_err err;
	char out[64];

	(void)state;
	io_deflate_feed(d, "\xff\xff\xff\xff garbage", 12);
	assert_true(io_deflate_inflate(d, out, sizeof(out), &err) < 0);
	assert_string_equal(err.code, IO_ERR_COMPRESS);
	io_deflate_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(what_we_compress_inflates_back),
		cmocka_unit_test(a_bomb_comes_out_in_pieces_of_the_buffer),
		cmocka_unit_test(input_that_inflates_to_nothing_is_capped),
		cmocka_unit_test(a_corrupt_stream_fails),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("deflate", tests, NULL, NULL);
}
