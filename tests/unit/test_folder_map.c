/* Unit tests for engine/folder_map.c and engine/options.c: where each source folder lands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
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

static const struct fm_entry *find_src(const struct fm_plan *p, const char *src)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->entries[i].src_name, src) == 0)
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
	assert_int_equal(plan.n, 4);
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

static void a_name_never_takes_a_role_a_special_use_folder_holds(void **state)
{
	/* Both orders: the explicit \\Drafts folder wins, "Entwuerfe" keeps its own name. */
	const struct fm_folder src_a[] = {
		{"Entw\xc3\xbcrfe", '/', 0, 1, ROLE_NONE},
		{"Drafts", '/', 0, 1, ROLE_DRAFTS},
	};
	const struct fm_folder src_b[] = {
		{"Drafts", '/', 0, 1, ROLE_DRAFTS},
		{"Entw\xc3\xbcrfe", '/', 0, 1, ROLE_NONE},
	};
	const struct fm_folder dst[] = {{"Drafts", '/', 0, 1, ROLE_DRAFTS}};
	const struct fm_folder *srcs[] = {src_a, src_b};
	struct fm_filter f = default_filter();
	struct fm_plan plan;

	for (int k = 0; k < 2; k++) {
		assert_int_equal(folder_map_plan(srcs[k], 2, &slash, dst, 1, &slash, &f, &plan, NULL), 0);
		assert_string_equal(find_src(&plan, "Drafts")->dst_name, "Drafts");
		assert_string_equal(find_src(&plan, "Entw\xc3\xbcrfe")->dst_name, "Entw\xc3\xbcrfe");
		folder_map_plan_release(&plan);
	}
}

static void a_guessed_role_gives_way_to_a_folder_that_has_the_name(void **state)
{
	/* A Courier-style source without SPECIAL-USE, in both orders: "INBOX.Entwuerfe" looks like a
	 * drafts folder, but "INBOX.Drafts" lands on the destination's "Drafts" by its name. */
	const struct fm_folder src_a[] = {
		{"INBOX", '.', 0, 1, ROLE_NONE},
		{"INBOX.Entw\xc3\xbcrfe", '.', 0, 1, ROLE_NONE},
		{"INBOX.Drafts", '.', 0, 1, ROLE_NONE},
	};
	const struct fm_folder src_b[] = {
		{"INBOX", '.', 0, 1, ROLE_NONE},
		{"INBOX.Drafts", '.', 0, 1, ROLE_NONE},
		{"INBOX.Entw\xc3\xbcrfe", '.', 0, 1, ROLE_NONE},
	};
	const struct fm_folder dst[] = {{"INBOX", '/', 0, 1, ROLE_NONE}, {"Drafts", '/', 0, 1, ROLE_DRAFTS}};
	const struct fm_folder *srcs[] = {src_a, src_b};
	struct fm_filter f = default_filter();
	struct fm_plan plan;

	for (int k = 0; k < 2; k++) {
		assert_int_equal(folder_map_plan(srcs[k], 3, &courier, dst, 2, &slash, &f, &plan, NULL), 0);
		assert_string_equal(find_src(&plan, "INBOX.Drafts")->dst_name, "Drafts");
		assert_string_equal(find_src(&plan, "INBOX.Entw\xc3\xbcrfe")->dst_name, "Entw\xc3\xbcrfe");
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

	assert_int_equal(folder_map_plan(src, 5, &slash, NULL, 0, &slash, &f, &plan, NULL), 0);
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
	assert_int_equal(folder_map_plan(src, 5, &slash, NULL, 0, &slash, &f, &plan, NULL), 0);
	assert_int_equal(plan.n, 2);
	assert_non_null(find_src(&plan, "INBOX"));
	assert_non_null(find_src(&plan, "Archive/2020"));
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
	assert_int_equal(folder_map_plan(src, 3, &slash, NULL, 0, &slash, &f, &plan, NULL), 0);
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

static void bad_account_options_name_the_option(void **state)
{
	char *unknown[] = {"--frobnicate"};
	char *novalue[] = {"--maxsize"};
	char *notnum[] = {"--maxage", "ten"};
	struct engine_opts o;
	struct fleet_err err;

	engine_opts_init(&o);
	assert_int_equal(engine_opts_parse(&o, 1, unknown, &err), -1);
	assert_non_null(strstr(err.message, "--frobnicate"));
	assert_int_equal(engine_opts_parse(&o, 1, novalue, &err), -1);
	assert_non_null(strstr(err.message, "--maxsize"));
	assert_int_equal(engine_opts_parse(&o, 2, notnum, &err), -1);
	assert_non_null(strstr(err.message, "ten"));
	engine_opts_release(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(courier_prefix_and_dot_become_slash),
		cmocka_unit_test(slash_becomes_courier_prefix_and_dot),
		cmocka_unit_test(inbox_is_special_in_any_case),
		cmocka_unit_test(destination_separator_inside_a_name_is_replaced_and_noted),
		cmocka_unit_test(non_ascii_names_pass_through_unchanged),
		cmocka_unit_test(roles_come_from_attributes_and_known_names),
		cmocka_unit_test(sent_lands_in_the_destination_sent_folder_whatever_its_name),
		cmocka_unit_test(a_name_never_takes_a_role_a_special_use_folder_holds),
	    cmocka_unit_test(a_guessed_role_gives_way_to_a_folder_that_has_the_name),
		cmocka_unit_test(parents_come_before_children_and_inbox_first),
		cmocka_unit_test(filters_select_and_report_what_they_leave_out),
		cmocka_unit_test(folder_option_selects_exact_names_only),
		cmocka_unit_test(a_bad_regex_is_an_error_naming_it),
		cmocka_unit_test(account_options_parse_imapsync_names),
		cmocka_unit_test(bad_account_options_name_the_option),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("folder_map", tests, NULL, NULL);
}
