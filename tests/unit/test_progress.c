/* Unit tests for scheduler/progress.c and the log's display block (common/log.c): every line fits
 * the terminal, the counters are the run's, the percentage and the ETA are about bytes and the ETA
 * is smoothed, and a log line is printed above the block, never into it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "scheduler/progress.h"

#define MB 1048576ull

static struct progress_account accts[12];

static struct progress_snapshot busy_snapshot(void)
{
	struct progress_snapshot s;

	memset(&s, 0, sizeof(s));
	memset(accts, 0, sizeof(accts));
	for (unsigned i = 0; i < 12; i++) {
		struct progress_account *a = &accts[i];

		if (i == 3)
			snprintf(a->label, sizeof(a->label),
				 "\xe5\xb1\xb1\xe7\x94\xb0\xe5\xa4\xaa\xe9\x83\x8e-%u@"
				 "very-long-source-host-name.example.org",
				 i);
		else
			snprintf(a->label, sizeof(a->label),
				 "user%02u.with.a.long.name@imap.source.example.com", i);
		a->folders_done = i;
		a->folders_total = 15;
		a->msgs_copied = 120 * i;
		a->msgs_todo = 400 * (i + 1);
		a->bytes_copied = 12 * MB * i;
		a->bytes_todo = 45 * MB * (i + 1);
		a->listing = i % 2;
	}
	s.run_id = 123456;
	s.done = 1200;
	s.partial = 11;
	s.failed = 37;
	s.cancelled = 2;
	s.running = 64;
	s.queued = 98000;
	s.running_here = 12;
	s.finished_here = 30;
	s.bytes_copied = 93410 * MB;
	s.msgs_copied = 2105388;
	s.elapsed_ms = 3600000;
	s.acct = accts;
	s.nacct = 12;
	return s;
}

/* Splits the block into lines; returns how many, each checked to fit cols - 1 columns. */
static size_t check_block(const char *block, unsigned cols)
{
	size_t n = 0;

	for (const char *p = block, *nl;; p = nl + 1) {
		size_t len;

		nl = strchr(p, '\n');
		len = nl ? (size_t)(nl - p) : strlen(p);
		n++;
		if (progress_text_width(p, len) > cols - 1)
			fail_msg("line %zu is %zu columns wide on a %u-column terminal: %.*s", n,
				 progress_text_width(p, len), cols, (int)len, p);
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
				fail_msg("control character in line %zu", n);
		if (!nl)
			break;
	}
	return n;
}

/* The fixture of the tests of a busy run: its snapshot, a progress display and the output buffer. */
struct busy {
	struct progress_snapshot s;
	struct progress *p;
	struct fleet_buf out;
};

static int busy_setup(void **state)
{
	struct busy *b = xcalloc(1, sizeof(*b));

	b->s = busy_snapshot();
	b->p = progress_new();
	b->out = (struct fleet_buf)FLEET_BUF_INIT(1 << 20);
	*state = b;
	return 0;
}

static int busy_teardown(void **state)
{
	struct busy *b = *state;

	fleet_buf_release(&b->out);
	progress_free(&b->p);
	free(b);
	return 0;
}

static void every_line_fits_the_terminal_width_from_20_to_300_columns(void **state)
{
	static const unsigned widths[] = {20, 30, 40, 60, 80, 100, 120, 200, 300};
	struct busy *b = *state;
	struct progress_snapshot *s = &b->s;
	struct progress *p = b->p;
	struct fleet_buf *out = &b->out;

	progress_update(p, s, 1000);
	s->bytes_copied += 30 * MB;
	progress_update(p, s, 3000);
	for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
		size_t n;

		progress_render_block(p, s, widths[i], 24, out);
		n = check_block(fleet_buf_cstr(out), widths[i]);
		assert_true(n >= 3 && n <= 23);
	}
}

static void the_block_never_has_more_lines_than_the_terminal_less_one(void **state)
{
	struct busy *b = *state;
	struct progress_snapshot *s = &b->s;
	struct progress *p = b->p;
	struct fleet_buf *out = &b->out;

	for (unsigned rows = 1; rows <= 12; rows++) {
		progress_render_block(p, s, 80, rows, out);
		assert_true(check_block(fleet_buf_cstr(out), 80) <= (rows > 1 ? rows - 1 : 1));
	}
	/* Twelve running, at most eight lines of accounts: the rest is counted. */
	progress_render_block(p, s, 80, 50, out);
	assert_int_equal(check_block(fleet_buf_cstr(out), 80), 2 + 8);
	assert_non_null(strstr(fleet_buf_cstr(out), "... 5 more running here"));
}

