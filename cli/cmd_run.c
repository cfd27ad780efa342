/* cli/cmd_run.c: `imapfleet run ACCOUNTS` and `imapfleet worker`. */
#include <stdio.h>
#include <string.h>

#include "accounts/accounts.h"
#include "cli/args.h"
#include "cli/usage.h"
#include "cli/cli.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/util.h"
#include "scheduler/scheduler.h"

enum {
	RUN_HELP = 1, RUN_LEASE, RUN_SERVER_DOWN_LIMIT, RUN_MAX_JOBS, RUN_NO_STORE_CREDENTIALS, RUN_STRICT,
	RUN_PROGRESS, RUN_NO_PROGRESS, RUN_QUIET, RUN_KEEP_REMOVED,
};

#define V FLEET_OPT_VALUE
static const struct fleet_opt run_table[] = {
	{"--help", 0, RUN_HELP, NULL, "this help"},
	{"--lease", V, RUN_LEASE, "MS", "how long a host may be silent before others take its accounts\n"
					"(default {}: {} heartbeats of {} s)"},
	{"--server-down-limit", V, RUN_SERVER_DOWN_LIMIT, "S", "a server that refuses or drops every connection\n"
							       "this long fails its accounts with one reason\n"
							       "(default {}; 0 = wait for it forever); until\n"
							       "then its accounts wait and their attempts do\n"
							       "not count"},
	{"--max-jobs", V | FLEET_OPT_HIDDEN, RUN_MAX_JOBS, "N", NULL},
	{"--no-store-credentials", 0, RUN_NO_STORE_CREDENTIALS, NULL, "keep passwords out of the database (then only\n"
								      "this host can run the accounts)"},
	{"--strict", 0, RUN_STRICT, NULL, "any bad row in the accounts file stops the run before anything\n"
					  "is copied"},
	{"--keep-removed", 0, RUN_KEEP_REMOVED, NULL, "run the accounts whose rows left the accounts file too\n"
						      "(default: the file is the truth: they are named,\n"
						      "cancelled and not run)"},
	{"--progress", 0, RUN_PROGRESS, NULL, "live display below the log lines (default: when stderr is a\n"
					      "terminal)"},
	{"--no-progress", 0, RUN_NO_PROGRESS, NULL, "timestamped progress log lines every {} s instead"},
	{"--quiet", 0, RUN_QUIET, NULL, "warnings and errors only on stderr (per-account logs keep every\n"
					"line)"},
};
#undef V

static const struct fleet_opt_default run_defaults[] = {
	{RUN_LEASE,
	 {SCHEDULER_HEARTBEAT_MS * SCHEDULER_LEASE_BEATS, SCHEDULER_LEASE_BEATS, SCHEDULER_HEARTBEAT_MS / 1000}},
	{RUN_SERVER_DOWN_LIMIT, {SCHEDULER_SERVER_DOWN_LIMIT_MS / 1000}},
	{RUN_NO_PROGRESS, {SCHEDULER_PROGRESS_LINE_MS / 1000}},
};
static const struct fleet_optset run_opts = FLEET_OPTSET_DEFAULTS(NULL, run_table, run_defaults);
/* run and worker: the same options, their own words */
#define RUN_SPEC(cmd, usage)                                                                                 \
	{                                                                                                    \
		(cmd), (usage), {&run_opts, &cli_sched_optset, &accounts_side_optset, &engine_opts_optset},  \
		    FLEET_OPT_TWO_SIDES | FLEET_OPT_DASHDASH                                                 \
	}
static const struct cli_spec run_specs[2] = {
    RUN_SPEC("run", cli_usage_run),
    RUN_SPEC("worker", cli_usage_worker),
};
#undef RUN_SPEC

struct run_args {
	struct scheduler_config *cfg;
	struct cli_rows rows; /* side settings and account options for every row, with their values */
	int worker, help;
};

static int run_option(void *ctx, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	struct run_args *a = ctx;
	struct scheduler_config *cfg = a->cfg;
	unsigned secs;
	int r;

	if (!h->opt && !h->dashdash && a->worker) {
		snprintf(why, cap, "unexpected argument '%s' (worker takes no accounts file)", h->words[0]);
		return -1;
	}
	if ((r = cli_rows_option(&a->rows, h, why, cap)) <= 0)
		return r;
	switch (h->opt->id) {
	case RUN_HELP: a->help = 1; return 0;
	case RUN_LEASE: return cli_opt_uint(h, 1, 86400000, &cfg->lease_ms, why, cap);
	case RUN_MAX_JOBS: return cli_opt_uint(h, 1, 1u << 30, &cfg->max_jobs, why, cap);
	case RUN_SERVER_DOWN_LIMIT:
		if (cli_opt_uint(h, 0, 30u * 86400, &secs, why, cap) < 0)
			return -1;
		cfg->server_down_limit_ms = (uint64_t)secs * 1000;
		return 0;
	case RUN_NO_STORE_CREDENTIALS: cfg->store_credentials = 0; return 0;
	case RUN_STRICT: cfg->strict = 1; return 0;
	case RUN_KEEP_REMOVED:
		if (a->worker) {
			snprintf(why, cap, "--keep-removed is for run (a worker runs what the run queued)");
			return -1;
		}
		cfg->keep_removed = 1;
		return 0;
	case RUN_PROGRESS: cfg->progress = 1; return 0;
	case RUN_NO_PROGRESS: cfg->progress = 0; return 0;
	case RUN_QUIET: cfg->quiet = 1; return 0;
	}
	return 0;
}

