/* Unit tests for engine/gmail.c: which All Mail messages each label entry takes, and the flags
 * their labels become, under the three --gmail-labels policies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "engine/folder_map.h"
#include "engine/gmail.h"

static const struct fm_namespace slash = {"", '/'};

/* Rows of a LIST answer with the delimiter '/': a folder with its role, a \Noselect parent. */
#define FOLDER(name, role) {(name), '/', 0, 1, (role)}
#define PARENT(name) {(name), '/', 1, 0, ROLE_NONE}

/* A Gmail account as LIST shows it; its first SMALL_GMAIL folders make a smaller one. */
static const struct fm_folder gmail_src[] = {
	FOLDER("INBOX", ROLE_NONE),
	PARENT("[Gmail]"),
	FOLDER("[Gmail]/All Mail", ROLE_ALL),
	FOLDER("[Gmail]/Sent Mail", ROLE_SENT),
	FOLDER("[Gmail]/Trash", ROLE_TRASH),
	FOLDER("Work", ROLE_NONE),
	FOLDER("[Gmail]/Drafts", ROLE_DRAFTS),
	FOLDER("[Gmail]/Spam", ROLE_JUNK),
	FOLDER("[Gmail]/Starred", ROLE_FLAGGED),
	FOLDER("[Gmail]/Important", ROLE_IMPORTANT),
	FOLDER("Work/Projects", ROLE_NONE),
	FOLDER("Zeta", ROLE_NONE),
};
#define SMALL_GMAIL 6 /* INBOX, [Gmail] with All Mail, Sent Mail and Trash, Work */

/* folder_map_plan of SRC to DST as a run plans them: roles mapped, virtual folders left out. */
static void automap_plan(const struct fm_folder *src, size_t ns, const struct fm_folder *dst, size_t nd,
			 struct fm_plan *plan)
{
	struct fm_filter f;

	memset(&f, 0, sizeof(f));
	f.automap = 1;
	f.skip_virtual = 1;
	assert_int_equal(folder_map_plan(src, ns, &slash, dst, nd, &slash, &f, plan, NULL), 0);
}

/* The whole Gmail account, planned as usual, then turned into All Mail entries. */
static void gmail_account_plan(struct fm_plan *plan, const char *archive)
{
	static const struct fm_folder dst[] = {FOLDER("INBOX", ROLE_NONE), FOLDER("Sent", ROLE_SENT)};

	automap_plan(gmail_src, ARRAY_LEN(gmail_src), dst, 2, plan);
	assert_int_equal(gmail_plan(plan, gmail_src, ARRAY_LEN(gmail_src), &slash, dst, 2, archive), 0);
}

static const struct fm_entry *entry_for(const struct fm_plan *p, const char *dst)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->entries[i].dst_name, dst) == 0)
			return &p->entries[i];
	fail_msg("no entry goes to %s", dst);
	return NULL;
}

static void label_folders_read_all_mail_and_trash_stays_a_folder(void **state)
{
	struct fm_plan plan;
	const struct fm_entry *e;

	gmail_account_plan(&plan, NULL);
	e = entry_for(&plan, "INBOX");
	assert_string_equal(e->src_mailbox, "[Gmail]/All Mail");
	assert_string_equal(e->gm_label, "\\Inbox");
	assert_string_equal(entry_for(&plan, "Sent")->gm_label, "\\Sent"); /* role-mapped destination kept */
	assert_string_equal(entry_for(&plan, "[Gmail]/Drafts")->gm_label, "\\Draft");
	assert_string_equal(entry_for(&plan, "Work/Projects")->gm_label, "Work/Projects");
	e = entry_for(&plan, "[Gmail]/Trash");
	assert_null(e->gm_label);
	assert_null(e->src_mailbox);
	assert_null(entry_for(&plan, "[Gmail]/Spam")->gm_label);
	e = entry_for(&plan, "Archive");
	assert_true(e->gm_archive);
	assert_string_equal(e->src_mailbox, "[Gmail]/All Mail");
	/* every entry has its own name in the ledger */
	for (size_t i = 0; i < plan.n; i++)
		for (size_t j = i + 1; j < plan.n; j++)
			assert_string_not_equal(plan.entries[i].src_name, plan.entries[j].src_name);
	folder_map_plan_release(&plan);

	gmail_account_plan(&plan, "Old Gmail/Archived");
	assert_true(entry_for(&plan, "Old Gmail/Archived")->gm_archive);
	folder_map_plan_release(&plan);
}

