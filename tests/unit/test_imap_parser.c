/* Unit tests for io/imap_parser: every table input is parsed whole, one byte at a time and in random
 * splits, and must give the same transcript; malformed, truncated and oversized input is refused
 * cleanly; the refusal table maps response codes to error classes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "io/imap_parser.h"

#define S(x) x, sizeof(x) - 1

/* ---- transcript: what a consumer sees, independent of how the input was split ---------------- */

static void dump_node(struct fleet_buf *b, const struct imap_node *n)
{
	for (; n; n = n->next) {
		switch (n->type) {
		case IMAP_NODE_ATOM: fleet_buf_add(b, n->str, n->len); break;
		case IMAP_NODE_QUOTED: fleet_buf_addf(b, "\"%s\"", n->str); break;
		case IMAP_NODE_NIL: fleet_buf_add_str(b, "NIL"); break;
		case IMAP_NODE_LITERAL:
			fleet_buf_addf(b, "%s{%zu:", n->literal8 ? "~" : "", n->len);
			fleet_buf_add(b, n->str, n->len);
			fleet_buf_add_str(b, "}");
			break;
		case IMAP_NODE_STREAMED:
			fleet_buf_addf(b, "{streamed %llu}", (unsigned long long)n->size);
			break;
		case IMAP_NODE_LIST:
			fleet_buf_add_str(b, "(");
			dump_node(b, n->child);
			fleet_buf_add_str(b, ")");
			break;
		}
		if (n->next)
			fleet_buf_add_str(b, " ");
	}
}

static void dump_resp(struct fleet_buf *b, const struct imap_response *r)
{
	static const char *const kinds[] = {"U", "T", "C"};

	fleet_buf_addf(b, "%s|%s|", kinds[r->kind], r->tag);
	if (r->has_number)
		fleet_buf_addf(b, "%u", r->number);
	fleet_buf_addf(b, "|%s|", r->name);
	if (r->code)
		fleet_buf_addf(b, "[%s|%s]", r->code, r->code_args);
	fleet_buf_addf(b, "|%s|", r->text);
	dump_node(b, r->args);
}

/* Streams literals of BODY[...] items that are not headers, buffers everything else. */
static int run_parser(struct imap_parser *p, const char *in, size_t len, const size_t *cuts, size_t ncuts,
		      struct fleet_buf *out, struct fleet_err *err)
{
	size_t start = 0;
	struct fleet_buf lit = FLEET_BUF_INIT(1 << 20);

	for (size_t c = 0; c <= ncuts; c++) {
		size_t end = c < ncuts ? cuts[c] : len;
		const char *chunk = in + start;
		size_t clen = end - start, off = 0;

		while (off < clen || clen == 0) {
			struct imap_parser_event ev;
			size_t used;
			int r = imap_parser_next(p, chunk + off, clen - off, &used, &ev, err);

			if (r < 0) {
				fleet_buf_release(&lit);
				return -1;
			}
			assert_true(used <= clen - off);
			off += used;
			if (r == 0)
				break;
			switch (ev.type) {
			case IMAP_PARSER_RESPONSE:
				dump_resp(out, ev.resp);
				fleet_buf_add_str(out, "\n");
				break;
			case IMAP_PARSER_LITERAL_START:
				fleet_buf_addf(out, "start %s %llu\n", ev.item,
						  (unsigned long long)ev.literal_size);
				if (strncmp(ev.item, "BODY[", 5) == 0 && !strstr(ev.item, "HEADER"))
					imap_parser_stream_literal(p);
				break;
			case IMAP_PARSER_LITERAL_DATA:
				/* Zero-copy: chunks point into the caller's input. */
				assert_true(ev.data >= chunk && ev.data + ev.len <= chunk + clen);
				fleet_buf_add(&lit, ev.data, ev.len);
				break;
			case IMAP_PARSER_LITERAL_END:
				fleet_buf_addf(out, "data %s\n", fleet_buf_cstr(&lit));
				fleet_buf_reset(&lit);
				break;
			case IMAP_PARSER_NEED_MORE: break;
			}
		}
		start = end;
	}
	fleet_buf_release(&lit);
	return imap_parser_finish(p, err);
}

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

/* Parses in one piece, byte by byte and in 20 random splits; all must agree. Returns the
 * transcript (heap) or NULL with err filled when every mode failed alike. */