static void finished_done_partial_and_failed_are_counted_apart(void **state)
{
	struct busy *b = *state;
	struct progress_snapshot *s = &b->s;
	struct progress *p = b->p;
	struct fleet_buf *out = &b->out;

	progress_render_block(p, s, 200, 24, out);
	assert_non_null(strstr(fleet_buf_cstr(out),
			       "accounts 1250/99314 finished: 1200 done, 11 partial, 37 failed, "
			       "2 cancelled; 64 running (12 here), 98000 queued"));
	progress_render_line(p, s, out);
	assert_non_null(strstr(fleet_buf_cstr(out), "progress: run 123456: "));
	assert_non_null(
	    strstr(fleet_buf_cstr(out), "1250/99314 finished: 1200 done, 11 partial, 37 failed"));
	assert_null(strchr(fleet_buf_cstr(out), '\n'));
}

static void the_byte_total_adds_listed_folders_status_sizes_and_the_queued_at_the_mean(void **state)
{
	struct progress_account a[2];
	struct progress_snapshot s;
	struct progress_bytes b;

	(void)state;
	memset(a, 0, sizeof(a));
	memset(&s, 0, sizeof(s));
	a[0].bytes_copied = 10 * MB;
	a[0].bytes_todo = 40 * MB;
	a[1].bytes_todo = 0;
	a[1].bytes_unlisted = 30 * MB; /* STATUS SIZE of folders not listed yet */
	a[1].listing = 1;
	s.acct = a;
	s.nacct = 2;
	s.finished_here = 2;
	s.bytes_copied = 10 * MB + 70 * MB; /* the running one's 10 and 70 by the two that finished */
	progress_bytes_of(&s, &b);
	assert_true(b.known);
	assert_true(b.estimated); /* one account is still being listed */
	assert_int_equal(b.copied, 80 * MB);
	assert_int_equal(b.total, 80 * MB + 30 * MB + 30 * MB);
	/* Two queued, four accounts seen with 140 MB: 35 MB each. */
	s.queued = 2;
	progress_bytes_of(&s, &b);
	assert_int_equal(b.total, 140 * MB + 70 * MB);
	/* Nothing seen yet: no total at all rather than a made-up one. */
	s.nacct = 0;
	s.finished_here = 0;
	s.bytes_copied = 0;
	progress_bytes_of(&s, &b);
	assert_false(b.known);
}

/* A snapshot S of run RUN_ID with one account, A ("user01@src"), running here, that copied COPIED of
 * its TODO bytes; the rest zero. */
static void one_account(struct progress_snapshot *s, struct progress_account *a, int64_t run_id, uint64_t copied,
			uint64_t todo)
{
	memset(a, 0, sizeof(*a));
	memset(s, 0, sizeof(*s));
	snprintf(a->label, sizeof(a->label), "user01@src");
	a->bytes_copied = copied;
	a->bytes_todo = todo;
	s->acct = a;
	s->nacct = 1;
	s->running = s->running_here = 1;
	s->bytes_copied = copied;
	s->run_id = run_id;
}

static void the_percentage_is_bytes_copied_of_bytes_to_copy(void **state)
{
	struct progress_account a;
	struct progress_snapshot s;
	struct progress *p = progress_new();
	struct fleet_buf out = FLEET_BUF_INIT(1 << 20);

	one_account(&s, &a, 7, 25 * MB, 100 * MB);
	a.folders_done = 2;
	a.folders_total = 4;
	s.done = 9; /* nine small accounts done: the percentage is not 90% */
	s.finished_here = 9;
	progress_render_block(p, &s, 120, 24, &out);
	assert_non_null(strstr(fleet_buf_cstr(&out), "run 7  25% ["));
	assert_non_null(strstr(fleet_buf_cstr(&out), "25.0/100.0 MB"));
	assert_non_null(strstr(fleet_buf_cstr(&out), "folder 2/4"));
	fleet_buf_release(&out);
	progress_free(&p);
}

