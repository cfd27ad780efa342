/* Unit tests for engine/folder_map.c and engine/options.c: where each source folder lands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "common/alloc.h"
#include "common/opt.h"
#include "engine/engine.h"
#include "engine/folder_map.h"

static const struct fm_namespace slash = {"", '/'};
static const struct fm_namespace courier = {"INBOX.", '.'};
static const struct fm_namespace dotted_noprefix = {"", '.'};

static void translate_case(const char *src, const struct fm_namespace *sns, const struct fm_namespace *dns,
			   const char *want)
{
	char *note = NULL;
	char *got = folder_map_translate(src, sns, dns, &note);

	assert_string_equal(got, want);
	xfree(&got);
	xfree(&note);
}

static void courier_prefix_and_dot_become_slash(void **state)
{
	translate_case("INBOX.Sent", &courier, &slash, "Sent");
	translate_case("INBOX.Archive.2019", &courier, &slash, "Archive/2019");
	translate_case("INBOX", &courier, &slash, "INBOX");
}

static void slash_becomes_courier_prefix_and_dot(void **state)
{
	translate_case("Sent", &slash, &courier, "INBOX.Sent");
	translate_case("Projects/Alpha/Reports", &slash, &courier, "INBOX.Projects.Alpha.Reports");
	translate_case("INBOX", &slash, &courier, "INBOX");
}

static void inbox_is_special_in_any_case(void **state)
{
	translate_case("inbox", &slash, &slash, "INBOX");
	translate_case("Inbox", &courier, &slash, "INBOX");
}

static void destination_separator_inside_a_name_is_replaced_and_noted(void **state)
{
	char *note = NULL;
	char *got = folder_map_translate("INBOX.a/b", &courier, &slash, &note);

	assert_string_equal(got, "a_b");
	assert_non_null(note);
	xfree(&got);
	xfree(&note);
}

static void non_ascii_names_pass_through_unchanged(void **state)
{
	translate_case("Entw\xc3\xbcrfe", &slash, &dotted_noprefix, "Entw\xc3\xbcrfe");
	translate_case("Caf\xc3\xa9 \xce\xa9", &slash, &slash, "Caf\xc3\xa9 \xce\xa9");
}

static void roles_come_from_attributes_and_known_names(void **state)
{
	assert_int_equal(folder_role_from_attr("\\Sent"), ROLE_SENT);
	assert_int_equal(folder_role_from_attr("\\trash"), ROLE_TRASH);
	assert_int_equal(folder_role_from_attr("\\HasChildren"), ROLE_NONE);
	assert_int_equal(folder_role_from_name("Sent Items"), ROLE_SENT);
	assert_int_equal(folder_role_from_name("Deleted Items"), ROLE_TRASH);
	assert_int_equal(folder_role_from_name("Projects"), ROLE_NONE);
}

static struct fm_filter default_filter(void)
{
	struct fm_filter f;

	memset(&f, 0, sizeof(f));
	f.automap = 1;
	f.skip_virtual = 1;
	return f;
}

/* Plans SRC (N folders) with the filter F against no destination listing, '/' on both sides. */
static void plan_flat(const struct fm_folder *src, size_t n, const struct fm_filter *f, struct fm_plan *plan)
{
	assert_int_equal(folder_map_plan(src, n, &slash, NULL, 0, &slash, f, plan, NULL), 0);
}

static const struct fm_entry *find_src(const struct fm_plan *p, const char *src)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->entries[i].src_name, src) == 0)
			return &p->entries[i];
	return NULL;
}

static const struct fm_entry *find_dst(const struct fm_plan *p, const char *dst)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->entries[i].dst_name, dst) == 0)
			return &p->entries[i];
	return NULL;
}

static void sent_lands_in_the_destination_sent_folder_whatever_its_name(void **state)
{
	const struct fm_folder src[] = {
		{"INBOX", '/', 0, 1, ROLE_NONE},
		{"Sent Items", '/', 0, 1, ROLE_NONE},      /* no SPECIAL-USE on the source */
		{"Trash", '/', 0, 1, ROLE_TRASH},
		{"Projects/Sent Items", '/', 0, 1, ROLE_NONE}, /* not top level: not the sent folder */
	};
	const struct fm_folder dst[] = {
		{"INBOX", '/', 0, 1, ROLE_NONE},
		{"Gesendet", '/', 0, 1, ROLE_SENT},
		{"Papierkorb", '/', 0, 1, ROLE_TRASH},
	};
	struct fm_filter f = default_filter();
	struct fm_plan plan;

	assert_int_equal(folder_map_plan(src, 4, &slash, dst, 3, &slash, &f, &plan, NULL), 0);
	assert_int_equal(plan.n, 5); /* and "Projects", the parent level to create */
	assert_true(find_dst(&plan, "Projects")->create_parent);
	assert_string_equal(find_src(&plan, "Sent Items")->dst_name, "Gesendet");
	assert_true(find_src(&plan, "Sent Items")->exists_on_dst);
	assert_string_equal(find_src(&plan, "Trash")->dst_name, "Papierkorb");
	assert_string_equal(find_src(&plan, "Projects/Sent Items")->dst_name, "Projects/Sent Items");
	assert_false(find_src(&plan, "Projects/Sent Items")->exists_on_dst);
	folder_map_plan_release(&plan);

	f.automap = 0;
	assert_int_equal(folder_map_plan(src, 4, &slash, dst, 3, &slash, &f, &plan, NULL), 0);
	assert_string_equal(find_src(&plan, "Sent Items")->dst_name, "Sent Items");
	folder_map_plan_release(&plan);
}

