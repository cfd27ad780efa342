/* Unit tests for common/: buffer caps, error formatting, redaction, escaping, number parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/escape.h"
#include "common/file.h"
#include "common/log.h"
#include "common/util.h"

static void buf_append_grows_and_stays_nul_terminated(void **state)
{
	struct fleet_buf b = FLEET_BUF_INIT(1 << 20);

	for (int i = 0; i < 1000; i++)
		assert_int_equal(fleet_buf_append(&b, "abc", 3), 0);
	assert_int_equal(b.len, 3000);
	assert_int_equal(b.data[b.len], '\0');
	assert_memory_equal(b.data + 2997, "abc", 3);
	fleet_buf_release(&b);
	assert_null(b.data);
}

static void buf_refuses_to_grow_past_its_cap(void **state)
{
	struct fleet_buf b = FLEET_BUF_INIT(8);

	assert_int_equal(fleet_buf_append(&b, "12345678", 8), 0);
	assert_int_equal(fleet_buf_append(&b, "9", 1), -1);
	assert_int_equal(b.len, 8);
	assert_string_equal(fleet_buf_cstr(&b), "12345678");
	assert_int_equal(fleet_buf_appendf(&b, "%d", 1), -1);
	fleet_buf_release(&b);
}

static void buf_truncation_is_sticky_and_keeps_a_prefix(void **state)
{
	struct fleet_buf b = FLEET_BUF_INIT(8);

	(void)state;
	fleet_buf_add_str(&b, "{1,2,3");
	assert_int_equal(fleet_buf_truncated(&b), 0);
	fleet_buf_addf(&b, ",%d", 12345); /* does not fit */
	assert_int_equal(fleet_buf_truncated(&b), 1);
	fleet_buf_add(&b, "}", 1); /* would fit, but the text must stay a prefix */
	assert_string_equal(fleet_buf_cstr(&b), "{1,2,3");
	assert_int_equal(fleet_buf_truncated(&b), 1);
	assert_int_equal(fleet_buf_append(&b, "}", 1), 0); /* the checked append still works */
	fleet_buf_reset(&b);
	assert_int_equal(fleet_buf_truncated(&b), 0);
	fleet_buf_add_str(&b, "ok");
	assert_string_equal(fleet_buf_cstr(&b), "ok");
	fleet_buf_release(&b);
}

static void buf_mark_cut_ends_cut_text_with_dots_on_a_character_boundary(void **state)
{
	struct fleet_buf b = FLEET_BUF_INIT(8);

	(void)state;
	fleet_buf_add_str(&b, "abc");
	assert_int_equal(fleet_buf_mark_cut(&b), 0); /* whole: unchanged */
	assert_string_equal(fleet_buf_cstr(&b), "abc");
	fleet_buf_add_str(&b, "d\xc3\xa9" "fghij"); /* "abcdé..." does not fit */
	assert_int_equal(fleet_buf_mark_cut(&b), 1);
	assert_string_equal(fleet_buf_cstr(&b), "abc...");
	fleet_buf_reset(&b);
	fleet_buf_add_str(&b, "abcd\xc3\xa9");
	fleet_buf_add_str(&b, "xyz");
	assert_int_equal(fleet_buf_mark_cut(&b), 1); /* "abcd\xc3" + "..." would split the é */
	assert_string_equal(fleet_buf_cstr(&b), "abcd...");
	assert_int_equal(fleet_buf_truncated(&b), 1);
	fleet_buf_release(&b);
}

static void cmp_u32_orders_the_whole_range_without_overflow(void **state)
{
	uint32_t v[] = {UINT32_MAX, 7, 0, 4000000000u, 7};
	uint32_t want[] = {0, 7, 7, 4000000000u, UINT32_MAX};

	(void)state;
	qsort(v, 5, sizeof(*v), fleet_cmp_u32);
	assert_memory_equal(v, want, sizeof(v));
	assert_int_equal(FLEET_CMP((int64_t)-5, (int64_t)3), -1);
	assert_int_equal(FLEET_CMP(3u, 3u), 0);
	assert_int_equal(FLEET_CMP(UINT64_MAX, (uint64_t)1), 1);
}

static void buf_consume_drops_the_front(void **state)
{
	struct fleet_buf b = FLEET_BUF_INIT(64);

	fleet_buf_add_str(&b, "hello world");
	fleet_buf_consume(&b, 6);
	assert_string_equal(fleet_buf_cstr(&b), "world");
	fleet_buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	assert_string_equal(fleet_buf_cstr(&b), "");
	fleet_buf_release(&b);
}

