/* cli/cmd_status.c: `imapfleet status`: runs and accounts, read from the state store. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"
#include "ops/report.h"
#include "ops/status.h"
#include "ops/store.h"

static void status_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: imapfleet status [--state URL] [--run ID] [--json]\n"
	    "  every run of the state store, then one line per account of the run (default: the active\n"
	    "  run, else the newest); read-only, works while a run is going and from any host\n"
	    "  --state URL   PostgreSQL state (default: IMAPFLEET_STATE, PG* variables, or ./.imapfleet/pg)\n"
	    "  --run ID      only this run\n"
	    "  --json        one JSON document instead of text (see docs/reports.md)\n");
}

int cli_cmd_status(int argc, char **argv)
{
	const char *state_arg = NULL;
	uint64_t run_id = 0;
	int json = 0, r;
	struct report_store *rs;
	struct fleet_err err;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			status_usage(stdout);
			return CLI_EXIT_OK;
		} else if (!strcmp(a, "--state") && v) {
			state_arg = argv[++i];
		} else if (!strcmp(a, "--run") && v) {
			if (fleet_parse_u64(argv[++i], 1, INT64_MAX, &run_id) < 0) {
				fprintf(stderr, "imapfleet status: --run needs a run id (a number; see "
						"'imapfleet status')\n");
				return CLI_EXIT_USAGE;
			}
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else {
			fprintf(stderr, "imapfleet status: unexpected argument '%s'\n", a);
			status_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (report_store_open(state_arg, &rs, &err) < 0) {
		fprintf(stderr, "imapfleet status: %s\n", err.message);
		if (err.detail[0])
			fprintf(stderr, "  %s\n", err.detail);
		return CLI_EXIT_STATE;
	}
	r = report_status(report_store_conn(rs), (int64_t)run_id, json, stdout, &err);
	report_store_close(&rs);
	if (r < 0) {
		fprintf(stderr, "imapfleet status: %s\n", err.message);
		return strcmp(err.code, REPORT_ERR_IO) == 0 ? CLI_EXIT_INTERNAL : CLI_EXIT_STATE;
	}
	if (r > 0 && run_id) {
		fprintf(stderr, "imapfleet status: no run %llu in the state store\n",
			(unsigned long long)run_id);
		return CLI_EXIT_PARTIAL;
	}
	return CLI_EXIT_OK;
}
