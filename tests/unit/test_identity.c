/* Unit tests for engine/identity.c: dates as instants, header hashing, multiset matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "engine/identity.h"

static void internaldate_is_an_instant_whatever_the_zone(void **state)
{
	int64_t a, b, c;

	assert_int_equal(identity_parse_internaldate("17-Jul-1996 02:44:25 -0700", &a), 0);
	assert_int_equal(identity_parse_internaldate("17-Jul-1996 09:44:25 +0000", &b), 0);
	assert_true(a == b);
	assert_true(a == 837596665);
	assert_int_equal(identity_parse_internaldate(" 1-Jan-2020 00:00:00 +0100", &c), 0);
	assert_true(c == 1577833200);
}

static void malformed_internaldates_are_refused(void **state)
{
	int64_t t;
	const char *bad[] = {"", "17-Jux-1996 02:44:25 -0700", "17-Jul-1996 02:44:25", "17/Jul/1996 02:44:25 -0700",
			     "99-Jul-1996 02:44:25 -0700", "17-Jul-1996 25:44:25 -0700"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(identity_parse_internaldate(bad[i], &t), -1);
}

static void header_hash_ignores_folding_case_of_names_and_field_order(void **state)
{
	const char *a = "Message-ID: <1@x>\r\nSubject: hello\r\n  world\r\nFrom: a@x\r\n\r\n";
	const char *b = "from: a@x\r\nSUBJECT: hello world\r\nmessage-id: <1@x>\r\n\r\n";
	const char *c = "from: a@x\r\nSUBJECT: hello World\r\nmessage-id: <1@x>\r\n\r\n";
	uint8_t ha[16], hb[16], hc[16];

	identity_header_hash(a, strlen(a), ha);
	identity_header_hash(b, strlen(b), hb);
	identity_header_hash(c, strlen(c), hc);
	assert_memory_equal(ha, hb, 16);
	assert_memory_not_equal(ha, hc, 16); /* values are compared exactly */
}

static void an_empty_header_block_hashes_consistently(void **state)
{
	uint8_t h1[16], h2[16];

	identity_header_hash("\r\n", 2, h1);
	identity_header_hash("", 0, h2);
	assert_memory_equal(h1, h2, 16);
}

static struct msg_ident ident(uint32_t uid, uint64_t size, int64_t date, uint8_t tag)
{
	struct msg_ident m;

	memset(&m, 0, sizeof(m));
	m.uid = uid;
	m.size = size;
	m.date = date;
	m.hdr[0] = tag;
	m.msgid = 1;
	return m;
}

static uint32_t matched_for(const struct msg_ident *src, const uint32_t *matched, size_t n, uint32_t uid)
{
	for (size_t i = 0; i < n; i++)
		if (src[i].uid == uid)
			return matched[i];
	return 999999;
}

static void identical_messages_match_one_to_one(void **state)
{
	/* Two identical source messages (uid 1, 2), only one copy on the destination. */
	struct msg_ident src[] = {ident(1, 100, 5, 1), ident(2, 100, 5, 1), ident(3, 200, 5, 2)};
	struct msg_ident dst[] = {ident(70, 100, 5, 1), ident(71, 200, 5, 2)};
	uint32_t matched[3];
	uint32_t m1, m2;

	assert_int_equal(identity_match(src, 3, dst, 2, matched, NULL, NULL, NULL), 2);
	m1 = matched_for(src, matched, 3, 1);
	m2 = matched_for(src, matched, 3, 2);
	assert_int_equal(m1, 70); /* the twins pair in UID order: no guess */
	assert_int_equal(m2, 0);
	assert_int_equal(matched_for(src, matched, 3, 3), 71);
}

static void a_difference_in_size_date_or_headers_is_not_a_match(void **state)
{
	struct msg_ident src[] = {ident(1, 100, 5, 1), ident(2, 100, 5, 1), ident(3, 100, 5, 1)};
	struct msg_ident dst[] = {ident(9, 101, 5, 1), ident(10, 100, 6, 1), ident(11, 100, 5, 2)};
	uint32_t matched[3];

	assert_int_equal(identity_match(src, 3, dst, 3, matched, NULL, NULL, NULL), 0);
}

