/* Unit tests for common/opt.c: the one option model (lookup, "did you mean", all problems at once,
 * values, per-side names, --help from the table). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "common/opt.h"

enum { O_HELP = 1, O_STATE, O_WORKERS, O_DRY, O_CAFILE, O_INSECURE, O_NOOP, O_OLD };

static const struct fleet_opt cmd[] = {
	{"--help", 0, O_HELP, NULL, "this help"},
	{"--state", FLEET_OPT_VALUE, O_STATE, "URL", "the state"},
	{"--workers", FLEET_OPT_VALUE, O_WORKERS, "N", "how many\nat once"},
	{"--dry", 0, O_DRY, NULL, "change nothing"},
	{"--usecache", FLEET_OPT_HIDDEN, O_NOOP, NULL, "note"},
	{"--delete1", FLEET_OPT_REFUSED, O_OLD, NULL, "nothing: the source is never changed"},
};
static const struct fleet_opt side[] = {
	{"--cafile", FLEET_OPT_SIDE | FLEET_OPT_VALUE, O_CAFILE, "F", "trust this CA"},
	{"--insecure", FLEET_OPT_SIDE, O_INSECURE, NULL, "no verification"},
};
static const struct fleet_optset sets[] = {FLEET_OPTSET("command:", cmd), FLEET_OPTSET("sides:", side)};

struct seen {
	char log[1024];
	int operands;
};

static int record(void *ctx, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	struct seen *s = ctx;
	size_t len = strlen(s->log);

	if (!h->opt) {
		s->operands++;
		snprintf(s->log + len, sizeof(s->log) - len, "[%s%s]", h->dashdash ? "--:" : "", h->words[0]);
		return 0;
	}
	if (h->opt->id == O_WORKERS && strcmp(h->value, "0") == 0) {
		snprintf(why, cap, "--workers needs 1 or more");
		return -1;
	}
	snprintf(s->log + len, sizeof(s->log) - len, "%s/%d=%s(%d);", h->opt->name, h->side,
		 h->value ? h->value : "-", h->nwords);
	return 0;
}

static int parse(unsigned flags, struct seen *s, struct fleet_err *err, int argc, char **argv)
{
	memset(s, 0, sizeof(*s));
	return fleet_opt_parse(sets, 2, flags, "option", argc, argv, record, s, err);
}

static void values_come_as_next_word_or_after_equals_and_sides_by_number(void **state)
{
	char *argv[] = {"--state", "pg://x", "--workers=4", "--cafile2", "ca.pem", "--insecure1", "file.csv", "--dry"};
	struct seen s;
	struct fleet_err err;

	assert_int_equal(parse(FLEET_OPT_TWO_SIDES, &s, &err, 8, argv), 0);
	assert_string_equal(s.log, "--state/-1=pg://x(2);--workers/-1=4(1);--cafile/1=ca.pem(2);--insecure/0=-(1);"
				   "[file.csv]--dry/-1=-(1);");
}

static void one_side_takes_the_unnumbered_names(void **state)
{
	char *argv[] = {"--cafile", "ca.pem", "--insecure"};
	struct seen s;
	struct fleet_err err;

	assert_int_equal(parse(0, &s, &err, 3, argv), 0);
	assert_string_equal(s.log, "--cafile/0=ca.pem(2);--insecure/0=-(1);");
}

static void every_problem_is_reported_at_once_with_suggestions(void **state)
{
	char *argv[] = {"--dry-run", "--cafile", "ca.pem", "--worker", "3", "--frobnicate", "--delete1",
			"--workers", "0", "--dry=1", "--state"};
	struct seen s;
	struct fleet_err err;

	assert_int_equal(parse(FLEET_OPT_TWO_SIDES, &s, &err, 11, argv), -1);
	assert_string_equal(err.code, FLEET_OPT_ERR_USAGE);
	assert_string_equal(err.message,
			    "unknown options '--dry-run' (did you mean --dry?), '--cafile' (did you mean "
			    "--cafile1/--cafile2?), '--worker' (did you mean --workers?), '--frobnicate', '--delete1' "
			    "(imapsync's; here use nothing: the source is never changed); --workers needs 1 or more; "
			    "option --dry takes no value; option --state needs a value (--state URL)");
	assert_int_equal(s.operands, 0); /* ca.pem and 3 went with their (unknown) options */
}

static void a_known_option_is_never_taken_as_a_value(void **state)
{
	char *argv[] = {"--state", "--dry"};
	struct seen s;
	struct fleet_err err;

	assert_int_equal(parse(FLEET_OPT_TWO_SIDES, &s, &err, 2, argv), -1);
	assert_contains(err.message, "option --state needs a value");
	assert_string_equal(s.log, "--dry/-1=-(1);");
}