/* ---- plans that must not depend on LIST order: one table, every order ------------------------------- */

/* A source and a destination and where two source folders must land (and with which role, unless
 * role is -1), without a collision, in every order of the source's rows. */
struct order_case {
	const char *name; /* the test's name in the TAP output */
	struct fm_folder src[3];
	size_t nsrc;
	const struct fm_namespace *sns;
	struct fm_folder dst[3];
	size_t ndst;
	struct {
		const char *src, *dst;
		int role;
	} want[2];
};

static const struct order_case order_cases[] = {
    /* the explicit \\Drafts folder wins, "Entwuerfe" keeps its own name */
    {"a_name_never_takes_a_role_a_special_use_folder_holds",
     {{"Entw\xc3\xbcrfe", '/', 0, 1, ROLE_NONE}, {"Drafts", '/', 0, 1, ROLE_DRAFTS}}, 2, &slash,
     {{"Drafts", '/', 0, 1, ROLE_DRAFTS}}, 1,
     {{"Drafts", "Drafts", -1}, {"Entw\xc3\xbcrfe", "Entw\xc3\xbcrfe", -1}}},
    /* A Courier-style source without SPECIAL-USE: "INBOX.Entwuerfe" looks like a drafts folder, but
     * "INBOX.Drafts" lands on the destination's "Drafts" by its name. */
    {"a_guessed_role_gives_way_to_a_folder_that_has_the_name",
     {{"INBOX", '.', 0, 1, ROLE_NONE}, {"INBOX.Entw\xc3\xbcrfe", '.', 0, 1, ROLE_NONE},
      {"INBOX.Drafts", '.', 0, 1, ROLE_NONE}}, 3, &courier,
     {{"INBOX", '/', 0, 1, ROLE_NONE}, {"Drafts", '/', 0, 1, ROLE_DRAFTS}}, 2,
     {{"INBOX.Drafts", "Drafts", -1}, {"INBOX.Entw\xc3\xbcrfe", "Entw\xc3\xbcrfe", -1}}},
    /* Issue 18.2: a \Sent folder named "Gesendet" and a plain "Sent" never end in one destination
     * folder, and where each goes depends neither on LIST order nor on whether an earlier pass has
     * already created "Sent" (which Dovecot then lists with \Sent). */
    {"a_special_use_folder_and_a_plain_namesake_never_merge_in_any_order",
     {{"INBOX", '.', 0, 1, ROLE_NONE}, {"INBOX.Gesendet", '.', 0, 1, ROLE_SENT},
      {"INBOX.Sent", '.', 0, 1, ROLE_NONE}}, 3, &courier,
     {{"INBOX", '/', 0, 1, ROLE_NONE}}, 1,
     {{"INBOX.Sent", "Sent", -1}, {"INBOX.Gesendet", "Gesendet", -1}}},
    {"a_special_use_folder_and_a_plain_namesake_never_merge_in_any_order: after a first pass",
     {{"INBOX", '.', 0, 1, ROLE_NONE}, {"INBOX.Gesendet", '.', 0, 1, ROLE_SENT},
      {"INBOX.Sent", '.', 0, 1, ROLE_NONE}}, 3, &courier,
     {{"INBOX", '/', 0, 1, ROLE_NONE}, {"Sent", '/', 0, 1, ROLE_SENT}, {"Gesendet", '/', 0, 1, ROLE_NONE}}, 3,
     {{"INBOX.Sent", "Sent", -1}, {"INBOX.Gesendet", "Gesendet", -1}}},
    /* Two names that both look like the sent folder, on a source without SPECIAL-USE: the one earlier
     * in the table of known names ("Sent" before "Gesendet") gets the destination's "Sent Items";
     * the other keeps its name. */
    {"of_two_guessed_role_names_the_table_decides_not_list_order",
     {{"INBOX.Gesendet", '.', 0, 1, ROLE_NONE}, {"INBOX.Sent", '.', 0, 1, ROLE_NONE}}, 2, &courier,
     {{"INBOX", '/', 0, 1, ROLE_NONE}, {"Sent Items", '/', 0, 1, ROLE_SENT}}, 2,
     {{"INBOX.Sent", "Sent Items", ROLE_SENT}, {"INBOX.Gesendet", "Gesendet", ROLE_NONE}}},
};

/* Plans IN (c->nsrc rows) in each order of its rows K.. (swapping them in place) and checks the plan. */
static void plan_orders_from(struct fm_folder *in, size_t k, const struct order_case *c)
{
	if (k == c->nsrc) {
		struct fm_filter f = default_filter();
		struct fm_plan plan;

		assert_int_equal(folder_map_plan(in, c->nsrc, c->sns, c->dst, c->ndst, &slash, &f, &plan, NULL), 0);
		for (size_t i = 0; i < 2; i++) {
			const struct fm_entry *e = find_src(&plan, c->want[i].src);

			assert_non_null(e);
			assert_string_equal(e->dst_name, c->want[i].dst);
			assert_false(e->collision);
			if (c->want[i].role >= 0)
				assert_int_equal(e->role, c->want[i].role);
		}
		folder_map_plan_release(&plan);
		return;
	}
	for (size_t i = k; i < c->nsrc; i++) {
		struct fm_folder t = in[k];

		in[k] = in[i];
		in[i] = t;
		plan_orders_from(in, k + 1, c);
		in[i] = in[k];
		in[k] = t;
	}
}

/* Runs one row of order_cases (the test's state) in every order of its source. */
static void the_plan_is_the_same_in_every_list_order(void **state)
{
	const struct order_case *c = *state;
	struct fm_folder in[3];

	memcpy(in, c->src, sizeof(in));
	plan_orders_from(in, 0, c);
}