/* Issue 18.5: identity from what servers do not rewrite. */
static void same_id(const char *a, uint64_t sa, const char *b, uint64_t sb, int want_equal)
{
	struct msg_ident x, y;

	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	identity_from_prefix(a, strlen(a), sa, &x);
	identity_from_prefix(b, strlen(b), sb, &y);
	assert_int_equal(x.size == y.size && memcmp(x.hdr, y.hdr, 16) == 0 && memcmp(x.body, y.body, 16) == 0,
			 want_equal);
}

/* same_id of two whole texts. */
static void same_text_id(const char *a, const char *b, int want_equal)
{
	same_id(a, strlen(a), b, strlen(b), want_equal);
}

static void identity_survives_a_final_crlf_added_and_8bit_header_bytes_rewritten(void **state)
{
	/* a message as stored, then as a server hands it back */
	static const char *const rewritten[][2] = {
	    /* Courier adds a final CRLF */
	    {"From: a@x\r\nMessage-ID: <1@x>\r\n\r\nlast line", "From: a@x\r\nMessage-ID: <1@x>\r\n\r\nlast line\r\n"},
	    /* 8-bit header bytes replaced */
	    {"From: J\xc3\xb6rg <j@x>\r\nSubject: Gr\xc3\xbc\xc3\x9f\r\nMessage-ID: <2@x>\r\n\r\nb\r\n",
	     "From: JXXrg <j@x>\r\nSubject: GrXXXX\r\nMessage-ID: <2@x>\r\n\r\nb\r\n"},
	    /* bare LF line ends */
	    {"From: a@x\r\nMessage-ID: <1@x>\r\n\r\nlast line", "From: a@x\nMessage-ID: <1@x>\n\nlast line\n"},
	};

	for (size_t i = 0; i < sizeof(rewritten) / sizeof(rewritten[0]); i++)
		same_text_id(rewritten[i][0], rewritten[i][1], 1);
}

static void bodies_that_differ_are_never_one_message(void **state)
{
	const char *a = "From: a@x\r\nSubject: twin\r\nDate: Thu, 02 Jan 2020 03:04:05 +0000\r\n\r\nbody AAAA\r\n";

	same_text_id(a, "From: a@x\r\nSubject: twin\r\nDate: Thu, 02 Jan 2020 03:04:05 +0000\r\n\r\nbody BBBB\r\n", 0);
	same_text_id("From: a@x\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n", "From: a@x\r\nMessage-ID: <2@x>\r\n\r\nbody\r\n", 0);
	/* a prefix of a larger message: compared with its exact size */
	same_id(a, 100000, a, 100001, 0);
	same_id(a, 100000, a, 100000, 1);
}

/* Issue 18: never guess. More look-alikes on the destination than on the source: none matched,
 * all counted; a weak identity (no Message-ID, body known by its prefix only) with exactly one
 * candidate is matched, or every stateless pass would copy it again. */
static void an_ambiguous_or_weak_match_is_copied_and_counted(void **state)
{
	struct msg_ident src[] = {ident(1, 100, 5, 1), ident(2, 90000, 5, 2), ident(3, 300, 5, 3)};
	struct msg_ident dst[] = {ident(70, 100, 5, 1), ident(71, 100, 5, 1), ident(72, 90000, 5, 2),
				  ident(73, 300, 5, 3)};
	struct identity_tally t;
	uint32_t matched[3];

	src[1].msgid = dst[2].msgid = 0; /* weak: no Message-ID, 90,000 bytes */
	assert_int_equal(identity_match(src, 3, dst, 4, matched, NULL, NULL, &t), 2);
	assert_int_equal(matched_for(src, matched, 3, 1), 0);
	assert_int_equal(matched_for(src, matched, 3, 2), 72);
	assert_int_equal(matched_for(src, matched, 3, 3), 73);
	assert_int_equal(t.ambiguous, 1);
	assert_int_equal(t.weak, 0);
	assert_int_equal(t.padded, 0);
}