static char *parse_all_ways(const struct imap_parser_limits *lim, const char *in, size_t len,
			    struct fleet_err *err)
{
	struct fleet_buf ref = FLEET_BUF_INIT(1 << 22);
	struct imap_parser *p = imap_parser_new(lim);
	size_t *cuts = xcalloc(len + 1, sizeof(*cuts));
	int rref = run_parser(p, in, len, NULL, 0, &ref, err);
	char refcode[FLEET_ERR_CODE_MAX];

	snprintf(refcode, sizeof(refcode), "%s", err->code);
	for (int mode = 0; mode < 21; mode++) {
		struct fleet_buf got = FLEET_BUF_INIT(1 << 22);
		struct fleet_err e2;
		size_t n = 0;
		int r;

		fleet_err_clear(&e2);
		if (mode == 0) {
			for (size_t i = 1; i < len; i++)
				cuts[n++] = i;
		} else {
			for (size_t i = 1; i < len; i++)
				if (rng() % 4 == 0)
					cuts[n++] = i;
		}
		imap_parser_reset(p);
		r = run_parser(p, in, len, cuts, n, &got, &e2);
		assert_int_equal(r, rref);
		if (r == 0)
			assert_string_equal(fleet_buf_cstr(&got), fleet_buf_cstr(&ref));
		else
			assert_string_equal(e2.code, refcode);
		fleet_buf_release(&got);
	}
	xfree(&cuts);
	imap_parser_free(&p);
	if (rref < 0) {
		fleet_buf_release(&ref);
		return NULL;
	}
	return fleet_buf_detach(&ref, NULL);
}

/* ---- well-formed responses --------------------------------------------------------------------- */

/* Parses the input (the first field) of every row of tests/data/NAME in every split, then has CHECK judge
 * the row, what parse_all_ways returned and its error. */
static void parse_every_row(const char *name, void (*check)(const struct unit_row *r, const char *got,
							     const struct fleet_err *err))
{
	struct unit_row *rows;
	size_t n = unit_read_rows(name, &rows);

	for (size_t i = 0; i < n; i++) {
		struct fleet_err err;
		char *got;

		fleet_err_clear(&err);
		got = parse_all_ways(NULL, rows[i].f[0], rows[i].len[0], &err);
		check(&rows[i], got, &err);
		xfree(&got);
	}
	unit_free_rows(rows, n);
}

/* A row of imap_good.tsv: its input parses, in any split, to the dump in its second field. */
static void parsed_to_its_dump(const struct unit_row *r, const char *got, const struct fleet_err *err)
{
	if (!got)
		fail_msg("line %d refused: %s (%s)", r->line, err->message, err->detail);
	if (strcmp(got, r->f[1]) != 0)
		fail_msg("line %d:\n got: %s\nwant: %s", r->line, got, r->f[1]);
}

static void parses_well_formed_responses_identically_in_any_split(void **state)
{
	parse_every_row("unit/imap_good.tsv", parsed_to_its_dump);
}

/* ---- malformed and truncated input ------------------------------------------------------------ */

/* A row of imap_bad.tsv: its input is refused as a parse bug with the code in its second field. */
static void refused_as_a_parse_bug(const struct unit_row *r, const char *got, const struct fleet_err *err)
{
	if (got)
		fail_msg("line %d accepted: %s", r->line, got);
	assert_string_equal(err->code, r->f[1]);
	assert_int_equal(err->cls, FLEET_ERR_BUG);
	assert_int_equal(err->scope, FLEET_SCOPE_ACCOUNT);
	assert_true(strncmp(err->message, "malformed IMAP response", 23) == 0);
}

static void refuses_malformed_and_truncated_input_as_parse_bug(void **state)
{
	parse_every_row("unit/imap_bad.tsv", refused_as_a_parse_bug);
}

static void error_detail_quotes_the_offending_line(void **state)
{
	struct fleet_err err;
	char *got = parse_all_ways(NULL, S("* 1 FETCH (UID 1))\r\n"), &err);

	assert_null(got);
	assert_non_null(strstr(err.detail, "* 1 FETCH (UID 1))\\x0d\\x0a"));
}

