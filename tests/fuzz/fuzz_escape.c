/* Fuzz target: the escapers of common/escape.h on arbitrary bytes. Whatever comes in, each must
 * give valid UTF-8 with no control character that its format forbids, and keep its format's
 * frame (a JSON string quoted with no bare quote inside, a CSV cell quoted with its quotes
 * doubled and no formula first, HTML without < > & " ' of its own). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/escape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fleet_buf run(int (*esc)(struct fleet_buf *, const char *), const char *s, size_t len)
{
	struct fleet_buf b = FLEET_BUF_INIT(6 * len + 16);

	if (esc(&b, s) < 0)
		abort(); /* the documented worst case always fits */
	if (!fleet_utf8_valid(b.data ? b.data : "", b.len))
		abort();
	return b;
}

static void no_controls(const struct fleet_buf *b, const char *allowed)
{
	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];

		if ((c < 0x20 || c == 0x7f) && !strchr(allowed, c))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	size_t len;
	struct fleet_buf b;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	len = strlen(s); /* the escapers take C strings */

	b = run(fleet_escape_html, s, len);
	no_controls(&b, "\t\n");
	if (b.len && strpbrk(b.data, "<>\"'"))
		abort();
	fleet_buf_release(&b);

	b = run(fleet_escape_json, s, len);
	no_controls(&b, "");
	if (b.len < 2 || b.data[0] != '"' || b.data[b.len - 1] != '"')
		abort();
	for (size_t i = 1; i + 1 < b.len; i++) {
		if (b.data[i] == '\\')
			i++; /* an escape: the next byte is its letter */
		else if (b.data[i] == '"' || b.data[i] == '<' || b.data[i] == '>' || b.data[i] == '&')
			abort();
	}
	fleet_buf_release(&b);

	b = run(fleet_escape_csv, s, len);
	no_controls(&b, "\t\r\n");
	if (b.len < 2 || b.data[0] != '"' || b.data[b.len - 1] != '"' || strchr("=+-@\t\r", b.data[1]) != NULL)
		abort();
	for (size_t i = 1; i + 1 < b.len; i++)
		if (b.data[i] == '"' && b.data[++i] != '"')
			abort(); /* a quote inside is always doubled */
	fleet_buf_release(&b);

	b = (struct fleet_buf)FLEET_BUF_INIT(8 * len + 16);
	if (fleet_escape_term(&b, s, len) < 0)
		abort();
	if (!fleet_utf8_valid(b.data ? b.data : "", b.len))
		abort();
	no_controls(&b, "");
	fleet_buf_release(&b);
	free(s);
	return 0;
}
