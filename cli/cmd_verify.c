/* cli/cmd_verify.c: `imapfleet verify [ACCOUNTS]`: is everyone's mail there? */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/util.h"
#include "scheduler/scheduler.h"

static void verify_usage(FILE *out)
{
	fprintf(out,
		"usage: imapfleet verify [ACCOUNTS.csv] [--state URL] [--account ID] [--failed] [--deep]\n"
		"  compares every account of the run (the file's, else the newest run) on both servers, folder\n"
		"  by folder (EXAMINE, UID FETCH of RFC822.SIZE INTERNALDATE FLAGS), and with the ledger; prints\n"
		"  PASS or FAIL per account with the folders and UIDs at fault, and records it in the state.\n"
		"  Changes nothing on either server.\n"
		"  --account A     one account: its id, or its source user or user@host\n"
		"  --failed        only accounts failed or partial, or whose last verify did not pass\n"
		"  --deep          also read every destination body and check it against the ledger's SHA-256\n"
		"  --workers N --max-conns-per-host N --max-attempts N --retry-base MS --retry-cap MS  as for run\n"
		"  --key-file F    key of the stored credentials (without ACCOUNTS)\n"
		"  --cafile1/2 F --insecure1/2   TLS settings that override the stored ones\n"
		"exit status: 0 every account PASS, 1 some FAIL (or could not be verified), 2 usage, 3 state store\n");
}

static int num_arg(const char *name, const char *v, uint64_t max, unsigned *out)
{
	uint64_t n;

	if (!v || fleet_parse_u64(v, 1, max, &n) < 0) {
		fprintf(stderr, "imapfleet verify: %s needs a number from 1 to %llu\n", name, (unsigned long long)max);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

int cli_cmd_verify(int argc, char **argv)
{
	struct scheduler_config cfg;
	struct fleet_err err;
	char *side_argv[16];
	int nside = 0, r;

	scheduler_config_init(&cfg);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			verify_usage(stdout);
			return CLI_EXIT_OK;
		} else if (!strcmp(a, "--state") && v) {
			cfg.state_arg = argv[++i];
		} else if (!strcmp(a, "--key-file") && v) {
			cfg.key_file = argv[++i];
		} else if (!strcmp(a, "--account") && v && v[0]) {
			cfg.only_account = argv[++i];
		} else if (!strcmp(a, "--failed")) {
			cfg.only_failed = 1;
		} else if (!strcmp(a, "--deep")) {
			cfg.deep = 1;
		} else if (!strcmp(a, "--workers")) {
			if (num_arg(a, v, 1024, &cfg.workers) < 0)
				return CLI_EXIT_USAGE;
			i++;
		} else if (!strcmp(a, "--max-conns-per-host")) {
			if (num_arg(a, v, 10000, &cfg.max_conns_per_host) < 0)
				return CLI_EXIT_USAGE;
			i++;
		} else if (!strcmp(a, "--max-attempts")) {
			if (num_arg(a, v, 1000, &cfg.retry.max_attempts) < 0)
				return CLI_EXIT_USAGE;
			i++;
		} else if (!strcmp(a, "--retry-base")) {
			if (num_arg(a, v, 86400000, &cfg.retry.base_ms) < 0)
				return CLI_EXIT_USAGE;
			i++;
		} else if (!strcmp(a, "--retry-cap")) {
			if (num_arg(a, v, 86400000, &cfg.retry.cap_ms) < 0)
				return CLI_EXIT_USAGE;
			i++;
		} else if ((!strcmp(a, "--cafile1") || !strcmp(a, "--cafile2")) && v && nside < 14) {
			side_argv[nside++] = argv[i];
			side_argv[nside++] = argv[++i];
		} else if ((!strcmp(a, "--insecure1") || !strcmp(a, "--insecure2")) && nside < 15) {
			side_argv[nside++] = argv[i];
		} else if (!strcmp(a, "--log-level") && v) {
			enum fleet_log_level lvl;

			if (fleet_log_level_from_name(argv[++i], &lvl) < 0) {
				fprintf(stderr, "imapfleet verify: unknown log level '%s'\n", argv[i]);
				return CLI_EXIT_USAGE;
			}
			fleet_log_set_level(lvl);
		} else if (strncmp(a, "--", 2) != 0 && !cfg.accounts_path) {
			cfg.accounts_path = a;
		} else {
			fprintf(stderr, "imapfleet verify: unexpected argument '%s'\n", a);
			verify_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	side_argv[nside] = NULL;
	cfg.argc = nside;
	cfg.argv = side_argv;
	r = scheduler_verify(&cfg, stdout, &err);
	if (r < 0) {
		fprintf(stderr, "imapfleet verify: %s\n", err.message);
		if (err.detail[0])
			fprintf(stderr, "  %s\n", err.detail);
		if (!strcmp(err.code, "NO_RUN") || !strcmp(err.code, "NO_ACCOUNTS") || !strcmp(err.code, "AMBIGUOUS"))
			return CLI_EXIT_USAGE;
		return err.cls == FLEET_ERR_PERMANENT && err.scope != FLEET_SCOPE_RUN ? CLI_EXIT_USAGE : CLI_EXIT_STATE;
	}
	return r == 0 ? CLI_EXIT_OK : CLI_EXIT_PARTIAL;
}
