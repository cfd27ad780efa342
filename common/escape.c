#include "common/escape.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"

size_t fleet_utf8_seq(const char *s, size_t left)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t n;

	if (left == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		n = 2, cp = p[0] & 0x1Fu;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		n = 3, cp = p[0] & 0x0Fu;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		n = 4, cp = p[0] & 0x07u;
	else
		return 0; /* continuation byte, C0/C1 (overlong 2-byte) or F5..FF */
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3Fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

size_t fleet_utf8_put(uint32_t cp, char u[4])
{
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return n;
}

int fleet_utf8_valid(const char *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n)
		if ((n = fleet_utf8_seq(s + i, len - i)) == 0)
			return 0;
	return 1;
}

char *fleet_utf8_sanitize(const char *s)
{
	static const char repl[] = "\xEF\xBF\xBD"; /* U+FFFD */
	size_t len, i = 0, o = 0;
	char *out;

	if (!s)
		return NULL;
	len = strlen(s);
	out = xmalloc(len * 3 + 1); /* each invalid byte grows to three */
	while (i < len) {
		size_t n = fleet_utf8_seq(s + i, len - i);

		if (n == 0) {
			memcpy(out + o, repl, 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
	return out;
}

size_t fleet_utf8_cut(const char *s, size_t len)
{
	size_t back = 0;

	/* Step back over at most three continuation bytes to the lead byte; keep the sequence only
	 * when it is complete. */
	while (back < 4 && back < len && ((unsigned char)s[len - 1 - back] & 0xC0) == 0x80)
		back++;
	if (back < len && (unsigned char)s[len - 1 - back] >= 0xC0) {
		size_t lead = len - 1 - back;

		if (fleet_utf8_seq(s + lead, len - lead) == back + 1)
			return len;
		return lead;
	}
	return len;
}

/* One step of the terminal escaper at s: returns the number of input bytes taken; *verbatim = 1
 * when they are copied as they are, else esc holds their escaped form (NUL-terminated). */
static size_t escape_step(const char *s, size_t left, int *verbatim, char esc[16])
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	*verbatim = 0;
	if (p[0] < 0x20 || p[0] == 0x7F) {
		snprintf(esc, 16, "\\x%02X", p[0]);
		return 1;
	}
	if (p[0] < 0x80) {
		*verbatim = 1;
		return 1;
	}
	n = fleet_utf8_seq(s, left);
	if (n == 0) {
		snprintf(esc, 16, "\\x%02X", p[0]);
		return 1;
	}
	if (n == 2 && p[0] == 0xC2 && p[1] < 0xA0) { /* C1 controls U+0080..U+009F */
		snprintf(esc, 16, "\\x%02X", p[1]);
		return 2;
	}
	if (n == 3 && p[0] == 0xE2 &&
	    ((p[1] == 0x80 && p[2] >= 0xAA && p[2] <= 0xAE) ||
	     (p[1] == 0x81 && p[2] >= 0xA6 && p[2] <= 0xA9))) {
		unsigned cp = (unsigned)(p[0] & 0x0F) << 12 | (unsigned)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);

		snprintf(esc, 16, "\\u{%04X}", cp);
		return 3;
	}
	*verbatim = 1;
	return n;
}

int fleet_escape_term_clean(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		int verbatim;
		char esc[16];
		size_t n = escape_step(s + i, len - i, &verbatim, esc);

		if (!verbatim)
			return 0;
		i += n;
	}
	return 1;
}

int fleet_escape_term(struct fleet_buf *out, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		int verbatim;
		char esc[16];
		size_t n = escape_step(s + i, len - i, &verbatim, esc);

		if (fleet_buf_append(out, verbatim ? s + i : esc, verbatim ? n : strlen(esc)) < 0)
			return -1;
		i += n;
	}
	return 0;
}

