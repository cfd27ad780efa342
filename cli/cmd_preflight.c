/* cli/cmd_preflight.c: `imapfleet preflight ACCOUNTS`: read-only go/no-go per account (the logic is
 * ops/preflight.c). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "accounts/accounts.h"
#include "cli/cli.h"
#include "engine/engine.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/util.h"
#include "ops/preflight.h"

static void preflight_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: imapfleet preflight ACCOUNTS.csv [options] [-- account options for every row]\n"
	    "checks every account pair without changing anything: both logins, TLS and certificates,\n"
	    "capabilities, folders, messages and size, destination quota, oversize messages, folder names\n"
	    "\n"
	    "  --workers N              accounts checked at once (default 8)\n"
	    "  --max-conns-per-host N   connections per server (host:port) at once (default 8)\n"
	    "  --out FILE.csv           where the results go (default ./preflight.csv)\n"
	    "  --maxsize N[K|M|G]       report messages larger than this (as run would skip them)\n"
	    "  --cafile1 F --cafile2 F  trust this CA as well (the row's cafile column wins)\n"
	    "  --insecure1 --insecure2  do not verify certificates (warned about)\n"
	    "  --authuser1 A --authuser2 A   admin/master user (the row's authuser column wins)\n"
	    "  --timeout S              connect and command timeout in seconds (default 30)\n"
	    "  --fetch-sizes            count sizes with UID FETCH RFC822.SIZE even when STATUS=SIZE is "
	    "offered\n"
	    "  --strict                 any bad row in the accounts file stops before any connection\n"
	    "  --verbose                also print each side's TLS and capabilities\n"
	    "  --log-level L            error|warn|info|debug|trace\n"
	    "account options (--folder --include --exclude --noautomap ...) narrow the folders counted.\n"
	    "exit status: 0 every account GO, 7 at least one NO-GO, 2 bad command line or accounts file\n");
}

static int uint_arg(const char *name, const char *v, uint64_t max, unsigned *out)
{
	uint64_t n;

	if (!v || fleet_parse_u64(v, 1, max, &n) < 0) {
		fprintf(stderr, "imapfleet preflight: %s needs a number from 1 to %llu\n", name,
			(unsigned long long)max);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

static int takes_value(const char *a)
{
	static const char *const valued[] = {"--cafile1", "--cafile2", "--authuser1", "--authuser2"};

	if (strchr(a, '='))
		return 0;
	if (engine_opts_takes_value(a))
		return 1;
	for (size_t i = 0; i < sizeof(valued) / sizeof(valued[0]); i++)
		if (strcmp(a, valued[i]) == 0)
			return 1;
	return 0;
}

int cli_cmd_preflight(int argc, char **argv)
{
	struct preflight_config cfg;
	struct preflight_summary sum;
	struct fleet_err err;
	char **acct = xcalloc((size_t)argc + 1, sizeof(*acct));
	int nacct = 0, r, rc;
	unsigned secs;

	preflight_config_init(&cfg);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			preflight_usage(stdout);
			rc = CLI_EXIT_OK;
			goto done;
		} else if (strcmp(a, "--workers") == 0) {
			if (uint_arg(a, v, 1024, &cfg.workers) < 0)
				goto usage;
			i++;
		} else if (strcmp(a, "--max-conns-per-host") == 0) {
			if (uint_arg(a, v, 10000, &cfg.max_conns_per_host) < 0)
				goto usage;
			i++;
		} else if (strcmp(a, "--timeout") == 0) {
			if (uint_arg(a, v, 3600, &secs) < 0)
				goto usage;
			cfg.timeout_ms = secs * 1000u;
			i++;
		} else if (strcmp(a, "--out") == 0) {
			if (!v) {
				fprintf(stderr, "imapfleet preflight: --out needs a file name\n");
				goto usage;
			}
			cfg.csv_path = argv[++i];
		} else if (strcmp(a, "--strict") == 0) {
			cfg.accounts_flags |= ACCOUNTS_STRICT;
		} else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
			cfg.verbose = 1;
		} else if (strcmp(a, "--fetch-sizes") == 0) {
			cfg.fetch_sizes = 1;
		} else if (strcmp(a, "--log-level") == 0 && v) {
			enum fleet_log_level lvl;

			if (fleet_log_level_from_name(argv[++i], &lvl) < 0) {
				fprintf(stderr, "imapfleet preflight: unknown log level '%s'\n", argv[i]);
				goto usage;
			}
			fleet_log_set_level(lvl);
		} else if (strcmp(a, "--") == 0) {
			for (i++; i < argc; i++)
				acct[nacct++] = argv[i];
		} else if (strncmp(a, "--", 2) == 0) {
			/* Side settings and account options for every row; a value goes with its option. */
			acct[nacct++] = argv[i];
			if (v && takes_value(a))
				acct[nacct++] = argv[++i];
		} else if (!cfg.accounts_path) {
			cfg.accounts_path = a;
		} else {
			fprintf(stderr, "imapfleet preflight: unexpected argument '%s'\n", a);
			goto usage;
		}
	}
	if (!cfg.accounts_path) {
		fprintf(stderr,
			"imapfleet preflight: which accounts file? (imapfleet preflight ACCOUNTS.csv)\n");
		goto usage;
	}
	cfg.argc = nacct;
	cfg.argv = acct;
	signal(SIGPIPE, SIG_IGN);

	r = preflight_run(&cfg, &sum, &err);
	if (r < 0) {
		fprintf(stderr, "imapfleet preflight: %s\n", err.message);
		if (err.detail[0])
			fprintf(stderr, "  %s\n", err.detail);
		rc = CLI_EXIT_USAGE;
		goto done;
	}
	rc = r == 0 ? CLI_EXIT_OK : CLI_EXIT_NOT_READY;
	goto done;
usage:
	fprintf(stderr, "run 'imapfleet preflight --help' for the options\n");
	rc = CLI_EXIT_USAGE;
done:
	xfree(&acct);
	return rc;
}