/* Issue 18.3: "INBOX.Inbox" (Courier) or "INBOX.inbox" (Cyrus) would be INBOX itself on a
 * destination without the INBOX. prefix: it gets a name of its own, and the note says why. */
static void a_folder_named_inbox_below_inbox_is_never_merged_into_inbox(void **state)
{
	const char *names[] = {"INBOX.Inbox", "INBOX.inbox", "INBOX.INBOX"};
	const struct fm_folder dst[] = {{"INBOX", '/', 0, 1, ROLE_NONE}};
	struct fm_filter f = default_filter();
	struct fm_plan plan;

	for (int k = 0; k < 3; k++) {
		const struct fm_folder src[] = {{names[k], '.', 0, 1, ROLE_NONE}, {"INBOX", '.', 0, 1, ROLE_NONE}};
		const struct fm_entry *e;

		assert_int_equal(folder_map_plan(src, 2, &courier, dst, 1, &slash, &f, &plan, NULL), 0);
		assert_string_equal(find_src(&plan, "INBOX")->dst_name, "INBOX");
		e = find_src(&plan, names[k]);
		assert_true(e->collision);
		assert_false(strcasecmp(e->dst_name, "INBOX") == 0);
		assert_non_null(strstr(e->dst_name, " (2)"));
		assert_non_null(strstr(e->note, "INBOX is one folder in any case"));
		folder_map_plan_release(&plan);
		/* ... and kept as it is where it is a folder of its own (a Courier or Cyrus destination). */
		assert_int_equal(folder_map_plan(src, 2, &courier, dst, 1, &courier, &f, &plan, NULL), 0);
		assert_string_equal(find_src(&plan, names[k])->dst_name, names[k]);
		folder_map_plan_release(&plan);
	}
}

static void parents_come_before_children_and_inbox_first(void **state)
{
	const struct fm_folder src[] = {
		{"Projects/Alpha/Reports", '/', 0, 1, ROLE_NONE},
		{"Projects", '/', 1, 1, ROLE_NONE},
		{"Projects/Alpha", '/', 0, 0, ROLE_NONE},
		{"Archive", '/', 0, 1, ROLE_NONE},
		{"INBOX", '/', 0, 1, ROLE_NONE},
	};
	struct fm_filter f = default_filter();
	struct fm_plan plan;

	plan_flat(src, 5, &f, &plan);
	assert_int_equal(plan.n, 5);
	assert_string_equal(plan.entries[0].dst_name, "INBOX");
	for (size_t i = 0; i < plan.n; i++)
		for (size_t j = i + 1; j < plan.n; j++) {
			size_t li = strlen(plan.entries[j].dst_name);
			/* no later entry is a parent of an earlier one */
			assert_false(li < strlen(plan.entries[i].dst_name) &&
				     strncmp(plan.entries[i].dst_name, plan.entries[j].dst_name, li) == 0 &&
				     plan.entries[i].dst_name[li] == '/');
		}
	assert_true(find_src(&plan, "Projects")->noselect);
	assert_false(find_src(&plan, "Projects/Alpha")->subscribed);
	folder_map_plan_release(&plan);
}

static void filters_select_and_report_what_they_leave_out(void **state)
{
	const struct fm_folder src[] = {
		{"INBOX", '/', 0, 1, ROLE_NONE},   {"Archive/2019", '/', 0, 1, ROLE_NONE},
		{"Archive/2020", '/', 0, 1, ROLE_NONE}, {"[Gmail]/All Mail", '/', 0, 1, ROLE_ALL},
		{"Junk", '/', 0, 1, ROLE_JUNK},
	};
	const char *exclude[] = {"^Junk$", "2019"};
	struct fm_filter f = default_filter();
	struct fm_plan plan;

	f.exclude = exclude;
	f.nexclude = 2;
	plan_flat(src, 5, &f, &plan);
	assert_int_equal(plan.n, 3); /* INBOX, Archive/2020, and its parent level Archive, to create */
	assert_non_null(find_src(&plan, "INBOX"));
	assert_non_null(find_src(&plan, "Archive/2020"));
	assert_true(find_dst(&plan, "Archive")->create_parent);
	assert_int_equal(plan.nskipped, 3);
	folder_map_plan_release(&plan);
}

static void folder_option_selects_exact_names_only(void **state)
{
	const struct fm_folder src[] = {
		{"INBOX", '/', 0, 1, ROLE_NONE}, {"Sent", '/', 0, 1, ROLE_SENT}, {"Sent/Old", '/', 0, 1, ROLE_NONE},
	};
	const char *folders[] = {"Sent"};
	struct fm_filter f = default_filter();
	struct fm_plan plan;

	f.folders = folders;
	f.nfolders = 1;
	plan_flat(src, 3, &f, &plan);
	assert_int_equal(plan.n, 1);
	assert_string_equal(plan.entries[0].src_name, "Sent");
	folder_map_plan_release(&plan);
}

static void a_bad_regex_is_an_error_naming_it(void **state)
{
	const struct fm_folder src[] = {{"INBOX", '/', 0, 1, ROLE_NONE}};
	const char *inc[] = {"(unclosed"};
	struct fm_filter f = default_filter();
	struct fm_plan plan;
	struct fleet_err err;

	f.include = inc;
	f.ninclude = 1;
	assert_int_equal(folder_map_plan(src, 1, &slash, NULL, 0, &slash, &f, &plan, &err), -1);
	assert_non_null(strstr(err.message, "(unclosed"));
}