static void buf_reserve_and_commit(void **state)
{
	struct fleet_buf b = FLEET_BUF_INIT(16);
	char *p = fleet_buf_reserve(&b, 4);

	assert_non_null(p);
	memcpy(p, "abcd", 4);
	fleet_buf_commit(&b, 4);
	assert_string_equal(fleet_buf_cstr(&b), "abcd");
	assert_null(fleet_buf_reserve(&b, 13));
	fleet_buf_release(&b);
}

static void buf_detach_hands_over_ownership(void **state)
{
	struct fleet_buf b = FLEET_BUF_INIT(64);
	size_t len;
	char *s;

	fleet_buf_addf(&b, "%s-%d", "x", 42);
	s = fleet_buf_detach(&b, &len);
	assert_string_equal(s, "x-42");
	assert_int_equal(len, 4);
	assert_null(b.data);
	xfree(&s);
	assert_null(s);
}

static void err_set_returns_minus_one_and_fills_fields(void **state)
{
	struct fleet_err err;

	fleet_err_clear(&err);
	assert_false(fleet_err_is_set(&err));
	assert_int_equal(fleet_err_set(&err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, "AUTHENTICATIONFAILED",
				       "could not log in as %s", "alice"), -1);
	assert_true(fleet_err_is_set(&err));
	assert_int_equal(err.cls, FLEET_ERR_AUTH);
	assert_int_equal(err.scope, FLEET_SCOPE_ACCOUNT);
	assert_string_equal(err.code, "AUTHENTICATIONFAILED");
	assert_string_equal(err.message, "could not log in as alice");
	assert_false(fleet_err_retryable(&err));
	fleet_err_prefix(&err, "account %d", 7);
	assert_string_equal(err.message, "account 7: could not log in as alice");
}

static void err_classes_round_trip_by_name(void **state)
{
	enum fleet_err_class c;
	const enum fleet_err_class all[] = {FLEET_ERR_TRANSIENT, FLEET_ERR_THROTTLED, FLEET_ERR_PERMANENT,
					    FLEET_ERR_AUTH, FLEET_ERR_BUG};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		assert_int_equal(fleet_err_class_from_name(fleet_err_class_name(all[i]), &c), 0);
		assert_int_equal(c, all[i]);
	}
	assert_int_equal(fleet_err_class_from_name("nonsense", &c), -1);
	assert_string_equal(fleet_err_scope_name(FLEET_SCOPE_FOLDER), "folder");
}

static void enum_name_is_the_table_entry_or_the_default(void **state)
{
	static const char *const names[] = {[0] = "zero", [2] = "two"};

	(void)state;
	assert_string_equal(FLEET_ENUM_NAME(names, 0, "?"), "zero");
	assert_string_equal(FLEET_ENUM_NAME(names, 2, "?"), "two");
	assert_string_equal(FLEET_ENUM_NAME(names, 1, "?"), "?");  /* a hole in the table */
	assert_string_equal(FLEET_ENUM_NAME(names, 3, "?"), "?");  /* past its end */
	assert_string_equal(FLEET_ENUM_NAME(names, -1, "?"), "?"); /* below it */
	assert_string_equal(fleet_err_class_name((enum fleet_err_class)99), "unknown");
}

static void only_transient_and_throttled_are_retryable(void **state)
{
	struct fleet_err err;

	fleet_err_set(&err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, NULL, "x");
	assert_true(fleet_err_retryable(&err));
	fleet_err_set(&err, FLEET_ERR_THROTTLED, FLEET_SCOPE_ACCOUNT, NULL, "x");
	assert_true(fleet_err_retryable(&err));
	fleet_err_set(&err, FLEET_ERR_PERMANENT, FLEET_SCOPE_MESSAGE, NULL, "x");
	assert_false(fleet_err_retryable(&err));
	fleet_err_set(&err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, NULL, "x");
	assert_false(fleet_err_retryable(&err));
}

/* TEXT as the log would write it (secrets redacted) in a line of 256 bytes; valid until the next call. */
static const char *scrubbed(const char *text)
{
	static char line[256];

	snprintf(line, sizeof(line), "%s", text);
	fleet_log_scrub(line, sizeof(line));
	return line;
}

/* Registers SECRET (the caller clears it), then: the log writes LINE as WANT, and ERR set with class
 * CLS and the text MSG has the message WANT_MSG (NULL: a message without SECRET). */
static void assert_redacted(struct fleet_err *err, const char *secret, const char *line, const char *want,
			    enum fleet_err_class cls, const char *msg, const char *want_msg)
{
	fleet_log_add_secret(secret);
	assert_string_equal(scrubbed(line), want);
	fleet_err_set(err, cls, FLEET_SCOPE_ACCOUNT, NULL, "%s", msg);
	if (want_msg)
		assert_string_equal(err->message, want_msg);
	else
		assert_null(strstr(err->message, secret));
}

