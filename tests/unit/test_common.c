/* Unit tests for common/: buffer caps, error formatting, redaction, number parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
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

static void buf_consume_drops_the_front(void **state)
{
	struct fleet_buf b = FLEET_BUF_INIT(64);

	fleet_buf_append_str(&b, "hello world");
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

	fleet_buf_appendf(&b, "%s-%d", "x", 42);
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

static void registered_secrets_are_redacted_everywhere(void **state)
{
	char line[128];
	struct fleet_err err;

	fleet_log_add_secret("S3cr3t!pw");
	snprintf(line, sizeof(line), "LOGIN bob S3cr3t!pw and again S3cr3t!pw");
	fleet_log_scrub(line, sizeof(line));
	assert_string_equal(line, "LOGIN bob <redacted> and again <redacted>");
	fleet_err_set(&err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, NULL, "bad password S3cr3t!pw");
	assert_null(strstr(err.message, "S3cr3t!pw"));
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
	snprintf(line, sizeof(line), "a pw-19999-x b pw-00042-x-longer c ab d");
	fleet_log_scrub(line, sizeof(line));
	assert_string_equal(line, "a <redacted> b <redacted> c <redacted> d");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_append_grows_and_stays_nul_terminated),
		cmocka_unit_test(buf_refuses_to_grow_past_its_cap),
		cmocka_unit_test(buf_consume_drops_the_front),
		cmocka_unit_test(buf_reserve_and_commit),
		cmocka_unit_test(buf_detach_hands_over_ownership),
		cmocka_unit_test(err_set_returns_minus_one_and_fills_fields),
		cmocka_unit_test(err_classes_round_trip_by_name),
		cmocka_unit_test(only_transient_and_throttled_are_retryable),
		cmocka_unit_test(registered_secrets_are_redacted_everywhere),
		cmocka_unit_test(redaction_truncates_safely_in_a_small_buffer),
		cmocka_unit_test(many_secrets_are_all_redacted_and_the_longest_match_wins),
		cmocka_unit_test(log_lines_go_to_the_sink_with_context_and_no_secret),
		cmocka_unit_test(parse_u64_accepts_only_whole_numbers_in_range),
		cmocka_unit_test(parse_size_knows_suffixes),
		cmocka_unit_test(xgrow_keeps_capacity_at_least_need),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