size_t fleet_escape_term_into(char *dst, size_t cap, const char *s, size_t len)
{
	size_t i = 0, o = 0;

	if (cap == 0)
		return 0;
	while (i < len) {
		int verbatim;
		char esc[16];
		size_t n = escape_step(s + i, len - i, &verbatim, esc);
		const char *src = verbatim ? s + i : esc;
		size_t m = verbatim ? n : strlen(esc);

		if (o + m > cap - 1)
			break;
		memcpy(dst + o, src, m);
		o += m;
		i += n;
	}
	dst[o] = '\0';
	return o;
}

/* ---- the report formats' escapers ---------------------------------------------------------- */

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* The code point of the valid sequence p[0..n) (n from fleet_utf8_seq). */
static uint32_t code_point(const unsigned char *p, size_t n)
{
	static const unsigned char lead_mask[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
	uint32_t cp = p[0] & lead_mask[n];

	for (size_t i = 1; i < n; i++)
		cp = cp << 6 | (p[i] & 0x3fu);
	return cp;
}

/* C0 and C1 controls and DEL. */
static int is_control(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0);
}

/* Walks s by code point: each well-formed one goes to fn, which returns the text to write for it
 * or NULL to keep it as is; an ill-formed byte is written as bad. */
typedef const char *(*escape_fn)(uint32_t cp, char tmp[8]);

static int escape_with(struct fleet_buf *out, const char *s, escape_fn fn, const char *bad)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t left = strlen((const char *)p);

	while (left) {
		size_t n = fleet_utf8_seq((const char *)p, left);
		char tmp[8];
		const char *rep;

		if (n == 0) {
			if (fleet_buf_append_str(out, bad) < 0)
				return -1;
			p++;
			left--;
			continue;
		}
		rep = fn(code_point(p, n), tmp);
		if ((rep ? fleet_buf_append_str(out, rep) : fleet_buf_append(out, p, n)) < 0)
			return -1;
		p += n;
		left -= n;
	}
	return 0;
}

static const char *html_of(uint32_t cp, char tmp[8])
{
	(void)tmp;
	switch (cp) {
	case '&': return "&amp;";
	case '<': return "&lt;";
	case '>': return "&gt;";
	case '"': return "&quot;";
	case '\'': return "&#39;";
	case '\t':
	case '\n': return NULL;
	default: return is_control(cp) ? REPLACEMENT : NULL;
	}
}

static const char *json_of(uint32_t cp, char tmp[8])
{
	switch (cp) {
	case '"': return "\\\"";
	case '\\': return "\\\\";
	case '\n': return "\\n";
	case '\r': return "\\r";
	case '\t': return "\\t";
	case '<': return "\\u003c";
	case '>': return "\\u003e";
	case '&': return "\\u0026";
	default:
		if (!is_control(cp) && cp != 0x2028 && cp != 0x2029)
			return NULL;
		snprintf(tmp, 8, "\\u%04x", (unsigned)cp);
		return tmp;
	}
}

static const char *csv_of(uint32_t cp, char tmp[8])
{
	(void)tmp;
	if (cp == '"')
		return "\"\"";
	return is_control(cp) && cp != '\t' && cp != '\n' && cp != '\r' ? REPLACEMENT : NULL;
}

int fleet_escape_html(struct fleet_buf *out, const char *s)
{
	return escape_with(out, s, html_of, REPLACEMENT);
}

int fleet_escape_json(struct fleet_buf *out, const char *s)
{
	if (fleet_buf_append(out, "\"", 1) < 0 || escape_with(out, s, json_of, "\\ufffd") < 0)
		return -1;
	return fleet_buf_append(out, "\"", 1);
}

int fleet_escape_csv(struct fleet_buf *out, const char *s)
{
	const char *v = s ? s : "";

	if (fleet_buf_append(out, "\"", 1) < 0)
		return -1;
	if (*v && strchr("=+-@\t\r", *v) && fleet_buf_append(out, "'", 1) < 0)
		return -1;
	if (escape_with(out, v, csv_of, REPLACEMENT) < 0)
		return -1;
	return fleet_buf_append(out, "\"", 1);
}
