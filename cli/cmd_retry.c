/* cli/cmd_retry.c: `imapfleet retry`: failed (or chosen) accounts back to the queue; `imapfleet
 * cancel`: accounts out of the run until `retry` names them. One parser for both. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/usage.h"
#include "cli/cli.h"
#include "common/opt.h"
#include "common/util.h"
#include "ops/report.h"
#include "ops/retry.h"
#include "state/store.h"
#include "state/state.h"

enum { RETRY_FAILED = 1, RETRY_ACCOUNT, CANCEL_ALL };

static const struct fleet_opt retry_table[] = {
	{"--failed", 0, RETRY_FAILED, NULL, "every failed account of the run"},
	{"--account", FLEET_OPT_VALUE, RETRY_ACCOUNT, "A", "one account: its id (any run), or its source user or\n"
							   "user@host in the run; a finished account is requeued\n"
							   "too (its next pass copies only what is new), and a\n"
							   "cancelled one (that undoes the cancel)"},
};

static const struct fleet_opt cancel_table[] = {
	{"--failed", 0, RETRY_FAILED, NULL, "every failed or partial account of the run"},
	{"--all", 0, CANCEL_ALL, NULL, "every account of the run that is not cancelled yet, done ones included"},
	{"--account", FLEET_OPT_VALUE, RETRY_ACCOUNT, "A", "one account: its id (any run), or its source user or\n"
							   "user@host in the run"},
};

static const struct fleet_optset retry_opts = FLEET_OPTSET(NULL, retry_table);
static const struct fleet_optset cancel_opts = FLEET_OPTSET(NULL, cancel_table);
static const struct cli_spec account_specs[2] = {
    {"retry", cli_usage_retry, {&cli_store_optset, &retry_opts}, 0},
    {"cancel", cli_usage_cancel, {&cli_store_optset, &cancel_opts}, 0},
};

struct retry_args {
	struct cli_store_args store;
	const char *account;
	int failed, all;
};

static int retry_option(void *ctx, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	struct retry_args *a = ctx;

	switch (h->opt->id) {
	case RETRY_FAILED: a->failed = 1; return 0;
	case CANCEL_ALL: a->all = 1; return 0;
	}
	return cli_opt_text(h, "an account id or user", &a->account, why, cap);
}

static int account_command(int argc, char **argv, int cancel)
{
	const struct cli_spec *spec = &account_specs[cancel ? 1 : 0];
	const char *cmd = cancel ? "cancel" : "retry";
	struct retry_args a;
	uint64_t num;
	int64_t run_id = 0;
	int r;
	long count = 0;
	struct state_store *rs;
	struct fleet_err err;

	memset(&a, 0, sizeof(a));
	r = cli_store_spec_args(spec, argc, argv, &a.store, retry_option, &a);
	if (r >= 0)
		return r;
	if (a.failed + a.all + !!a.account != 1) {
		fprintf(stderr, "imapfleet %s: give one of %s--failed or --account ID\n", cmd, cancel ? "--all, " : "");
		fprintf(stderr, "run 'imapfleet %s --help' for the options\n", cmd);
		return CLI_EXIT_USAGE;
	}
	if (state_store_open(a.store.state_arg, NULL, STATE_STORE_EXISTING, &rs, &err) < 0)
		return cli_fail(cmd, &err);
	/* A job id names one account in any run; names and --failed need a run. */
	if (a.store.run_id || !a.account || fleet_parse_u64(a.account, 1, INT64_MAX, &num) < 0) {
		r = cli_store_pick_run(cmd, state_store_conn(rs), a.store.run_id, &run_id);
		if (r >= 0) {
			state_store_close(&rs);
			return r;
		}
	}
	if (cancel)
		r = report_cancel(state_store_conn(rs), run_id, a.account, a.all, stdout, &count, &err);
	else
		r = report_retry(state_store_conn(rs), run_id, a.account, stdout, &count, &err);
	state_store_close(&rs);
	if (r < 0) {
		fprintf(stderr, "imapfleet %s: %s\n", cmd, err.message);
		if (strcmp(err.code, STATE_ERR_AMBIGUOUS) == 0)
			fprintf(stderr, "  give the account id instead (see 'imapfleet status')\n");
		return cli_exit_for_error(&err);
	}
	if (count == 0)
		return CLI_EXIT_PARTIAL;
	if (cancel) {
		fprintf(stdout, "cancelled %ld account%s: later passes leave %s out ('imapfleet retry --account ID' "
				"undoes it)\n", count, count == 1 ? "" : "s", count == 1 ? "it" : "them");
		return CLI_EXIT_OK;
	}
	fprintf(stdout,
		"requeued %ld account%s: run 'imapfleet run ACCOUNTS.csv' again (or 'imapfleet worker') to "
		"migrate %s\n",
		count, count == 1 ? "" : "s", count == 1 ? "it" : "them");
	return CLI_EXIT_OK;
}

int cli_cmd_retry(int argc, char **argv)
{
	return account_command(argc, argv, 0);
}

int cli_cmd_cancel(int argc, char **argv)
{
	return account_command(argc, argv, 1);
}
