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

/* What the command ARGV (run as NAME) prints: its first line (heap; cred_free it). */
static char *secret_from(char *const *argv, const char *name)
{
	struct fleet_err err;
	char *s = NULL;

	if (cred_run_command(argv, 5000, name, &s, &err) != 0)
		fail_msg("%s failed: %s", argv[0], err.message);
	return s;
}

static void command_first_line_is_the_secret_and_is_registered(void **state)
{
	char *argv[] = {"printf", "tok-%s\\nsecond line\\n", "AbC123xyz", NULL};
	char *s = secret_from(argv, "tokencmd1");

	(void)state;
	assert_string_equal(s, "tok-AbC123xyz");
	scrubbed("tok-AbC123xyz", 1);
	cred_free(&s);
	assert_null(s);
}

static void command_runs_without_a_shell(void **state)
{
	/* With a shell, $HOME and the ; would be interpreted. */
	char *argv[] = {"echo", "$HOME;", "x", NULL};
	char *s = secret_from(argv, "passcmd1");

	(void)state;
	assert_string_equal(s, "$HOME; x");
	cred_free(&s);
}

/* A command that must fail: how it is run, and what its error must say. */
struct failing_command {
	char *argv[6];
	unsigned timeout_ms;
	const char *name;
	int cls;	      /* enum fleet_err_class, or -1: not checked */
	const char *code;     /* NULL: not checked */
	const char *has[2];   /* in the message */
	const char *lacks;    /* in neither the message nor the detail */
};

static void the_command_fails_as_described(void **state)
{
	const struct failing_command *c = *state;
	struct fleet_err err;
	char *s = NULL;
	uint64_t t0 = fleet_now_ms();

	assert_int_equal(cred_run_command(c->argv, c->timeout_ms, c->name, &s, &err), -1);
	assert_null(s);
	assert_true(fleet_now_ms() - t0 < 10000); /* killed at its timeout, not waited for */
	if (c->cls >= 0)
		assert_int_equal(err.cls, c->cls);
	if (c->code)
		assert_string_equal(err.code, c->code);
	for (size_t i = 0; i < 2 && c->has[i]; i++)
		assert_contains(err.message, c->has[i]);
	if (c->lacks) {
		assert_null(strstr(err.message, c->lacks));
		assert_null(strstr(err.detail, c->lacks));
	}
}

static struct failing_command failure_names_the_status_not_the_output = {
    {"sh", "-c", "echo leaked-secret-text; echo more >&2; exit 3", NULL}, 5000, "tokencmd2",
    FLEET_ERR_AUTH, "CREDENTIAL", {"tokencmd2", "status 3"}, "leaked"};
static struct failing_command not_found_says_so = {
    {"/nonexistent/imapfleet-token-helper", NULL}, 5000, "tokencmd1", -1, NULL, {"not found"}, NULL};
static struct failing_command timeout_kills_it_and_is_transient = {
    {"sleep", "30", NULL}, 300, "tokencmd1", FLEET_ERR_TRANSIENT, "CREDENTIAL_TIMEOUT", {NULL}, NULL};
/* The group is killed, so a background child cannot keep us reading. */
static struct failing_command a_child_holding_stdout_times_out = {
    {"sh", "-c", "sleep 30 & echo tok; exec sleep 30", NULL}, 300, "tokencmd1", -1, "CREDENTIAL_TIMEOUT", {NULL},
    NULL};
static struct failing_command output_is_capped = {
    {"head", "-c", "100000", "/dev/zero", NULL}, 5000, "passcmd1", -1, NULL, {"more than"}, NULL};
static struct failing_command output_without_a_newline_is_capped = {
    {"sh", "-c", "yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa | tr -d '\\n'", NULL}, 5000, "passcmd1", -1, NULL,
    {"more than"}, NULL};
static struct failing_command empty_output_fails = {
    {"true", NULL}, 5000, "tokencmd1", -1, NULL, {"printed nothing"}, NULL};

/* cmocka_unit_test_prestate under the case's own name */
#define FAILING_COMMAND(c) {"command_" #c, the_command_fails_as_described, NULL, NULL, &(c)}

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
		FAILING_COMMAND(failure_names_the_status_not_the_output),
		FAILING_COMMAND(not_found_says_so),
		FAILING_COMMAND(timeout_kills_it_and_is_transient),
		FAILING_COMMAND(a_child_holding_stdout_times_out),
		FAILING_COMMAND(output_is_capped),
		FAILING_COMMAND(output_without_a_newline_is_capped),
		FAILING_COMMAND(empty_output_fails),
		cmocka_unit_test(file_is_reread_on_every_fetch),
		cmocka_unit_test(hook_gets_the_refresh_flag_and_its_token_is_registered),
		cmocka_unit_test(none_is_an_error),
	};

	return unit_run("cred", tests, NULL, NULL);
}