static void account_options_parse_imapsync_names(void **state)
{
	char *argv[] = {"--folder", "INBOX", "--exclude=^Junk", "--maxsize", "20M", "--maxage", "30",
			"--dry", "--delete2", "--noautomap", "--dedupe-existing"};
	struct engine_opts o;

	engine_opts_init(&o);
	assert_int_equal(engine_opts_parse(&o, 11, argv, NULL), 0);
	assert_int_equal(o.nfolders, 1);
	assert_string_equal(o.folders[0], "INBOX");
	assert_int_equal(o.nexclude, 1);
	assert_string_equal(o.exclude[0], "^Junk");
	assert_true(o.maxsize == 20u * 1024 * 1024);
	assert_int_equal(o.maxage_days, 30);
	assert_true(o.dry && o.delete2 && o.dedupe_existing);
	assert_false(o.automap);
	engine_opts_release(&o);
}

/* The account options ARGV (ARGC of them) are refused, with a message that names WHAT. */
static void options_are_refused(int argc, char **argv, const char *what)
{
	struct engine_opts o;
	struct fleet_err err;

	engine_opts_init(&o);
	assert_int_equal(engine_opts_parse(&o, argc, argv, &err), -1);
	assert_contains(err.message, what);
	engine_opts_release(&o);
}

static void bad_account_options_name_the_option(void **state)
{
	char *unknown[] = {"--frobnicate"};
	char *novalue[] = {"--maxsize"};
	char *notnum[] = {"--maxage", "ten"};

	options_are_refused(1, unknown, "--frobnicate");
	options_are_refused(1, novalue, "--maxsize");
	options_are_refused(2, notnum, "ten");
}

/* ---- rename rules ---- */

