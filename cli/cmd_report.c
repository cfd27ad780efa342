/* cli/cmd_report.c: `imapfleet report`: accounts.csv, failures.csv, accounts.json and report.html. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"
#include "ops/report.h"
#include "ops/store.h"

#define REPORT_DEFAULT_DIR "imapfleet-report"

static void report_usage(FILE *out)
{
	fprintf(out,
		"usage: imapfleet report [--state URL] [--run ID] [--format csv|json|html|all] [--out DIR]\n"
		"  writes the report of a run (default: the active run, else the newest) into DIR\n"
		"  (default ./" REPORT_DEFAULT_DIR
		"): accounts.csv and failures.csv (csv), accounts.json (json),\n"
		"  report.html (html: one self-contained page); see docs/reports.md\n"
		"  --format F    csv, json, html, all (default) or a list: csv,html\n"
		"  --out DIR     where the files go (created when missing; files are replaced)\n");
}

static void print_written(const char *path, void *ctx)
{
	fprintf((FILE *)ctx, "wrote %s\n", path);
}

int cli_cmd_report(int argc, char **argv)
{
	const char *state_arg = NULL, *dir = REPORT_DEFAULT_DIR;
	uint64_t run_arg = 0;
	int64_t run_id = 0;
	unsigned formats = REPORT_ALL;
	struct report_store *rs;
	struct report *rep = NULL;
	struct fleet_err err;
	int r, rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			report_usage(stdout);
			return CLI_EXIT_OK;
		} else if (!strcmp(a, "--state") && v) {
			state_arg = argv[++i];
		} else if (!strcmp(a, "--run") && v) {
			if (fleet_parse_u64(argv[++i], 1, INT64_MAX, &run_arg) < 0) {
				fprintf(stderr, "imapfleet report: --run needs a run id (a number; see "
						"'imapfleet status')\n");
				return CLI_EXIT_USAGE;
			}
		} else if (!strcmp(a, "--format") && v) {
			if (report_formats_parse(argv[++i], &formats) < 0) {
				fprintf(stderr,
					"imapfleet report: unknown format '%s' (csv, json, html or all)\n",
					argv[i]);
				return CLI_EXIT_USAGE;
			}
		} else if (!strcmp(a, "--out") && v) {
			dir = argv[++i];
		} else {
			fprintf(stderr, "imapfleet report: unexpected argument '%s'\n", a);
			report_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (report_store_open(state_arg, &rs, &err) < 0) {
		fprintf(stderr, "imapfleet report: %s\n", err.message);
		if (err.detail[0])
			fprintf(stderr, "  %s\n", err.detail);
		return CLI_EXIT_STATE;
	}
	r = report_pick_run(report_store_conn(rs), (int64_t)run_arg, &run_id, &err);
	if (r <= 0) {
		report_store_close(&rs);
		if (r < 0) {
			fprintf(stderr, "imapfleet report: %s\n", err.message);
			return CLI_EXIT_STATE;
		}
		if (run_arg)
			fprintf(stderr,
				"imapfleet report: no run %llu in the state store (see 'imapfleet status')\n",
				(unsigned long long)run_arg);
		else
			fprintf(stderr,
				"imapfleet report: no run in the state store yet: nothing to report\n");
		return CLI_EXIT_PARTIAL;
	}
	if (report_load(report_store_conn(rs), run_id, &rep, &err) < 0) {
		report_store_close(&rs);
		fprintf(stderr, "imapfleet report: %s\n", err.message);
		return CLI_EXIT_STATE;
	}
	report_store_close(&rs);
	rc = CLI_EXIT_OK;
	if (report_write_dir(rep, dir, formats, print_written, stdout, &err) < 0) {
		fprintf(stderr, "imapfleet report: %s\n", err.message);
		rc = CLI_EXIT_USAGE;
	} else {
		report_print_summary(rep, stdout);
	}
	report_free(&rep);
	return rc;
}