static void the_eta_follows_a_smoothed_byte_rate_not_one_burst(void **state)
{
	struct progress_account a;
	struct progress_snapshot s;
	struct progress *p = progress_new();
	double eta_before, eta_after;

	one_account(&s, &a, 0, 0, 1000 * MB);
	progress_update(p, &s, 0);
	assert_true(progress_eta(p, &s) < 0); /* nothing measured: no ETA */
	for (unsigned t = 1; t <= 60; t++) {  /* 1 MB/s for a minute */
		s.elapsed_ms = t * 1000ull;
		s.bytes_copied = a.bytes_copied = t * MB;
		progress_update(p, &s, t * 1000ull);
	}
	assert_true(progress_rate(p) > 0.95 * MB && progress_rate(p) < 1.05 * MB);
	eta_before = progress_eta(p, &s);
	assert_true(eta_before > 900 && eta_before < 1000);
	/* One second at 10 MB/s (a burst) moves it a little, not to a tenth. */
	s.elapsed_ms += 1000;
	s.bytes_copied = a.bytes_copied = s.bytes_copied + 10 * MB;
	progress_update(p, &s, s.elapsed_ms);
	eta_after = progress_eta(p, &s);
	assert_true(eta_after > 0.6 * eta_before && eta_after < eta_before);
	progress_free(&p);
}

static void the_whole_run_counts_every_hosts_bytes_from_the_state(void **state)
{
	struct progress_account a;
	struct progress_snapshot s;
	struct progress_bytes b;
	struct progress *p = progress_new();
	struct fleet_buf out = FLEET_BUF_INIT(1 << 20);

	one_account(&s, &a, 5, 10 * MB, 40 * MB); /* this host's view: 10 of 40 */
	s.running = 3;
	/* The state: 200 MB in the ledger (every host), 50 MB left on the two accounts running elsewhere,
	 * three accounts seen there (two running, one done), two queued never started. */
	s.rest.known = 1;
	s.rest.copied = 200 * MB;
	s.rest.left = 50 * MB;
	s.rest.seen = 3;
	s.rest.unseen = 2;
	s.queued = 2;
	progress_bytes_of(&s, &b);
	assert_true(b.known && b.estimated);
	assert_int_equal(b.copied, 200 * MB);
	/* 200 + 30 left here + 50 left elsewhere = 280 over 4 accounts seen; two more at 70 each. */
	assert_int_equal(b.total, 280 * MB + 140 * MB);
	progress_render_block(p, &s, 120, 24, &out);
	assert_non_null(strstr(fleet_buf_cstr(&out), "run 5  ~47% ["));
	assert_non_null(strstr(fleet_buf_cstr(&out), "200.0/~420.0 MB"));
	/* Without the state's view: this host's bytes only. */
	s.rest.known = 0;
	s.queued = 0;
	progress_bytes_of(&s, &b);
	assert_int_equal(b.copied, 10 * MB);
	assert_int_equal(b.total, 40 * MB);
	fleet_buf_release(&out);
	progress_free(&p);
}

static void the_rate_of_the_whole_run_counts_from_the_first_look_not_from_zero(void **state)
{
	struct progress_snapshot s;
	struct progress *p = progress_new();

	(void)state;
	memset(&s, 0, sizeof(s));
	s.rest.known = 1;
	s.rest.copied = 5000 * MB; /* what other hosts copied before this process started */
	s.rest.left = 600 * MB;
	s.rest.seen = 4;
	s.running = 4;
	s.elapsed_ms = 500;
	progress_update(p, &s, 500);
	for (unsigned t = 1; t <= 10; t++) { /* the run moves at 2 MB/s */
		s.elapsed_ms = 500 + t * 1000ull;
		s.rest.copied += 2 * MB;
		s.rest.left -= 2 * MB;
		progress_update(p, &s, s.elapsed_ms);
	}
	assert_true(progress_rate(p) > 1.9 * MB && progress_rate(p) < 2.1 * MB);
	assert_true(progress_eta(p, &s) > 280 && progress_eta(p, &s) < 300);
	progress_free(&p);
}

