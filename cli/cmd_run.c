/* cli/cmd_run.c: `imapfleet run ACCOUNTS` and `imapfleet worker`. */
#include <stdio.h>
#include <string.h>

#include "accounts/accounts.h"
#include "cli/cli.h"
#include "common/log.h"
#include "common/util.h"
#include "scheduler/scheduler.h"

static void run_usage(FILE *out, int worker)
{
	if (worker)
		fprintf(out, "usage: imapfleet worker [--state URL] [--key-file F] [--workers N] [--max-conns-per-host N]\n"
			     "joins the active run in the state store from this host\n");
	else
		fprintf(out, "usage: imapfleet run ACCOUNTS.csv [options] [-- account options for every row]\n");
	fprintf(out,
		"  --state URL              PostgreSQL state (default: IMAPFLEET_STATE, PG* variables, or ./.imapfleet/pg)\n"
		"  --workers N              accounts migrated at once by this host (default 8 per core, at most 64)\n"
		"  --max-conns-per-host N   connections per server (host:port) and side, across all hosts (default 16)\n"
		"  --max-attempts N         failed attempts per account before it fails (default 5; an attempt\n"
		"                           that copied messages before it broke does not count)\n"
		"  --retry-base MS --retry-cap MS   backoff: full jitter, doubling from base up to cap\n"
		"  --lease MS               how long a host may be silent before others take its accounts (default 20000:\n"
		"                           four heartbeats of 5 s; the heartbeat is a quarter of the lease)\n"
		"  --server-down-limit S    a server that refuses or drops every connection this long fails its\n"
		"                           accounts with one reason (default 600; 0 = wait for it forever); until\n"
		"                           then its accounts wait and their attempts do not count\n"
		"  --key-file F             key that encrypts stored credentials (default ./.imapfleet/key)\n"
		"  --no-store-credentials   keep passwords out of the database (then only this host can run the accounts)\n"
		"  --strict                 any bad row in the accounts file stops the run before anything is copied\n"
		"  --progress | --no-progress   live progress line (default: when stderr is a terminal)\n"
		"  --quiet                  no progress output\n"
		"  --log-level L            error|warn|info|debug|trace (trace: IMAP dialogues, secrets redacted)\n"
		"account options (after --, or any unknown --option): --folder --include --exclude --maxsize\n"
		"  --maxage --minage --dry --justfolders --delete2 --dedupe-existing --noautomap (see imapfleet(1))\n");
}

