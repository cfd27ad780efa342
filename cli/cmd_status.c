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
	    "usage: imapfleet status [--state URL] [--run ID] [--state STATE[,STATE]] [--server "
	    "HOST[:PORT]]\n"
	    "                        [--limit N] [--offset N | --page N] [--json]\n"
	    "  every run of the state store, then a page of the accounts of the run (default: the active\n"
	    "  run, else the newest); read-only, works while a run is going and from any host\n"
	    "  --state URL     PostgreSQL state (default: IMAPFLEET_STATE, PG* variables, or "
	    "./.imapfleet/pg)\n"
	    "  --run ID        only this run\n"
	    "  --state STATES  only accounts in these states: queued, running, done, failed, cancelled,\n"
	    "                  partial (a comma-separated list; a value that is not a URL is a state)\n"
	    "  --server H[:P]  only accounts with this server on either side (host, or host:port)\n"
	    "  --limit N       accounts per page (default %d; 0 = all of them)\n"
	    "  --offset N      skip the first N matching accounts; --page N: page N (from 1) of --limit\n"
	    "  --json          one JSON document instead of text (see docs/reports.md)\n",
	    STATUS_DEFAULT_LIMIT);
}

/* A --state value that names account states rather than a state store: a conninfo always holds
 * '=' and a URL ':' or '/', a state name never does. */
static int is_state_list(const char *v)
{
	return strpbrk(v, "=:/ ") == NULL && *v != '\0';
}

int cli_cmd_status(int argc, char **argv)
{
	const char *state_arg = NULL;
	uint64_t run_id = 0, limit = STATUS_DEFAULT_LIMIT, offset = 0, page = 0;
	int r, have_offset = 0;
	struct status_opts o;
	struct report_store *rs;
	struct fleet_err err;

	memset(&o, 0, sizeof(o));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			status_usage(stdout);
			return CLI_EXIT_OK;
		} else if (!strcmp(a, "--state") && v && is_state_list(v)) {
			if (status_parse_states(argv[++i], &o.state_mask) < 0) {
				fprintf(stderr,
					"imapfleet status: --state '%s' is neither account states (queued, "
					"running, "
					"done, failed, cancelled, partial, comma-separated) nor a state "
					"store URL "
					"(postgresql://...)\n",
					argv[i]);
				return CLI_EXIT_USAGE;
			}
		} else if (!strcmp(a, "--state") && v) {
			state_arg = argv[++i];
		} else if (!strcmp(a, "--server") && v) {
			o.server = argv[++i];
		} else if (!strcmp(a, "--run") && v) {
			if (fleet_parse_u64(argv[++i], 1, INT64_MAX, &run_id) < 0) {
				fprintf(stderr, "imapfleet status: --run needs a run id (a number; see "
						"'imapfleet status')\n");
				return CLI_EXIT_USAGE;
			}
		} else if (!strcmp(a, "--limit") && v) {
			if (fleet_parse_u64(argv[++i], 0, 100000000, &limit) < 0) {
				fprintf(stderr,
					"imapfleet status: --limit needs a number of accounts (0 = all)\n");
				return CLI_EXIT_USAGE;
			}
		} else if ((!strcmp(a, "--offset") || !strcmp(a, "--page")) && v) {
			int is_page = a[2] == 'p';

			if (have_offset || fleet_parse_u64(argv[++i], is_page ? 1 : 0, 100000000,
							   is_page ? &page : &offset) < 0) {
				fprintf(stderr, "imapfleet status: %s\n",
					have_offset
					    ? "give --offset or --page, once"
					    : (is_page ? "--page needs a page number (1 is the first)"
						       : "--offset needs a number of accounts to skip"));
				return CLI_EXIT_USAGE;
			}
			have_offset = 1;
		} else if (!strcmp(a, "--json")) {
			o.json = 1;
		} else {
			fprintf(stderr, "imapfleet status: unexpected argument '%s'\n", a);
			status_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (page > 0) {
		if (limit == 0) {
			fprintf(stderr, "imapfleet status: --page needs a page size (--limit N, not 0)\n");
			return CLI_EXIT_USAGE;
		}
		offset = (page - 1) * limit;
	}
	o.run_id = (int64_t)run_id;
	o.limit = (long)limit;
	o.offset = (long)offset;
	if (report_store_open(state_arg, &rs, &err) < 0) {
		fprintf(stderr, "imapfleet status: %s\n", err.message);
		if (err.detail[0])
			fprintf(stderr, "  %s\n", err.detail);
		return CLI_EXIT_STATE;
	}
	r = report_status(report_store_conn(rs), &o, stdout, &err);
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