static void registered_secrets_are_redacted_everywhere(void **state)
{
	struct fleet_err err;

	assert_redacted(&err, "S3cr3t!pw", "LOGIN bob S3cr3t!pw and again S3cr3t!pw",
			"LOGIN bob <redacted> and again <redacted>", FLEET_ERR_AUTH, "bad password S3cr3t!pw", NULL);
	fleet_err_detail(&err, "server said S3cr3t!pw");
	assert_null(strstr(err.detail, "S3cr3t!pw"));
	fleet_log_clear_secrets();
}

static void redaction_truncates_safely_in_a_small_buffer(void **state)
{
	char line[12] = "ab pw cd";

	fleet_log_add_secret("pw");
	fleet_log_scrub(line, sizeof(line));
	assert_true(strlen(line) < sizeof(line));
	assert_null(strstr(line, "pw"));
	fleet_log_clear_secrets();
}

static void many_secrets_are_all_redacted_and_the_longest_match_wins(void **state)
{
	char secret[32], line[256];

	for (int i = 0; i < 20000; i++) {
		snprintf(secret, sizeof(secret), "pw-%05d-x", i);
		fleet_log_add_secret(secret);
	}
	fleet_log_add_secret("pw-00042-x-longer");
	fleet_log_add_secret("ab"); /* short secrets are redacted too */
	assert_string_equal(scrubbed("a pw-19999-x b pw-00042-x-longer c ab d"),
			    "a <redacted> b <redacted> c <redacted> d");
	fleet_log_clear_secrets();
	snprintf(line, sizeof(line), "pw-00001-x");
	fleet_log_scrub(line, sizeof(line));
	assert_string_equal(line, "pw-00001-x"); /* cleared */
}

static void log_lines_go_to_the_sink_with_context_and_no_secret(void **state)
{
	char out[512] = {0};
	FILE *f = fmemopen(out, sizeof(out), "w");

	fleet_log_set_sink(f);
	fleet_log_add_secret("hunter22");
	fleet_log_set_context("u1@src", "Sent");
	log_info("login with hunter22 ok");
	log_debug("not shown at info level");
	fflush(f);
	assert_non_null(strstr(out, "INFO"));
	assert_non_null(strstr(out, "[u1@src folder=Sent]"));
	assert_non_null(strstr(out, "login with <redacted> ok"));
	assert_null(strstr(out, "hunter22"));
	assert_null(strstr(out, "not shown"));
	fleet_log_set_sink(NULL);
	fleet_log_set_context(NULL, NULL);
	fleet_log_clear_secrets();
	fclose(f);
}