static void parser_refuses_input_after_an_error_until_reset(void **state)
{
	struct imap_parser *p = imap_parser_new(NULL);
	struct imap_parser_event ev;
	struct fleet_err err;
	size_t used;

	assert_int_equal(imap_parser_next(p, S("bogus\r\n"), &used, &ev, &err), -1);
	assert_int_equal(imap_parser_next(p, S("* OK\r\n"), &used, &ev, &err), -1);
	imap_parser_reset(p);
	assert_int_equal(imap_parser_next(p, S("* OK\r\n"), &used, &ev, &err), IMAP_PARSER_RESPONSE);
	imap_parser_free(&p);
	assert_null(p);
}

/* ---- limits ------------------------------------------------------------------------------------- */

static void small_limits(struct imap_parser_limits *l)
{
	imap_parser_limits_default(l);
	l->max_line = 100;
	l->max_depth = 4;
	l->max_literal = 1000;
	l->max_buffered_literal = 50;
	l->max_response = 4096;
}

/* Input over one of small_limits' caps: HEAD, then FILLER TIMES times, then TAIL. */
struct over_limit {
	const char *name; /* the test's name in the TAP output */
	const char *head, *filler;
	int times;
	const char *tail;
};

static const struct over_limit over_limits[] = {
    {"refuses_line_longer_than_the_limit", "* SEARCH", " 12", 40, "\r\n"},
    /* without an end of line the parser must stop collecting at the limit, not wait forever */
    {"refuses_line_longer_than_the_limit: without an end of line", "", "x", 200, ""},
    /* BODY[HEADER] is buffered by the test consumer: 51 bytes exceed the 50-byte cap */
    {"refuses_buffering_a_literal_above_the_buffered_limit", "* 1 FETCH (BODY[HEADER] {51}\r\n", "h", 51,
     ")\r\n"},
    /* many small buffered literals: each fits, together they exceed max_response */
    {"refuses_response_larger_than_the_limit", "* X (", " {40}\r\n0123456789012345678901234567890123456789", 100,
     ")\r\n"},
};

/* Runs one row of over_limits (the test's state): the parser refuses it, every way it is fed, as a
 * bug of the server's (PARSE_LIMIT). */
static void input_over_a_limit_is_refused(void **state)
{
	const struct over_limit *r = *state;
	struct imap_parser_limits l;
	struct fleet_buf in = FLEET_BUF_INIT(1 << 16);
	struct fleet_err err;

	small_limits(&l);
	fleet_buf_add_str(&in, r->head);
	for (int i = 0; i < r->times; i++)
		fleet_buf_add_str(&in, r->filler);
	fleet_buf_add_str(&in, r->tail);
	assert_null(parse_all_ways(&l, in.data, in.len, &err));
	assert_string_equal(err.code, "PARSE_LIMIT");
	assert_int_equal(err.cls, FLEET_ERR_BUG);
	fleet_buf_release(&in);
}

static void line_limit_does_not_count_literal_bytes(void **state)
{
	struct imap_parser_limits l;
	struct fleet_buf in = FLEET_BUF_INIT(1 << 16);
	struct fleet_err err;
	char *got;

	small_limits(&l);
	fleet_buf_add_str(&in, "* 1 FETCH (BODY[] {900}\r\n");
	for (int i = 0; i < 900; i++)
		fleet_buf_add_str(&in, "y");
	fleet_buf_add_str(&in, ")\r\n");
	got = parse_all_ways(&l, in.data, in.len, &err);
	assert_non_null(got);
	assert_non_null(strstr(got, "{streamed 900}"));
	xfree(&got);
	fleet_buf_release(&in);
}

static void refuses_nesting_deeper_than_the_limit(void **state)
{
	struct imap_parser_limits l;
	struct fleet_err err;
	char *got;

	small_limits(&l);
	got = parse_all_ways(&l, S("* X ((((a))))\r\n"), &err);
	assert_non_null(got);
	xfree(&got);
	assert_null(parse_all_ways(&l, S("* X (((((a)))))\r\n"), &err));
	assert_string_equal(err.code, "PARSE_LIMIT");
	/* The default depth stops a hostile server's 100000 parentheses without recursion. */
	{
		struct fleet_buf in = FLEET_BUF_INIT(1 << 20);
		struct imap_parser *p = imap_parser_new(NULL);
		struct imap_parser_event ev;
		size_t used;

		fleet_buf_add_str(&in, "* X ");
		for (int i = 0; i < 60000; i++)
			fleet_buf_add(&in, "(", 1);
		fleet_buf_add_str(&in, "\r\n");
		assert_int_equal(imap_parser_next(p, in.data, in.len, &used, &ev, &err), -1);
		assert_string_equal(err.code, "PARSE_LIMIT");
		imap_parser_free(&p);
		fleet_buf_release(&in);
	}
}

