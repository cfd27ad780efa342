/* Unit tests for io/cred.c: secrets from files and commands, never shown, bounded in size and time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "common/log.h"
#include "common/util.h"
#include "io/cred.h"

static void scrubbed(const char *secret, int expect_redacted)
{
	char line[256];

	snprintf(line, sizeof(line), "x %s y", secret);
	fleet_log_scrub(line, sizeof(line));
	if (expect_redacted)
		assert_null(strstr(line, secret));
}

static void command_first_line_is_the_secret_and_is_registered(void **state)
{
	char *argv[] = {"printf", "tok-%s\\nsecond line\\n", "AbC123xyz", NULL};
	struct fleet_err err;
	char *s = NULL;

	(void)state;
	assert_int_equal(cred_run_command(argv, 5000, "tokencmd1", &s, &err), 0);
	assert_string_equal(s, "tok-AbC123xyz");
	scrubbed("tok-AbC123xyz", 1);
	cred_free(&s);
	assert_null(s);
}

static void command_runs_without_a_shell(void **state)
{
	/* With a shell, $HOME and the ; would be interpreted. */
	char *argv[] = {"echo", "$HOME;", "x", NULL};
	struct fleet_err err;
	char *s = NULL;

	(void)state;
	assert_int_equal(cred_run_command(argv, 5000, "passcmd1", &s, &err), 0);
	assert_string_equal(s, "$HOME; x");
	cred_free(&s);
}

static void command_failure_names_the_status_not_the_output(void **state)
{
	char *argv[] = {"sh", "-c", "echo leaked-secret-text; echo more >&2; exit 3", NULL};
	struct fleet_err err;
	char *s = NULL;

	(void)state;
	assert_int_equal(cred_run_command(argv, 5000, "tokencmd2", &s, &err), -1);
	assert_null(s);
	assert_int_equal(err.cls, FLEET_ERR_AUTH);
	assert_string_equal(err.code, "CREDENTIAL");
	assert_non_null(strstr(err.message, "tokencmd2"));
	assert_non_null(strstr(err.message, "status 3"));
	assert_null(strstr(err.message, "leaked"));
	assert_null(strstr(err.detail, "leaked"));
}

static void command_not_found_says_so(void **state)
{
	char *argv[] = {"/nonexistent/imapfleet-token-helper", NULL};
	struct fleet_err err;
	char *s = NULL;

	(void)state;
	assert_int_equal(cred_run_command(argv, 5000, "tokencmd1", &s, &err), -1);
	assert_non_null(strstr(err.message, "not found"));
}

static void command_timeout_kills_it_and_is_transient(void **state)
{
	char *argv[] = {"sleep", "30", NULL};
	struct fleet_err err;
	char *s = NULL;
	uint64_t t0 = fleet_now_ms();

	(void)state;
	assert_int_equal(cred_run_command(argv, 300, "tokencmd1", &s, &err), -1);
	assert_true(fleet_now_ms() - t0 < 10000); /* killed, not waited for */
	assert_int_equal(err.cls, FLEET_ERR_TRANSIENT);
	assert_string_equal(err.code, "CREDENTIAL_TIMEOUT");
}

static void command_that_leaves_a_child_holding_stdout_times_out(void **state)
{
	/* The group is killed, so a background child cannot keep us reading. */
	char *argv[] = {"sh", "-c", "sleep 30 & echo tok; exec sleep 30", NULL};
	struct fleet_err err;
	char *s = NULL;

	(void)state;
	assert_int_equal(cred_run_command(argv, 300, "tokencmd1", &s, &err), -1);
	assert_string_equal(err.code, "CREDENTIAL_TIMEOUT");
}

static void command_output_is_capped(void **state)
{
	char *argv[] = {"head", "-c", "100000", "/dev/zero", NULL};
	char *argv2[] = {"sh", "-c", "yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa | tr -d '\\n'", NULL};
	struct fleet_err err;
	char *s = NULL;

	(void)state;
	assert_int_equal(cred_run_command(argv, 5000, "passcmd1", &s, &err), -1);
	assert_non_null(strstr(err.message, "more than"));
	assert_int_equal(cred_run_command(argv2, 5000, "passcmd1", &s, &err), -1);
	assert_non_null(strstr(err.message, "more than"));
}

static void command_with_empty_output_fails(void **state)
{
	char *argv[] = {"true", NULL};
	struct fleet_err err;
	char *s = NULL;

	(void)state;
	assert_int_equal(cred_run_command(argv, 5000, "tokencmd1", &s, &err), -1);
	assert_non_null(strstr(err.message, "printed nothing"));
}

static void file_is_reread_on_every_fetch(void **state)
{
	char path[] = "/tmp/imapfleet-cred-XXXXXX";
	int fd = mkstemp(path);
	struct cred_source src = {.kind = CRED_FILE, .is_token = 1, .name = "tokenfile1", .value = path};
	struct fleet_err err;
	char *s = NULL;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "first-token-aaaa\r\n", 18), 18);
	assert_int_equal(cred_fetch(&src, 0, &s, &err), 0);
	assert_string_equal(s, "first-token-aaaa");
	cred_free(&s);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, "second-token-bbbb\n", 18, 0), 18);
	assert_int_equal(cred_fetch(&src, 0, &s, &err), 0);
	assert_string_equal(s, "second-token-bbbb");
	scrubbed("second-token-bbbb", 1);
	cred_free(&s);
	close(fd);
	unlink(path);
	assert_int_equal(cred_fetch(&src, 0, &s, &err), -1);
	assert_non_null(strstr(err.message, "tokenfile1"));
}

static int hook_calls, hook_refreshes;

static int counting_hook(void *ctx, int refresh, char **out, struct fleet_err *err)
{
	(void)ctx;
	(void)err;
	hook_calls++;
	hook_refreshes += refresh;
	*out = strdup(refresh ? "hook-token-fresh" : "hook-token-cached");
	return 0;
}

static void hook_gets_the_refresh_flag_and_its_token_is_registered(void **state)
{
	struct cred_source src = {.kind = CRED_HOOK, .is_token = 1, .hook = counting_hook};
	struct fleet_err err;
	char *s = NULL;

	(void)state;
	assert_int_equal(cred_fetch(&src, 1, &s, &err), 0);
	assert_string_equal(s, "hook-token-fresh");
	assert_int_equal(hook_refreshes, 1);
	scrubbed("hook-token-fresh", 1);
	cred_free(&s);
}

static void none_is_an_error(void **state)
{
	struct cred_source src = {.kind = CRED_NONE, .name = "password1"};
	struct fleet_err err;
	char *s = NULL;

	(void)state;
	assert_int_equal(cred_fetch(&src, 0, &s, &err), -1);
	assert_non_null(strstr(err.message, "password1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(command_first_line_is_the_secret_and_is_registered),
		cmocka_unit_test(command_runs_without_a_shell),
		cmocka_unit_test(command_failure_names_the_status_not_the_output),
		cmocka_unit_test(command_not_found_says_so),
		cmocka_unit_test(command_timeout_kills_it_and_is_transient),
		cmocka_unit_test(command_that_leaves_a_child_holding_stdout_times_out),
		cmocka_unit_test(command_output_is_capped),
		cmocka_unit_test(command_with_empty_output_fails),
		cmocka_unit_test(file_is_reread_on_every_fetch),
		cmocka_unit_test(hook_gets_the_refresh_flag_and_its_token_is_registered),
		cmocka_unit_test(none_is_an_error),
	};

	return unit_run("cred", tests, NULL, NULL);
}