static int pad_answer;
static int pad_calls;
static int pad_yes(void *ctx, const struct msg_ident *s, const struct msg_ident *d)
{
	(void)ctx;
	pad_calls++;
	assert_true(d->size != s->size && d->size <= 2 * s->size + 2);
	return pad_answer;
}

/* The one candidate dst[0] for src[0]: the caller is asked; not matched when it says no, matched
 * (and counted as padded) when it says yes. */
static void asked_and_matched_on_yes(struct msg_ident *src, struct msg_ident *dst)
{
	struct identity_tally t;
	uint32_t matched[1];

	pad_answer = 0;
	pad_calls = 0;
	assert_int_equal(identity_match(src, 1, dst, 1, matched, pad_yes, NULL, &t), 0);
	assert_int_equal(pad_calls, 1);
	assert_int_equal(matched[0], 0);
	pad_answer = 1;
	assert_int_equal(identity_match(src, 1, dst, 1, matched, pad_yes, NULL, &t), 1);
	assert_int_equal(matched[0], dst[0].uid);
	assert_int_equal(t.padded, 1);
}

/* Issue 18: a message over the prefix without a final CRLF, padded by Courier, is the same
 * message only when the caller's comparison of the last bytes says so; a single candidate only. */
static void a_copy_two_bytes_longer_matches_only_when_the_padding_is_confirmed(void **state)
{
	struct msg_ident src[] = {ident(1, 40000, 5, 1)};
	struct msg_ident dst[] = {ident(80, 40002, 5, 1)};
	struct msg_ident dst2[] = {ident(80, 40002, 5, 1), ident(81, 40002, 5, 1)};
	struct identity_tally t;
	uint32_t matched[1];

	asked_and_matched_on_yes(src, dst);
	assert_int_equal(identity_match(src, 1, dst, 1, matched, NULL, NULL, &t), 0);
	/* two candidates: not asked, copied and counted */
	pad_calls = 0;
	assert_int_equal(identity_match(src, 1, dst2, 2, matched, pad_yes, NULL, &t), 0);
	assert_int_equal(pad_calls, 0);
	assert_int_equal(t.ambiguous, 1);
	/* one byte longer (a final bare LF or CR written CRLF): asked too; with a second candidate two
	 * bytes longer, a guess again */
	{
		struct msg_ident d1[] = {ident(82, 40001, 5, 1)};
		struct msg_ident d12[] = {ident(82, 40001, 5, 1), ident(83, 40002, 5, 1)};

		pad_calls = 0;
		assert_int_equal(identity_match(src, 1, d1, 1, matched, pad_yes, NULL, &t), 1);
		assert_int_equal(matched[0], 82);
		assert_int_equal(pad_calls, 1);
		assert_int_equal(identity_match(src, 1, d12, 2, matched, pad_yes, NULL, &t), 0);
		assert_int_equal(t.ambiguous, 1);
	}
}

/* Issue 18: a long message with bare LFs or CRs inside grows on Courier by one byte for each bare
 * LF (written CRLF), shrinks by one for each bare CR (dropped), and grows by 2 for the CRLF added at
 * its end: a copy of another size, up to 2 * size + 2 bytes, is asked about (the engine compares the whole messages), a weak one too; one
 * longer still is not; two candidates are a guess, copied and counted. */