static void refuses_literal_larger_than_the_limit_even_when_streamed(void **state)
{
	struct imap_parser_limits l;
	struct fleet_err err;

	small_limits(&l);
	assert_null(parse_all_ways(&l, S("* 1 FETCH (BODY[] {1001}\r\n"), &err));
	assert_string_equal(err.code, "PARSE_LIMIT");
	assert_non_null(strstr(err.message, "1001"));
	/* The default streamed limit is 1 GiB. */
	assert_null(parse_all_ways(NULL, S("* 1 FETCH (BODY[] {1073741825}\r\n"), &err));
	assert_string_equal(err.code, "PARSE_LIMIT");
}

/* ---- the literal-start view ------------------------------------------------------------------ */

/* FEED(P, IN, END, OFF, EV, WANT): the parser P reads IN from OFF up to END into EV and must return WANT
 * (else the test fails at the caller's line); OFF moves past the bytes it used. */
#define FEED(p, in, end, off, ev, want) feed_at((p), (in), (end), &(off), (ev), (want), __FILE__, __LINE__)
static void feed_at(struct imap_parser *p, const char *in, size_t end, size_t *off, struct imap_parser_event *ev,
		    int want, const char *file, int line)
{
	struct fleet_err err;
	size_t used = 0;
	int got;

	fleet_err_clear(&err);
	got = imap_parser_next(p, in + *off, end - *off, &used, ev, &err);
	if (got != want) {
		print_error("imap_parser_next returned %d, want %d (%s)\n", got, want, err.message);
		_fail(file, line);
	}
	*off += used;
}

static void literal_start_shows_the_response_parsed_so_far(void **state)
{
	const char in[] = "* 12 FETCH (UID 345 FLAGS (\\Seen) BODY[] {5}\r\nhello)\r\n";
	struct imap_parser *p = imap_parser_new(NULL);
	struct imap_parser_event ev;
	struct fleet_err err;
	size_t used, off = 0;
	const struct imap_node *list;
	uint64_t uid;

	FEED(p, in, sizeof(in) - 1, off, &ev, IMAP_PARSER_LITERAL_START);
	assert_false(ev.resp->complete);
	assert_true(ev.resp->has_number);
	assert_int_equal(ev.resp->number, 12);
	assert_string_equal(ev.resp->name, "FETCH");
	assert_string_equal(ev.item, "BODY[]");
	assert_int_equal(ev.literal_size, 5);
	list = ev.resp->args;
	assert_non_null(list);
	assert_int_equal(list->type, IMAP_NODE_LIST);
	assert_int_equal(imap_node_u64(imap_list_get(list, "UID"), UINT32_MAX, &uid), 0);
	assert_int_equal(uid, 345);
	imap_parser_stream_literal(p);
	assert_int_equal(imap_parser_next(p, in + off, sizeof(in) - 1 - off, &used, &ev, &err),
			 IMAP_PARSER_LITERAL_DATA);
	assert_ptr_equal(ev.data, in + off);
	assert_int_equal(ev.len, 5);
	off += used;
	FEED(p, in, sizeof(in) - 1, off, &ev, IMAP_PARSER_LITERAL_END);
	FEED(p, in, sizeof(in) - 1, off, &ev, IMAP_PARSER_RESPONSE);
	assert_int_equal(off, sizeof(in) - 1);
	assert_true(ev.resp->complete);
	assert_int_equal(imap_node_nth(ev.resp->args->child, 5)->type, IMAP_NODE_STREAMED);
	assert_int_equal(imap_node_nth(ev.resp->args->child, 5)->size, 5);
	assert_true(imap_parser_at_boundary(p));
	imap_parser_free(&p);
}