static void regextrans2_rules_rewrite_names_as_imapsync_does(void **state)
{
	static const struct {
		const char *rule, *in, *want;
	} cases[] = {
		{"s/\\./_/g", "a.b.c", "a_b_c"},
		{"s/\\./_/", "a.b.c", "a_b.c"},
		{"s/^INBOX\\.(.*)$/\\1/", "INBOX.Sent", "Sent"},
		{"s/^INBOX\\.(.*)$/$1/", "INBOX.Sent", "Sent"},
		{"s/^INBOX\\.(.*)$/${1}/", "INBOX.Sent", "Sent"},
		{"s,^Old/,Archive/,", "Old/2019", "Archive/2019"},
		{"s/^sent$/Sent Items/i", "SENT", "Sent Items"},
		{"s/^sent$/Sent Items/", "SENT", "SENT"},
		{"s/(a)(b)/\\2\\1/g", "abab", "baba"},
		{"s/\\//_/g", "a/b/c", "a_b_c"},
		{"s/ +$//", "Name  ", "Name"},
		{"s/^/Old./", "Sent", "Old.Sent"},
		{"s/$/ (2019)/", "Sent", "Sent (2019)"},
		{"s/x/y/", "abc", "abc"},
		{"s/[0-9]+/N/g", "a1b22c333", "aNbNcN"},
		{"s/b/\\$\\\\/", "abc", "a$\\c"},
		{"s/Q&A/Questions/", "Q&A", "Questions"},
		{"s/\xc3\xbc/ue/g", "Entw\xc3\xbcrfe", "Entwuerfe"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct folder_map_rule *r = NULL;
		struct fleet_err err;
		char *got;

		if (folder_map_rule_compile(cases[i].rule, &r, &err) != 0)
			fail_msg("rule %s: %s", cases[i].rule, err.message);
		got = folder_map_rule_apply(r, cases[i].in);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("rule %s on '%s': got '%s', want '%s'", cases[i].rule, cases[i].in, got, cases[i].want);
		xfree(&got);
		folder_map_rule_free(&r);
	}
}

static void a_bad_regextrans2_rule_is_a_usage_error_naming_the_rule(void **state)
{
	struct unit_row *rows;
	size_t n = unit_read_rows("unit/bad_regextrans2.tsv", &rows);

	for (size_t i = 0; i < n; i++) {
		const char *rule = rows[i].f[0], *why = rows[i].f[1];
		struct folder_map_rule *r = NULL;
		struct fleet_err err;

		fleet_err_clear(&err);
		if (folder_map_rule_compile(rule, &r, &err) == 0)
			fail_msg("rule '%s' was accepted", rule);
		assert_null(r);
		assert_string_equal(err.code, "USAGE");
		if (!strstr(err.message, rule) || !strstr(err.message, why))
			fail_msg("rule '%s': message '%s' should name it and say '%s'", rule, err.message, why);
	}
	unit_free_rows(rows, n);
}

static void rule_options_parse_and_bad_ones_name_the_rule(void **state)
{
	char *good[] = {"--f1f2", "Old Sent=Sent", "--regextrans2", "s/\\./_/g", "--regextrans2=s/a/b/i",
			"--subfolder2", "Migrated", "--casefold2"};
	char *badrule[] = {"--regextrans2", "s/(x/y/"};
	char *badf1f2[] = {"--f1f2", "NoEquals"};
	char *emptysub[] = {"--subfolder2="};
	struct engine_opts o;
	struct fm_filter f;
	struct fleet_err err;

	engine_opts_init(&o);
	assert_int_equal(engine_opts_parse(&o, 8, good, &err), 0);
	assert_int_equal(o.nf1f2, 1);
	assert_int_equal(o.nregextrans2, 2);
	assert_string_equal(o.regextrans2[1], "s/a/b/i");
	assert_string_equal(o.subfolder2, "Migrated");
	assert_true(o.casefold2);
	engine_opts_folder_filter(&o, &f);
	assert_int_equal(f.nregextrans2, 2);
	assert_true(f.casefold);
	assert_true(engine_opts_takes_value("--regextrans2") && engine_opts_takes_value("--f1f2") &&
		    engine_opts_takes_value("--subfolder2") && !engine_opts_takes_value("--casefold2"));
	engine_opts_release(&o);

	options_are_refused(2, badrule, "s/(x/y/");
	options_are_refused(2, badf1f2, "NoEquals");
	options_are_refused(1, emptysub, "--subfolder2");
}

/* One row: source folders (slash, no SPECIAL-USE unless given), options, expected destinations. */
struct rule_case {
	const char *what;
	const struct fm_namespace *sns, *dns;
	const char *src[6];
	const char *dst[4];          /* already on the destination */
	const char *f1f2[2];
	const char *regex[2];
	const char *subfolder2;
	int casefold;
	const char *want[6][2];      /* {source, destination} */
	const char *parents[3];      /* destination levels created as parents, parents first */
};

static const struct rule_case rule_cases[] = {
	{"f1f2 renames exactly and wins over role and rules", &slash, &slash,
	 {"INBOX", "Old Sent", "Projects"}, {"INBOX"}, {"Old Sent=Sent/2019"}, {"s/^Old/Older/"}, NULL, 0,
	 {{"INBOX", "INBOX"}, {"Old Sent", "Sent/2019"}, {"Projects", "Projects"}}, {"Sent"}},
	{"f1f2 takes the source name as listed (Courier prefix)", &courier, &slash,
	 {"INBOX", "INBOX.Sent Items", "INBOX.Sent Items.2019"}, {"INBOX"}, {"INBOX.Sent Items=Sent"}, {NULL}, NULL, 0,
	 {{"INBOX.Sent Items", "Sent"}, {"INBOX.Sent Items.2019", "Sent Items/2019"}}, {"Sent Items"}},
	{"regextrans2 sees the destination's prefix and separator", &slash, &courier,
	 {"INBOX", "Projects/Alpha", "Projects/Beta"}, {"INBOX"}, {NULL}, {"s/^INBOX\\.Projects\\./INBOX.Work./"}, NULL, 0,
	 {{"Projects/Alpha", "INBOX.Work.Alpha"}, {"Projects/Beta", "INBOX.Work.Beta"}}, {"INBOX.Work"}},
	{"regextrans2 rules apply in order", &slash, &slash,
	 {"INBOX", "a.b"}, {"INBOX"}, {NULL}, {"s/\\./_/g", "s/_/-/"}, NULL, 0,
	 {{"a.b", "a-b"}}, {NULL}},
	{"an explicit rule wins over a guessed role", &slash, &slash,
	 {"INBOX", "Sent Items"}, {"INBOX"}, {NULL}, {"s/^Sent Items$/Old Sent/"}, NULL, 0,
	 {{"Sent Items", "Old Sent"}}, {NULL}},
	{"subfolder2 puts the whole tree under one folder, INBOX becomes it", &slash, &slash,
	 {"INBOX", "Sent", "Archive/2019"}, {"INBOX", "Sent"}, {NULL}, {NULL}, "Migrated", 0,
	 {{"INBOX", "Migrated"}, {"Sent", "Migrated/Sent"}, {"Archive/2019", "Migrated/Archive/2019"}},
	 {"Migrated/Archive"}},
	{"subfolder2 under a Courier prefix", &slash, &courier,
	 {"INBOX", "Sent"}, {"INBOX"}, {NULL}, {NULL}, "Old", 0,
	 {{"INBOX", "INBOX.Old"}, {"Sent", "INBOX.Old.Sent"}}, {NULL}},
	{"case-insensitive destination: folders differing in case are never merged", &slash, &slash,
	 {"INBOX", "reports/2019", "Reports", "REPORTS"}, {"INBOX"}, {NULL}, {NULL}, NULL, 1,
	 {{"REPORTS", "REPORTS"}, {"Reports", "Reports (2)"}, {"reports/2019", "reports/2019"}}, {NULL}},
	{"case-sensitive destination: the same folders keep their names", &slash, &slash,
	 {"INBOX", "Reports", "REPORTS"}, {"INBOX"}, {NULL}, {NULL}, NULL, 0,
	 {{"REPORTS", "REPORTS"}, {"Reports", "Reports"}}, {NULL}},
	{"a renamed folder's subfolders move with it", &slash, &slash,
	 {"INBOX", "Work", "work", "work/2019"}, {"INBOX"}, {NULL}, {NULL}, NULL, 1,
	 {{"Work", "Work"}, {"work", "work (2)"}, {"work/2019", "work (2)/2019"}}, {NULL}},
	{"case-insensitive destination: an existing folder is used in its spelling", &slash, &slash,
	 {"INBOX", "Projects", "Projects/Alpha"}, {"INBOX", "PROJECTS"}, {NULL}, {NULL}, NULL, 1,
	 {{"Projects", "PROJECTS"}, {"Projects/Alpha", "Projects/Alpha"}}, {NULL}},
	{"rules sending two folders to one name: the unrenamed one keeps it", &slash, &slash,
	 {"INBOX", "Old Reports", "Reports"}, {"INBOX"}, {NULL}, {"s/^Old //"}, NULL, 0,
	 {{"Reports", "Reports"}, {"Old Reports", "Reports (2)"}}, {NULL}},
	{"parents missing on the destination are created first", &slash, &courier,
	 {"INBOX", "A/B/C"}, {"INBOX"}, {NULL}, {NULL}, NULL, 0,
	 {{"A/B/C", "INBOX.A.B.C"}}, {"INBOX.A", "INBOX.A.B"}},
	{"parents already on the destination are not", &slash, &slash,
	 {"INBOX", "A/B/C"}, {"INBOX", "A"}, {NULL}, {NULL}, NULL, 0,
	 {{"A/B/C", "A/B/C"}}, {"A/B"}},
};

static size_t count(const char *const *v, size_t cap)
{
	size_t n = 0;

	while (n < cap && v[n])
		n++;
	return n;
}

static void rename_rules_collisions_and_parents_follow_the_documented_order(void **state)
{
	for (size_t c = 0; c < sizeof(rule_cases) / sizeof(rule_cases[0]); c++) {
		const struct rule_case *rc = &rule_cases[c];
		struct fm_folder src[6], dst[4];
		size_t nsrc = count(rc->src, 6), ndst = count(rc->dst, 4), nparents = count(rc->parents, 3);
		struct fm_filter f = default_filter();
		struct fm_plan plan;
		struct fleet_err err;

		for (int order = 0; order < 2; order++) { /* the result does not depend on LIST order */
			for (size_t i = 0; i < nsrc; i++) {
				size_t k = order ? nsrc - 1 - i : i;

				memset(&src[i], 0, sizeof(src[i]));
				src[i].name = rc->src[k];
				src[i].delim = rc->sns->delim;
				src[i].subscribed = 1;
			}
			for (size_t i = 0; i < ndst; i++) {
				memset(&dst[i], 0, sizeof(dst[i]));
				dst[i].name = rc->dst[i];
				dst[i].delim = rc->dns->delim;
			}
			f.f1f2 = rc->f1f2;
			f.nf1f2 = count(rc->f1f2, 2);
			f.regextrans2 = rc->regex;
			f.nregextrans2 = count(rc->regex, 2);
			f.subfolder2 = rc->subfolder2;
			f.casefold = rc->casefold;
			if (folder_map_plan(src, nsrc, rc->sns, dst, ndst, rc->dns, &f, &plan, &err) != 0)
				fail_msg("%s: %s", rc->what, err.message);
			for (size_t w = 0; w < 6 && rc->want[w][0]; w++) {
				const struct fm_entry *e = find_src(&plan, rc->want[w][0]);

				if (!e || strcmp(e->dst_name, rc->want[w][1]) != 0)
					fail_msg("%s (order %d): '%s' went to '%s', want '%s'", rc->what, order,
						 rc->want[w][0], e ? e->dst_name : "(nothing)", rc->want[w][1]);
			}
			{
				size_t np = 0;

				for (size_t i = 0; i < plan.n; i++) {
					const struct fm_entry *e = &plan.entries[i];

					if (!e->create_parent)
						continue;
					if (np >= nparents || strcmp(e->dst_name, rc->parents[np]) != 0)
						fail_msg("%s: parent #%zu to create is '%s', want '%s'", rc->what, np,
							 e->dst_name, np < nparents ? rc->parents[np] : "(none)");
					np++;
					/* created before everything below it */
					for (size_t j = 0; j < i; j++)
						if (strncmp(plan.entries[j].dst_name, e->dst_name, strlen(e->dst_name)) == 0 &&
						    plan.entries[j].dst_name[strlen(e->dst_name)] == rc->dns->delim)
							fail_msg("%s: '%s' comes before its parent", rc->what,
								 plan.entries[j].dst_name);
				}
				if (np != nparents)
					fail_msg("%s: %zu parents to create, want %zu", rc->what, np, nparents);
			}
			/* never two selectable folders in one destination folder */
			for (size_t i = 0; i < plan.n; i++)
				for (size_t j = i + 1; j < plan.n; j++)
					if (!plan.entries[i].noselect && !plan.entries[j].noselect &&
					    (rc->casefold ? strcasecmp(plan.entries[i].dst_name, plan.entries[j].dst_name)
							  : strcmp(plan.entries[i].dst_name, plan.entries[j].dst_name)) == 0)
						fail_msg("%s: '%s' and '%s' both go to '%s'", rc->what,
							 plan.entries[i].src_name, plan.entries[j].src_name,
							 plan.entries[j].dst_name);
			folder_map_plan_release(&plan);
		}
	}
}

static void a_collision_is_noted_for_the_report(void **state)
{
	const struct fm_folder src[] = {{"INBOX", '/', 0, 1, ROLE_NONE}, {"Sent", '/', 0, 1, ROLE_NONE},
					{"SENT", '/', 0, 1, ROLE_NONE}};
	struct fm_filter f = default_filter();
	struct fm_plan plan;

	f.casefold = 1;
	f.automap = 0;
	plan_flat(src, 3, &f, &plan);
	assert_true(find_src(&plan, "Sent")->collision);
	assert_false(find_src(&plan, "SENT")->collision);
	assert_non_null(strstr(find_src(&plan, "Sent")->note, "differs only in case"));
	folder_map_plan_release(&plan);
}

/* Parses a table row's options (up to 4 words, NULL-terminated early) into o, or fails the test. */
static void parse_case(struct engine_opts *o, const char *const argv[4], size_t i)
{
	struct fleet_err err;
	int argc = 0;

	while (argc < 4 && argv[argc])
		argc++;
	engine_opts_init(o);
	if (engine_opts_parse(o, argc, (char **)argv, &err) != 0)
		fail_msg("case %zu: %s", i, err.message);
}


static void presets_set_provider_defaults_that_explicit_options_override(void **state)
{
	static const struct {
		const char *argv[4];
		uint64_t maxsize;
		int casefold;
		size_t nrules, nexclude;
		const char *preset1, *preset2;
	} cases[] = {
		{{"--office2"}, 35000000, 1, 2, 0, NULL, "--office2"},
		{{"--exchange2"}, 35000000, 1, 2, 0, NULL, "--exchange2"},
		{{"--gmail2"}, 35651584, 1, 2, 0, NULL, "--gmail2"},
		{{"--maxsize", "20M", "--office2"}, 20u * 1024 * 1024, 1, 2, 0, NULL, "--office2"},
		{{"--office2", "--maxsize=10M"}, 10u * 1024 * 1024, 1, 2, 0, NULL, "--office2"},
		{{"--office1", "--gmail2"}, 35651584, 1, 2, 1, "--office1", "--gmail2"},
		{{"--exchange1", "--exclude", "^Old$"}, 0, 0, 0, 2, "--exchange1", NULL},
		{{"--gmail1"}, 0, 0, 0, 0, "--gmail1", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct engine_opts o;

		parse_case(&o, cases[i].argv, i);
		assert_true(o.maxsize == cases[i].maxsize);
		assert_int_equal(o.casefold2, cases[i].casefold);
		assert_int_equal(o.nregextrans2, cases[i].nrules);
		assert_int_equal(o.nexclude, cases[i].nexclude);
		if (cases[i].preset1)
			assert_string_equal(o.preset[0], cases[i].preset1);
		else
			assert_null(o.preset[0]);
		if (cases[i].preset2)
			assert_string_equal(o.preset[1], cases[i].preset2);
		else
			assert_null(o.preset[1]);
		engine_opts_release(&o);
	}
}

static void daily_budgets_come_from_options_and_the_gmail_presets(void **state)
{
	static const struct {
		const char *argv[4];
		uint64_t down1, up1, down2, up2;
	} cases[] = {
		{{"--gmail1"}, 2250ull << 20, 0, 0, 0},
		{{"--gmail2"}, 0, 0, 0, 450ull << 20},
		{{"--gmail1", "--gmail2"}, 2250ull << 20, 0, 0, 450ull << 20},
		{{"--office1", "--office2"}, 0, 0, 0, 0},
		{{"--daily-download1", "1G", "--gmail1"}, 1ull << 30, 0, 0, 0},
		{{"--gmail2", "--daily-upload2=0"}, 0, 0, 0, 0},
		{{"--daily-upload1", "5K", "--daily-download2=7"}, 0, 5 << 10, 7, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct engine_opts o;

		parse_case(&o, cases[i].argv, i);
		if (o.daily[0][ENGINE_DOWN] != cases[i].down1 || o.daily[0][ENGINE_UP] != cases[i].up1 ||
		    o.daily[1][ENGINE_DOWN] != cases[i].down2 || o.daily[1][ENGINE_UP] != cases[i].up2)
			fail_msg("case %zu: budgets %llu %llu %llu %llu", i, (unsigned long long)o.daily[0][0],
				 (unsigned long long)o.daily[0][1], (unsigned long long)o.daily[1][0],
				 (unsigned long long)o.daily[1][1]);
		engine_opts_release(&o);
	}
	options_are_refused(2, (char *[]){"--daily-download1", "lots"}, "--daily-download1");
}

static void conns_per_account_defaults_to_4_and_presets_keep_half_the_providers_limit(void **state)
{
	static const struct {
		const char *argv[4];
		unsigned conns, user1, user2;
	} cases[] = {
		{{NULL}, ENGINE_CONNS_PER_ACCOUNT, 0, 0},
		{{"--conns-per-account", "8"}, 8, 0, 0},
		{{"--conns-per-account=0"}, 1, 0, 0}, /* 0 means one pair, never none */
		{{"--gmail1"}, ENGINE_CONNS_PER_ACCOUNT, 7, 0},
		{{"--office2", "--conns-per-account", "16"}, 16, 0, 10},
		{{"--gmail1", "--office2"}, ENGINE_CONNS_PER_ACCOUNT, 7, 10},
		{{"--exchange2"}, ENGINE_CONNS_PER_ACCOUNT, 0, 0},
	};

	(void)state;
	assert_int_equal(ENGINE_CONNS_PER_ACCOUNT, 4);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct engine_opts o;

		parse_case(&o, cases[i].argv, i);
		if (o.conns_per_account != cases[i].conns || o.user_conns[0] != cases[i].user1 ||
		    o.user_conns[1] != cases[i].user2)
			fail_msg("case %zu: conns %u, per-user caps %u %u", i, o.conns_per_account, o.user_conns[0],
				 o.user_conns[1]);
		engine_opts_release(&o);
	}
	options_are_refused(2, (char *[]){"--conns-per-account", "17"}, "--conns-per-account");
}

static void the_destination_presets_trim_spaces_at_level_ends(void **state)
{
	const struct fm_folder src[] = {{"INBOX", '/', 0, 1, ROLE_NONE}, {" Projects /Old ", '/', 0, 1, ROLE_NONE},
					{"Projects", '/', 0, 1, ROLE_NONE}};
	char *argv[] = {"--office2"};
	struct engine_opts o;
	struct fm_filter f;
	struct fm_plan plan;

	engine_opts_init(&o);
	assert_int_equal(engine_opts_parse(&o, 1, argv, NULL), 0);
	engine_opts_folder_filter(&o, &f);
	plan_flat(src, 3, &f, &plan);
	assert_string_equal(find_src(&plan, " Projects /Old ")->dst_name, "Projects/Old");
	assert_string_equal(find_src(&plan, "Projects")->dst_name, "Projects");
	folder_map_plan_release(&plan);
	engine_opts_release(&o);
}

static void harmless_imapsync_options_are_accepted_with_a_note(void **state)
{
	char *argv[] = {"--syncinternaldates", "--useuid", "--skipsize", "--nofoldersizes", "--addheader",
			"--subscribe", "--nolog", "--timeout1", "30", "--timeout2=60", "--syncinternaldates"};
	struct engine_opts o;
	struct fleet_err err;

	engine_opts_init(&o);
	if (engine_opts_parse(&o, 11, argv, &err) != 0)
		fail_msg("%s", err.message);
	assert_int_equal(o.nnotes, 9); /* one per option, repeated ones once */
	for (size_t i = 0; i < o.nnotes; i++)
		assert_int_equal(strncmp(o.notes[i], "--", 2), 0);
	assert_true(engine_opts_takes_value("--timeout1"));
	engine_opts_release(&o);
}

/* A command line copied from imapsync may carry every harmless option at once: each is noted, none
 * dropped for want of room (the notes are hidden rows whose help starts with their own name). */
static void every_harmless_imapsync_option_gets_its_note(void **state)
{
	const struct fleet_optset *set = &engine_opts_optset;
	char *argv[256];
	int argc = 0;
	size_t expected = 0;
	struct engine_opts o;
	struct fleet_err err;

	for (size_t i = 0; i < set->n; i++) {
		const struct fleet_opt *r = &set->opts[i];
		size_t len = strlen(r->name);

		if (!(r->flags & FLEET_OPT_HIDDEN) || (r->flags & FLEET_OPT_REFUSED) || !r->help ||
		    strncmp(r->help, r->name, len) != 0 || strncmp(r->help + len, ": ", 2) != 0)
			continue;
		assert_true((size_t)argc + 2 <= sizeof(argv) / sizeof(argv[0]));
		argv[argc++] = (char *)r->name;
		if (r->flags & FLEET_OPT_VALUE)
			argv[argc++] = "1";
		expected++;
	}
	assert_true(expected >= 9);
	engine_opts_init(&o);
	if (engine_opts_parse(&o, argc, argv, &err) != 0)
		fail_msg("%s", err.message);
	assert_int_equal(o.nnotes, expected);
	engine_opts_release(&o);
}

static void every_unknown_option_is_reported_at_once_with_suggestions(void **state)
{
	char *argv[] = {"--exclued", "^Junk", "--maxsise", "20M", "--delete1", "--frobnicate", "--dry"};
	struct engine_opts o;
	struct fleet_err err;

	engine_opts_init(&o);
	assert_int_equal(engine_opts_parse(&o, 7, argv, &err), -1);
	assert_string_equal(err.code, "USAGE");
	assert_non_null(strstr(err.message, "'--exclued' (did you mean --exclude?)"));
	assert_non_null(strstr(err.message, "'--maxsise' (did you mean --maxsize?)"));
	assert_non_null(strstr(err.message, "'--delete1' (imapsync's; here use nothing: imapfleet never changes the source)"));
	assert_non_null(strstr(err.message, "'--frobnicate'"));
	assert_null(strstr(err.message, "^Junk")); /* a value is not an option */
	engine_opts_release(&o);
}

int main(void)
{
	static const struct CMUnitTest others[] = {
		cmocka_unit_test(courier_prefix_and_dot_become_slash),
		cmocka_unit_test(slash_becomes_courier_prefix_and_dot),
		cmocka_unit_test(inbox_is_special_in_any_case),
		cmocka_unit_test(destination_separator_inside_a_name_is_replaced_and_noted),
		cmocka_unit_test(non_ascii_names_pass_through_unchanged),
		cmocka_unit_test(roles_come_from_attributes_and_known_names),
		cmocka_unit_test(sent_lands_in_the_destination_sent_folder_whatever_its_name),
		cmocka_unit_test(a_folder_named_inbox_below_inbox_is_never_merged_into_inbox),
		cmocka_unit_test(parents_come_before_children_and_inbox_first),
		cmocka_unit_test(filters_select_and_report_what_they_leave_out),
		cmocka_unit_test(folder_option_selects_exact_names_only),
		cmocka_unit_test(a_bad_regex_is_an_error_naming_it),
		cmocka_unit_test(account_options_parse_imapsync_names),
		cmocka_unit_test(bad_account_options_name_the_option),
		cmocka_unit_test(regextrans2_rules_rewrite_names_as_imapsync_does),
		cmocka_unit_test(a_bad_regextrans2_rule_is_a_usage_error_naming_the_rule),
		cmocka_unit_test(rule_options_parse_and_bad_ones_name_the_rule),
		cmocka_unit_test(rename_rules_collisions_and_parents_follow_the_documented_order),
		cmocka_unit_test(a_collision_is_noted_for_the_report),
		cmocka_unit_test(presets_set_provider_defaults_that_explicit_options_override),
		cmocka_unit_test(the_destination_presets_trim_spaces_at_level_ends),
		cmocka_unit_test(daily_budgets_come_from_options_and_the_gmail_presets),
		cmocka_unit_test(conns_per_account_defaults_to_4_and_presets_keep_half_the_providers_limit),
		cmocka_unit_test(harmless_imapsync_options_are_accepted_with_a_note),
		cmocka_unit_test(every_harmless_imapsync_option_gets_its_note),
		cmocka_unit_test(every_unknown_option_is_reported_at_once_with_suggestions),
	};

	/* each row of order_cases is a test of its own, by its name */
	return unit_run_rows("folder_map", others, order_cases, the_plan_is_the_same_in_every_list_order, NULL, NULL,
			     NULL);
}