static void after_dashdash_every_word_is_an_operand(void **state)
{
	char *argv[] = {"--dry", "--", "--exclude", "x", "--state"};
	struct seen s;
	struct fleet_err err;

	assert_int_equal(parse(FLEET_OPT_DASHDASH, &s, &err, 5, argv), 0);
	assert_string_equal(s.log, "--dry/-1=-(1);[--:--exclude][--:x][--:--state]");
}

static void an_unknown_options_value_is_an_operand_unless_the_command_takes_none(void **state)
{
	char *argv[] = {"--frobnicate", "file.csv"};
	struct seen s;
	struct fleet_err err;

	assert_int_equal(parse(0, &s, &err, 2, argv), -1);
	assert_int_equal(s.operands, 1);
	assert_int_equal(parse(FLEET_OPT_NO_OPERANDS, &s, &err, 2, argv), -1);
	assert_int_equal(s.operands, 0);
}

static void suggestions_cover_side_forms_prefixes_and_typos(void **state)
{
	static const struct {
		unsigned flags;
		const char *word, *want;
	} cases[] = {
		{FLEET_OPT_TWO_SIDES, "--cafile", "--cafile1/--cafile2"},
		{0, "--cafile1", "--cafile"},
		{FLEET_OPT_TWO_SIDES, "--dry-run", "--dry"},
		{FLEET_OPT_TWO_SIDES, "--dryrun", "--dry"},
		{FLEET_OPT_TWO_SIDES, "--stat", "--state"},
		{FLEET_OPT_TWO_SIDES, "--insecure3", "--insecure1/--insecure2"},
		{FLEET_OPT_TWO_SIDES, "--frobnicate", ""},
		{FLEET_OPT_TWO_SIDES, "--delete", "--dry"}, /* never a refused name, but a near one */
	};
	char out[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		(void)fleet_opt_suggest(sets, 2, cases[i].flags, cases[i].word, out, sizeof(out));
		if (strcmp(cases[i].want, "--dry") == 0 && strcmp(cases[i].word, "--delete") == 0)
			assert_string_not_equal(out, "--delete1");
		else
			assert_string_equal(out, cases[i].want);
	}
}

static void help_lists_the_visible_options_with_side_forms(void **state)
{
	char buf[2048] = "";
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	assert_non_null(f);
	fleet_opt_help(f, sets, 2, FLEET_OPT_TWO_SIDES);
	fclose(f);
	assert_contains(buf, "command:\n");
	assert_contains(buf, "  --workers N");
	assert_contains(buf, "how many\n                            at once\n");
	assert_contains(buf, "  --cafile1/2 F");
	assert_contains(buf, "  --insecure1/2");
	assert_null(strstr(buf, "--usecache"));
	assert_null(strstr(buf, "--delete1"));
}

/* A default in a help text comes from the row's entry in the optset's defaults, in order, across
 * continued lines; a "{}" without one is left as it is (so that it shows). */
static void help_shows_each_default_from_its_row_entry(void **state)
{
	static const struct fleet_opt rows[] = {
		{"--workers", FLEET_OPT_VALUE, O_WORKERS, "N", "how many (default {} per core,\nat most {})"},
		{"--state", FLEET_OPT_VALUE, O_STATE, "URL", "the state (default {})"},
	};
	static const struct fleet_opt_default defaults[] = {{O_WORKERS, {7, 900}}};
	const struct fleet_optset set = FLEET_OPTSET_DEFAULTS(NULL, rows, defaults);
	char buf[1024] = "";
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	assert_non_null(f);
	fleet_opt_help(f, &set, 1, 0);
	fclose(f);
	assert_contains(buf, "how many (default 7 per core,\n                            at most 900)\n");
	assert_contains(buf, "the state (default {})\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(values_come_as_next_word_or_after_equals_and_sides_by_number),
		cmocka_unit_test(one_side_takes_the_unnumbered_names),
		cmocka_unit_test(every_problem_is_reported_at_once_with_suggestions),
		cmocka_unit_test(a_known_option_is_never_taken_as_a_value),
		cmocka_unit_test(after_dashdash_every_word_is_an_operand),
		cmocka_unit_test(an_unknown_options_value_is_an_operand_unless_the_command_takes_none),
		cmocka_unit_test(suggestions_cover_side_forms_prefixes_and_typos),
		cmocka_unit_test(help_lists_the_visible_options_with_side_forms),
		cmocka_unit_test(help_shows_each_default_from_its_row_entry),
	};

	return unit_run("opt", tests, NULL, NULL);
}