/* What the client tells the stream it may wait for: never more than the literal still owes. */
static void literal_left_counts_only_literal_bytes_still_to_come(void **state)
{
	const char in[] = "* 1 FETCH (UID 7 BODY[] {10}\r\n0123456789 FLAGS ({3}\r\nabc))\r\n";
	struct imap_parser *p = imap_parser_new(NULL);
	struct imap_parser_event ev;
	size_t off = 0, body = strchr(in, '\n') + 1 - in;

	(void)state;
	assert_int_equal(imap_parser_literal_left(p), 0);
	FEED(p, in, sizeof(in) - 1, off, &ev, IMAP_PARSER_LITERAL_START);
	assert_int_equal(imap_parser_literal_left(p), 10);
	imap_parser_stream_literal(p);
	/* Four body bytes, then the rest. */
	FEED(p, in, body + 4, off, &ev, IMAP_PARSER_LITERAL_DATA);
	assert_int_equal(imap_parser_literal_left(p), 6);
	FEED(p, in, sizeof(in) - 1, off, &ev, IMAP_PARSER_LITERAL_DATA);
	assert_int_equal(imap_parser_literal_left(p), 0);
	FEED(p, in, sizeof(in) - 1, off, &ev, IMAP_PARSER_LITERAL_END);
	/* A second, buffered literal in the same response. */
	FEED(p, in, sizeof(in) - 1, off, &ev, IMAP_PARSER_LITERAL_START);
	assert_int_equal(imap_parser_literal_left(p), 3);
	FEED(p, in, off + 1, off, &ev, IMAP_PARSER_NEED_MORE);
	assert_int_equal(imap_parser_literal_left(p), 2);
	FEED(p, in, sizeof(in) - 1, off, &ev, IMAP_PARSER_RESPONSE);
	assert_int_equal(off, sizeof(in) - 1);
	assert_int_equal(imap_parser_literal_left(p), 0);
	imap_parser_free(&p);
}

/* The first whole response of IN (NUL-terminated), read by a new parser *P: the response lives as long as
 * the parser, which the caller frees. Fails the test when IN holds no whole response. */
static const struct imap_response *first_response(struct imap_parser **p, const char *in)
{
	struct imap_parser_event ev;
	struct fleet_err err;
	size_t used, off = 0, len = strlen(in);
	int r;

	*p = imap_parser_new(NULL);
	while ((r = imap_parser_next(*p, in + off, len - off, &used, &ev, &err)) > 0 &&
	       r != IMAP_PARSER_RESPONSE)
		off += used;
	if (r != IMAP_PARSER_RESPONSE)
		fail_msg("no whole response in %s: event %d (%s)", in, r, r < 0 ? err.message : "");
	return ev.resp;
}

static void render_elides_literal_bodies(void **state)
{
	struct imap_parser *p;
	const struct imap_response *resp =
	    first_response(&p, "* 1 FETCH (UID 5 BODY[HEADER] {11}\r\nSecret: yes FLAGS ())\r\n");
	struct fleet_buf b = FLEET_BUF_INIT(1024);

	imap_response_render(resp, &b, 200);
	assert_string_equal(fleet_buf_cstr(&b), "* 1 FETCH (UID 5 BODY[HEADER] {11 bytes} FLAGS ())");
	fleet_buf_release(&b);
	imap_parser_free(&p);
}

/* ---- codes, sets, refusal table -------------------------------------------------------------------- */

static void uid_sets_parse_ranges_lists_and_star(void **state)
{
	struct imap_uidset set = {0};
	uint32_t uid;

	assert_int_equal(imap_uidset_parse(&set, S("5:7")), 0);
	assert_int_equal(imap_uidset_count(&set), 3);
	imap_uidset_release(&set);
	assert_int_equal(imap_uidset_parse(&set, S("1,3:4,9")), 0);
	assert_int_equal(imap_uidset_count(&set), 4);
	assert_int_equal(imap_uidset_nth(&set, 2, &uid), 0);
	assert_int_equal(uid, 4);
	assert_int_equal(imap_uidset_nth(&set, 3, &uid), 0);
	assert_int_equal(uid, 9);
	assert_int_equal(imap_uidset_nth(&set, 4, &uid), -1);
	assert_true(imap_uidset_contains(&set, 3));
	assert_false(imap_uidset_contains(&set, 5));
	imap_uidset_release(&set);
	assert_int_equal(imap_uidset_parse(&set, S("7:5")), 0);
	assert_int_equal(set.r[0].lo, 5);
	imap_uidset_release(&set);
	assert_int_equal(imap_uidset_parse(&set, S("1:*")), 0);
	assert_int_equal(imap_uidset_count(&set), 4294967295ull);
	imap_uidset_release(&set);
	static const char *const bad_sets[] = {"",   ",",  "1,",   "0",		 "a",
					       "1:", ":2", "1::2", "4294967296", "1 2"};
	for (size_t i = 0; i < sizeof(bad_sets) / sizeof(bad_sets[0]); i++) {
		assert_int_equal(imap_uidset_parse(&set, bad_sets[i], strlen(bad_sets[i])), -1);
		assert_int_equal(set.n, 0);
	}
	imap_uidset_release(&set);
}

