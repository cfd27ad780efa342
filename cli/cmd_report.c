/* cli/cmd_report.c: `imapfleet report`: accounts.csv, failures.csv, accounts.json and report.html. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/usage.h"
#include "cli/cli.h"
#include "common/opt.h"
#include "common/util.h"
#include "ops/report.h"
#include "state/store.h"

static void print_written(const char *path, void *ctx)
{
	fprintf((FILE *)ctx, "wrote %s\n", path);
}

enum { REPORT_FORMAT = 1, REPORT_OUT, REPORT_TITLE, REPORT_WATCH };

static const struct fleet_opt report_table[] = {
	{"--format", FLEET_OPT_VALUE, REPORT_FORMAT, "F", "csv, json, html, all (default) or a list: csv,html"},
	{"--out", FLEET_OPT_VALUE, REPORT_OUT, "DIR", "where the files go (created when missing; files are replaced)"},
	{"--title", FLEET_OPT_VALUE, REPORT_TITLE, "TEXT", "the title of report.html (default: Run N)"},
	{"--watch", FLEET_OPT_VALUE, REPORT_WATCH, "SECONDS",
	 "rewrite the files every SECONDS while the run goes on, until it ends; report.html reloads itself "
	 "as often"},
};

static const struct fleet_optset report_opts = FLEET_OPTSET(NULL, report_table);
static const struct cli_spec report_spec = {
    "report",
    cli_usage_report,
    {&cli_store_optset, &report_opts},
    0,
};

struct report_args {
	struct cli_store_args store;
	unsigned formats;
	const char *dir;
	const char *title;
	unsigned watch;
};

static int report_option(void *ctx, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	struct report_args *a = ctx;

	switch (h->opt->id) {
	case REPORT_OUT: a->dir = h->value; return 0;
	case REPORT_TITLE: a->title = h->value; return 0;
	case REPORT_WATCH: {
		uint64_t v;

		if (fleet_parse_u64(h->value, 1, CLI_REPORT_WATCH_MAX, &v) < 0) {
			snprintf(why, cap, "--watch takes seconds from 1 to %d, not '%s'", CLI_REPORT_WATCH_MAX, h->value);
			return -1;
		}
		a->watch = (unsigned)v;
		return 0;
	}
	}
	if (report_formats_parse(h->value, &a->formats) < 0) {
		snprintf(why, cap, "unknown format '%s' (csv, json, html or all)", h->value);
		return -1;
	}
	return 0;
}

int cli_cmd_report(int argc, char **argv)
{
	struct report_args a;
	int64_t run_id = 0;
	struct state_store *rs;
	struct report *rep = NULL;
	struct fleet_err err;
	int rc;

	memset(&a, 0, sizeof(a));
	a.formats = REPORT_ALL;
	a.dir = REPORT_DEFAULT_DIR;
	rc = cli_store_spec_args(&report_spec, argc, argv, &a.store, report_option, &a);
	if (rc >= 0)
		return rc;
	if (state_store_open(a.store.state_arg, NULL, STATE_STORE_EXISTING, &rs, &err) < 0)
		return cli_fail("report", &err);
	rc = cli_store_pick_run("report", state_store_conn(rs), a.store.run_id, &run_id);
	if (rc >= 0) {
		state_store_close(&rs);
		return rc;
	}
	/* Once, or with --watch every N seconds until the run ends (the last write, of the run that has
	 * ended, does not reload itself). Each file is replaced whole: a reader never sees half of one. */
	for (unsigned pass = 0;; pass++) {
		if (report_load(state_store_conn(rs), run_id, &rep, &err) < 0) {
			state_store_close(&rs);
			fprintf(stderr, "imapfleet report: %s\n", err.message);
			return cli_exit_for_error(&err);
		}
		report_set_title(rep, a.title);
		report_set_refresh(rep, a.watch);
		rc = CLI_EXIT_OK;
		if (report_write_dir(rep, a.dir, a.formats, pass ? NULL : print_written, stdout, &err) < 0) {
			fprintf(stderr, "imapfleet report: %s\n", err.message);
			rc = cli_exit_for_error(&err);
			break;
		}
		report_print_summary(rep, stdout);
		if (!a.watch || !report_run_goes_on(rep))
			break;
		fflush(stdout);
		report_free(&rep);
		sleep(a.watch);
	}
	state_store_close(&rs);
	report_free(&rep);
	return rc;
}
