/* cli/cmd_preflight.c: `imapfleet preflight ACCOUNTS`: read-only go/no-go per account (the logic is
 * ops/preflight.c). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "accounts/accounts.h"
#include "cli/args.h"
#include "cli/usage.h"
#include "cli/cli.h"
#include "engine/engine.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/util.h"
#include "ops/preflight.h"

enum {
	PF_HELP = 1, PF_WORKERS, PF_MAX_CONNS, PF_TIMEOUT, PF_OUT, PF_STRICT, PF_VERBOSE, PF_FETCH_SIZES, PF_LOG_LEVEL,
};

#define V FLEET_OPT_VALUE
static const struct fleet_opt preflight_table[] = {
	{"--help", 0, PF_HELP, NULL, "this help"},
	{"--workers", V, PF_WORKERS, "N", "accounts checked at once (default {})"},
	{"--max-conns-per-host", V, PF_MAX_CONNS, "N", "connections per server (host:port) at once (default {})"},
	{"--out", V, PF_OUT, "FILE.csv", "where the results go (default ./preflight.csv)"},
	{"--timeout", V, PF_TIMEOUT, "S", "connect and command timeout in seconds (default {})"},
	{"--fetch-sizes", 0, PF_FETCH_SIZES, NULL, "count sizes with UID FETCH RFC822.SIZE even when STATUS=SIZE\n"
						   "is offered"},
	{"--strict", 0, PF_STRICT, NULL, "any bad row in the accounts file stops before any connection"},
	{"--verbose", 0, PF_VERBOSE, NULL, "also print each side's TLS and capabilities (also -v)"},
	{"--log-level", V, PF_LOG_LEVEL, "L", "error|warn|info|debug|trace"},
};
#undef V

static const struct fleet_opt_default preflight_defaults[] = {
	{PF_WORKERS, {PREFLIGHT_WORKERS}},
	{PF_MAX_CONNS, {PREFLIGHT_CONNS_PER_HOST}},
	{PF_TIMEOUT, {PREFLIGHT_TIMEOUT_MS / 1000}},
};
static const struct fleet_optset preflight_opts = FLEET_OPTSET_DEFAULTS(NULL, preflight_table, preflight_defaults);
static const struct cli_spec preflight_spec = {
    "preflight",
    cli_usage_preflight,
    {&preflight_opts, &accounts_side_optset, &engine_opts_optset},
    FLEET_OPT_TWO_SIDES | FLEET_OPT_DASHDASH,
};

struct preflight_args {
	struct preflight_config *cfg;
	struct cli_rows rows; /* side settings and account options for every row */
	int help;
};

static int preflight_option(void *ctx, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	struct preflight_args *a = ctx;
	struct preflight_config *cfg = a->cfg;
	unsigned secs;
	int r;

	if (!h->opt && !h->dashdash && strcmp(h->words[0], "-v") == 0) {
		cfg->verbose = 1;
		return 0;
	}
	if ((r = cli_rows_option(&a->rows, h, why, cap)) <= 0)
		return r;
	switch (h->opt->id) {
	case PF_HELP: a->help = 1; return 0;
	case PF_WORKERS: return cli_opt_uint(h, 1, 1024, &cfg->workers, why, cap);
	case PF_MAX_CONNS: return cli_opt_uint(h, 1, 10000, &cfg->max_conns_per_host, why, cap);
	case PF_TIMEOUT:
		if (cli_opt_uint(h, 1, 3600, &secs, why, cap) < 0)
			return -1;
		cfg->timeout_ms = secs * 1000u;
		return 0;
	case PF_OUT: cfg->csv_path = h->value; return 0;
	case PF_STRICT: cfg->accounts_flags |= ACCOUNTS_STRICT; return 0;
	case PF_VERBOSE: cfg->verbose = 1; return 0;
	case PF_FETCH_SIZES: cfg->fetch_sizes = 1; return 0;
	case PF_LOG_LEVEL: return cli_opt_log_level(h, why, cap);
	}
	return 0;
}

int cli_cmd_preflight(int argc, char **argv)
{
	struct preflight_config cfg;
	struct preflight_summary sum;
	struct fleet_err err;
	struct preflight_args a;
	int r, rc;

	preflight_config_init(&cfg);
	memset(&a, 0, sizeof(a));
	a.cfg = &cfg;
	cli_rows_init(&a.rows, argc, &cfg.accounts_path, " (one accounts file)", 1, NULL);
	rc = cli_spec_args(&preflight_spec, argc, argv, preflight_option, &a, &a.help);
	if (rc >= 0)
		goto done;
	if (!cfg.accounts_path) {
		fprintf(stderr,
			"imapfleet preflight: which accounts file? (imapfleet preflight ACCOUNTS.csv)\n");
		goto usage;
	}
	cfg.argc = a.rows.n;
	cfg.argv = a.rows.words;
	signal(SIGPIPE, SIG_IGN);

	r = preflight_run(&cfg, &sum, &err);
	if (r < 0) {
		rc = cli_fail("preflight", &err);
		goto done;
	}
	rc = r == 0 ? CLI_EXIT_OK : CLI_EXIT_NOT_READY;
	goto done;
usage:
	fprintf(stderr, "run 'imapfleet preflight --help' for the options\n");
	rc = CLI_EXIT_USAGE;
done:
	cli_rows_release(&a.rows);
	return rc;
}
