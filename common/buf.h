/* common/buf.h: a growable byte buffer with a mandatory size cap (after curl's dynbuf).
 *
 * Every buffer that holds network input has a cap, so a hostile server cannot make imapfleet
 * allocate without bound. The data is always NUL-terminated (not counted in len) so it can be
 * read as a C string when it holds text.
 *
 * Truncation: an append that would pass the cap changes nothing and marks the buffer truncated
 * (sticky until reset or release). Two ways to handle it, both checked by the compiler:
 * - fleet_buf_append* return -1 and are warn_unused_result: for the caller that reacts to each
 *   append (network input, a command that must fit whole);
 * - fleet_buf_add* return nothing: for text built in many steps, where the caller asks once,
 *   where the text is used, with fleet_buf_truncated (warn_unused_result as well).
 */
#ifndef IMAPFLEET_COMMON_BUF_H
#define IMAPFLEET_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct fleet_buf {
	char *data;  /* NULL until the first append */
	size_t len;  /* bytes in use */
	size_t cap;  /* bytes allocated */
	size_t max;  /* hard limit on len */
	int truncated; /* an append was refused since the last reset */
};

#define FLEET_BUF_INIT(maxlen) { NULL, 0, 0, (maxlen), 0 }
#define FLEET_BUF_MUST_CHECK __attribute__((warn_unused_result))

void fleet_buf_init(struct fleet_buf *b, size_t max);
void fleet_buf_release(struct fleet_buf *b);
/* Empties the buffer, keeps the allocation. */
void fleet_buf_reset(struct fleet_buf *b);
/* Returns 0, or -1 (buffer unchanged, marked truncated) when the result would exceed max. */
int fleet_buf_append(struct fleet_buf *b, const void *data, size_t len) FLEET_BUF_MUST_CHECK;
int fleet_buf_append_str(struct fleet_buf *b, const char *s) FLEET_BUF_MUST_CHECK;
int fleet_buf_appendf(struct fleet_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)))
FLEET_BUF_MUST_CHECK;
int fleet_buf_vappendf(struct fleet_buf *b, const char *fmt, va_list ap) FLEET_BUF_MUST_CHECK;
/* The same without a result: an append that does not fit only marks the buffer truncated, and
 * once it is, these add nothing more (the text stays a prefix of what was meant). */
void fleet_buf_add(struct fleet_buf *b, const void *data, size_t len);
void fleet_buf_add_str(struct fleet_buf *b, const char *s);
void fleet_buf_addf(struct fleet_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fleet_buf_vaddf(struct fleet_buf *b, const char *fmt, va_list ap);
/* 1 when an append was refused since the last reset (the text is incomplete), else 0. */
int fleet_buf_truncated(const struct fleet_buf *b) FLEET_BUF_MUST_CHECK;
/* For text shown to people (log lines, notes, hints): when the buffer was cut, ends it with "..."
 * in place of its last bytes (never splitting a UTF-8 sequence) and returns 1; else 0. The buffer
 * stays marked truncated. */
int fleet_buf_mark_cut(struct fleet_buf *b);
/* Drops the first n bytes (n > len drops all). */
void fleet_buf_consume(struct fleet_buf *b, size_t n);
/* Makes room for `need` more bytes and returns where they go (use fleet_buf_commit after). */
char *fleet_buf_reserve(struct fleet_buf *b, size_t need);
void fleet_buf_commit(struct fleet_buf *b, size_t n);
/* Always a valid C string, "" when empty. Borrowed. */
const char *fleet_buf_cstr(const struct fleet_buf *b);
/* Hands the heap string to the caller and leaves the buffer empty. */
char *fleet_buf_detach(struct fleet_buf *b, size_t *len_out);

#endif
