/* io/deflate.h: the COMPRESS=DEFLATE layer of an IMAP connection (RFC 4978), on raw deflate
 * streams in both directions (zlib, windowBits -15).
 *
 * Used by io/imap.c between its buffers and the stream: what the client writes is compressed and
 * flushed (Z_SYNC_FLUSH) at every write; what the server sends is inflated piece by piece into the
 * client's fixed read buffer, so memory stays bounded whatever the server sends: a decompression
 * bomb only yields more bytes to the response parser, whose caps (io/imap.h: RESPONSE_LIMIT) apply
 * to the inflated bytes as to any others. Input that inflates to nothing (empty blocks, flushes)
 * is capped too: IO_DEFLATE_MAX_IDLE_IN compressed bytes without one byte of output fail the
 * connection. Not thread-safe: one layer belongs to one connection.
 */
#ifndef IMAPFLEET_IO_DEFLATE_H
#define IMAPFLEET_IO_DEFLATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"

#define IO_ERR_COMPRESS "COMPRESS" /* the server's compressed stream is corrupt or empty (account) */
#define IO_DEFLATE_MAX_IDLE_IN (1u << 20)
#define IO_DEFLATE_LEVEL 1 /* our side: fastest (the bodies we send are mostly already encoded) */
/* Compressed bytes taken in one call: a read buffer's worth (IMAP_READ_CHUNK). */
#define IO_DEFLATE_IN_MAX (64 * 1024)
/* Compressed output is produced in chunks of this size (on the stack). */
#define IO_DEFLATE_OUT_CHUNK (32 * 1024)

struct io_deflate;

struct io_deflate *io_deflate_new(void);
void io_deflate_free(struct io_deflate **z);

/* Compresses len bytes and flushes them (Z_SYNC_FLUSH), appending the result to out. */
int io_deflate_compress(struct io_deflate *z, const void *in, size_t len, struct fleet_buf *out,
			struct fleet_err *err);

/* Where to read compressed input: a buffer of *cap bytes, valid until io_deflate_fed. Only
 * while io_deflate_has_input is 0. */
void *io_deflate_inbuf(struct io_deflate *z, size_t *cap);
void io_deflate_fed(struct io_deflate *z, size_t n);
/* Copies n compressed bytes in (the bytes that came behind the server's OK to COMPRESS). n must
 * not exceed the capacity io_deflate_inbuf gives. */
void io_deflate_feed(struct io_deflate *z, const void *in, size_t n);

/* Inflates into out (cap bytes): > 0 bytes produced, 0 when more input is needed, < 0 on a corrupt
 * stream, its end, or input that produced nothing for too long (err: IO_ERR_COMPRESS). */
ssize_t io_deflate_inflate(struct io_deflate *z, void *out, size_t cap, struct fleet_err *err);

/* 1 when input is buffered or output may be pending (a read need not wait for the socket). */
int io_deflate_has_input(const struct io_deflate *z);

/* Bytes before and after compression, both directions (for logs and benchmarks). */
void io_deflate_counts(const struct io_deflate *z, uint64_t *in_raw, uint64_t *in_plain, uint64_t *out_plain,
		       uint64_t *out_raw);

#endif
