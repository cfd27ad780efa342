/* cli/cmd_retry.c: `imapfleet retry`: failed (or chosen) accounts back to the queue. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"
#include "ops/report.h"
#include "ops/retry.h"
#include "ops/store.h"

static void retry_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: imapfleet retry [--state URL] [--run ID] (--failed | --account ID|USER|USER@HOST)\n"
	    "  requeues accounts with their attempts reset; what was copied stays copied. Then run\n"
	    "  'imapfleet run ACCOUNTS.csv' again (or 'imapfleet worker') to migrate them\n"
	    "  --failed        every failed account of the run (default: the active run, else the newest)\n"
	    "  --account A     one account: its id (any run), or its source user or user@host in the run;\n"
	    "                  a finished account is requeued too (its next pass copies only what is new)\n"
	    "  --run ID        the run to look in\n"
	    "exit status: 0 when something was requeued, 1 when nothing matched\n");
}

int cli_cmd_retry(int argc, char **argv)
{
	const char *state_arg = NULL, *account = NULL;
	uint64_t run_arg = 0, num;
	int64_t run_id = 0;
	int failed = 0, r;
	long count = 0;
	struct report_store *rs;
	struct fleet_err err;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			retry_usage(stdout);
			return CLI_EXIT_OK;
		} else if (!strcmp(a, "--state") && v) {
			state_arg = argv[++i];
		} else if (!strcmp(a, "--run") && v) {
			if (fleet_parse_u64(argv[++i], 1, INT64_MAX, &run_arg) < 0) {
				fprintf(stderr, "imapfleet retry: --run needs a run id (a number; see "
						"'imapfleet status')\n");
				return CLI_EXIT_USAGE;
			}
		} else if (!strcmp(a, "--failed")) {
			failed = 1;
		} else if (!strcmp(a, "--account") && v && v[0]) {
			account = argv[++i];
		} else {
			fprintf(stderr, "imapfleet retry: unexpected argument '%s'\n", a);
			retry_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (failed == !!account) {
		fprintf(stderr, "imapfleet retry: give either --failed or --account ID\n");
		retry_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (report_store_open(state_arg, &rs, &err) < 0) {
		fprintf(stderr, "imapfleet retry: %s\n", err.message);
		if (err.detail[0])
			fprintf(stderr, "  %s\n", err.detail);
		return CLI_EXIT_STATE;
	}
	/* A job id names one account in any run; names and --failed need a run. */
	if (run_arg || !account || fleet_parse_u64(account, 1, INT64_MAX, &num) < 0) {
		r = report_pick_run(report_store_conn(rs), (int64_t)run_arg, &run_id, &err);
		if (r <= 0) {
			report_store_close(&rs);
			if (r < 0) {
				fprintf(stderr, "imapfleet retry: %s\n", err.message);
				return CLI_EXIT_STATE;
			}
			if (run_arg)
				fprintf(stderr, "imapfleet retry: no run %llu in the state store\n",
					(unsigned long long)run_arg);
			else
				fprintf(stderr,
					"imapfleet retry: no run in the state store: nothing to retry\n");
			return CLI_EXIT_PARTIAL;
		}
	}
	r = report_retry(report_store_conn(rs), run_id, account, stdout, &count, &err);
	report_store_close(&rs);
	if (r < 0) {
		fprintf(stderr, "imapfleet retry: %s\n", err.message);
		if (strcmp(err.code, "AMBIGUOUS") == 0) {
			fprintf(stderr, "  give the account id instead (see 'imapfleet status')\n");
			return CLI_EXIT_USAGE;
		}
		return CLI_EXIT_STATE;
	}
	if (count == 0)
		return CLI_EXIT_PARTIAL;
	fprintf(stdout,
		"requeued %ld account%s: run 'imapfleet run ACCOUNTS.csv' again (or 'imapfleet worker') to "
		"migrate %s\n",
		count, count == 1 ? "" : "s", count == 1 ? "it" : "them");
	return CLI_EXIT_OK;
}