static void appenduid_and_copyuid_codes_parse(void **state)
{
	struct imap_uidset a = {0}, b = {0};
	uint32_t v;

	assert_int_equal(imap_code_appenduid("38505 3955", &v, &a), 0);
	assert_int_equal(v, 38505);
	assert_int_equal(imap_uidset_count(&a), 1);
	assert_int_equal(a.r[0].lo, 3955);
	imap_uidset_release(&a);
	assert_int_equal(imap_code_appenduid("38505 3955:3957", &v, &a), 0);
	assert_int_equal(imap_uidset_count(&a), 3);
	imap_uidset_release(&a);
	assert_int_equal(imap_code_appenduid("38505 3955,3960", &v, &a), 0);
	assert_int_equal(imap_uidset_count(&a), 2);
	imap_uidset_release(&a);
	assert_int_equal(imap_code_appenduid("0 1", &v, &a), -1);
	assert_int_equal(imap_code_appenduid("1", &v, &a), -1);
	assert_int_equal(imap_code_appenduid("1 2 3", &v, &a), -1);
	assert_int_equal(imap_code_appenduid("1 *", &v, &a), -1);
	assert_int_equal(imap_code_copyuid("38505 304,319:320 3956:3958", &v, &a, &b), 0);
	assert_int_equal(imap_uidset_count(&a), 3);
	assert_int_equal(imap_uidset_count(&b), 3);
	imap_uidset_release(&a);
	imap_uidset_release(&b);
}

static void code_words_split_capabilities_and_flag_lists(void **state)
{
	struct imap_strlist l = {0};

	imap_code_words("(\\Deleted \\Seen \\*)", &l);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[2], "\\*");
	assert_int_equal(imap_strlist_find(&l, "\\seen"), 1);
	imap_strlist_release(&l);
	imap_code_words("IMAP4rev1  IDLE ", &l);
	assert_int_equal(l.n, 2);
	imap_strlist_release(&l);
}

/* ENUM_NAMED(NAME_FN, N, S): the value v in 0..N-1 whose NAME_FN(v) is S; fails the test if none is. */
#define ENUM_NAMED(name_fn, n, s)                                                                              \
	__extension__({                                                                                        \
		int v_ = 0;                                                                                    \
		while (v_ < (n) && strcmp(name_fn(v_), (s)) != 0)                                              \
			v_++;                                                                                  \
		if (v_ == (n))                                                                                 \
			fail_msg("unknown name '%s'", (s));                                                    \
		v_;                                                                                            \
	})

/* The cases are rows of tests/data/unit/imap_refusals.tsv (its header names the fields). */
static void refusal_table_maps_codes_to_class_and_scope(void **state)
{
	struct unit_row *rows;
	size_t n = unit_read_rows("unit/imap_refusals.tsv", &rows);

	for (size_t i = 0; i < n; i++) {
		char **f = rows[i].f;
		enum imap_status st = ENUM_NAMED(imap_status_name, IMAP_STATUS_BYE + 1, f[0]);
		const char *code = strcmp(f[1], "-") != 0 ? f[1] : NULL, *text = f[2];
		enum fleet_err_scope dflt = ENUM_NAMED(fleet_err_scope_name, FLEET_SCOPE_RUN + 1, f[3]);
		enum fleet_err_class cls = ENUM_NAMED(fleet_err_class_name, FLEET_ERR_BUG + 1, f[4]);
		enum fleet_err_scope scope = ENUM_NAMED(fleet_err_scope_name, FLEET_SCOPE_RUN + 1, f[5]);
		unsigned retry_ms = (unsigned)strtoul(f[7], NULL, 10);
		struct fleet_err err;

		assert_int_equal(rows[i].nf, 8);
		fleet_err_clear(&err);
		assert_int_equal(imap_status_to_err(st, code, text, dflt, &err), -1);
		if (err.cls != cls || err.scope != scope || strcmp(err.code, f[6]) != 0 || err.retry_after_ms != retry_ms)
			fail_msg("line %d (%s %s): got %s/%s/%s/%u", rows[i].line, f[1], text, fleet_err_class_name(err.cls),
				 fleet_err_scope_name(err.scope), err.code, err.retry_after_ms);
		assert_non_null(strstr(err.message, text));
	}
	unit_free_rows(rows, n);
}