static void a_copy_with_line_ends_rewritten_inside_matches_only_when_confirmed(void **state)
{
	struct msg_ident src[] = {ident(1, 40000, 5, 1)};
	struct msg_ident dst[] = {ident(80, 40272, 5, 1)};
	struct msg_ident far[] = {ident(80, 80003, 5, 1)};
	struct msg_ident two[] = {ident(80, 40272, 5, 1), ident(81, 40500, 5, 1)};
	struct msg_ident other[] = {ident(80, 40272, 5, 2), ident(81, 40272, 6, 1)};
	struct msg_ident shorter[] = {ident(80, 39866, 5, 1)};
	struct identity_tally t;
	uint32_t matched[1];

	asked_and_matched_on_yes(src, dst);
	asked_and_matched_on_yes(src, shorter); /* bare CRs dropped: shorter */
	src[0].msgid = dst[0].msgid = 0; /* weak: asked as well (whole messages compared) */
	assert_int_equal(identity_match(src, 1, dst, 1, matched, pad_yes, NULL, &t), 1);
	assert_int_equal(matched[0], 80);
	src[0].msgid = dst[0].msgid = 1;
	pad_calls = 0;
	/* more than 2 * size + 2 bytes: not a rewrite of line ends */
	assert_int_equal(identity_match(src, 1, far, 1, matched, pad_yes, NULL, &t), 0);
	assert_int_equal(pad_calls, 0);
	/* other headers or another date: no candidate */
	assert_int_equal(identity_match(src, 1, other, 2, matched, pad_yes, NULL, &t), 0);
	assert_int_equal(pad_calls, 0);
	assert_int_equal(t.ambiguous, 0);
	/* two candidates: not asked, counted */
	assert_int_equal(identity_match(src, 1, two, 2, matched, pad_yes, NULL, &t), 0);
	assert_int_equal(pad_calls, 0);
	assert_int_equal(t.ambiguous, 1);
}

/* A message of n bytes: a header, lines of 70 'x', and its last line "end" (no line end). */
static char *sized_message(size_t n)
{
	static const char hdr[] = "From: a@x\r\nMessage-ID: <edge@x>\r\n\r\n";
	char *m = malloc(n + 1);
	size_t i = sizeof(hdr) - 1;

	assert_non_null(m);
	memcpy(m, hdr, i);
	while (i < n - 3) {
		m[i] = (i - sizeof(hdr) + 1) % 72 == 70 ? '\r' : (i - sizeof(hdr) + 1) % 72 == 71 ? '\n' : 'x';
		i++;
	}
	if (m[n - 4] == '\r')
		m[n - 4] = 'x'; /* no bare CR before the last line */
	memcpy(m + n - 3, "end", 3);
	m[n] = 0;
	return m;
}

/* identity of the first min(len, IDENTITY_FETCH) bytes of a message of len bytes, as fetched */
static void fetched_id(const char *m, size_t len, struct msg_ident *id)
{
	memset(id, 0, sizeof(*id));
	identity_from_prefix(m, len < IDENTITY_FETCH ? len : IDENTITY_FETCH, len, id);
}

/* Issue 18: at the prefix's edge, a message and its copy as Courier stores it (a final CRLF added,
 * a final bare LF or CR written CRLF) have one identity: both whole or both prefixes (the edge is
 * where the content ends, counted as Courier stores it), so a stateless pass never copies them
 * again. Sizes 16,376 to 16,392 bytes, each ending in no line end, LF, CR and CRLF. */
static void at_the_prefix_edge_a_message_and_its_courier_copy_are_one(void **state)
{
	static const char *const ends[][2] = {{"", "\r\n"}, {"\n", "\r\n"}, {"\r", "\r\n"}, {"\r\n", "\r\n"}};

	for (size_t n = IDENTITY_PREFIX - 8; n <= IDENTITY_PREFIX + 8; n++) {
		for (size_t k = 0; k < sizeof(ends) / sizeof(ends[0]); k++) {
			char *base = sized_message(n);
			size_t ls = strlen(ends[k][0]), ld = strlen(ends[k][1]);
			char *s = malloc(n + ls + 1), *d = malloc(n + ld + 1);
			struct msg_ident x, y;

			memcpy(s, base, n);
			memcpy(s + n, ends[k][0], ls + 1);
			memcpy(d, base, n);
			memcpy(d + n, ends[k][1], ld + 1);
			fetched_id(s, n + ls, &x);
			fetched_id(d, n + ld, &y);
			if (n <= IDENTITY_PREFIX) {
				/* content of at most the prefix: whole on both sides */
				assert_int_equal(x.size, 0);
				assert_int_equal(y.size, 0);
			} else {
				assert_int_equal(x.size, n + ls);
				assert_int_equal(y.size, n + ld);
			}
			assert_memory_equal(x.hdr, y.hdr, 16);
			assert_memory_equal(x.body, y.body, 16);
			free(base);
			free(s);
			free(d);
		}
	}
}

