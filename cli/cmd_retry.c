/* cli/cmd_retry.c: `imapfleet retry`: failed (or chosen) accounts back to the queue. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "common/opt.h"
#include "common/util.h"
#include "ops/report.h"
#include "ops/retry.h"
#include "ops/store.h"
#include "state/state.h"

#define RETRY_USAGE                                                                                              \
	"usage: imapfleet retry [--state URL] [--run ID] (--failed | --account ID|USER|USER@HOST)\n"                \
	"  requeues accounts with their attempts reset; what was copied stays copied. Then run\n"                   \
	"  'imapfleet run ACCOUNTS.csv' again (or 'imapfleet worker') to migrate them\n"                             \
	"exit status: 0 when something was requeued, 1 when nothing matched\n"

enum { RETRY_FAILED = 1, RETRY_ACCOUNT };

static const struct fleet_opt retry_table[] = {
	{"--failed", 0, RETRY_FAILED, NULL, "every failed account of the run"},
	{"--account", FLEET_OPT_VALUE, RETRY_ACCOUNT, "A", "one account: its id (any run), or its source user or\n"
							   "user@host in the run; a finished account is requeued\n"
							   "too (its next pass copies only what is new)"},
};

struct retry_args {
	struct cli_store_args store;
	const char *account;
	int failed;
};

static int retry_option(void *ctx, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	struct retry_args *a = ctx;

	if (!h->opt) {
		snprintf(why, cap, "unexpected argument '%s'", h->words[0]);
		return -1;
	}
	if (h->set == 0)
		return cli_store_option(&a->store, h, why, cap);
	if (h->opt->id == RETRY_FAILED) {
		a->failed = 1;
		return 0;
	}
	if (!h->value[0]) {
		snprintf(why, cap, "option --account needs an account id or user");
		return -1;
	}
	a->account = h->value;
	return 0;
}

int cli_cmd_retry(int argc, char **argv)
{
	const struct fleet_optset sets[] = {cli_store_optset, FLEET_OPTSET(NULL, retry_table)};
	struct retry_args a;
	const char *state_arg, *account;
	uint64_t run_arg, num;
	int64_t run_id = 0;
	int failed, r;
	long count = 0;
	struct report_store *rs;
	struct fleet_err err;

	memset(&a, 0, sizeof(a));
	if (cli_parse("retry", sets, 2, 0, argc - 1, argv + 1, retry_option, &a) < 0)
		return CLI_EXIT_USAGE;
	if (a.store.help) {
		cli_usage(stdout, RETRY_USAGE, sets, 2, 0);
		return CLI_EXIT_OK;
	}
	state_arg = a.store.state_arg;
	run_arg = a.store.run_id;
	account = a.account;
	failed = a.failed;
	if (failed == !!account) {
		fprintf(stderr, "imapfleet retry: give either --failed or --account ID\n");
		fprintf(stderr, "run 'imapfleet retry --help' for the options\n");
		return CLI_EXIT_USAGE;
	}
	if (report_store_open(state_arg, &rs, &err) < 0) {
		fprintf(stderr, "imapfleet retry: %s\n", err.message);
		if (err.detail[0])
			fprintf(stderr, "  %s\n", err.detail);
		return cli_exit_for_error(&err);
	}
	/* A job id names one account in any run; names and --failed need a run. */
	if (run_arg || !account || fleet_parse_u64(account, 1, INT64_MAX, &num) < 0) {
		r = report_pick_run(report_store_conn(rs), (int64_t)run_arg, &run_id, &err);
		if (r <= 0) {
			report_store_close(&rs);
			if (r < 0) {
				fprintf(stderr, "imapfleet retry: %s\n", err.message);
				return cli_exit_for_error(&err);
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
		if (strcmp(err.code, STATE_ERR_AMBIGUOUS) == 0)
			fprintf(stderr, "  give the account id instead (see 'imapfleet status')\n");
		return cli_exit_for_error(&err);
	}
	if (count == 0)
		return CLI_EXIT_PARTIAL;
	fprintf(stdout,
		"requeued %ld account%s: run 'imapfleet run ACCOUNTS.csv' again (or 'imapfleet worker') to "
		"migrate %s\n",
		count, count == 1 ? "" : "s", count == 1 ? "it" : "them");
	return CLI_EXIT_OK;
}