static void refusal_from_a_parsed_response_uses_its_code_and_text(void **state)
{
	struct imap_parser *p;
	const struct imap_response *resp = first_response(&p, "a7 NO [OVERQUOTA] Quota exceeded\r\n");
	struct fleet_err err;

	assert_int_equal(imap_response_to_err(resp, FLEET_SCOPE_MESSAGE, &err), -1);
	assert_int_equal(err.cls, FLEET_ERR_PERMANENT);
	assert_int_equal(err.scope, FLEET_SCOPE_ACCOUNT);
	assert_string_equal(err.code, "OVERQUOTA");
	assert_string_equal(err.message, "server answered NO [OVERQUOTA] Quota exceeded");
	imap_parser_free(&p);
}

static void numeric_codes_read_as_numbers(void **state)
{
	struct imap_parser *p;
	const struct imap_response *resp = first_response(&p, "* OK [UIDVALIDITY 3857529045] x\r\n");
	uint64_t v;

	assert_true(imap_resp_has_code(resp, "uidvalidity"));
	assert_int_equal(imap_resp_code_u64(resp, "UIDVALIDITY", &v), 0);
	assert_int_equal(v, 3857529045u);
	assert_int_equal(imap_resp_code_u64(resp, "UIDNEXT", &v), -1);
	imap_parser_free(&p);
}

static void uid_sets_are_written_with_ranges_and_cut_at_the_limit(void **state)
{
	static const uint32_t uids[] = {1, 2, 3, 7, 9, 10, 4000000000u};
	struct fleet_buf b = FLEET_BUF_INIT(1024);

	assert_int_equal(imap_uidset_format(&b, uids, 7, 0), 1);
	assert_string_equal(fleet_buf_cstr(&b), "1:3,7,9:10,4000000000");
	fleet_buf_reset(&b);
	assert_int_equal(imap_uidset_format(&b, uids, 7, 8), 0);
	assert_string_equal(fleet_buf_cstr(&b), "1:3,7"); /* the next item would pass 8 bytes */
	fleet_buf_reset(&b);
	assert_int_equal(imap_uidset_format(&b, uids, 0, 0), 1);
	assert_string_equal(fleet_buf_cstr(&b), "");
	fleet_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_well_formed_responses_identically_in_any_split),
	    cmocka_unit_test(refuses_malformed_and_truncated_input_as_parse_bug),
	    cmocka_unit_test(error_detail_quotes_the_offending_line),
	    cmocka_unit_test(parser_refuses_input_after_an_error_until_reset),
	    cmocka_unit_test(line_limit_does_not_count_literal_bytes),
	    cmocka_unit_test(refuses_nesting_deeper_than_the_limit),
	    cmocka_unit_test(refuses_literal_larger_than_the_limit_even_when_streamed),
	    cmocka_unit_test(literal_start_shows_the_response_parsed_so_far),
	    cmocka_unit_test(literal_left_counts_only_literal_bytes_still_to_come),
	    cmocka_unit_test(render_elides_literal_bodies),
	    cmocka_unit_test(uid_sets_parse_ranges_lists_and_star),
	    cmocka_unit_test(appenduid_and_copyuid_codes_parse),
	    cmocka_unit_test(code_words_split_capabilities_and_flag_lists),
	    cmocka_unit_test(refusal_table_maps_codes_to_class_and_scope),
	    cmocka_unit_test(refusal_from_a_parsed_response_uses_its_code_and_text),
	    cmocka_unit_test(numeric_codes_read_as_numbers),
	    cmocka_unit_test(uid_sets_are_written_with_ranges_and_cut_at_the_limit),
	};

	/* each row of over_limits is a test of its own, by its name */
	return unit_run_rows("imap_parser", tests, over_limits, input_over_a_limit_is_refused, NULL, NULL, NULL);
}