static void parse_u64_accepts_only_whole_numbers_in_range(void **state)
{
	uint64_t v;

	assert_int_equal(fleet_parse_u64("993", 1, 65535, &v), 0);
	assert_int_equal(v, 993);
	assert_int_equal(fleet_parse_u64("0", 1, 65535, &v), -1);
	assert_int_equal(fleet_parse_u64("70000", 1, 65535, &v), -1);
	assert_int_equal(fleet_parse_u64("99x", 0, 100, &v), -1);
	assert_int_equal(fleet_parse_u64("", 0, 100, &v), -1);
	assert_int_equal(fleet_parse_u64("-1", 0, 100, &v), -1);
	assert_int_equal(fleet_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -1);
	assert_int_equal(fleet_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
}

static void parse_size_knows_suffixes(void **state)
{
	uint64_t v;

	assert_int_equal(fleet_parse_size("20M", &v), 0);
	assert_int_equal(v, 20 * 1024 * 1024);
	assert_int_equal(fleet_parse_size("3k", &v), 0);
	assert_int_equal(v, 3072);
	assert_int_equal(fleet_parse_size("M", &v), -1);
	assert_int_equal(fleet_parse_size("12", &v), 0);
	assert_int_equal(v, 12);
}

static void xgrow_keeps_capacity_at_least_need(void **state)
{
	size_t n = 0;
	int *a = NULL;

	a = xgrow(a, sizeof(*a), 100, &n);
	assert_true(n >= 100);
	a[99] = 1;
	xfree(&a);
}

static void xpush_appends_zeroed_elements_and_keeps_the_earlier(void **state)
{
	struct {
		int a;
		char b[40];
	} *v = NULL, *e;
	size_t n = 0, alloc = 0;

	for (int i = 0; i < 20; i++) {
		e = xpush(&v, &n, &alloc);
		assert_ptr_equal(e, &v[i]);
		assert_int_equal(n, (size_t)i + 1);
		assert_true(alloc >= n);
		assert_int_equal(e->a, 0);
		for (size_t k = 0; k < sizeof(e->b); k++)
			assert_int_equal(e->b[k], 0);
		e->a = i + 1;
		memset(e->b, 0x5a, sizeof(e->b));
	}
	for (int i = 0; i < 20; i++)
		assert_int_equal(v[i].a, i + 1);
	xfree(&v);
}

/* ---- hostile texts (issue 13) -------------------------------------------------------------------- */

static void utf8_validation_is_strict(void **state)
{
	static const struct {
		const char *s;
		int valid;
	} cases[] = {
	    {"plain ascii", 1},
	    {"Gel\xC3\xB6scht", 1},		  /* ö */
	    {"\xE2\x82\xAC and \xF0\x9F\x93\xA7", 1}, /* € and an emoji */
	    {"Passwort ung\xFCltig", 0},	  /* Latin-1 ü */
	    {"\xC0\xAF", 0},			  /* overlong / */
	    {"\xED\xA0\x80", 0},		  /* surrogate */
	    {"\xF4\x90\x80\x80", 0},		  /* above U+10FFFF */
	    {"cut \xE2\x82", 0},		  /* truncated sequence */
	    {"\x80", 0},			  /* lone continuation */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(fleet_utf8_valid(cases[i].s, strlen(cases[i].s)), cases[i].valid);
}

static void utf8_sanitize_replaces_only_the_invalid_bytes(void **state)
{
	char *s = fleet_utf8_sanitize("ung\xFCltig \xC3\xB6");

	assert_string_equal(s, "ung\xEF\xBF\xBDltig \xC3\xB6");
	xfree(&s);
	assert_null(fleet_utf8_sanitize(NULL));
}

static void utf8_cut_never_splits_a_character(void **state)
{
	const char *s = "ab\xE2\x82\xAC"; /* "ab€" */

	assert_int_equal(fleet_utf8_cut(s, 5), 5);
	assert_int_equal(fleet_utf8_cut(s, 4), 2);
	assert_int_equal(fleet_utf8_cut(s, 3), 2);
	assert_int_equal(fleet_utf8_cut(s, 2), 2);
}

static void utf8_put_writes_each_length_at_its_boundaries(void **state)
{
	static const struct {
		uint32_t cp;
		const char *utf8;
	} cases[] = {
	    {0x41, "A"},		 {0x7F, "\x7F"},	     {0x80, "\xC2\x80"},	  {0xF6, "\xC3\xB6"},
	    {0x7FF, "\xDF\xBF"},	 {0x800, "\xE0\xA0\x80"}, {0x20AC, "\xE2\x82\xAC"},
	    {0xFFFF, "\xEF\xBF\xBF"}, {0x10000, "\xF0\x90\x80\x80"}, {0x1F4E7, "\xF0\x9F\x93\xA7"},
	    {0x10FFFF, "\xF4\x8F\xBF\xBF"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char u[4];
		size_t n = fleet_utf8_put(cases[i].cp, u);

		assert_int_equal(n, strlen(cases[i].utf8));
		assert_memory_equal(u, cases[i].utf8, n);
		assert_int_equal(fleet_utf8_seq(u, n), n); /* what it writes, the strict reader takes */
	}
}

static void terminal_escaper_neutralises_controls_and_keeps_the_bytes_in_hex(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"Sent Items", "Sent Items"},
	    {"Gel\xC3\xB6scht", "Gel\xC3\xB6scht"},
	    {"\x1B]0;pwned\x07title", "\\x1B]0;pwned\\x07title"}, /* window title */
	    {"\x1B[2J", "\\x1B[2J"},				    /* clear screen */
	    {"ok\r\n2026-01-01 ERROR forged", "ok\\x0D\\x0A2026-01-01 ERROR forged"},
	    {"ung\xFCltig", "ung\\xFCltig"},	       /* Latin-1: the byte in hex */
	    {"\xC2\x9B" "31m", "\\x9B31m"},	       /* C1 CSI */
	    {"a\xE2\x80\xAE" "b", "a\\u{202E}b"},      /* bidi override */
	    {"tab\there\x7F", "tab\\x09here\\x7F"},
	    {"C:\\dir \\x41", "C:\\dir \\x41"},	       /* backslashes kept: escaping is idempotent */
	};
	char out[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fleet_escape_term_into(out, sizeof(out), cases[i].in, strlen(cases[i].in));
		assert_string_equal(out, cases[i].out);
		assert_int_equal(fleet_escape_term_clean(cases[i].in, strlen(cases[i].in)),
				 strcmp(cases[i].in, cases[i].out) == 0);
	}
	/* a small buffer is cut between characters, never inside an escape */
	assert_int_equal(fleet_escape_term_into(out, 6, "ab\x1B\x1B", 4), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(fleet_escape_term_into(out, 4, "a\xE2\x82\xAC", 4), 1);
}

static void error_texts_from_servers_are_valid_utf8_without_controls(void **state)
{
	struct fleet_err err;

	fleet_err_set(&err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, "AUTHENTICATIONFAILED", "login refused: %s",
		      "Passwort ung\xFCltig\r\n\x1B[2J");
	assert_string_equal(err.message, "login refused: Passwort ung\\xFCltig\\x0D\\x0A\\x1B[2J");
	assert_true(fleet_utf8_valid(err.message, strlen(err.message)));
	fleet_err_detail(&err, "server: \xFF\xFE");
	assert_string_equal(err.detail, "server: \\xFF\\xFE");
	fleet_err_prefix(&err, "folder %s", "Entw\xFCrfe");
	assert_string_equal(err.message, "folder Entw\\xFCrfe: login refused: Passwort ung\\xFCltig\\x0D\\x0A\\x1B[2J");
}

static void a_short_secret_is_redacted_only_as_a_whole_token(void **state)
{
	struct fleet_err err;

	assert_redacted(&err, "x", "--maxsize 20 x 'x' user:x@host xx",
			"--maxsize 20 <redacted> '<redacted>' user:<redacted>@host xx", FLEET_ERR_PERMANENT,
			"bad option --maxsize", "bad option --maxsize");
	fleet_log_clear_secrets();
	/* a long secret is redacted wherever it is, also glued to other text */
	fleet_log_add_secret("Welcome-2026");
	assert_string_equal(scrubbed("pw=Welcome-2026x"), "pw=<redacted>x");
	fleet_log_clear_secrets();
}

static void a_secret_straddling_the_cut_is_never_shown_in_part(void **state)
{
	char secret[] = "Str4ddl3-P4ssw0rd";
	struct fleet_err err;
	char pad[FLEET_ERR_TEXT_MAX];
	char out[8192] = {0};
	FILE *f = fmemopen(out, sizeof(out), "w");

	fleet_log_add_secret(secret);
	for (size_t cut = FLEET_ERR_TEXT_MAX - 20; cut < FLEET_ERR_TEXT_MAX; cut++) {
		memset(pad, 'a', cut);
		pad[cut] = '\0';
		fleet_err_set(&err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, NULL, "%.*s%s", (int)(cut - 8), pad, secret);
		assert_null(strstr(err.message, "Str4d"));
		assert_true(strlen(err.message) < FLEET_ERR_TEXT_MAX);
	}
	/* a log line: the secret sits across the 4,096-byte cut */
	fleet_log_set_sink(f);
	{
		char big[4200];

		memset(big, 'b', sizeof(big));
		big[4060] = '\0';
		log_error("%s%s tail", big, secret);
	}
	fflush(f);
	assert_null(strstr(out, "Str4d"));
	fleet_log_set_sink(NULL);
	fclose(f);
	fleet_log_clear_secrets();
}

static void log_lines_escape_what_a_server_sent(void **state)
{
	char out[512] = {0};
	FILE *f = fmemopen(out, sizeof(out), "w");

	fleet_log_set_sink(f);
	fleet_log_set_context("u1@src", "Evil\x1B]0;x\x07");
	log_error("server said: %s", "NO bad\r\n2026-01-01T00:00:00.000Z INFO forged");
	fflush(f);
	assert_null(strchr(out, '\x1B'));
	assert_non_null(strstr(out, "folder=Evil\\x1B]0;x\\x07"));
	assert_non_null(strstr(out, "NO bad\\x0D\\x0A2026"));
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one line */
	fleet_log_set_sink(NULL);
	fleet_log_set_context(NULL, NULL);
	fclose(f);
}

static void secret_registration_is_linear_with_shared_prefixes(void **state)
{
	char secret[32];
	uint64_t t0 = fleet_now_ms();

	/* 40,000 passwords with one prefix: quadratic registration took 99 s, linear takes well under 1 s
	 * even under sanitizers; the bound below is loose so that a loaded CI machine never flakes, yet
	 * orders of magnitude below the quadratic time. */
	for (int i = 0; i < 40000; i++) {
		snprintf(secret, sizeof(secret), "Welcome-%05d", i);
		fleet_log_add_secret(secret);
	}
	assert_int_equal(fleet_log_secret_count(), 40000);
	assert_string_equal(scrubbed("a Welcome-39999 b Welcome-00000 c Welcome-4 d"),
			    "a <redacted> b <redacted> c Welcome-4 d");
	assert_true(fleet_now_ms() - t0 < 20000);
	fleet_log_clear_secrets();
}

static void a_secret_leaves_the_table_when_its_last_user_removes_it(void **state)
{

	fleet_log_add_secret("pw-of-alice");
	fleet_log_add_secret("pw-of-alice"); /* the import and the running job */
	fleet_log_add_secret("pw-of-bob");
	assert_int_equal(fleet_log_secret_count(), 2);
	fleet_log_remove_secret("pw-of-alice");
	assert_string_equal(scrubbed("pw-of-alice"), "<redacted>");
	fleet_log_remove_secret("pw-of-alice");
	assert_int_equal(fleet_log_secret_count(), 1);
	assert_string_equal(scrubbed("pw-of-alice pw-of-bob"), "pw-of-alice <redacted>");
	fleet_log_remove_secret("never-added");
	fleet_log_clear_secrets();
	assert_int_equal(fleet_log_secret_count(), 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void passfiles_give_their_first_line_and_refuse_what_is_no_passfile(void **state)
{
	char dir[] = "/tmp/imapfleet-pf-XXXXXX", p[256], why[512], big[2048];
	char *pw;

	assert_non_null(mkdtemp(dir));
	/* first line only, CRLF tolerated */
	snprintf(p, sizeof(p), "%s/pw", dir);
	write_file(p, "s3cret\r\nsecond line never sent\n");
	pw = fleet_read_passfile(p, FLEET_PASSFILE_MAX, why, sizeof(why));
	assert_non_null(pw);
	assert_string_equal(pw, "s3cret");
	xfree(&pw);
	/* too big: an SSH private key, a document */
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file(p, big);
	assert_null(fleet_read_passfile(p, FLEET_PASSFILE_MAX, why, sizeof(why)));
	assert_non_null(strstr(why, "larger than 1024 bytes"));
	assert_null(strstr(why, "kkk")); /* never the content */
	/* a PEM block */
	write_file(p, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n");
	assert_null(fleet_read_passfile(p, FLEET_PASSFILE_MAX, why, sizeof(why)));
	assert_non_null(strstr(why, "PEM"));
	/* a FIFO: refused at once, never waited on */
	snprintf(p, sizeof(p), "%s/fifo", dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	alarm(10);
	assert_null(fleet_read_passfile(p, FLEET_PASSFILE_MAX, why, sizeof(why)));
	alarm(0);
	assert_non_null(strstr(why, "not a regular file"));
	assert_int_equal(fleet_passfile_check(p, FLEET_PASSFILE_MAX, why, sizeof(why)), -1);
	unlink(p);
	/* a directory */
	assert_null(fleet_read_passfile(dir, FLEET_PASSFILE_MAX, why, sizeof(why)));
	/* the state key file, by name and by registration (any path to it) */
	snprintf(p, sizeof(p), "%s/.imapfleet", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/.imapfleet/key", dir);
	write_file(p, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
	assert_null(fleet_read_passfile(p, FLEET_PASSFILE_MAX, why, sizeof(why)));
	assert_non_null(strstr(why, "state key file"));
	assert_int_equal(fleet_passfile_check(p, FLEET_PASSFILE_MAX, why, sizeof(why)), -1);
	{
		char other[256];

		snprintf(other, sizeof(other), "%s/mykey", dir);
		write_file(other, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
		pw = fleet_read_passfile(other, FLEET_PASSFILE_MAX, why, sizeof(why));
		assert_non_null(pw); /* not known as a key file yet */
		xfree(&pw);
		fleet_passfile_forbid(other);
		snprintf(p, sizeof(p), "%s/link", dir);
		assert_int_equal(symlink(other, p), 0);
		assert_null(fleet_read_passfile(p, FLEET_PASSFILE_MAX, why, sizeof(why)));
		assert_non_null(strstr(why, "state key file"));
		unlink(p);
		unlink(other);
	}
	snprintf(p, sizeof(p), "%s/.imapfleet/key", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/.imapfleet", dir);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/pw", dir);
	unlink(p);
	rmdir(dir);
}

static void the_process_writes_no_core_and_is_not_dumpable(void **state)
{
	struct rlimit rl;

	assert_int_equal(fleet_harden_process(), 0);
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_int_equal(rl.rlim_cur, 0);
	assert_int_equal(rl.rlim_max, 0);
#if !defined(__SANITIZE_ADDRESS__)
	assert_int_equal(fleet_process_dumpable(), 0);
#endif
}


/* ---- the report formats' escapers and the atomic writer ---- */

static char *escaped(int (*esc)(struct fleet_buf *, const char *), const char *s)
{
	static char out[512];
	struct fleet_buf b = FLEET_BUF_INIT(1024);

	assert_int_equal(esc(&b, s), 0);
	snprintf(out, sizeof(out), "%s", fleet_buf_cstr(&b));
	fleet_buf_release(&b);
	return out;
}

static void html_escaper_writes_entities_and_cleans_controls(void **state)
{
	assert_string_equal(escaped(fleet_escape_html, "<a href=\"x\">Tom & Jerry's</a>"),
			    "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
	assert_string_equal(escaped(fleet_escape_html, "tab\tline\nesc\x1b[1m"), "tab\tline\nesc\xEF\xBF\xBD[1m");
	assert_string_equal(escaped(fleet_escape_html, "caf\xc3\xa9 \xff"), "caf\xc3\xa9 \xEF\xBF\xBD");
	assert_string_equal(escaped(fleet_escape_html, NULL), "");
}

static void json_escaper_quotes_and_is_safe_inside_a_script(void **state)
{
	assert_string_equal(escaped(fleet_escape_json, "a\"b\\c\n\t\r"), "\"a\\\"b\\\\c\\n\\t\\r\"");
	assert_string_equal(escaped(fleet_escape_json, "</script>&"), "\"\\u003c/script\\u003e\\u0026\"");
	assert_string_equal(escaped(fleet_escape_json, "\x01\x7f\xc2\x9b\xe2\x80\xa8"), "\"\\u0001\\u007f\\u009b\\u2028\"");
	assert_string_equal(escaped(fleet_escape_json, "bad\xc0\xaf"), "\"bad\\ufffd\\ufffd\"");
	assert_string_equal(escaped(fleet_escape_json, NULL), "\"\"");
}

static void csv_escaper_quotes_doubles_and_guards_formulas(void **state)
{
	struct unit_row *rows;
	size_t n = unit_read_rows("unit/escape_csv.tsv", &rows);

	for (size_t i = 0; i < n; i++)
		assert_string_equal(escaped(fleet_escape_csv, rows[i].f[0]), rows[i].f[1]);
	unit_free_rows(rows, n);
}

static void an_escaper_reports_a_full_buffer(void **state)
{
	struct fleet_buf b = FLEET_BUF_INIT(4);

	assert_int_equal(fleet_escape_html(&b, "<<<<"), -1);
	fleet_buf_release(&b);
}

static void atomic_writer_replaces_whole_files_privately_and_never_follows_links(void **state)
{
	char dir[] = "/tmp/imapfleet-file-XXXXXX";
	char path[256], sub[256], link[256];
	struct fleet_file_atomic a;
	struct fleet_err err;
	struct stat st;
	char *text;

	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	assert_int_equal(fleet_file_mkdirs(sub, FLEET_DIR_MODE_PRIVATE), 0);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/report.csv", sub);

	assert_int_equal(fleet_file_atomic_open(&a, path, &err), 0);
	fputs("old\n", a.f);
	assert_int_equal(fleet_file_atomic_commit(&a, &err), 0);
	assert_int_equal(fleet_file_atomic_open(&a, path, &err), 0);
	fputs("new\n", a.f);
	text = fleet_read_small_file(path, 100, NULL, 0);
	assert_string_equal(text, "old"); /* the target is untouched until the commit */
	free(text);
	assert_int_equal(fleet_file_atomic_commit(&a, &err), 0);
	text = fleet_read_small_file(path, 100, NULL, 0);
	assert_string_equal(text, "new");
	free(text);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(fleet_file_atomic_open(&a, path, &err), 0);
	fleet_file_atomic_abort(&a);
	text = fleet_read_small_file(path, 100, NULL, 0);
	assert_string_equal(text, "new");
	free(text);

	/* a link planted where the temporary file goes is refused, not written through */
	snprintf(link, sizeof(link), "%s/.report.csv.tmp.%ld", sub, (long)getpid());
	assert_int_equal(symlink("/tmp/imapfleet-file-target-never", link), 0);
	assert_int_equal(fleet_file_atomic_open(&a, path, &err), 0); /* the own pid's leftover goes */
	fleet_file_atomic_abort(&a);
	assert_int_equal(access("/tmp/imapfleet-file-target-never", F_OK), -1);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(sub), 0);
	snprintf(sub, sizeof(sub), "%s/a", dir);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void hex_is_two_lower_case_digits_per_byte(void **state)
{
	char out[9] = "........";

	fleet_hex("\x00\x7f\xab\xff", 4, out);
	assert_string_equal(out, "007fabff");
	fleet_hex("", 0, out);
	assert_string_equal(out, "007fabff"); /* nothing written, no terminator */
}

static void unhex_reads_exactly_two_digits_per_byte_in_either_case(void **state)
{
	unsigned char out[4];

	assert_int_equal(fleet_unhex("007fABff", out, 4), 0);
	assert_memory_equal(out, "\x00\x7f\xab\xff", 4);
	assert_int_equal(fleet_unhex("", out, 0), 0);
	/* anything else is refused: a length not 2n, a character that is not a hex digit */
	assert_int_equal(fleet_unhex("007fab", out, 4), -1);
	assert_int_equal(fleet_unhex("007fabff00", out, 4), -1);
	assert_int_equal(fleet_unhex("007fabfg", out, 4), -1);
	assert_int_equal(fleet_unhex("007f ab ", out, 4), -1);
	assert_int_equal(fleet_unhex("0x7fabff", out, 4), -1);
	assert_int_equal(fleet_unhex("00:7fabf", out, 4), -1);
	{ /* what fleet_hex writes reads back */
		unsigned char all[256], back[256];
		char hex[513];

		for (int i = 0; i < 256; i++)
			all[i] = (unsigned char)i;
		fleet_hex(all, sizeof(all), hex);
		hex[512] = '\0';
		assert_int_equal(fleet_unhex(hex, back, sizeof(back)), 0);
		assert_memory_equal(back, all, sizeof(all));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(buf_append_grows_and_stays_nul_terminated),
	    cmocka_unit_test(buf_refuses_to_grow_past_its_cap),
	    cmocka_unit_test(buf_truncation_is_sticky_and_keeps_a_prefix),
	    cmocka_unit_test(buf_mark_cut_ends_cut_text_with_dots_on_a_character_boundary),
	    cmocka_unit_test(cmp_u32_orders_the_whole_range_without_overflow),
	    cmocka_unit_test(buf_consume_drops_the_front),
	    cmocka_unit_test(buf_reserve_and_commit),
	    cmocka_unit_test(buf_detach_hands_over_ownership),
	    cmocka_unit_test(err_set_returns_minus_one_and_fills_fields),
	    cmocka_unit_test(err_classes_round_trip_by_name),
	    cmocka_unit_test(enum_name_is_the_table_entry_or_the_default),
	    cmocka_unit_test(only_transient_and_throttled_are_retryable),
	    cmocka_unit_test(registered_secrets_are_redacted_everywhere),
	    cmocka_unit_test(redaction_truncates_safely_in_a_small_buffer),
	    cmocka_unit_test(many_secrets_are_all_redacted_and_the_longest_match_wins),
	    cmocka_unit_test(log_lines_go_to_the_sink_with_context_and_no_secret),
	    cmocka_unit_test(parse_u64_accepts_only_whole_numbers_in_range),
	    cmocka_unit_test(parse_size_knows_suffixes),
	    cmocka_unit_test(xgrow_keeps_capacity_at_least_need),
	    cmocka_unit_test(xpush_appends_zeroed_elements_and_keeps_the_earlier),
	    cmocka_unit_test(utf8_validation_is_strict),
	    cmocka_unit_test(utf8_sanitize_replaces_only_the_invalid_bytes),
	    cmocka_unit_test(utf8_cut_never_splits_a_character),
	    cmocka_unit_test(utf8_put_writes_each_length_at_its_boundaries),
	    cmocka_unit_test(terminal_escaper_neutralises_controls_and_keeps_the_bytes_in_hex),
	    cmocka_unit_test(error_texts_from_servers_are_valid_utf8_without_controls),
	    cmocka_unit_test(a_short_secret_is_redacted_only_as_a_whole_token),
	    cmocka_unit_test(a_secret_straddling_the_cut_is_never_shown_in_part),
	    cmocka_unit_test(log_lines_escape_what_a_server_sent),
	    cmocka_unit_test(secret_registration_is_linear_with_shared_prefixes),
	    cmocka_unit_test(a_secret_leaves_the_table_when_its_last_user_removes_it),
	    cmocka_unit_test(passfiles_give_their_first_line_and_refuse_what_is_no_passfile),
	    cmocka_unit_test(the_process_writes_no_core_and_is_not_dumpable),
	    cmocka_unit_test(hex_is_two_lower_case_digits_per_byte),
	    cmocka_unit_test(unhex_reads_exactly_two_digits_per_byte_in_either_case),
	    cmocka_unit_test(html_escaper_writes_entities_and_cleans_controls),
	    cmocka_unit_test(json_escaper_quotes_and_is_safe_inside_a_script),
	    cmocka_unit_test(csv_escaper_quotes_doubles_and_guards_formulas),
	    cmocka_unit_test(an_escaper_reports_a_full_buffer),
	    cmocka_unit_test(atomic_writer_replaces_whole_files_privately_and_never_follows_links),
	};

	return unit_run("common", tests, NULL, NULL);
}
