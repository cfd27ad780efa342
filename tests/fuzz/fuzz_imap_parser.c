/* libFuzzer target for io/imap_parser: the input is fed in chunks whose sizes come from the first
 * bytes, literals are streamed or buffered alternately, and every response is rendered and walked.
 * Any crash, leak or sanitizer report is a bug; parse errors are expected. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "io/imap_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct imap_response *r)
{
	struct fleet_buf b = FLEET_BUF_INIT(4096);
	struct fleet_err err;
	struct imap_strlist words = {0};
	struct imap_uidset set = {0};
	uint32_t v;
	uint64_t n;

	imap_response_render(r, &b, 2000);
	fleet_buf_release(&b);
	for (const struct imap_node *k = r->args; k; k = k->next) {
		imap_node_u64(k, UINT64_MAX, &n);
		if (k->type == IMAP_NODE_LIST)
			imap_list_get(k, "UID");
	}
	if (r->code) {
		imap_code_words(r->code_args, &words);
		imap_strlist_release(&words);
		imap_code_appenduid(r->code_args, &v, &set);
		imap_uidset_release(&set);
		imap_resp_code_u64(r, r->code, &n);
	}
	if (r->status != IMAP_STATUS_NONE)
		imap_response_to_err(r, FLEET_SCOPE_MESSAGE, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser_limits lim;
	struct imap_parser *p;
	struct fleet_err err;
	size_t pos = 0, step;
	unsigned toggle = 0;

	if (size < 1)
		return 0;
	/* Small limits so the fuzzer reaches them. */
	imap_parser_limits_default(&lim);
	lim.max_line = 4096;
	lim.max_depth = 8;
	lim.max_literal = 1 << 20;
	lim.max_buffered_literal = 512;
	lim.max_response = 16384;
	p = imap_parser_new(&lim);
	step = (size_t)(data[0] % 16) + 1;
	data++;
	size--;
	while (pos < size) {
		size_t chunk = size - pos < step ? size - pos : step, off = 0;

		while (off < chunk) {
			struct imap_parser_event ev;
			size_t used;
			int r = imap_parser_next(p, (const char *)data + pos + off, chunk - off, &used, &ev,
						 &err);

			if (r < 0) {
				imap_parser_reset(p);
				off = chunk;
				break;
			}
			off += used;
			if (r == 0)
				break;
			if (ev.type == IMAP_PARSER_LITERAL_START && (toggle++ & 1))
				imap_parser_stream_literal(p);
			if (ev.type == IMAP_PARSER_RESPONSE || ev.type == IMAP_PARSER_LITERAL_START)
				walk(ev.resp);
		}
		pos += chunk;
	}
	imap_parser_finish(p, &err);
	imap_parser_free(&p);
	return 0;
}