static void parked_accounts_are_shown_apart_and_left_out_of_the_eta(void **state)
{
	struct progress_snapshot s;
	struct progress *p = progress_new();
	struct fleet_buf out = FLEET_BUF_INIT(1 << 20);
	struct progress_bytes b;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.run_id = 9;
	s.done = 6;
	s.queued = 3;
	s.parked = 3; /* every queued account waits for its next day */
	s.parked_until_ms = 1796342400000LL; /* 2026-12-04 00:00 UTC */
	s.rest.known = 1;
	s.rest.copied = 60 * MB;
	s.rest.seen = 6;
	s.rest.unseen = 0;
	progress_bytes_of(&s, &b);
	assert_int_equal(b.total, 60 * MB); /* the parked add nothing to what is left now */
	progress_render_block(p, &s, 200, 24, &out);
	assert_non_null(strstr(fleet_buf_cstr(&out), "run 9  100% ["));
	assert_non_null(strstr(fleet_buf_cstr(&out),
			       "accounts 6/9 finished: 6 done, 0 failed; 0 running (0 here), 0 queued, 3 parked "
			       "(the last resumes 12-04 00:00 UTC)"));
	progress_render_block(p, &s, 40, 24, &out);
	assert_non_null(strstr(fleet_buf_cstr(&out), "park 3"));
	check_block(fleet_buf_cstr(&out), 40);
	/* What can be done now is done: ETA 0:00, the parked line says when the rest resumes. */
	assert_true(progress_eta_of(&b, 1 * MB, 0) == 0);
	fleet_buf_release(&out);
	progress_free(&p);
}

static void a_log_line_is_printed_above_the_block_never_into_it(void **state)
{
	FILE *f = tmpfile();
	char got[4096];
	size_t n;
	const char *expect_head = "A1\nB2\r\033[1A" /* the block, cursor back to its first line */
				  "\r\033[J";	    /* a log line: the block erased first */
	const char *expect_tail = " INFO  hello\nA1\nB2\r\033[1A"; /* the line, then the block again */

	(void)state;
	assert_non_null(f);
	fleet_log_set_sink(f);
	fleet_log_overlay("A1\nB2");
	assert_true(fleet_log_overlay_shown());
	log_info("hello");
	fleet_log_overlay_end("final line");
	assert_false(fleet_log_overlay_shown());
	log_info("after");
	fleet_log_set_sink(NULL);
	rewind(f);
	n = fread(got, 1, sizeof(got) - 1, f);
	got[n] = '\0';
	fclose(f);
	assert_memory_equal(got, expect_head, strlen(expect_head));
	assert_non_null(strstr(got, expect_tail));
	assert_non_null(strstr(got, "\r\033[Jfinal line\n"));
	assert_null(strstr(strstr(got, "final line"), "A1")); /* not drawn again after the end */
	assert_non_null(strstr(got, " INFO  after\n"));
}

static void the_console_level_drops_info_lines_from_the_terminal_only(void **state)
{
	FILE *f = tmpfile(), *thread = tmpfile();
	char got[4096];
	size_t n;

	(void)state;
	fleet_log_set_sink(f);
	fleet_log_set_thread_sink(thread);
	fleet_log_set_console_level(FLEET_LOG_WARN);
	log_info("quiet info");
	log_warn("loud warning");
	fleet_log_set_console_level(FLEET_LOG_TRACE);
	fleet_log_set_thread_sink(NULL);
	fleet_log_set_sink(NULL);
	rewind(f);
	n = fread(got, 1, sizeof(got) - 1, f);
	got[n] = '\0';
	assert_null(strstr(got, "quiet info"));
	assert_non_null(strstr(got, "WARN  loud warning"));
	rewind(thread);
	n = fread(got, 1, sizeof(got) - 1, thread);
	got[n] = '\0';
	assert_non_null(strstr(got, "INFO  quiet info")); /* the account's log keeps it */
	fclose(f);
	fclose(thread);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(every_line_fits_the_terminal_width_from_20_to_300_columns, busy_setup, busy_teardown),
	    cmocka_unit_test_setup_teardown(the_block_never_has_more_lines_than_the_terminal_less_one, busy_setup, busy_teardown),
	    cmocka_unit_test_setup_teardown(finished_done_partial_and_failed_are_counted_apart, busy_setup, busy_teardown),
	    cmocka_unit_test(the_byte_total_adds_listed_folders_status_sizes_and_the_queued_at_the_mean),
	    cmocka_unit_test(the_percentage_is_bytes_copied_of_bytes_to_copy),
	    cmocka_unit_test(the_eta_follows_a_smoothed_byte_rate_not_one_burst),
	    cmocka_unit_test(the_whole_run_counts_every_hosts_bytes_from_the_state),
	    cmocka_unit_test(the_rate_of_the_whole_run_counts_from_the_first_look_not_from_zero),
	    cmocka_unit_test(parked_accounts_are_shown_apart_and_left_out_of_the_eta),
	    cmocka_unit_test(a_log_line_is_printed_above_the_block_never_into_it),
	    cmocka_unit_test(the_console_level_drops_info_lines_from_the_terminal_only),
	};

	return unit_run("progress", tests, NULL, NULL);
}
