/* Unit tests for io/mutf7: round trips, RFC 3501 examples, and strict refusal of what a server or a
 * user could send that would not round-trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/escape.h"
#include "io/mutf7.h"

static const struct pair {
	const char *utf8;
	const char *mutf7;
} pairs[] = {
    {"", ""},
    {"INBOX", "INBOX"},
    {"&", "&-"},
    {"Tom & Jerry", "Tom &- Jerry"},
    {"&&", "&-&-"},
    {"Entw\xc3\xbc"
     "rfe",
     "Entw&APw-rfe"},
    {"Caf\xc3\xa9 \xce\xa9", "Caf&AOk- &A6k-"},
    {"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
     "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
    {"\xe5\x8f\xb0\xe5\x8c\x97", "&U,BTFw-"},
    {"\xf0\x9f\x93\xa7 Mail", "&2D3c5w- Mail"},
    {"\xf0\x9f\x98\x80\xf0\x9f\x98\x81", "&2D3eANg93gE-"},
    {"Gel\xc3\xb6schte Elemente", "Gel&APY-schte Elemente"},
    {"\xd0\x9e\xd1\x82\xd0\xbf\xd1\x80\xd0\xb0\xd0\xb2\xd0\xbb\xd0\xb5\xd0\xbd\xd0\xbd\xd1\x8b\xd0\xb5",
     "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"},
    {"a\tb", "a&AAk-b"},
    {"[Gmail]/Sent Mail", "[Gmail]/Sent Mail"},
};

static void encodes_and_decodes_known_names_both_ways(void **state)
{
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct fleet_buf b = FLEET_BUF_INIT(4096);
		struct fleet_err err;

		assert_int_equal(mutf7_encode(pairs[i].utf8, strlen(pairs[i].utf8), &b, &err), 0);
		if (strcmp(fleet_buf_cstr(&b), pairs[i].mutf7) != 0)
			fail_msg("encode %zu: got %s want %s", i, fleet_buf_cstr(&b), pairs[i].mutf7);
		fleet_buf_reset(&b);
		assert_int_equal(mutf7_decode(pairs[i].mutf7, strlen(pairs[i].mutf7), &b, &err), 0);
		assert_string_equal(fleet_buf_cstr(&b), pairs[i].utf8);
		assert_true(mutf7_is_valid(pairs[i].mutf7, strlen(pairs[i].mutf7)));
		fleet_buf_release(&b);
	}
}

static const char *const bad_mutf7[] = {
    "&",	   /* unterminated shift */
    "&AOk",	   /* unterminated shift */
    "abc&",	   /* unterminated shift at the end */
    "&AO!-",	   /* not base64 */
    "&AO/-",	   /* "/" is plain base64, modified base64 uses "," */
    "&AOl-",	   /* non-zero padding bits */
    "&AOkA-",	   /* a sixth of a unit left over */
    "&AGE-",	   /* "a" must not be encoded */
    "&AOk-&AOk-",  /* two runs back to back */
    "&2D0-",	   /* lone high surrogate */
    "&3gA-",	   /* lone low surrogate */
    "&3gDYPQ-",	   /* reversed pair */
    "&AAA-",	   /* encoded NUL */
    "caf\xc3\xa9", /* raw 8-bit */
    "a\tb",	   /* raw control character */
    "&-&",	   /* unterminated after an escaped ampersand */
};

static void decode_refuses_invalid_modified_utf7(void **state)
{
	for (size_t i = 0; i < sizeof(bad_mutf7) / sizeof(bad_mutf7[0]); i++) {
		struct fleet_buf b = FLEET_BUF_INIT(4096);
		struct fleet_err err;

		fleet_buf_add_str(&b, "keep");
		fleet_err_clear(&err);
		if (mutf7_decode(bad_mutf7[i], strlen(bad_mutf7[i]), &b, &err) != -1)
			fail_msg("accepted %zu: %s -> %s", i, bad_mutf7[i], fleet_buf_cstr(&b));
		assert_string_equal(err.code, "MUTF7");
		assert_int_equal(err.cls, FLEET_ERR_PERMANENT);
		assert_int_equal(err.scope, FLEET_SCOPE_FOLDER);
		/* The output buffer is left as it was. */
		assert_string_equal(fleet_buf_cstr(&b), "keep");
		assert_false(mutf7_is_valid(bad_mutf7[i], strlen(bad_mutf7[i])));
		fleet_buf_release(&b);
	}
}

static const char *const bad_utf8[] = {
    "\xc3",		/* truncated */
    "\xc0\xaf",		/* overlong "/" */
    "\xe0\x80\xaf",	/* overlong */
    "\xed\xa0\x80",	/* UTF-16 surrogate */
    "\xf4\x90\x80\x80", /* above U+10FFFF */
    "\xff",
    "a\x80"
    "b", /* stray continuation byte */
};

static void encode_refuses_invalid_utf8(void **state)
{
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		struct fleet_buf b = FLEET_BUF_INIT(4096);
		struct fleet_err err;

		assert_int_equal(mutf7_encode(bad_utf8[i], strlen(bad_utf8[i]), &b, &err), -1);
		assert_string_equal(err.code, "UTF8");
		assert_int_equal(b.len, 0);
		fleet_buf_release(&b);
	}
	{
		struct fleet_buf b = FLEET_BUF_INIT(4096);
		struct fleet_err err;

		assert_int_equal(mutf7_encode("a\0b", 3, &b, &err), -1);
		fleet_buf_release(&b);
	}
}

static void every_bmp_and_astral_sample_round_trips(void **state)
{
	/* Every code point from U+0001 to U+FFFF (skipping surrogates) and a sample above, each alone
	 * and surrounded by ASCII. */
	for (uint32_t cp = 1; cp < 0x110000; cp += cp < 0x10000 ? 1 : 997) {
		char u[8];
		size_t n;
		struct fleet_buf enc = FLEET_BUF_INIT(64), dec = FLEET_BUF_INIT(64);
		struct fleet_err err;

		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		n = fleet_utf8_put(cp, u);
		u[n] = 'x';
		if (mutf7_encode(u, n + 1, &enc, &err) != 0)
			fail_msg("U+%04X: %s", cp, err.message);
		if (mutf7_decode(enc.data, enc.len, &dec, &err) != 0)
			fail_msg("U+%04X (%s): %s", cp, enc.data, err.message);
		assert_int_equal(dec.len, n + 1);
		assert_memory_equal(dec.data, u, n + 1);
		fleet_buf_release(&enc);
		fleet_buf_release(&dec);
	}
}

static void output_cap_is_respected(void **state)
{
	struct fleet_buf b = FLEET_BUF_INIT(5);
	struct fleet_err err;

	assert_int_equal(mutf7_encode("Entw\xc3\xbc"
				      "rfe",
				      9, &b, &err),
			 -1);
	assert_string_equal(err.code, "MUTF7_LIMIT");
	assert_int_equal(b.len, 0);
	fleet_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(encodes_and_decodes_known_names_both_ways),
	    cmocka_unit_test(decode_refuses_invalid_modified_utf7),
	    cmocka_unit_test(encode_refuses_invalid_utf8),
	    cmocka_unit_test(every_bmp_and_astral_sample_round_trips),
	    cmocka_unit_test(output_cap_is_respected),
	};

	return unit_run("mutf7", tests, NULL, NULL);
}
