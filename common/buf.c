#include "common/buf.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

void fleet_buf_init(struct fleet_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->truncated = 0;
}

void fleet_buf_release(struct fleet_buf *b)
{
	xfree(&b->data);
	b->len = 0;
	b->cap = 0;
	b->truncated = 0;
}

void fleet_buf_reset(struct fleet_buf *b)
{
	b->len = 0;
	b->truncated = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int ensure(struct fleet_buf *b, size_t extra)
{
	size_t need, ncap;

	if (extra > b->max || b->len > b->max - extra) {
		b->truncated = 1;
		return -1;
	}
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	b->data = xrealloc(b->data, ncap);
	b->cap = ncap;
	return 0;
}

int fleet_buf_append(struct fleet_buf *b, const void *data, size_t len)
{
	if (ensure(b, len) < 0)
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int fleet_buf_append_str(struct fleet_buf *b, const char *s)
{
	return fleet_buf_append(b, s, strlen(s));
}

int fleet_buf_vappendf(struct fleet_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0) {
		b->truncated = 1;
		return -1;
	}
	if (ensure(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int fleet_buf_appendf(struct fleet_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = fleet_buf_vappendf(b, fmt, ap);
	va_end(ap);
	return r;
}

/* Once truncated, the text stays the prefix it was: nothing more goes in (a closing quote or
 * brace after a hole would make an incomplete text look whole). */
void fleet_buf_add(struct fleet_buf *b, const void *data, size_t len)
{
	if (!b->truncated)
		(void)!fleet_buf_append(b, data, len); /* refused: b->truncated is set */
}

void fleet_buf_add_str(struct fleet_buf *b, const char *s)
{
	fleet_buf_add(b, s, strlen(s));
}

void fleet_buf_vaddf(struct fleet_buf *b, const char *fmt, va_list ap)
{
	if (!b->truncated)
		(void)!fleet_buf_vappendf(b, fmt, ap); /* refused: b->truncated is set */
}

void fleet_buf_addf(struct fleet_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fleet_buf_vaddf(b, fmt, ap);
	va_end(ap);
}

int fleet_buf_truncated(const struct fleet_buf *b)
{
	return b->truncated;
}

void fleet_buf_consume(struct fleet_buf *b, size_t n)
{
	if (n >= b->len) {
		fleet_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

int fleet_buf_mark_cut(struct fleet_buf *b)
{
	size_t keep;

	if (!b->truncated)
		return 0;
	if (b->max < 3)
		return 1;
	keep = b->len < b->max - 3 ? b->len : b->max - 3;
	while (keep > 0 && keep < b->len && ((unsigned char)b->data[keep] & 0xc0) == 0x80)
		keep--; /* data[keep] continues a UTF-8 sequence: cut before it */
	b->len = keep;
	b->truncated = 0;
	fleet_buf_add(b, "...", 3);
	b->truncated = 1;
	return 1;
}

char *fleet_buf_reserve(struct fleet_buf *b, size_t need)
{
	if (ensure(b, need) < 0)
		return NULL;
	return b->data + b->len;
}

void fleet_buf_commit(struct fleet_buf *b, size_t n)
{
	b->len += n;
	b->data[b->len] = '\0';
}

const char *fleet_buf_cstr(const struct fleet_buf *b)
{
	return b->data ? b->data : "";
}

char *fleet_buf_detach(struct fleet_buf *b, size_t *len_out)
{
	char *p = b->data ? b->data : xstrdup("");

	if (len_out)
		*len_out = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->truncated = 0;
	return p;
}