static int uint_arg(const char *name, const char *v, uint64_t max, unsigned *out)
{
	uint64_t n;

	if (!v || fleet_parse_u64(v, 1, max, &n) < 0) {
		fprintf(stderr, "imapfleet: %s needs a number from 1 to %llu\n", name, (unsigned long long)max);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

static int run_common(int argc, char **argv, int worker)
{
	struct scheduler_config cfg;
	struct scheduler_summary sum;
	struct fleet_err err;
	char *acct_argv[256];
	int nacct = 0, r;
	double secs;

	scheduler_config_init(&cfg);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			run_usage(stdout, worker);
			return CLI_EXIT_OK;
		} else if (strcmp(a, "--state") == 0 && v) {
			cfg.state_arg = argv[++i];
		} else if (strcmp(a, "--key-file") == 0 && v) {
			cfg.key_file = argv[++i];
		} else if (strcmp(a, "--workers") == 0) {
			if (uint_arg(a, v, 1024, &cfg.workers) < 0)
				return CLI_EXIT_USAGE;
			i++;
		} else if (strcmp(a, "--max-conns-per-host") == 0) {
			if (uint_arg(a, v, 10000, &cfg.max_conns_per_host) < 0)
				return CLI_EXIT_USAGE;
			i++;
		} else if (strcmp(a, "--max-attempts") == 0) {
			if (uint_arg(a, v, 1000, &cfg.retry.max_attempts) < 0)
				return CLI_EXIT_USAGE;
			i++;
		} else if (strcmp(a, "--retry-base") == 0) {
			if (uint_arg(a, v, 86400000, &cfg.retry.base_ms) < 0)
				return CLI_EXIT_USAGE;
			i++;
		} else if (strcmp(a, "--retry-cap") == 0) {
			if (uint_arg(a, v, 86400000, &cfg.retry.cap_ms) < 0)
				return CLI_EXIT_USAGE;
			i++;
		} else if (strcmp(a, "--lease") == 0) {
			if (uint_arg(a, v, 86400000, &cfg.lease_ms) < 0)
				return CLI_EXIT_USAGE;
			i++;
		} else if (strcmp(a, "--server-down-limit") == 0) {
			uint64_t limit_s;

			if (!v || fleet_parse_u64(v, 0, 30u * 86400, &limit_s) < 0) {
				fprintf(stderr, "imapfleet: --server-down-limit needs a number of seconds (0 = no limit)\n");
				return CLI_EXIT_USAGE;
			}
			cfg.server_down_limit_ms = limit_s * 1000;
			i++;
		} else if (strcmp(a, "--max-jobs") == 0) {
			if (uint_arg(a, v, 1u << 30, &cfg.max_jobs) < 0)
				return CLI_EXIT_USAGE;
			i++;
		} else if (strcmp(a, "--no-store-credentials") == 0) {
			cfg.store_credentials = 0;
		} else if (strcmp(a, "--strict") == 0) {
			cfg.strict = 1;
		} else if (strcmp(a, "--progress") == 0) {
			cfg.progress = 1;
		} else if (strcmp(a, "--no-progress") == 0) {
			cfg.progress = 0;
		} else if (strcmp(a, "--quiet") == 0) {
			cfg.quiet = 1;
		} else if (strcmp(a, "--log-level") == 0 && v) {
			enum fleet_log_level lvl;

			if (fleet_log_level_from_name(argv[++i], &lvl) < 0) {
				fprintf(stderr, "imapfleet: unknown log level '%s'\n", argv[i]);
				return CLI_EXIT_USAGE;
			}
			fleet_log_set_level(lvl);
		} else if (strcmp(a, "--") == 0) {
			for (i++; i < argc && nacct < 255; i++)
				acct_argv[nacct++] = argv[i];
		} else if (strncmp(a, "--", 2) == 0) {
			/* An account option for every row; its value, if any, goes with it. */
			if (nacct >= 254)
				break;
			acct_argv[nacct++] = argv[i];
			if (v && strncmp(v, "--", 2) != 0 && strchr(a, '=') == NULL &&
			    (engine_opts_takes_value(a) || accounts_side_option_takes_value(a)))
				acct_argv[nacct++] = argv[++i];
		} else if (!worker && !cfg.accounts_path) {
			cfg.accounts_path = a;
		} else {
			fprintf(stderr, "imapfleet: unexpected argument '%s'\n", a);
			run_usage(stderr, worker);
			return CLI_EXIT_USAGE;
		}
	}
	acct_argv[nacct] = NULL;
	if (!worker && !cfg.accounts_path) {
		fprintf(stderr, "imapfleet run: which accounts file? (imapfleet run ACCOUNTS.csv)\n");
		return CLI_EXIT_USAGE;
	}
	cfg.argc = nacct;
	cfg.argv = acct_argv;
	{
		/* Check the account options once, before anything starts. */
		struct engine_opts o;
		char *check[256];
		int ncheck = 0;

		/* Side settings (--cafile1, --tls2 ...) are the scheduler's; the rest must parse. */
		struct account_side_settings side[2];

		memset(side, 0, sizeof(side));
		if (accounts_take_side_settings(nacct, acct_argv, side, check, &ncheck, &err) < 0) {
			fprintf(stderr, "imapfleet: %s\n", err.message);
			return CLI_EXIT_USAGE;
		}
		engine_opts_init(&o);
		if (engine_opts_parse(&o, ncheck, check, &err) < 0) {
			fprintf(stderr, "imapfleet: %s\n", err.message);
			engine_opts_release(&o);
			return CLI_EXIT_USAGE;
		}
		for (size_t k = 0; k < o.nnotes; k++)
			fprintf(stderr, "imapfleet: note: %s\n", o.notes[k]);
		engine_opts_release(&o);
	}

	r = scheduler_run(&cfg, &sum, &err);
	if (r < 0) {
		fprintf(stderr, "imapfleet %s: %s\n", worker ? "worker" : "run", err.message);
		if (err.detail[0])
			fprintf(stderr, "  %s\n", err.detail);
		if (err.scope == FLEET_SCOPE_RUN && (strncmp(err.code, "PG", 2) == 0 || strncmp(err.code, "08", 2) == 0 ||
						     err.cls == FLEET_ERR_TRANSIENT))
			return CLI_EXIT_STATE;
		if (strcmp(err.code, "ACCOUNTS") == 0 || strcmp(err.code, "NO_ACCOUNTS") == 0 ||
		    strstr(err.code, "CSV") || strstr(err.code, "COLUMN") || strstr(err.code, "STRICT"))
			return CLI_EXIT_USAGE;
		return err.cls == FLEET_ERR_PERMANENT ? CLI_EXIT_USAGE : CLI_EXIT_STATE;
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

int cli_cmd_run(int argc, char **argv)
{
	return run_common(argc, argv, 0);
}

int cli_cmd_worker(int argc, char **argv)
{
	return run_common(argc, argv, 1);
}
