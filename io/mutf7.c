/* io/mutf7.c: see mutf7.h. */
#include "io/mutf7.h"

#include <stdint.h>
#include <string.h>

#include "common/escape.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* The value of c in the alphabet above (the one table for both directions), or -1. */
static int b64_value(unsigned char c)
{
	const char *p = c ? memchr(b64, c, sizeof(b64) - 1) : NULL;

	return p ? (int)(p - b64) : -1;
}

static int fail(struct fleet_buf *out, size_t len0, struct fleet_err *err, const char *code, size_t at,
		const char *why)
{
	out->len = len0;
	if (out->data)
		out->data[len0] = '\0';
	return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER, code, "%s at byte %zu", why, at);
}

static int put_utf8(struct fleet_buf *out, uint32_t cp)
{
	char u[4];

	return fleet_buf_append(out, u, fleet_utf8_put(cp, u));
}

int mutf7_decode(const char *in, size_t len, struct fleet_buf *out, struct fleet_err *err)
{
	size_t len0 = out->len, i = 0, run_end = (size_t)-1;

	if (fleet_buf_append(out, "", 0) < 0)
		return fail(out, len0, err, "MUTF7_LIMIT", 0, "mailbox name too long");
	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		uint32_t bits = 0, high = 0;
		unsigned nbits = 0;
		size_t start;
		int units = 0;

		if (c < 0x20 || c > 0x7e)
			return fail(out, len0, err, MUTF7_ERR, i,
				    "invalid modified UTF-7: byte outside printable ASCII");
		if (c != '&') {
			if (fleet_buf_append(out, in + i, 1) < 0)
				return fail(out, len0, err, "MUTF7_LIMIT", i, "mailbox name too long");
			i++;
			continue;
		}
		if (i + 1 < len && in[i + 1] == '-') {
			if (fleet_buf_append(out, "&", 1) < 0)
				return fail(out, len0, err, "MUTF7_LIMIT", i, "mailbox name too long");
			i += 2;
			continue;
		}
		/* Two runs back to back must have been one run: refuse, or names would not round-trip. */
		if (i == run_end)
			return fail(out, len0, err, MUTF7_ERR, i,
				    "invalid modified UTF-7: adjacent encoded runs");
		start = i++;
		for (;;) {
			int v;

			if (i >= len)
				return fail(out, len0, err, MUTF7_ERR, start,
					    "invalid modified UTF-7: unterminated \"&\" shift");
			if (in[i] == '-')
				break;
			v = b64_value((unsigned char)in[i]);
			if (v < 0)
				return fail(out, len0, err, MUTF7_ERR, i,
					    "invalid modified UTF-7: not modified base64");
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			i++;
			if (nbits >= 16) {
				uint32_t u = (bits >> (nbits - 16)) & 0xffff;

				nbits -= 16;
				bits &= (1u << nbits) - 1;
				units++;
				if (high) {
					if (u < 0xdc00 || u > 0xdfff)
						return fail(out, len0, err, MUTF7_ERR, i,
							    "invalid modified UTF-7: lone high surrogate");
					u = 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00);
					high = 0;
				} else if (u >= 0xd800 && u <= 0xdbff) {
					high = u;
					continue;
				} else if (u >= 0xdc00 && u <= 0xdfff) {
					return fail(out, len0, err, MUTF7_ERR, i,
						    "invalid modified UTF-7: lone low surrogate");
				}
				if (u == 0)
					return fail(out, len0, err, MUTF7_ERR, i,
						    "invalid modified UTF-7: encoded NUL");
				if (u >= 0x20 && u <= 0x7e)
					return fail(
					    out, len0, err, MUTF7_ERR, i,
					    "invalid modified UTF-7: printable ASCII must not be encoded");
				if (put_utf8(out, u) < 0)
					return fail(out, len0, err, "MUTF7_LIMIT", i,
						    "mailbox name too long");
			}
		}
		if (high)
			return fail(out, len0, err, MUTF7_ERR, i,
				    "invalid modified UTF-7: lone high surrogate");
		if (units == 0 || nbits >= 6 || bits != 0)
			return fail(out, len0, err, MUTF7_ERR, i, "invalid modified UTF-7: bad base64 padding");
		i++;
		run_end = i;
	}
	return 0;
}

/* Strict UTF-8: returns the code point and its length, or -1. */
static int utf8_next(const unsigned char *s, size_t len, uint32_t *cp, size_t *n)
{
	uint32_t c = s[0], min;
	size_t need;

	if (c < 0x80) {
		*cp = c;
		*n = 1;
		return 0;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		c &= 0x07;
		min = 0x10000;
	} else {
		return -1;
	}
	if (len < need + 1)
		return -1;
	for (size_t k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return -1;
		c = (c << 6) | (s[k] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*cp = c;
	*n = need + 1;
	return 0;
}

static int is_direct(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

int mutf7_encode(const char *in, size_t len, struct fleet_buf *out, struct fleet_err *err)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t len0 = out->len, i = 0;

	if (fleet_buf_append(out, "", 0) < 0)
		return fail(out, len0, err, "MUTF7_LIMIT", 0, "mailbox name too long");
	while (i < len) {
		uint32_t bits = 0;
		unsigned nbits = 0;

		if (is_direct(s[i])) {
			if (fleet_buf_append(out, s[i] == '&' ? "&-" : in + i, s[i] == '&' ? 2 : 1) < 0)
				return fail(out, len0, err, "MUTF7_LIMIT", i, "mailbox name too long");
			i++;
			continue;
		}
		if (fleet_buf_append(out, "&", 1) < 0)
			return fail(out, len0, err, "MUTF7_LIMIT", i, "mailbox name too long");
		while (i < len && !is_direct(s[i])) {
			uint32_t cp, units[2];
			size_t n, nu;

			if (utf8_next(s + i, len - i, &cp, &n) < 0)
				return fail(out, len0, err, "UTF8", i, "invalid UTF-8 in mailbox name");
			if (cp == 0)
				return fail(out, len0, err, "UTF8", i, "NUL in mailbox name");
			if (cp >= 0x10000) {
				units[0] = 0xd800 + ((cp - 0x10000) >> 10);
				units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
				nu = 2;
			} else {
				units[0] = cp;
				nu = 1;
			}
			for (size_t k = 0; k < nu; k++) {
				bits = (bits << 16) | units[k];
				nbits += 16;
				while (nbits >= 6) {
					char ch = b64[(bits >> (nbits - 6)) & 0x3f];

					nbits -= 6;
					bits &= (1u << nbits) - 1;
					if (fleet_buf_append(out, &ch, 1) < 0)
						return fail(out, len0, err, "MUTF7_LIMIT", i,
							    "mailbox name too long");
				}
			}
			i += n;
		}
		if (nbits > 0) {
			char ch = b64[(bits << (6 - nbits)) & 0x3f];

			if (fleet_buf_append(out, &ch, 1) < 0)
				return fail(out, len0, err, "MUTF7_LIMIT", i, "mailbox name too long");
		}
		if (fleet_buf_append(out, "-", 1) < 0)
			return fail(out, len0, err, "MUTF7_LIMIT", i, "mailbox name too long");
	}
	return 0;
}

int mutf7_is_valid(const char *in, size_t len)
{
	struct fleet_buf b = FLEET_BUF_INIT(len * 2 + 16);
	int r = mutf7_decode(in, len, &b, NULL);

	fleet_buf_release(&b);
	return r == 0;
}