struct msg_case {
	const char *what;
	const char *labels[5];
	const char *folders[5];  /* destinations under "folders" */
	const char *primary;     /* the one destination under primary and keywords */
};

static const struct msg_case msg_cases[] = {
	{"inbox only", {"\\Inbox"}, {"INBOX"}, "INBOX"},
	{"several user labels", {"Work", "Work/Projects"}, {"Work", "Work/Projects"}, "Work"},
	{"user labels in byte order", {"Zeta", "Work/Projects"}, {"Zeta", "Work/Projects"}, "Work/Projects"},
	{"inbox wins over labels", {"Work", "\\Inbox"}, {"Work", "INBOX"}, "INBOX"},
	{"sent wins over labels", {"Zeta", "\\Sent"}, {"Zeta", "Sent"}, "Sent"},
	{"no label: archive", {NULL}, {"Archive"}, "Archive"},
	{"starred and important are not folders", {"\\Starred", "\\Important"}, {"Archive"}, "Archive"},
	{"the \\All view is not a label", {"\\All", "Work"}, {"Work"}, "Work"},
	{"a label without a folder makes no copy", {"Elsewhere"}, {NULL}, NULL},
	{"system labels in any case", {"\\inbox"}, {"INBOX"}, "INBOX"},
};

static int in_list(const char *const *v, const char *s)
{
	for (size_t i = 0; i < 5 && v[i]; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

static void each_policy_puts_a_message_where_its_labels_say(void **state)
{
	struct fm_plan plan;

	gmail_account_plan(&plan, NULL);
	for (size_t c = 0; c < sizeof(msg_cases) / sizeof(msg_cases[0]); c++) {
		const struct msg_case *mc = &msg_cases[c];
		size_t n = 0;

		while (n < 5 && mc->labels[n])
			n++;
		for (size_t i = 0; i < plan.n; i++) {
			const struct fm_entry *e = &plan.entries[i];

			if (!e->gm_label && !e->gm_archive)
				continue;
			if (gmail_wants(&plan, e, GMAIL_FOLDERS, mc->labels, n) != in_list(mc->folders, e->dst_name))
				fail_msg("%s (folders): %s %s", mc->what, e->dst_name,
					 in_list(mc->folders, e->dst_name) ? "should take it" : "should not");
			for (int p = GMAIL_PRIMARY; p <= GMAIL_KEYWORDS; p++) {
				int want = mc->primary && strcmp(mc->primary, e->dst_name) == 0;

				if (gmail_wants(&plan, e, (enum gmail_policy)p, mc->labels, n) != want)
					fail_msg("%s (policy %d): %s %s", mc->what, p, e->dst_name,
						 want ? "should take it" : "should not");
			}
		}
	}
	folder_map_plan_release(&plan);
}

static void labels_become_flags_and_keywords(void **state)
{
	static const struct {
		enum gmail_policy p;
		const char *flags;
		const char *labels[4];
		const char *want;
	} cases[] = {
		{GMAIL_FOLDERS, "\\Seen", {"\\Starred", "\\Important", "Work"}, "\\Seen \\Flagged $Important"},
		{GMAIL_FOLDERS, "\\Flagged", {"\\Starred"}, "\\Flagged"},
		{GMAIL_PRIMARY, "", {"Work", "\\Inbox"}, ""},
		{GMAIL_KEYWORDS, "\\Seen", {"Work", "\\Inbox", "Work/Projects"}, "\\Seen Work Work/Projects"},
		{GMAIL_KEYWORDS, "", {"My Label (old)", "Priv\xc3\xa9"}, "My_Label__old_ Priv__"},
		{GMAIL_KEYWORDS, "Work", {"Work"}, "Work"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fleet_buf b = FLEET_BUF_INIT(4096);
		size_t n = 0;

		while (n < 4 && cases[i].labels[n])
			n++;
		fleet_buf_add_str(&b, cases[i].flags);
		gmail_label_flags(cases[i].p, cases[i].labels, n, &b);
		if (strcmp(fleet_buf_cstr(&b), cases[i].want) != 0)
			fail_msg("case %zu: '%s', want '%s'", i, fleet_buf_cstr(&b), cases[i].want);
		fleet_buf_release(&b);
	}
}

static void policies_have_their_documented_names(void **state)
{
	assert_int_equal(gmail_policy_from_name("folders"), GMAIL_FOLDERS);
	assert_int_equal(gmail_policy_from_name("primary"), GMAIL_PRIMARY);
	assert_int_equal(gmail_policy_from_name("keywords"), GMAIL_KEYWORDS);
	assert_int_equal(gmail_policy_from_name("labels"), -1);
}

static void to_gmail_all_mail_is_copied_once_and_trash_stays_a_folder(void **state)
{
	const struct fm_folder *src = gmail_src;
	static const struct fm_folder dst[] = {
	    FOLDER("INBOX", ROLE_NONE),
	    PARENT("[Google Mail]"),
	    FOLDER("[Google Mail]/All Mail", ROLE_ALL),
	    FOLDER("[Google Mail]/Bin", ROLE_TRASH),
	};
	const size_t ns = SMALL_GMAIL, nd = ARRAY_LEN(dst);
	struct fm_plan plan;
	size_t all = 0, trash = 0, labels = 0;

	automap_plan(src, ns, dst, nd, &plan);
	assert_int_equal(gmail_plan_to_gmail(&plan, src, ns, dst, nd), 0);
	for (size_t i = 0; i < plan.n; i++) {
		const struct fm_entry *e = &plan.entries[i];

		if (e->gm_to_gmail) {
			all++;
			assert_string_equal(e->src_name, "[Gmail]/All Mail");
			assert_string_equal(e->dst_name, "[Google Mail]/All Mail");
		} else if (e->role == ROLE_TRASH) {
			trash++;
			assert_string_equal(e->dst_name, "[Google Mail]/Bin");
		} else if (!e->noselect) {
			labels++;
		}
	}
	assert_int_equal(all, 1);
	assert_int_equal(trash, 1);
	assert_int_equal(labels, 0); /* INBOX, Sent Mail, Work: labels now, not folders */
	folder_map_plan_release(&plan);
	/* a destination without \All: nothing changes, the caller falls back to label folders */
	automap_plan(src, ns, dst, 1, &plan);
	assert_int_equal(gmail_plan_to_gmail(&plan, src, ns, dst, 1), -1);
	folder_map_plan_release(&plan);
}

static void labels_to_set_leave_out_views(void **state)
{
	const char *in[] = {"\\Inbox", "\\All", "Work", "\\Important", "\\allmail", "\\Starred"}, *out[6];
	size_t n = gmail_labels_to_set(in, 6, out);

	(void)state;
	assert_int_equal(n, 4);
	assert_string_equal(out[0], "\\Inbox");
	assert_string_equal(out[1], "Work");
	assert_string_equal(out[2], "\\Important");
	assert_string_equal(out[3], "\\Starred");
	assert_true(gmail_same_label("\\INBOX", "\\Inbox"));
	assert_false(gmail_same_label("work", "Work"));
}

static void a_source_without_all_mail_is_left_as_it_is(void **state)
{
	const struct fm_folder src[] = {FOLDER("INBOX", ROLE_NONE), FOLDER("Work", ROLE_NONE)};
	struct fm_plan plan;

	automap_plan(src, 2, NULL, 0, &plan);
	assert_int_equal(gmail_plan(&plan, src, 2, &slash, NULL, 0, NULL), -1);
	assert_int_equal(plan.n, 2);
	assert_null(plan.entries[0].gm_label);
	folder_map_plan_release(&plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(label_folders_read_all_mail_and_trash_stays_a_folder),
		cmocka_unit_test(each_policy_puts_a_message_where_its_labels_say),
		cmocka_unit_test(labels_become_flags_and_keywords),
		cmocka_unit_test(policies_have_their_documented_names),
		cmocka_unit_test(a_source_without_all_mail_is_left_as_it_is),
		cmocka_unit_test(to_gmail_all_mail_is_copied_once_and_trash_stays_a_folder),
		cmocka_unit_test(labels_to_set_leave_out_views),
	};

	return unit_run("gmail", tests, NULL, NULL);
}