/* Courier writes a bare LF inside a message as CRLF and drops a bare CR (raw APPENDs to Courier IMAP
 * 5.0): one identity. */
static void a_bare_lf_inside_is_a_line_end_a_bare_cr_is_dropped(void **state)
{
	same_text_id("From: a@x\r\nMessage-ID: <3@x>\r\n\r\nline1\rline2\r\nend", "From: a@x\r\nMessage-ID: <3@x>\r\n\r\nline1line2\r\nend\r\n", 1);
	same_text_id("From: a@x\r\nMessage-ID: <3@x>\r\n\r\nline1\nline2\r\r\n\r", "From: a@x\r\nMessage-ID: <3@x>\r\n\r\nline1\r\nline2\r\n\r\n", 1);
	same_text_id("From: a@x\r\nMessage-ID: <3@x>\r\n\r\nline1\rline2\r\nend", "From: a@x\r\nMessage-ID: <3@x>\r\n\r\nline1\r\nline2\r\nend\r\n", 0);
	same_text_id("From: a@x\r\nMessage-ID: <3@x>\r\n\r\nline1 line2\r\n", "From: a@x\r\nMessage-ID: <3@x>\r\n\r\nline1\r\nline2\r\n", 0);
}

/* The tail a padded copy must end with: what Courier IMAP 5.0 was seen to store. */
static void a_tail_is_written_as_courier_stores_it(void **state)
{
	static const char *const cases[][3] = {
	    /* source tail, as stored, skip */
	    {"abc", "abc\r\n", "0"},       {"abc\n", "abc\r\n", "0"},     {"abc\r", "abc\r\n", "0"},
	    {"abc\r\n", "abc\r\n", "0"}, {"ab\rc\n\n", "abc\r\n\r\n", "0"}, {"\nabc", "abc\r\n", "1"},
	    {"abc \t", "abc \t\r\n", "0"}, {"a\r\r\nb", "a\r\nb\r\n", "0"},  {"a\r\n\nb\r", "a\r\n\r\nb\r\n", "0"},
	    {"a\n\r\nb\r\n", "a\r\n\r\nb\r\n", "0"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fleet_buf out = FLEET_BUF_INIT(256);
		size_t skip = 9;

		identity_tail_as_stored(cases[i][0], strlen(cases[i][0]), &out, &skip);
		assert_int_equal(out.len, strlen(cases[i][1]));
		assert_memory_equal(out.data, cases[i][1], out.len);
		assert_int_equal(skip, (size_t)(cases[i][2][0] - '0'));
		fleet_buf_release(&out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(internaldate_is_an_instant_whatever_the_zone),
		cmocka_unit_test(malformed_internaldates_are_refused),
		cmocka_unit_test(header_hash_ignores_folding_case_of_names_and_field_order),
		cmocka_unit_test(an_empty_header_block_hashes_consistently),
		cmocka_unit_test(identical_messages_match_one_to_one),
		cmocka_unit_test(a_difference_in_size_date_or_headers_is_not_a_match),
		cmocka_unit_test(identity_survives_a_final_crlf_added_and_8bit_header_bytes_rewritten),
		cmocka_unit_test(bodies_that_differ_are_never_one_message),
		cmocka_unit_test(an_ambiguous_or_weak_match_is_copied_and_counted),
		cmocka_unit_test(a_copy_two_bytes_longer_matches_only_when_the_padding_is_confirmed),
		cmocka_unit_test(a_copy_with_line_ends_rewritten_inside_matches_only_when_confirmed),
		cmocka_unit_test(at_the_prefix_edge_a_message_and_its_courier_copy_are_one),
		cmocka_unit_test(a_bare_lf_inside_is_a_line_end_a_bare_cr_is_dropped),
		cmocka_unit_test(a_tail_is_written_as_courier_stores_it),
	};

	return unit_run("identity", tests, NULL, NULL);
}