/* Checks the account options once, before anything starts: side settings (--cafile1, --tls2 ...)
 * are the scheduler's, the rest must parse. */
static int check_account_options(int nacct, char **acct)
{
	struct account_side_settings side[2];
	struct engine_opts o;
	struct fleet_err err;
	char **check = xcalloc((size_t)nacct + 1, sizeof(*check));
	int ncheck = 0, rc = 0;

	memset(side, 0, sizeof(side));
	engine_opts_init(&o);
	if (accounts_take_side_settings(nacct, acct, side, check, &ncheck, &err) < 0 ||
	    engine_opts_parse(&o, ncheck, check, &err) < 0) {
		fprintf(stderr, "imapfleet: %s\n", err.message);
		rc = -1;
	} else {
		for (size_t k = 0; k < o.nnotes; k++)
			fprintf(stderr, "imapfleet: note: %s\n", o.notes[k]);
	}
	engine_opts_release(&o);
	xfree(&check);
	return rc;
}

static int run_finish(struct scheduler_config *cfg, int worker)
{
	struct scheduler_summary sum;
	struct fleet_err err;
	double secs;
	int r;

	r = scheduler_run(cfg, &sum, &err);
	if (r < 0) {
		return cli_fail(worker ? "worker" : "run", &err);
	}
	secs = (double)(sum.finished_ms - sum.started_ms) / 1000.0;
	if (secs <= 0)
		secs = 0.001;
	if (!worker && sum.rows_bad)
		fprintf(stdout, "accounts file: %u rows imported, %u bad rows reported above\n", sum.rows_imported,
			sum.rows_bad);
	fprintf(stdout,
		"run %lld: %ld done, %ld partial, %ld failed, %ld queued, %ld running elsewhere; this host copied "
		"%llu messages (%.1f MB) in %.1f s (%.0f msg/s, %.1f MB/s)\n",
		(long long)sum.run_id, sum.jobs_done, sum.jobs_partial, sum.jobs_failed, sum.jobs_queued,
		sum.jobs_running,
		(unsigned long long)sum.msgs_copied, (double)sum.bytes_copied / 1048576.0, secs,
		(double)sum.msgs_copied / secs, (double)sum.bytes_copied / 1048576.0 / secs);
	if (sum.pass_number)
		fprintf(stdout,
			"pass %d (%s%s): %lld copied, %lld already there, %lld skipped, %lld failed (messages, all "
			"hosts)\n",
			sum.pass_number, sum.pass_first ? "first" : "delta", sum.pass_ended ? ", ended" : ", goes on",
			(long long)sum.pass_copied, (long long)sum.pass_matched, (long long)sum.pass_skipped,
			(long long)sum.pass_failed);
	if (sum.pass_uncertain)
		fprintf(stdout,
			"identity not certain: %lld of the copied messages may be on the destination twice (look-alikes "
			"there, or no Message-ID); 'imapfleet report' lists the accounts\n",
			(long long)sum.pass_uncertain);
	if (sum.jobs_held || sum.jobs_removed)
		fprintf(stdout,
			"left out of this pass: %ld whose login was refused (credential unchanged), %ld no longer in "
			"the accounts file; named above and in 'imapfleet status'\n",
			sum.jobs_held, sum.jobs_removed);
	if (sum.jobs_failed || sum.jobs_partial)
		fprintf(stdout, "failed or partial accounts: see 'imapfleet status' and 'imapfleet report'; "
				"'imapfleet retry --failed' queues them again\n");
	if (sum.interrupted) {
		fprintf(stdout, "interrupted: run the same command again to resume\n");
		return CLI_EXIT_INTERRUPTED;
	}
	/* Bad rows were not migrated: the run is not all done until the file is fixed. */
	return (r == 0 && sum.rows_bad == 0) ? CLI_EXIT_OK : CLI_EXIT_PARTIAL;
}

static int run_common(int argc, char **argv, int worker)
{
	struct scheduler_config cfg;
	struct run_args a;
	const struct cli_spec *spec = &run_specs[worker ? 1 : 0];
	int rc;

	scheduler_config_init(&cfg);
	memset(&a, 0, sizeof(a));
	a.cfg = &cfg;
	a.worker = worker;
	cli_rows_init(&a.rows, argc, &cfg.accounts_path, " (one accounts file per run)", 2, &cfg);
	rc = cli_spec_args(spec, argc, argv, run_option, &a, &a.help);
	if (rc >= 0)
		goto out;
	if (!worker && !cfg.accounts_path) {
		fprintf(stderr, "imapfleet run: which accounts file? (imapfleet run ACCOUNTS.csv)\n");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	cfg.argc = a.rows.n;
	cfg.argv = a.rows.words;
	if (check_account_options(a.rows.n, a.rows.words) < 0) {
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	rc = run_finish(&cfg, worker);
out:
	cli_rows_release(&a.rows);
	return rc;
}

int cli_cmd_run(int argc, char **argv)
{
	return run_common(argc, argv, 0);
}

int cli_cmd_worker(int argc, char **argv)
{
	return run_common(argc, argv, 1);
}
